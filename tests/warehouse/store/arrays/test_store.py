"""`warehouse.store.arrays.store.ArrayStore`: images, case listing, reads of a region through the
anatomy DAG, crops, empty structures, rewriting a source, and concurrent writers."""

from __future__ import annotations

import json
import multiprocessing as mp

import numpy as np
import pytest

from tests.fixtures.arrays_data import AFFINE, CASE, box_mask, rid, write_case
from warehouse.core.errors import ArrayNotFoundError, IngestError, UnknownRegionError, WarehouseError
from warehouse.store.arrays import FORMAT, ArrayStore


# -- keys and images -------------------------------------------------------------------------
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


# -- the DAG ---------------------------------------------------------------------------------
def test_an_image_box_is_the_image_inside_it_clipped_to_the_grid(store, ct):
    store.write_image(CASE, ct, AFFINE)
    assert np.array_equal(store.image_box(CASE, ((3, 0, 5), (9, 20, 6))), ct[3:9, :, 5:6])
    assert np.array_equal(store.image_box(CASE, ((-4, 18, 10), (99, 99, 99))), ct[:, 18:, 10:])
    assert store.image_box(CASE, ((30, 0, 0), (40, 5, 5))).shape == (0, 5, 5)
    store.write_masks("masks_only", {"heart": box_mask(ct.shape, (1, 1, 1), (3, 3, 3))}, AFFINE)
    with pytest.raises(ArrayNotFoundError):
        store.image_box("masks_only", ((0, 0, 0), (1, 1, 1)))


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


# -- empties ---------------------------------------------------------------------------------
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


def test_processes_write_different_cases_of_one_store(tmp_path):
    path = tmp_path / "arrays.zarr"
    ids = [f"train_{i}_a_1.nii.gz" for i in range(4)]
    with mp.get_context("spawn").Pool(2) as pool:
        assert sorted(pool.map(write_case, [(path, c, i) for i, c in enumerate(ids)])) == ids
    store = ArrayStore(path, mode="r")
    assert store.cases() == ids
    for i, c in enumerate(ids):
        rng = np.random.default_rng(i)
        rng.integers(-1000, 1000, (40, 40, 20))
        assert np.array_equal(store.region_mask(c, "heart")[0], rng.random((40, 40, 20)) < 0.3)
    root = json.loads((path / "zarr.json").read_text())
    assert root["attributes"]["radgenome_warehouse"]["arrays_format"] == FORMAT
