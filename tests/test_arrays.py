"""The array store: lossless label layers, region reads through the DAG, crops, stats, metadata."""

from __future__ import annotations

import json
import multiprocessing as mp
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warehouse.core import schema
from warehouse.core.anatomy import anatomy
from warehouse.core.boxes import bounding_box
from warehouse.core.errors import ArrayNotFoundError, GridMismatchError, IngestError, UnknownRegionError, WarehouseError
from warehouse.core.ids import case_key
from warehouse.store.arrays import FORMAT, ArrayStore
from warehouse.store.arrays import io as array_io
from warehouse.store.arrays.layers import union_in_box
from warehouse.store.arrays.ome import Structure

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CASE = "train_1_a_1.nii.gz"
# Flipped axes, anisotropic spacing and an offset: world coordinates are not voxel indices.
AFFINE = np.array([[-0.7, 0, 0, 120.0], [0, -0.7, 0, 95.0], [0, 0, 2.5, -300.0], [0, 0, 0, 1]])


def rid(name: str) -> int:
    return anatomy().resolve(name).region_id


def box_mask(shape, lo, hi) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = True
    return m


@pytest.fixture
def store(tmp_path) -> ArrayStore:
    return ArrayStore(tmp_path / "arrays.zarr", mode="a")


@pytest.fixture
def ct() -> np.ndarray:
    return np.random.default_rng(0).integers(-1000, 1500, (24, 20, 12)).astype(np.int16)


# -- keys and images -------------------------------------------------------------------------
def test_case_key_is_readable_for_volume_names_and_injective():
    assert case_key("train_1_a_1.nii.gz") == "train_1_a_1"
    ids = ["train_1_a_1.nii.gz", "train_1_a_1", "train_1_a_1.nii", "a/b c.nii.gz", "a_b c.nii.gz", "demo-0001", "..",
           "__x.nii.gz", "_x.nii.gz", "x" * 300]
    keys = [case_key(i) for i in ids]
    assert len(set(keys)) == len(ids)
    assert all(k[0].isalnum() and "/" not in k and " " not in k and len(k) < 100 for k in keys)


def test_image_round_trip_and_case_listing(store, ct):
    store.write_image(CASE, ct, AFFINE)
    store.write_image("valid_2_b_1.nii.gz", ct.astype(np.float64) + 0.2, AFFINE)  # float HU is rounded
    hu, aff = store.image(CASE)
    assert hu.dtype == np.int16 and np.array_equal(hu, ct) and np.allclose(aff, AFFINE)
    assert np.array_equal(store.image("valid_2_b_1.nii.gz")[0], ct)
    assert store.cases() == [CASE, "valid_2_b_1.nii.gz"] and store.has_image(CASE) and not store.has_image("nope")
    assert store.cases() == ArrayStore(store.path, mode="r").cases()
    with pytest.raises(IngestError, match="int16"):
        store.write_image("x", np.full((2, 2, 2), 40000.0), AFFINE)
    with pytest.raises(IngestError, match="NaN"):
        store.write_image("x", np.full((2, 2, 2), np.nan), AFFINE)
    shape, aff = store.grid(CASE)
    assert shape == ct.shape and np.allclose(aff, AFFINE)
    store.delete_case("valid_2_b_1.nii.gz")
    assert store.cases() == [CASE]
    reader = ArrayStore(store.path, mode="r")
    with pytest.raises(WarehouseError, match="read-only"):
        reader.write_image(CASE, ct, AFFINE)
    with pytest.raises(ArrayNotFoundError):
        ArrayStore(store.path.parent / "missing.zarr", mode="r")


# -- lossless packing ------------------------------------------------------------------------
LEAVES = ["left lung lower lobe", "left lung", "lung", "heart", "aorta", "trachea", "liver", "spleen"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.tuples(*[st.integers(1, 9)] * 3), seeds=st.lists(st.integers(0, 2**31), min_size=1, max_size=6),
       density=st.sampled_from([0.0, 0.05, 0.4, 1.0]))
def test_random_overlapping_masks_round_trip_exactly(shape, seeds, density):
    masks = {}
    for name, seed in zip(LEAVES, seeds, strict=False):
        rng = np.random.default_rng(seed)
        masks[name] = rng.random(shape) < (density if seed % 3 else 0.5)
    with tempfile.TemporaryDirectory() as tmp:
        store = ArrayStore(Path(tmp) / "a.zarr")
        store.write_masks(CASE, masks, np.eye(4))
        reread = ArrayStore(Path(tmp) / "a.zarr", mode="r")
        for name, m in masks.items():
            got, aff = reread.region_mask(CASE, name)
            assert got.dtype == bool and np.array_equal(got, m), name
            assert reread.region_bbox(CASE, name) == bounding_box(m)
            crop, _ = reread.region_mask(CASE, name, crop=True)
            assert crop.sum() == m.sum()
        by_name = {s["name"]: s for s in reread.structures(CASE)}
        assert {n: by_name[n]["voxels"] for n in masks} == {n: int(m.sum()) for n, m in masks.items()}


