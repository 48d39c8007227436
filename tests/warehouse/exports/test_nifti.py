"""`warehouse.exports.nifti`: planning a case's NIfTI files (`plan_case`), writing them (`write_case`) equal
voxel for voxel to `Warehouse.image` / `Warehouse.region_mask`, crop boxes grown by the margin and clipped to
the grid with an affine that keeps every voxel's world coordinate, and the helpers (`paste`, `voxel_offset`,
`nifti_bytes_bound`, `write_nifti`).

One small warehouse per module (`tests.fixtures.cohort_source`: 0.8 x 0.9 x 2.5 mm voxels, an origin away
from zero); expected boxes are worked out from the masks with numpy, not through the store's bounding boxes.
"""

from __future__ import annotations

import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ingest.runner import build
from tests.fixtures.cohort_source import SHAPE, SPACING, CohortSource
from warehouse import Warehouse
from warehouse.core.errors import ArrayNotFoundError
from warehouse.exports.bundle_tables import safe_name
from warehouse.exports.nifti import (
    ArrayFile,
    nifti_bytes_bound,
    paste,
    plan_case,
    voxel_offset,
    write_case,
    write_nifti,
)

NO_IMAGE, EMPTY_HEART = "valid_4_a_1.nii.gz", "train_5_a_1.nii.gz"  # cohort indices 3 and 4
CASE = "train_1_a_1.nii.gz"


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Warehouse:
    root = tmp_path_factory.mktemp("nifti") / "wh"
    build(CohortSource(n=5, without_image=(3,)), root, runner="local", progress=False)
    with Warehouse.open(root) as w:
        yield w


def plan(wh: Warehouse, case_id: str, **kw):
    kw = {"image": True, "masks": (), "crop": None, "margin_mm": 0.0} | kw
    return plan_case(wh, case_id, case_id.split(".")[0], safe_name, **kw)


