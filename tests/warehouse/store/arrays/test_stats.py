"""`warehouse.store.arrays.stats`: the `region_stats` rows measured from the layers (`mask_stats`,
`region_stats`)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.arrays_data import AFFINE, CASE, box_mask, rid
from warehouse.core import schema
from warehouse.core.anatomy import anatomy
from warehouse.core.boxes import bounding_box, slices
from warehouse.store.arrays.ome import Structure
from warehouse.store.arrays.stats import mask_stats, region_stats


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


def test_stats_without_image_have_no_hu(store):
    rows = store.write_masks(CASE, {"heart": box_mask((5, 5, 5), (1, 1, 1), (3, 3, 3))}, np.eye(4))
    assert rows[0]["voxels"] == 8 and rows[0].get("hu_mean") is None


# -- mask_stats and region_stats, directly -----------------------------------------------------
def test_mask_stats_of_a_crop_with_an_oblique_affine_match_numpy():
    rng = np.random.default_rng(11)
    theta = 0.3  # rotated about z, anisotropic, offset: the world box is not the voxel box scaled
    rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([0.8, 0.6, 2.0])
    affine[:3, 3] = [-50.0, 20.0, 7.5]
    image = rng.integers(-1000, 1000, (20, 18, 9)).astype(np.int16)
    lo = (4, 3, 2)
    crop = rng.random((9, 10, 5)) < 0.3
    crop[0], crop[-1] = False, False  # the mask's box is tighter than the crop it is given in
    row = mask_stats(crop, lo, affine, image)
    idx = np.argwhere(crop) + lo
    world = (affine @ np.c_[idx, np.ones(len(idx))].T).T[:, :3]
    assert row["voxels"] == len(idx) and row["volume_ml"] == pytest.approx(len(idx) * 0.8 * 0.6 * 2.0 / 1000)
    assert [row[f"bbox_min_{a}"] for a in "xyz"] == idx.min(0).tolist()
    assert [row[f"bbox_max_{a}"] for a in "xyz"] == (idx.max(0) + 1).tolist()
    assert np.allclose([row[f"centroid_mm_{a}"] for a in "xyz"], world.mean(0))
    # the world box of the voxel box: every voxel centre of the box, mapped
    grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(idx.min(0), idx.max(0) + 1, strict=True)],
                                indexing="ij"), -1).reshape(-1, 3)
    box_world = (affine @ np.c_[grid, np.ones(len(grid))].T).T[:, :3]
    assert np.allclose([row[f"bbox_min_mm_{a}"] for a in "xyz"], box_world.min(0))
    assert np.allclose([row[f"bbox_max_mm_{a}"] for a in "xyz"], box_world.max(0))
    hu = image[tuple(idx.T)]
    assert row["hu_mean"] == pytest.approx(hu.mean()) and row["hu_std"] == pytest.approx(hu.std())
    assert mask_stats(np.zeros((3, 3, 3), bool), lo, affine, image) == {"voxels": 0, "volume_ml": 0.0}
    assert "hu_mean" not in mask_stats(crop, lo, affine, None)


def test_region_stats_reads_only_groups_it_has_not_measured():
    shape = (10, 10, 10)
    masks = {"left lung lower lobe": box_mask(shape, (0, 0, 0), (5, 10, 5)),
             "left lung upper lobe": box_mask(shape, (0, 0, 5), (5, 10, 10))}
    layer = np.zeros(shape, np.uint8)
    structures = []
    for value, (name, m) in enumerate(masks.items(), 1):
        layer[m] = value
        structures.append(Structure(name=name, region_id=rid(name), region=name, mask_source="s", layer="s-0",
                                    value=value, voxels=int(m.sum()), bbox=bounding_box(m)))
    reads = []

    def read(name, sl):
        reads.append(sl)
        return layer[sl]

    measured = {n: mask_stats(m[slices(bounding_box(m))], bounding_box(m)[0], np.eye(4), None)
                for n, m in masks.items()}
    rows = region_stats(CASE, "s", structures, read, np.eye(4), None, anatomy(), measured)
    unmeasured = region_stats(CASE, "s", structures, read, np.eye(4), None, anatomy())
    assert rows == unmeasured  # the same numbers either way
    by_id = {r["region_id"]: r for r in rows}
    assert [r["region_id"] for r in rows] == sorted(by_id)
    assert by_id[rid("left lung")]["voxels"] == 500 and by_id[rid("lung lower lobe")]["voxels"] == 250
    # with the single masks measured, only the groups of two (left lung, lung, ...) were read: as many reads
    # as there are unions, then one per region without `measured`
    unions = sum(1 for r in rows if r["region_id"] not in {rid(n) for n in masks}
                 and r["voxels"] == 500)
    assert len(reads) == unions + len(rows)