def test_masks_as_a_stream_of_pairs_nibabel_images_and_bad_input(store, tmp_path):
    nib = pytest.importorskip("nibabel")
    shape = (6, 5, 4)
    heart, aorta = box_mask(shape, (0, 0, 0), (3, 3, 3)), box_mask(shape, (2, 2, 2), (6, 5, 4))
    nib.save(nib.Nifti1Image(aorta.astype(np.uint8), AFFINE), tmp_path / "aorta.nii.gz")
    read: list[str] = []

    def stream():  # what an ingest job passes: files read one at a time
        for name, value in (("heart", heart.astype(np.uint8)), ("aorta", nib.load(tmp_path / "aorta.nii.gz"))):
            read.append(name)
            yield name, value

    pairs = stream()
    store.write_masks(CASE, pairs, AFFINE)
    assert read == ["heart", "aorta"]
    assert np.array_equal(store.region_mask(CASE, "aorta")[0], aorta)
    assert np.array_equal(store.region_mask(CASE, "heart")[0], heart)
    with pytest.raises(IngestError, match="twice"):
        store.write_masks(CASE, [("heart", heart), ("heart", heart)], AFFINE)
    with pytest.raises(IngestError, match="3-D"):
        store.write_masks(CASE, {"heart": heart[0]}, AFFINE)


@settings(max_examples=60, deadline=None)
@given(shape=st.tuples(*[st.integers(1, 17)] * 3), seed=st.integers(0, 2**31), order=st.sampled_from("CF"),
       dtype=st.sampled_from([np.uint8, np.bool_, np.float32]), flips=st.sets(st.integers(0, 2)))
def test_bounding_box_of_any_memory_layout(shape, seed, order, dtype, flips):
    rng = np.random.default_rng(seed)
    view = np.zeros(shape, dtype, order=order)
    view = np.flip(view, tuple(flips)) if flips else view  # nibabel's data flipped to L, P, S
    points = [tuple(int(rng.integers(0, n)) for n in shape) for _ in range(int(rng.integers(0, 4)))]
    for p in points:
        view[p] = 1
    want = (tuple(np.min(points, 0).tolist()), tuple((np.max(points, 0) + 1).tolist())) if points else None
    assert bounding_box(view) == want


def test_overlapping_structures_go_to_separate_layers_disjoint_ones_share(store):
    shape = (16, 16, 8)
    store.write_masks(CASE, {"trachea": box_mask(shape, (0, 0, 0), (8, 8, 8)),
                             "esophagus": box_mask(shape, (4, 4, 4), (12, 12, 8)),  # overlaps the trachea
                             "heart": np.zeros(shape, bool)}, np.eye(4))
    layer = {s["name"]: s["layer"] for s in store.structures(CASE)}
    assert layer["trachea"] != layer["esophagus"] and layer["heart"] is None
    store.write_masks(CASE, {"trachea": box_mask(shape, (0, 0, 0), (2, 2, 2)),
                             "esophagus": box_mask(shape, (4, 4, 4), (6, 6, 6))}, np.eye(4), mask_source="other")
    assert len({s["layer"] for s in store.structures(CASE) if s["mask_source"] == "other"}) == 1


