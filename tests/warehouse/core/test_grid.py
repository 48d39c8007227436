"""`warehouse.core.grid`: the one home of grid geometry (Grid, its tolerance, crops, reorientation, air)."""

from __future__ import annotations

import numpy as np
import pytest

from warehouse.core.errors import GridMismatchError
from warehouse.core.grid import AIR_HU, GRID_ATOL_MM, STORED_AXCODES, Grid, margin_box, shift_affine, to_lps

AFFINE = np.array([[-0.7, 0, 0, 120.0], [0, -0.7, 0, 95.0], [0, 0, 2.5, -300.0], [0, 0, 0, 1]])  # L, P, S
SHAPE = (24, 20, 10)


def _ras(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The same grid stored with its first two axes flipped (R, A, S)."""
    out = shift_affine(affine, (shape[0] - 1, shape[1] - 1, 0))
    out[:3, :2] *= -1
    return out


def test_grid_is_a_frozen_value():
    g = Grid([24, 20, 10], AFFINE.tolist())
    assert g.shape == SHAPE and g.affine.dtype == np.float64 and not g.affine.flags.writeable
    assert g == Grid(SHAPE, AFFINE) and hash(g) == hash(Grid(SHAPE, AFFINE))
    shape, affine = g  # unpacks as the (shape, affine) pair it replaces
    assert shape == SHAPE and np.array_equal(affine, AFFINE)
    with pytest.raises(AttributeError):
        g.shape = (1, 1, 1)  # type: ignore[misc]
    with pytest.raises(ValueError, match="4x4"):
        Grid(SHAPE, np.eye(3))


def test_spacing_and_orientation():
    g = Grid(SHAPE, AFFINE)
    assert g.spacing == pytest.approx((0.7, 0.7, 2.5))
    assert g.axcodes == STORED_AXCODES and g.orientation == "LPS"
    ras = Grid(SHAPE, _ras(AFFINE, SHAPE))
    assert ras.orientation == "RAS" and ras.spacing == pytest.approx((0.7, 0.7, 2.5))
    permuted = np.array([[0, 0, -2.0, 0], [1.5, 0, 0, 0], [0, -3.0, 0, 0], [0, 0, 0, 1]])  # axes: A, I, L
    assert Grid((4, 5, 6), permuted).orientation == "AIL" and Grid((4, 5, 6), permuted).spacing == (1.5, 3.0, 2.0)


def test_same_as_has_one_tolerance():
    g = Grid(SHAPE, AFFINE)
    assert g.same_as(Grid(SHAPE, AFFINE + 1e-4)) and g.same_as(Grid(SHAPE, AFFINE - GRID_ATOL_MM / 2))
    shifted = AFFINE.copy()
    shifted[0, 3] += 0.01
    assert not g.same_as(Grid(SHAPE, shifted))  # the origin: 0.01 mm is too far
    tilted = AFFINE.copy()
    tilted[0, 1] = 2e-3
    assert not g.same_as(Grid(SHAPE, tilted))  # the axes: the same tolerance
    assert not g.same_as(Grid((24, 20, 11), AFFINE))


def test_check_names_the_file_and_what_differs():
    image = Grid(SHAPE, AFFINE)
    Grid(SHAPE, AFFINE + 1e-4).check(image, file="heart.nii.gz")  # within tolerance: no error
    with pytest.raises(GridMismatchError, match=r"^mask grid \(10, 10, 10\) does not match the image grid "
                                                r"\(24, 20, 10\) \[") as e:
        Grid((10, 10, 10), AFFINE).check(image, file="heart.nii.gz")
    assert e.value.file == "heart.nii.gz" and e.value.stage == "masks" and "resample" in e.value.hint
    with pytest.raises(GridMismatchError, match=r"\(same shape, different affine\)"):
        Grid(SHAPE, AFFINE * 2).check(image, file="heart.nii.gz", case_id="a")


def test_shift_affine_keeps_world_coordinates():
    shifted = shift_affine(AFFINE, (3, 4, 5))
    voxel = np.array([1, 2, 3, 1.0])
    np.testing.assert_allclose(shifted @ voxel, AFFINE @ (voxel + [3, 4, 5, 0]))
    assert shifted is not AFFINE and np.array_equal(shifted[:3, :3], AFFINE[:3, :3])
    assert np.array_equal(shift_affine(AFFINE, np.zeros(3, int)), AFFINE)
    assert Grid(SHAPE, AFFINE).shifted((3, 4, 5), (2, 2, 2)) == Grid((2, 2, 2), shifted)


def test_margin_box_grows_by_whole_voxels_and_clips():
    bbox = ((5, 5, 4), (10, 12, 6))
    # 2 mm: ceil(2 / 0.7) = 3 voxels in x and y, ceil(2 / 2.5) = 1 in z
    assert margin_box(bbox, SHAPE, AFFINE, 2.0) == ((2, 2, 3), (13, 15, 7))
    assert margin_box(bbox, SHAPE, AFFINE, 2.5) == ((1, 1, 3), (14, 16, 7))  # 2.5 / 2.5: exactly 1, not 2
    assert margin_box(bbox, SHAPE, AFFINE, 100.0) == ((0, 0, 0), SHAPE)  # clipped to the grid
    assert margin_box(bbox, SHAPE, AFFINE, 0.0) == bbox and margin_box(bbox, SHAPE, AFFINE, -5) == bbox
    lo, hi = margin_box((tuple(np.int64(v) for v in bbox[0]), bbox[1]), SHAPE, AFFINE, 2.0)
    assert all(type(v) is int for v in (*lo, *hi))


def test_to_lps_flips_without_resampling():
    rng = np.random.default_rng(0)
    lps = rng.integers(0, 100, SHAPE)
    ras, a_ras = lps[::-1, ::-1, :].copy(), _ras(AFFINE, SHAPE)
    out, affine = to_lps(ras, a_ras)
    np.testing.assert_array_equal(out, lps)
    np.testing.assert_allclose(affine, AFFINE, atol=1e-12)
    assert np.shares_memory(out, ras)  # a view
    copied, _ = to_lps(ras, a_ras, contiguous=True)
    assert copied.flags.c_contiguous and not np.shares_memory(copied, ras)
    same, same_affine = to_lps(lps, AFFINE)  # already L, P, S: as it is
    assert same is lps and np.array_equal(same_affine, AFFINE)
    assert Grid(SHAPE, a_ras).to_lps().same_as(Grid(SHAPE, AFFINE))


def test_to_lps_permutes_axes():
    # stored S, L, P: axis 0 runs feet to head, 1 right to left, 2 anterior to posterior
    affine = np.array([[0, -0.7, 0, 0], [0, 0, -0.8, 0], [2.5, 0, 0, 0], [0, 0, 0, 1.0]])
    data = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    out, new_affine = to_lps(data, affine)
    assert out.shape == (3, 4, 2) and Grid(out.shape, new_affine).orientation == "LPS"
    assert out[1, 2, 1] == data[1, 1, 2]
    np.testing.assert_allclose(new_affine @ [1, 2, 1, 1], affine @ [1, 1, 2, 1])
    assert Grid(data.shape, affine).to_lps() == Grid(out.shape, new_affine)


def test_air_is_one_value_everywhere(tmp_path):
    import zarr

    from ingest.images import to_hu_int16
    from warehouse.store.arrays import ArrayStore

    assert AIR_HU == -1024
    assert to_hu_int16(np.array([-3024.0, 0.0])).tolist() == [AIR_HU, 0]  # padding below air is air
    store = ArrayStore(tmp_path / "a.zarr")
    store.write_image("c.nii.gz", np.full((4, 4, 4), 40, np.int16), np.eye(4))
    assert zarr.open_array(tmp_path / "a.zarr" / "c" / "image").fill_value == AIR_HU  # unstored chunks
