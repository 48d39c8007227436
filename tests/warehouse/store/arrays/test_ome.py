"""`warehouse.store.arrays.ome`: the OME-Zarr 0.5 metadata and the structure catalogue."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.fixtures.arrays_data import AFFINE, CASE, box_mask, new_store, rid
from warehouse.core.anatomy import anatomy
from warehouse.core.ids import case_key
from warehouse.store.arrays import ArrayStore
from warehouse.store.arrays.ome import Structure, multiscales, read_attrs, read_structures, region_rgba


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


# -- structures and colours, directly ----------------------------------------------------------
def test_structure_round_trips_through_its_dict_and_ome_property():
    s = Structure(name="lung", region_id=rid("lung"), region="lung", mask_source="radgenome", layer="radgenome-0",
                  value=3, voxels=120, bbox=((1, 2, 3), (4, 5, 6)), parts=("left lung", "right lung"))
    d = s.to_dict()
    assert d["bbox"] == [[1, 2, 3], [4, 5, 6]] and d["parts"] == ["left lung", "right lung"]
    assert Structure.from_dict(json.loads(json.dumps(d))) == s  # as it comes back from zarr.json
    prop = s.ome_property()
    assert prop["label-value"] == 3 and "layer" not in prop and "value" not in prop
    assert Structure.from_dict({**prop, "layer": "radgenome-0", "value": prop["label-value"]}) == s
    empty = Structure(name="heart", region_id=rid("heart"), region="heart", mask_source="m", layer=None, value=None,
                      voxels=0, bbox=None)
    assert Structure.from_dict(json.loads(json.dumps(empty.to_dict()))) == empty


def test_read_structures_lists_layered_then_union_then_empty_structures(tmp_path):
    store = new_store(tmp_path)
    shape = (8, 8, 8)
    left = box_mask(shape, (0, 0, 0), (4, 8, 8))
    store.write_masks(CASE, {"left lung": left, "left lung lower lobe": left & box_mask(shape, (0, 0, 0), (8, 8, 4)),
                             "left lung upper lobe": left & box_mask(shape, (0, 0, 4), (8, 8, 8)),
                             "heart": np.zeros(shape, bool)}, np.eye(4))
    got = read_structures(store.path / case_key(CASE))
    assert [(s.name, s.layer is None, s.voxels) for s in got] == [
        ("left lung lower lobe", False, 128), ("left lung upper lobe", False, 128),
        ("left lung", True, 256), ("heart", True, 0)]
    assert read_structures(store.path / "no_such_case") == [] and read_attrs(store.path / "no_such_case") is None


def test_region_colours_are_stable_valid_and_mostly_distinct():
    ids = [r.region_id for r in anatomy()]
    colours = [tuple(region_rgba(i)) for i in ids]
    assert all(len(c) == 4 and c[3] == 255 and all(isinstance(v, int) and 0 <= v <= 255 for v in c) for c in colours)
    assert [tuple(region_rgba(i)) for i in ids] == colours
    assert len(set(colours)) > 0.95 * len(ids)
    assert region_rgba(rid("heart")) != region_rgba(rid("aorta"))


def test_multiscales_give_the_spacing_and_origin_of_an_oblique_grid():
    affine = np.array([[0, -0.8, 0, 10.0], [0.8, 0, 0, -20.0], [0, 0, 3.0, 5.0], [0, 0, 0, 1]])  # axes swapped
    [ms] = multiscales("c", "image", affine)
    scale, translation = ms["datasets"][0]["coordinateTransformations"]
    assert scale == {"type": "scale", "scale": [0.8, 0.8, 3.0]}
    assert translation == {"type": "translation", "translation": [10.0, -20.0, 5.0]}
    assert [a["name"] for a in ms["axes"]] == ["x", "y", "z"] and ms["axes"][0]["unit"] == "millimeter"