def test_a_parent_is_stored_as_its_parts_and_what_they_leave(store):
    shape = (16, 16, 8)
    lll, lul = box_mask(shape, (8, 0, 0), (16, 16, 4)), box_mask(shape, (8, 0, 4), (16, 16, 8))
    right = box_mask(shape, (0, 2, 0), (7, 14, 8))
    left = lll | lul
    left[8, 0, 0] = False  # not quite the union of its lobes: the upper lobe is not inside it
    lung = left | right | box_mask(shape, (7, 0, 0), (8, 16, 8))  # its lungs, and a column neither covers
    masks = {"lung": lung, "left lung": left, "right lung": right, "left lung lower lobe": lll,
             "left lung upper lobe": lul, "lung nodule": box_mask(shape, (10, 10, 1), (12, 12, 3))}
    rows = store.write_masks(CASE, masks, np.eye(4))
    by_name = {s["name"]: s for s in store.structures(CASE)}
    # the nodule lies under the lung in the DAG, not under the left lung: a part of the lung
    assert by_name["lung"]["parts"] == ["left lung", "lung nodule", "right lung"] and by_name["lung"]["layer"]
    assert by_name["left lung"]["parts"] == ["left lung upper lobe"]  # the lower lobe is not inside it
    assert by_name["right lung"]["parts"] == [] and by_name["lung nodule"]["parts"] == []
    # the lower lobe, the left lung's rest (most of that lobe) and the nodule inside both overlap
    assert len({s["layer"] for s in by_name.values()}) == 3
    reader = ArrayStore(store.path, mode="r")
    for name, m in masks.items():
        assert np.array_equal(reader.region_mask(CASE, name)[0], m), name
        assert reader.region_bbox(CASE, name) == bounding_box(m) and by_name[name]["voxels"] == m.sum()
    voxels = {r["region_id"]: r["voxels"] for r in rows}
    assert {n: voxels[rid(n)] for n in masks} == {n: int(m.sum()) for n, m in masks.items()}

    exact = {"lung": left | right, "left lung": left, "right lung": right}  # the lung is exactly its lungs
    store.write_masks(CASE, exact, np.eye(4), mask_source="exact")
    lung_row = next(s for s in reader.__class__(store.path, "r").structures(CASE)
                    if s["mask_source"] == "exact" and s["name"] == "lung")
    assert lung_row["layer"] is None and lung_row["voxels"] == (left | right).sum()
    got = ArrayStore(store.path, mode="r").region_mask(CASE, "lung", mask_source="exact")[0]
    assert np.array_equal(got, left | right)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.tuples(*[st.integers(1, 8)] * 3), seed=st.integers(0, 2**31),
       extra=st.sampled_from([0.0, 0.02, 0.3]), drop=st.sampled_from([0.0, 0.05]))
def test_random_parents_and_children_round_trip_exactly(shape, seed, extra, drop):
    rng = np.random.default_rng(seed)
    leaves = {n: rng.random(shape) < 0.3 for n in ("left lung lower lobe", "left lung upper lobe",
                                                    "right lung lower lobe", "lung nodule")}
    left = (leaves["left lung lower lobe"] | leaves["left lung upper lobe"] | (rng.random(shape) < extra)) \
        & ~(rng.random(shape) < drop)
    masks = {**leaves, "left lung": left, "lung lower lobe": leaves["left lung lower lobe"]
             | leaves["right lung lower lobe"], "lung": left | leaves["right lung lower lobe"]
             | (rng.random(shape) < extra)}
    with tempfile.TemporaryDirectory() as tmp:
        store = ArrayStore(Path(tmp) / "a.zarr")
        rows = store.write_masks(CASE, masks, np.eye(4))
        reread = ArrayStore(Path(tmp) / "a.zarr", mode="r")
        for name, m in masks.items():
            assert np.array_equal(reread.region_mask(CASE, name)[0], m), name
        voxels = {r["region_id"]: r["voxels"] for r in rows}
        assert {n: voxels[rid(n)] for n in masks} == {n: int(m.sum()) for n, m in masks.items()}


def test_region_read_fetches_only_the_bbox(store, monkeypatch):
    import zarr.storage

    monkeypatch.setenv(array_io.ENV, "zarr")  # count the bytes through zarr-python's store

    shape = (256, 256, 64)  # 4 x 4 x 1 chunks of 64^3 in one shard
    small = box_mask(shape, (3, 3, 3), (9, 9, 9))
    big = (np.random.default_rng(1).random(shape) < 0.5) & ~small  # the same layer as `small`, 16 chunks
    store.write_masks(CASE, {"muscle": big, "trachea": small}, np.eye(4))
    fetched: list[int] = []

    class Recording(zarr.storage.WrapperStore):
        async def get(self, key, prototype, byte_range=None):
            buf = await super().get(key, prototype, byte_range)
            if not key.endswith("zarr.json") and buf is not None:
                fetched.append(len(buf))
            return buf

    reader = ArrayStore(store.path, mode="r")
    reader._store = Recording(reader._store)  # noqa: SLF001 - count the bytes a region read fetches
    mask, _ = reader.region_mask(CASE, "trachea")
    layer = next(s["layer"] for s in reader.structures(CASE) if s["name"] == "trachea")
    assert layer == next(s["layer"] for s in reader.structures(CASE) if s["name"] == "muscle")
    shard = sum(p.stat().st_size for p in (store.path / "train_1_a_1" / "labels" / layer / "0").rglob("c/*/*/*"))
    assert mask.sum() == 216 and 0 < sum(fetched) < shard / 8  # one chunk of 16, and the shard index

    reads = []
    box = ((3, 3, 3), (9, 9, 9))
    structs = [s for s in reader._case(CASE).structures if s.name == "trachea"]  # noqa: SLF001
    union_in_box(lambda layer, sl: reads.append(sl) or np.ones([s.stop - s.start for s in sl], np.uint8),
                 structs, box)
    assert reads == [(slice(3, 9), slice(3, 9), slice(3, 9))]

    # two structures of one layer far apart (a region's parts, like the ribs of `rib`): two small reads
    apart = [Structure(name=n, region_id=rid(n), region=n, mask_source="m", layer="m-0", value=v, voxels=8,
                       bbox=(lo, tuple(a + 2 for a in lo)))
             for n, v, lo in (("left rib 1", 1, (0, 0, 0)), ("right rib 1", 2, (60, 60, 60)))]
    reads.clear()
    got = union_in_box(lambda layer, sl: reads.append(sl) or np.full([s.stop - s.start for s in sl], 1, np.uint8),
                       apart, ((0, 0, 0), (62, 62, 62)))
    assert reads == [(slice(0, 2),) * 3, (slice(60, 62),) * 3] and got.sum() == 8


