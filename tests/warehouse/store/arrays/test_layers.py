"""`warehouse.store.arrays.layers`: overlapping masks packed losslessly into label layers
(`pack_masks`, `LayerPacker`), label maps (`label_map_layer`), and reads of a union of
structures (`union_in_box`)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.arrays_data import AFFINE, CASE, DATA, box_mask, rid
from warehouse.core import schema
from warehouse.core.anatomy import anatomy
from warehouse.core.boxes import bounding_box, slices
from warehouse.core.errors import GridMismatchError, IngestError
from warehouse.store.arrays import ArrayStore
from warehouse.store.arrays import io as array_io
from warehouse.store.arrays.layers import LayerPacker, label_map_layer, union_in_box
from warehouse.store.arrays.ome import Structure

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


# -- the packer and label maps, directly -------------------------------------------------------
def _add(packer: LayerPacker, mask: np.ndarray) -> tuple[int, int]:
    box = bounding_box(mask)
    return packer.add(box, mask[slices(box)])


def test_layer_packer_first_fit_nested_masks_take_one_layer_per_level():
    shape = (12, 12, 12)
    packer = LayerPacker(shape)
    nested = [box_mask(shape, (i, i, i), (12 - i, 12 - i, 12 - i)) for i in range(0, 6, 2)]  # largest first
    assert [_add(packer, m) for m in nested] == [(0, 1), (1, 1), (2, 1)]
    beside = box_mask((12, 12, 12), (0, 0, 0), (1, 1, 1))  # overlaps only the outermost: the second layer
    assert _add(packer, beside) == (1, 2)
    assert len(packer.layers) == 3 and all(layer.dtype == np.uint8 for layer in packer.layers)
    for (layer, value), m in zip([(0, 1), (1, 1), (2, 1), (1, 2)], [*nested, beside], strict=True):
        assert np.array_equal(packer.layers[layer] == value, m)


def test_layer_packer_opens_a_layer_when_one_runs_out_of_values():
    shape = (16, 16, 2)
    packer = LayerPacker(shape)
    placed = [_add(packer, box_mask(shape, (i // 16, i % 16, 0), (i // 16 + 1, i % 16 + 1, 1))) for i in range(256)]
    assert placed[254] == (0, 255) and placed[255] == (1, 1)  # uint8: 255 structures per layer
    assert len(packer.layers) == 2 and (packer.layers[0] > 0).sum() == 255


@pytest.mark.parametrize(("labels", "classes", "match"), [
    (np.full((2, 2, 2), -1), {1: "heart"}, "positive"),
    (np.full((2, 2, 2), 1.5), {1: "heart"}, "non-integer"),
    (np.ones((2, 2, 2)), {0: "heart", 1: "aorta"}, "positive"),
    (np.ones((2, 2)), {1: "heart"}, "3-D"),
])
def test_label_map_refuses_bad_values(labels, classes, match):
    with pytest.raises(IngestError, match=match):
        label_map_layer(CASE, labels, classes, None, np.eye(4), "m", "m", anatomy().resolve)


def test_label_map_of_float_labels_and_a_class_with_no_voxel():
    labels = np.zeros((6, 5, 4))
    labels[1:3, 1:4, 0:2] = 2.0  # integers stored as floats
    layers, structures, shape = label_map_layer(CASE, labels, {2: "heart", 9: "aorta"}, None, np.eye(4), "ts", "ts",
                                                anatomy().resolve)
    assert shape == (6, 5, 4) and list(layers) == ["ts-0"] and layers["ts-0"].dtype == np.uint8
    by_name = {s.name: s for s in structures}
    assert by_name["heart"].bbox == ((1, 1, 0), (3, 4, 2)) and by_name["heart"].voxels == 12
    assert (by_name["aorta"].voxels, by_name["aorta"].layer, by_name["aorta"].value) == (0, None, None)
    with pytest.raises(GridMismatchError, match="label map"):
        label_map_layer(CASE, labels, {2: "heart"}, ((6, 5, 5), np.eye(4)), np.eye(4), "ts", "ts", anatomy().resolve)
