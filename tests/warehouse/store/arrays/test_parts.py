"""`warehouse.store.arrays.parts`: a parent mask stored as its parts and what they leave, read
back bit-exact."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.arrays_data import CASE, box_mask, rid
from warehouse.core.anatomy import anatomy
from warehouse.core.boxes import bounding_box, slices
from warehouse.store.arrays import ArrayStore
from warehouse.store.arrays.ome import Structure
from warehouse.store.arrays.parts import Crop, pieces, split_unions


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


# -- the parts, directly -----------------------------------------------------------------------
def _crop(mask: np.ndarray) -> Crop:
    box = bounding_box(mask)
    return Crop.of(box, mask[slices(box)] if box else None)


@pytest.mark.parametrize("order", ["C", "F"])
def test_crop_packs_bits_and_unpacks_them_in_the_same_order(order):
    rng = np.random.default_rng(5)
    crop = np.asarray(rng.random((5, 3, 7)) < 0.4, order=order)
    packed = Crop.of(((1, 2, 3), (6, 5, 10)), crop)
    assert packed.order == order and packed.voxels == crop.sum() and packed.bits.nbytes == -(-crop.size // 8)
    back = packed.unpack()
    assert np.array_equal(back, crop) and back.flags[f"{order}_CONTIGUOUS"]
    assert Crop.of(None, None) == (None, None, 0, "C")


def test_split_unions_keeps_what_the_outermost_parts_leave():
    shape = (12, 8, 6)
    lll, lul = box_mask(shape, (6, 0, 0), (12, 8, 3)), box_mask(shape, (6, 0, 3), (12, 8, 6))
    left = lll | lul  # exactly its lobes
    lung = left | box_mask(shape, (0, 0, 0), (2, 2, 2))  # its left lung, and voxels no part covers
    heart = box_mask(shape, (8, 2, 2), (9, 3, 3))  # inside the lung's box and voxels, but not under it in the DAG
    masks = {"lung": lung, "left lung": left, "left lung lower lobe": lll, "left lung upper lobe": lul,
             "heart": heart}
    dag = anatomy()
    got = split_unions({n: _crop(m) for n, m in masks.items()}, {n: dag.resolve(n) for n in masks}, dag)
    assert set(got) == {"lung", "left lung"}  # leaves and the heart contain nothing below them
    parts, rest = got["left lung"]
    assert parts == ("left lung lower lobe", "left lung upper lobe") and rest == (None, None, 0, "C")
    parts, rest = got["lung"]
    assert parts == ("left lung",)  # the lobes are read through the left lung: only the outermost part
    assert rest.box == ((0, 0, 0), (2, 2, 2)) and rest.voxels == 8 and rest.unpack().all()


def test_a_part_that_sticks_out_is_no_part():
    shape = (10, 4, 4)
    lll = box_mask(shape, (5, 0, 0), (10, 4, 4))
    left = box_mask(shape, (5, 0, 0), (10, 4, 4))
    left[9, 3, 3] = False  # one voxel of the lobe lies outside its lung
    dag = anatomy()
    masks = {"left lung": left, "left lung lower lobe": lll}
    assert split_unions({n: _crop(m) for n, m in masks.items()}, {n: dag.resolve(n) for n in masks}, dag) == {}


def test_pieces_expands_parts_recursively_and_skips_structures_in_no_layer():
    def s(name, layer, parts=(), source="m"):
        return Structure(name=name, region_id=rid(name), region=name, mask_source=source, layer=layer, value=1,
                         voxels=1, bbox=((0, 0, 0), (1, 1, 1)), parts=tuple(parts))

    catalogue = [s("lung", None, ["left lung", "right lung"]), s("left lung", "m-1", ["left lung lower lobe"]),
                 s("left lung lower lobe", "m-0"), s("right lung", "m-0"), s("lung", "o-0", source="other")]
    got = pieces([catalogue[0]], catalogue)
    assert sorted((p.name, p.mask_source) for p in got) == [("left lung", "m"), ("left lung lower lobe", "m"),
                                                             ("right lung", "m")]
    assert [p.name for p in pieces([catalogue[3]], catalogue)] == ["right lung"]
    assert pieces([catalogue[1], catalogue[2]], catalogue).count(catalogue[2]) == 1  # each piece once