def test_masks_with_the_same_content_key_are_decoded_once(store):
    reads: list[str] = []

    class Lazy:  # as ingest's LazyMask: voxels decoded on access, a key from the file's bytes
        def __init__(self, name: str, data: np.ndarray, key: bytes) -> None:
            self.name, self.data, self.content_key, self.affine = name, data, key, np.eye(4)

        @property
        def dataobj(self) -> Lazy:
            return self

        def __array__(self, dtype=None, copy=None) -> np.ndarray:
            reads.append(self.name)
            return self.data

    shape = (12, 10, 8)
    empty, trachea = np.zeros(shape, np.uint8), box_mask(shape, (2, 2, 2), (5, 5, 5)).astype(np.uint8)
    masks = {"heart": Lazy("heart", empty, b"empty"), "liver": Lazy("liver", empty, b"empty"),
             "trachea": Lazy("trachea", trachea, b"t"), "esophagus": Lazy("esophagus", trachea, b"t")}
    rows = store.write_masks(CASE, masks, np.eye(4))
    assert sorted(reads) == ["esophagus", "heart"]  # sorted names: the first of each key is read
    by_name = {s["name"]: s for s in store.structures(CASE)}
    assert by_name["liver"]["voxels"] == 0 and by_name["trachea"]["voxels"] == 27
    assert np.array_equal(store.region_mask(CASE, "trachea")[0], trachea != 0)
    assert {r["region_id"]: r["voxels"] for r in rows}[rid("trachea")] == 27


def _read_everything(path: Path) -> dict:
    reader = ArrayStore(path, mode="r")
    out = {"image": reader.image(CASE)[0]}
    for s in reader.structures(CASE):
        out[s["name"]] = reader.region_mask(CASE, s["region"])[0]
        out[s["name"], "crop"] = reader.region_crop(CASE, s["region"], 3.0)[:2]
    return out


def test_tensorstore_and_zarr_python_write_and_read_the_same_bytes(tmp_path, ct, monkeypatch):
    pytest.importorskip("tensorstore")
    shape = ct.shape
    rng = np.random.default_rng(7)
    masks = {"lung": rng.random(shape) < 0.5, "trachea": box_mask(shape, (2, 2, 2), (9, 7, 5)),
             "heart": box_mask(shape, (10, 5, 3), (20, 18, 11))}
    reads = {}
    for writer in ("tensorstore", "zarr"):
        monkeypatch.setenv(array_io.ENV, "" if writer == "tensorstore" else "zarr")
        assert array_io.backend() == writer
        store = ArrayStore(tmp_path / f"{writer}.zarr", mode="a")
        store.write_image(CASE, ct, AFFINE)
        store.write_masks(CASE, masks, AFFINE)
        for reader in ("tensorstore", "zarr"):
            monkeypatch.setenv(array_io.ENV, "" if reader == "tensorstore" else "zarr")
            reads[writer, reader] = _read_everything(store.path)
    first = reads["tensorstore", "tensorstore"]
    assert np.array_equal(first["image"], ct) and np.array_equal(first["lung"], masks["lung"])
    for got in reads.values():
        assert got.keys() == first.keys()
        for key, value in first.items():
            pairs = zip(value, got[key], strict=True) if isinstance(value, tuple) else [(value, got[key])]
            assert all(np.array_equal(a, b) for a, b in pairs), key


def _child_reads(path: str) -> tuple[str, int]:
    return array_io.backend(), int(ArrayStore(path, mode="r").region_mask(CASE, "trachea")[0].sum())