def mask_box(mask: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    idx = np.nonzero(mask)
    return tuple(int(i.min()) for i in idx), tuple(int(i.max()) + 1 for i in idx)


def expected_box(mask: np.ndarray, margin_mm: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The mask's box grown by whole voxels covering `margin_mm` on each axis, clipped to the grid."""
    lo, hi = mask_box(mask)
    grow = [math.ceil(margin_mm / s) for s in SPACING]
    return (tuple(max(0, a - g) for a, g in zip(lo, grow, strict=True)),
            tuple(min(n, b + g) for b, g, n in zip(hi, grow, SHAPE, strict=True)))


def read(path: Path) -> tuple[np.ndarray, np.ndarray, nib.Nifti1Image]:
    img = nib.load(str(path))
    return np.asarray(img.dataobj), img.affine, img


def world(affine: np.ndarray, ijk) -> np.ndarray:
    return (np.asarray(affine) @ np.append(np.asarray(ijk, float), 1.0))[:3]


# -- planning ----------------------------------------------------------------------------------------------
def test_a_whole_case_plans_one_image_and_one_file_per_mask(wh):
    files, notes = plan(wh, CASE, masks=("left lung", "heart", "lung"))
    assert notes == []
    assert [(f.rel, f.kind, f.region) for f in files] == [
        ("images/train_1_a_1.nii.gz", "image", None), ("masks/train_1_a_1/left lung.nii.gz", "mask", "left lung"),
        ("masks/train_1_a_1/heart.nii.gz", "mask", "heart"), ("masks/train_1_a_1/lung.nii.gz", "mask", "lung")]
    assert all(f.box == ((0, 0, 0), SHAPE) and f.shape == SHAPE and f.crop is None for f in files)
    assert files[0].bytes_bound == nifti_bytes_bound(SHAPE, np.int16) > files[1].bytes_bound


def test_what_a_case_cannot_give_is_a_note(wh):
    files, notes = plan(wh, NO_IMAGE, masks=("heart", "liver"))
    assert [f.kind for f in files] == ["mask"]  # its masks are there
    assert notes == [f"{NO_IMAGE}: no CT image in the store", f"{NO_IMAGE}: no mask for region 'liver'"]
    assert plan(wh, "nope.nii.gz", masks=("heart",)) == ([], ["nope.nii.gz: no arrays in the store"])
    files, notes = plan(wh, EMPTY_HEART, masks=("heart",), crop="heart", margin_mm=5)
    assert files == [] and notes == [f"{EMPTY_HEART}: no voxel of the crop region 'heart': its arrays are left out"]
    files, notes = plan(wh, CASE, image=False, masks=("heart",), crop="liver")  # no liver mask at all
    assert files == [] and "no voxel of the crop region 'liver'" in notes[0]


@pytest.mark.parametrize(("region", "margin_mm"), [("left lung", 0.0), ("left lung", 6.0), ("heart", 2.0),
                                                   ("lung", 1000.0)])
def test_crop_box_is_the_region_grown_by_the_margin_and_clipped(wh, region, margin_mm):
    mask, _ = wh.region_mask(CASE, region)
    files, notes = plan(wh, CASE, masks=(region,), crop=region, margin_mm=margin_mm)
    box = expected_box(mask, margin_mm)
    assert notes == [] and {f.box for f in files} == {box}
    assert all(f.crop == region and f.margin_mm == margin_mm for f in files)
    assert all(0 <= lo < hi <= n for lo, hi, n in zip(*box, SHAPE, strict=True))
    if margin_mm == 6.0:  # 8 voxels in x and 3 in z reach past the grid (x 22..35, z 2..18): clipped
        assert (box[0][2], box[1][0], box[1][2]) == (0, SHAPE[0], SHAPE[2])
    if margin_mm == 1000.0:
        assert box == ((0, 0, 0), SHAPE)


# -- writing ------------------------------------------------------------------------------------------
def test_whole_files_equal_the_warehouse_voxel_for_voxel(wh, tmp_path):
    files, _ = plan(wh, CASE, masks=("left lung", "lung", "trachea and bronchie"))
    written = write_case(wh, files, tmp_path)
    assert written == sum((tmp_path / f.rel).stat().st_size for f in files) > 0
    hu, affine = wh.image(CASE)
    data, out_affine, img = read(tmp_path / files[0].rel)
    assert data.dtype == np.int16 and np.array_equal(data, hu)
    np.testing.assert_allclose(out_affine, affine, atol=1e-5)  # NIfTI holds the affine as float32
    assert int(img.header["sform_code"]) == int(img.header["qform_code"]) == 1
    np.testing.assert_allclose(img.get_qform(), affine, atol=1e-5)  # the qform holds it too
    for f in files[1:]:
        data, out_affine, _ = read(tmp_path / f.rel)
        assert data.dtype == np.uint8 and np.array_equal(data, wh.region_mask(CASE, f.region)[0]), f.region
        np.testing.assert_allclose(out_affine, affine, atol=1e-5)
    assert not list(tmp_path.rglob(".partial-*"))


def test_crops_equal_the_warehouse_in_the_box_and_keep_world_coordinates(wh, tmp_path):
    crop, margin = "left lung", 2.0  # x 22..35 grown by 3 voxels: the right lung (x < 17) stays outside
    files, _ = plan(wh, CASE, masks=("left lung", "heart", "right lung", "lung"), crop=crop, margin_mm=margin)
    write_case(wh, files, tmp_path)
    (lo, hi), (hu, affine) = files[0].box, wh.image(CASE)
    inside = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    data, out_affine, _ = read(tmp_path / files[0].rel)
    assert data.shape == files[0].shape and np.array_equal(data, hu[inside])
    for ijk in [(0, 0, 0), (3, 5, 1), tuple(n - 1 for n in data.shape)]:  # the same place in the body
        np.testing.assert_allclose(world(out_affine, ijk), world(affine, np.add(ijk, lo)), atol=1e-4)
    for f in files[1:]:  # the crop region's own mask, and others pasted into its box (right lung: none of it)
        data, mask_affine, _ = read(tmp_path / f.rel)
        full = wh.region_mask(CASE, f.region)[0]
        assert np.array_equal(data, full[inside]), f.region
        np.testing.assert_array_equal(mask_affine, out_affine)
    assert lo == (19, 2, 1) and hi == (38, 34, 19)
    assert read(tmp_path / files[1].rel)[0].any() and not read(tmp_path / files[3].rel)[0].any()


def test_a_crop_clipped_at_the_grid_edge_is_written_as_planned(wh, tmp_path):
    files, _ = plan(wh, CASE, masks=("left lung",), crop="left lung", margin_mm=6.0)
    write_case(wh, files, tmp_path)  # the store's own crop must agree with the plan, or this raises
    (lo, hi), (hu, _) = files[0].box, wh.image(CASE)
    assert hi[0] == SHAPE[0] and lo[2] == 0 and hi[2] == SHAPE[2]
    data = read(tmp_path / files[0].rel)[0]
    assert np.array_equal(data, hu[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])


def test_an_empty_mask_is_written_as_zeros(wh, tmp_path):
    files, notes = plan(wh, EMPTY_HEART, masks=("heart",))
    assert notes == [] and len(files) == 2
    write_case(wh, files, tmp_path)
    assert not read(tmp_path / files[1].rel)[0].any()
    files, _ = plan(wh, EMPTY_HEART, image=False, masks=("heart",), crop="left lung", margin_mm=2)
    write_case(wh, files, tmp_path / "crop")
    data = read(tmp_path / "crop" / files[0].rel)[0]
    assert data.shape == files[0].shape and not data.any()


def test_a_case_without_an_image_writes_its_masks(wh, tmp_path):
    files, _ = plan(wh, NO_IMAGE, masks=("lung",), crop="left lung", margin_mm=3)
    assert [f.kind for f in files] == ["mask"]
    write_case(wh, files, tmp_path)
    lo, hi = files[0].box
    inside = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    assert np.array_equal(read(tmp_path / files[0].rel)[0], wh.region_mask(NO_IMAGE, "lung")[0][inside])
    with pytest.raises(ArrayNotFoundError):  # what the plan left out could not be written
        wh.image(NO_IMAGE)
    assert write_case(wh, [], tmp_path) == 0


# -- helpers ------------------------------------------------------------------------------------------
def test_paste_places_a_part_into_a_box():
    src = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.int16)
    out = paste(src, (1, 1, 1), ((0, 0, 0), (5, 5, 6)), fill=-7)
    assert out.dtype == np.int16 and out.shape == (5, 5, 6)
    assert np.array_equal(out[1:3, 1:4, 1:5], src) and (out == -7).sum() == out.size - src.size
    clipped = paste(src, (1, 1, 1), ((2, 2, 2), (4, 4, 4)))  # box and source overlap in part
    expected = np.zeros((2, 2, 2), np.int16)
    expected[0] = src[1, 1:3, 1:3]  # x 2 is the source's last layer; x 3 lies beyond it
    assert np.array_equal(clipped, expected)
    assert not paste(src, (10, 10, 10), ((0, 0, 0), (3, 3, 3))).any()  # no overlap: all fill
    assert paste(np.ones((2, 2, 2), bool), (-1, 0, 0), ((0, 0, 0), (2, 2, 2)), fill=False).sum() == 4


def test_voxel_offset_is_whole_voxels_or_refused():
    a = np.diag([-0.8, -0.9, 2.5, 1.0])
    a[:3, 3] = (14.0, 20.5, -100.0)
    from warehouse.core.grid import shift_affine

    assert voxel_offset(a, shift_affine(a, (3, 0, 7))) == (3, 0, 7)
    assert voxel_offset(a, shift_affine(a, (-2, 5, 0))) == (-2, 5, 0)
    half = shift_affine(a, (0, 0, 0))
    half[0, 3] += 0.4  # half a voxel
    with pytest.raises(ValueError, match="not whole voxels"):
        voxel_offset(a, half)


def test_the_size_bound_holds_for_incompressible_data(tmp_path):
    rng = np.random.default_rng(0)
    for shape, dtype in (((30, 20, 10), np.int16), ((1, 1, 1), np.uint8), ((64, 64, 8), np.uint8)):
        array = rng.integers(0, np.iinfo(dtype).max, shape).astype(dtype)
        path = tmp_path / f"{len(list(tmp_path.iterdir()))}.nii.gz"
        write_nifti(path, array, np.eye(4))
        assert path.stat().st_size <= nifti_bytes_bound(shape, dtype)
    assert nifti_bytes_bound((10, 10, 10), np.int16) > 2000 + 352


def test_write_nifti_writes_bool_as_uint8_and_no_partial_file(tmp_path):
    mask = np.zeros((4, 3, 2), bool)
    mask[1, 2, 0] = True
    affine = np.diag([-0.8, -0.9, 2.5, 1.0])
    write_nifti(tmp_path / "m.nii.gz", mask, affine)
    data, out_affine, img = read(tmp_path / "m.nii.gz")
    assert data.dtype == np.uint8 and np.array_equal(data, mask) and img.header.get_xyzt_units() == ("mm", "sec")
    np.testing.assert_allclose(out_affine, affine, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nii.gz"]


def test_array_file_shape_and_bound_follow_its_box():
    f = ArrayFile("masks/k/heart.nii.gz", "k", "mask", "heart", ((2, 3, 4), (12, 8, 5)))
    assert f.shape == (10, 5, 1) and f.bytes_bound == nifti_bytes_bound((10, 5, 1), np.uint8)
    assert ArrayFile("images/k.nii.gz", "k", "image", None, f.box).bytes_bound == nifti_bytes_bound(
        (10, 5, 1), np.int16)