def test_a_forked_child_reads_after_its_parent_used_tensorstore(store):
    pytest.importorskip("tensorstore")  # TensorStore aborts a forked child that uses it: zarr-python reads there
    store.write_masks(CASE, {"trachea": box_mask((20, 20, 20), (2, 2, 2), (5, 5, 5))}, np.eye(4))
    assert _child_reads(str(store.path)) == ("tensorstore", 27)
    with mp.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_child_reads, (str(store.path),)).get(timeout=60) == ("zarr", 27)


# -- the DAG ---------------------------------------------------------------------------------
def test_parent_without_its_own_mask_is_the_union_of_its_descendants(store):
    shape = (20, 10, 10)
    lll, lul = box_mask(shape, (10, 0, 0), (20, 10, 5)), box_mask(shape, (10, 0, 4), (20, 10, 10))
    rll = box_mask(shape, (0, 0, 0), (8, 10, 5))
    store.write_masks(CASE, {"left lung lower lobe": lll, "left lung upper lobe": lul, "right lung lower lobe": rll},
                      np.eye(4))
    assert np.array_equal(store.region_mask(CASE, "left lung")[0], lll | lul)
    assert np.array_equal(store.region_mask(CASE, "lung")[0], lll | lul | rll)
    assert np.array_equal(store.region_mask(CASE, "lung lower lobe")[0], lll | rll)
    assert np.array_equal(store.region_mask(CASE, "LLL")[0], lll)  # synonym
    assert np.array_equal(store.region_mask(CASE, rid("left lung"))[0], lll | lul)  # region id
    assert store.region_bbox(CASE, "lung") == ((0, 0, 0), (20, 10, 10))
    own = box_mask(shape, (12, 2, 2), (14, 4, 4))  # a region with its own mask reads its own
    store.write_masks(CASE, {"left lung": own}, np.eye(4), mask_source="coarse")
    assert np.array_equal(store.region_mask(CASE, "left lung")[0], own)
    assert np.array_equal(store.region_mask(CASE, "left lung", mask_source="radgenome")[0], lll | lul)


def test_totalsegmentator_names_map_onto_the_dag(store):
    shape = (12, 12, 6)
    upper, lower = box_mask(shape, (6, 0, 3), (12, 12, 6)), box_mask(shape, (6, 0, 0), (12, 12, 3))
    rows = store.write_masks(CASE, {"lung_upper_lobe_left": upper, "lung_lower_lobe_left": lower,
                                    "clavicula_left": np.zeros(shape, bool)}, np.eye(4), mask_source="totalsegmentator")
    regions = {s["name"]: s["region"] for s in store.structures(CASE)}
    assert regions == {"lung_upper_lobe_left": "left lung upper lobe", "lung_lower_lobe_left": "left lung lower lobe",
                       "clavicula_left": "left clavicle"}
    assert np.array_equal(store.region_mask(CASE, "left lung")[0], upper | lower)
    assert {r["region_id"] for r in rows} >= {rid("left lung"), rid("lung"), rid("bone"), rid("left clavicle")}


def test_unknown_names_and_missing_regions(store):
    m = box_mask((4, 4, 4), (0, 0, 0), (2, 2, 2))
    with pytest.raises(UnknownRegionError) as e:
        store.write_masks(CASE, {"lefft lung": m}, np.eye(4))
    assert "left lung" in str(e.value) and e.value.case_id == CASE
    assert store.cases() == []  # nothing written
    store.write_masks(CASE, {"heart": m}, np.eye(4))
    with pytest.raises(UnknownRegionError, match="heart"):
        store.region_mask(CASE, "hart")
    with pytest.raises(ArrayNotFoundError, match="heart") as e:
        store.region_mask(CASE, "left lung")
    assert "left lung" in str(e.value)
    with pytest.raises(ArrayNotFoundError):
        store.region_mask("other.nii.gz", "heart")


# -- grids -----------------------------------------------------------------------------------
def test_grid_mismatch_names_the_structure(store, ct):
    store.write_image(CASE, ct, AFFINE)
    good = np.zeros(ct.shape, bool)
    with pytest.raises(GridMismatchError, match="'heart'") as e:
        store.write_masks(CASE, {"aorta": good, "heart": np.zeros((24, 20, 11), bool)}, AFFINE)
    assert e.value.case_id == CASE and e.value.file == "heart"
    with pytest.raises(GridMismatchError, match="affine"):
        store.write_masks(CASE, {"aorta": good}, np.eye(4))
    shifted = AFFINE.copy()
    shifted[0, 3] += 0.01
    with pytest.raises(GridMismatchError, match="'liver'"):
        store.write_masks(CASE, {"aorta": good, "liver": (good, shifted)}, AFFINE)
    store.write_masks(CASE, {"aorta": (good, AFFINE + 1e-4)}, AFFINE)  # within atol 1e-3
    with pytest.raises(GridMismatchError, match="'spleen'"):  # no image: the masks must agree among themselves
        store.write_masks("b.nii.gz", {"aorta": np.zeros((3, 3, 3)), "spleen": np.zeros((3, 3, 4))}, np.eye(4))


def test_real_grid_mismatch_heart_mask_on_the_cropped_ct(store):
    nib = pytest.importorskip("nibabel")
    crop, heart = DATA / "ct/chest_crop/ct.nii.gz", DATA / "ct/chest_cta/masks/heart.nii.gz"
    if not (crop.exists() and heart.exists()):
        pytest.skip(f"real sample data absent: {crop.parent}")
    img = nib.load(crop)
    store.write_image("chest_crop", np.asanyarray(img.dataobj), img.affine)
    with pytest.raises(GridMismatchError, match="heart"):
        store.write_masks("chest_crop", {"heart": nib.load(heart)}, img.affine)


# -- crops -----------------------------------------------------------------------------------
def test_crop_with_margin_keeps_world_coordinates(store, ct):
    store.write_image(CASE, ct, AFFINE)
    m = box_mask(ct.shape, (2, 15, 5), (6, 18, 7))
    store.write_masks(CASE, {"heart": m}, AFFINE)
    hu, mask, aff = store.region_crop(CASE, "heart", margin_mm=2.0)
    # 2 mm = 3 voxels at 0.7 mm (clipped at x = 0 and y = 20), 1 voxel at 2.5 mm
    lo, hi = (0, 12, 4), (9, 20, 8)
    assert hu.shape == mask.shape == tuple(b - a for a, b in zip(lo, hi, strict=True))
    assert np.array_equal(hu, ct[0:9, 12:20, 4:8]) and np.array_equal(mask, m[0:9, 12:20, 4:8])
    for ijk in [(0, 0, 0), (3, 5, 2), (8, 7, 3)]:
        world_crop = aff @ np.array([*ijk, 1.0])
        world_case = AFFINE @ np.array([*(np.array(ijk) + lo), 1.0])
        assert np.allclose(world_crop, world_case)
    tight, taff = store.region_mask(CASE, "heart", crop=True)
    assert tight.shape == (4, 3, 2) and tight.all() and np.allclose(taff @ [0, 0, 0, 1], AFFINE @ [2, 15, 5, 1])
    hu0, mask0, _ = store.region_crop(CASE, "heart", margin_mm=0)
    assert hu0.shape == (4, 3, 2) and mask0.all()


# -- stats and empties -----------------------------------------------------------------------
def test_region_stats_match_numpy(store, ct):
    store.write_image(CASE, ct, AFFINE)
    rng = np.random.default_rng(3)
    lll = box_mask(ct.shape, (3, 2, 1), (10, 12, 7)) & (rng.random(ct.shape) < 0.7)
    lul = box_mask(ct.shape, (8, 6, 5), (20, 18, 12)) & (rng.random(ct.shape) < 0.7)
    rows = store.write_masks(CASE, {"left lung lower lobe": lll, "left lung upper lobe": lul,
                                    "trachea": np.zeros(ct.shape, bool)}, AFFINE)
    schema.to_table("region_stats", rows)  # every key is a column of the schema
    by_id = {r["region_id"]: r for r in rows}
    assert len(by_id) == len(rows)
    # own masks, ancestors without one (union through the DAG), the empty one and its ancestor
    names = ["left lung lower lobe", "left lung upper lobe", "left lung", "lung lower lobe", "lung upper lobe", "lung",
             "trachea", "trachea and bronchie"]
    assert set(by_id) == {rid(n) for n in names}
    for name, m in [("left lung lower lobe", lll), ("left lung", lll | lul), ("lung", lll | lul)]:
        r = by_id[rid(name)]
        idx = np.argwhere(m)
        world = (AFFINE @ np.c_[idx, np.ones(len(idx))].T).T[:, :3]
        assert r["voxels"] == m.sum() and r["mask_source"] == "radgenome" and r["case_id"] == CASE
        assert r["volume_ml"] == pytest.approx(m.sum() * 0.7 * 0.7 * 2.5 / 1000)
        assert [r[f"bbox_min_{a}"] for a in "xyz"] == idx.min(0).tolist()
        assert [r[f"bbox_max_{a}"] for a in "xyz"] == (idx.max(0) + 1).tolist()
        assert np.allclose([r[f"centroid_mm_{a}"] for a in "xyz"], world.mean(0))
        assert np.allclose([r[f"bbox_min_mm_{a}"] for a in "xyz"], world.min(0))
        assert np.allclose([r[f"bbox_max_mm_{a}"] for a in "xyz"], world.max(0))
        assert r["hu_mean"] == pytest.approx(ct[m].mean()) and r["hu_std"] == pytest.approx(ct[m].std())
    for name in ("trachea", "trachea and bronchie"):
        r = by_id[rid(name)]
        assert r["voxels"] == 0 and r["volume_ml"] == 0 and r.get("bbox_min_x") is None and r.get("hu_mean") is None


def test_empty_structure_is_recorded(store):
    shape = (6, 6, 6)
    store.write_image(CASE, np.zeros(shape, np.int16), np.eye(4))
    store.write_masks(CASE, {"trachea": np.zeros(shape, np.uint8)}, np.eye(4))
    [s] = store.structures(CASE)
    assert (s["name"], s["voxels"], s["bbox"], s["layer"], s["region_id"]) == ("trachea", 0, None, None, rid("trachea"))
    mask, _ = store.region_mask(CASE, "trachea")
    assert mask.shape == shape and not mask.any() and store.region_bbox(CASE, "trachea") is None
    assert store.region_mask(CASE, "trachea and bronchie", crop=True)[0].shape == (0, 0, 0)
    with pytest.raises(ArrayNotFoundError, match="empty"):
        store.region_crop(CASE, "trachea")


def test_stats_without_image_have_no_hu(store):
    rows = store.write_masks(CASE, {"heart": box_mask((5, 5, 5), (1, 1, 1), (3, 3, 3))}, np.eye(4))
    assert rows[0]["voxels"] == 8 and rows[0].get("hu_mean") is None


# -- label maps ------------------------------------------------------------------------------
def test_label_map_import(store, ct):
    store.write_image(CASE, ct, AFFINE)
    labels = np.zeros(ct.shape, np.int32)
    labels[0:10, 0:10, 0:6] = 10
    labels[12:20, 5:15, 2:9] = 300  # above 255: the layer becomes uint16
    classes = {10: "lung_upper_lobe_left", 300: "heart", 7: "spleen"}
    rows = store.write_label_map(CASE, labels, classes, AFFINE, mask_source="totalsegmentator")
    assert np.array_equal(store.region_mask(CASE, "left lung upper lobe")[0], labels == 10)
    assert np.array_equal(store.region_mask(CASE, "heart")[0], labels == 300)
    by_name = {s["name"]: s for s in store.structures(CASE)}
    assert by_name["spleen"]["voxels"] == 0 and by_name["heart"]["voxels"] == 8 * 10 * 7
    assert {r["region_id"]: r["voxels"] for r in rows}[rid("lung")] == 600
    with pytest.raises(IngestError, match=r"\[300\]"):
        store.write_label_map(CASE, labels, {10: "heart"}, AFFINE)


# -- rewriting and concurrency ---------------------------------------------------------------
def test_rewriting_a_source_replaces_only_that_source(store, ct):
    store.write_image(CASE, ct, AFFINE)
    a, b = box_mask(ct.shape, (0, 0, 0), (4, 4, 4)), box_mask(ct.shape, (2, 2, 2), (6, 6, 6))
    store.write_masks(CASE, {"heart": a, "aorta": a, "liver": b}, AFFINE, mask_source="one")
    store.write_masks(CASE, {"spleen": b}, AFFINE, mask_source="two")
    store.write_masks(CASE, {"heart": b}, AFFINE, mask_source="one")  # a resumed build writes it again
    names = {(s["mask_source"], s["name"]) for s in store.structures(CASE)}
    assert names == {("one", "heart"), ("two", "spleen")}
    assert np.array_equal(store.region_mask(CASE, "heart")[0], b)
    labels = store.path / "train_1_a_1" / "labels"
    layers = json.loads((labels / "zarr.json").read_text())["attributes"]["ome"]["labels"]
    assert sorted(p.name for p in labels.iterdir() if p.is_dir()) == sorted(layers)  # no stale layer left
    store.write_image(CASE, ct, AFFINE)  # rewriting the image starts the case afresh
    assert store.structures(CASE) == []


def _write_case(args):
    path, case_id, seed = args
    rng = np.random.default_rng(seed)
    store = ArrayStore(path)
    store.write_image(case_id, rng.integers(-1000, 1000, (40, 40, 20)).astype(np.int16), np.eye(4))
    store.write_masks(case_id, {"heart": rng.random((40, 40, 20)) < 0.3}, np.eye(4))
    return case_id


def test_processes_write_different_cases_of_one_store(tmp_path):
    path = tmp_path / "arrays.zarr"
    ids = [f"train_{i}_a_1.nii.gz" for i in range(4)]
    with mp.get_context("spawn").Pool(2) as pool:
        assert sorted(pool.map(_write_case, [(path, c, i) for i, c in enumerate(ids)])) == ids
    store = ArrayStore(path, mode="r")
    assert store.cases() == ids
    for i, c in enumerate(ids):
        rng = np.random.default_rng(i)
        rng.integers(-1000, 1000, (40, 40, 20))
        assert np.array_equal(store.region_mask(c, "heart")[0], rng.random((40, 40, 20)) < 0.3)
    root = json.loads((path / "zarr.json").read_text())
    assert root["attributes"]["radgenome_warehouse"]["arrays_format"] == FORMAT


# -- OME-Zarr metadata -----------------------------------------------------------------------
def test_ome_zarr_image_label_metadata(store, ct):
    store.write_image(CASE, ct, AFFINE)
    shape = ct.shape
    store.write_masks(CASE, {"lung": box_mask(shape, (0, 0, 0), (10, 10, 10)),
                             "heart": box_mask(shape, (0, 0, 0), (5, 5, 5)),
                             "aorta": box_mask(shape, (12, 12, 0), (14, 14, 4))}, AFFINE)
    case_dir = store.path / "train_1_a_1"
    attrs = json.loads((case_dir / "zarr.json").read_text())["attributes"]
    assert attrs["case_id"] == CASE and attrs["shape"] == list(shape) and attrs["axes"] == ["x", "y", "z"]
    ms = attrs["ome"]["multiscales"][0]
    assert attrs["ome"]["version"] == "0.5" and ms["datasets"][0]["path"] == "image"
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == pytest.approx([0.7, 0.7, 2.5])
    labels = json.loads((case_dir / "labels" / "zarr.json").read_text())["attributes"]["ome"]["labels"]
    colours = {}
    for layer in labels:
        il = json.loads((case_dir / "labels" / layer / "zarr.json").read_text())["attributes"]["ome"]["image-label"]
        assert il["source"] == {"image": "../../"}
        assert [c["label-value"] for c in il["colors"]] == [p["label-value"] for p in il["properties"]]
        for c, p in zip(il["colors"], il["properties"], strict=True):
            assert len(c["rgba"]) == 4 and all(0 <= v <= 255 for v in c["rgba"]) and p["name"]
            colours[p["region"]] = c["rgba"]
    assert set(colours) == {"lung", "heart", "aorta"} and len({tuple(c) for c in colours.values()}) == 3
    other = ArrayStore(store.path.parent / "b.zarr")  # the same region has the same colour in every store
    other.write_masks("x", {"heart": box_mask((4, 4, 4), (0, 0, 0), (2, 2, 2))}, np.eye(4))
    [layer] = (other.path / case_key("x") / "labels").glob("*/zarr.json")
    il = json.loads(layer.read_text())["attributes"]["ome"]["image-label"]
    assert il["colors"][0]["rgba"] == colours["heart"] and "source" not in il  # no image in that case


# -- real TotalSegmentator masks -------------------------------------------------------------
def test_real_totalsegmentator_masks_read_back_bit_exact(store):
    nib = pytest.importorskip("nibabel")
    folder = DATA / "ct/abdomen_small"
    if not (folder / "masks").is_dir():
        pytest.skip(f"real sample data absent: {folder}")
    img = nib.load(folder / "ct.nii.gz")
    store.write_image("abdomen_small", np.asanyarray(img.dataobj), img.affine)
    files = sorted((folder / "masks").glob("*.nii.gz"))
    masks = {f.name.removesuffix(".nii.gz"): nib.load(f) for f in files}
    rows = store.write_masks("abdomen_small", masks, img.affine, mask_source="totalsegmentator")
    schema.to_table("region_stats", rows)
    assert len(store.structures("abdomen_small")) == len(files) == 117
    reader = ArrayStore(store.path, mode="r")
    checked = 0
    for name, m in masks.items():
        want = np.asanyarray(m.dataobj) != 0
        if want.any():
            got, _ = reader.region_mask("abdomen_small", anatomy().from_totalsegmentator(name).name)
            assert np.array_equal(got, want), name
            checked += 1
    assert checked > 10
    labelmap = nib.load(folder / "labelmap_totalsegmentator_v2.nii.gz")
    classes = {int(k): v for k, v in json.loads((DATA / "vocab/totalsegmentator_v2_total_classes.json").read_text())
               .items()}
    lab = np.asanyarray(labelmap.dataobj)
    store.write_label_map("abdomen_small", labelmap, classes, img.affine, mask_source="ts-labelmap")
    liver = next(v for v, c in classes.items() if c == "liver")
    assert np.array_equal(store.region_mask("abdomen_small", "liver", mask_source="ts-labelmap")[0], lab == liver)
