"""`warehouse.store.arrays.ome`: the OME-Zarr 0.5 metadata and the structure catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.storage import LocalStore

from tests.fixtures.arrays_data import AFFINE, CASE, box_mask, new_store, rid
from warehouse.core.anatomy import anatomy
from warehouse.core.ids import case_key
from warehouse.store.arrays import ArrayStore
from warehouse.store.arrays.ome import AXES, Structure, multiscales, read_attrs, read_structures, region_rgba


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


# -- OME-NGFF 0.5 validation (ome-zarr-models) and ome-zarr's reader ----------------------------
def validate_store_case(case_dir: Path) -> None:
    """Validate a store case with ome-zarr-models: its group as an `Image` (with its `labels`), or, with no
    CT, its `labels` group alone (each label layer an `ImageLabel`); raises where the metadata fails."""
    from ome_zarr_models.v05.image import Image
    from ome_zarr_models.v05.labels import Labels

    group = zarr.open_group(LocalStore(case_dir, read_only=True), mode="r")
    if "ome" in group.attrs:
        image = Image.from_zarr(group)
        assert image.labels is not None and image.labels.label_paths == list(group["labels"].attrs["ome"]["labels"])
    else:
        Labels.from_zarr(group["labels"])


def _nested_case(store: ArrayStore, ct: np.ndarray) -> None:
    """A case whose masks overlap (lung, its lungs, their lobes: parts), with an empty one."""
    store.write_image(CASE, ct, AFFINE)
    s = ct.shape
    left, right = box_mask(s, (0, 0, 0), (10, 20, 12)), box_mask(s, (12, 0, 0), (24, 20, 12))
    store.write_masks(CASE, {"lung": left | right, "left lung": left, "right lung": right,
                             "left lung lower lobe": left & box_mask(s, (0, 0, 0), (24, 20, 6)),
                             "left lung upper lobe": left & box_mask(s, (0, 0, 6), (24, 20, 12)),
                             "heart": box_mask(s, (8, 8, 2), (14, 14, 8)), "aorta": np.zeros(s, bool)}, AFFINE)


def test_store_metadata_validates_as_ome_zarr_0_5(store, ct, tmp_path):
    _nested_case(store, ct)
    store.write_masks("no_ct", {"heart": box_mask((6, 6, 4), (0, 0, 0), (3, 3, 2))}, np.eye(4))
    case_dir, no_ct = store.path / case_key(CASE), store.path / case_key("no_ct")
    validate_store_case(case_dir)
    validate_store_case(no_ct)
    labels = read_attrs(case_dir / "labels")
    assert len(labels["ome"]["labels"]) >= 2 and [d["name"] for d in labels["empty"]] == ["aorta"]
    parted = [s for s in read_structures(case_dir) if s.parts]
    assert parted and {p for s in parted for p in s.parts} >= {"left lung lower lobe", "left lung upper lobe"}


def test_ome_zarr_reader_sees_the_case_image_and_each_label_layer(store, ct):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    _nested_case(store, ct)
    case_dir = store.path / case_key(CASE)
    nodes = list(Reader(parse_url(str(case_dir)))())
    layers = read_attrs(case_dir / "labels")["ome"]["labels"]
    assert [type(s).__name__ for s in nodes[0].specs] == ["Multiscales"] and nodes[0].data[0].shape == ct.shape
    assert np.array_equal(np.asarray(nodes[0].data[0]), ct)
    found = {str(n.zarr.path).rstrip("/").rsplit("/", 1)[-1]: n for n in nodes if n.metadata.get("properties")}
    assert sorted(found) == sorted(layers)
    for node in found.values():
        props = node.metadata["properties"]  # label value -> the structure's properties
        assert {p["region"] for p in props.values()} <= {"lung", "left lung", "right lung", "left lung lower lobe",
                                                          "left lung upper lobe", "heart"}
        assert set(node.metadata["color"]) == set(props)


def test_store_arrays_name_their_dimensions(store, ct, tmp_path):
    _nested_case(store, ct)
    validate_store_case(store.path / case_key(CASE))
    for meta in (store.path / case_key(CASE)).rglob("zarr.json"):  # OME-Zarr 0.5 asks every array for its axes
        doc = json.loads(meta.read_text())
        assert doc["node_type"] == "group" or doc["dimension_names"] == list(AXES), meta


def test_real_totalsegmentator_case_validates(shared_data, store, tmp_path):
    nib = pytest.importorskip("nibabel")
    folder = shared_data / "ct" / "abdomen_small"
    if not (folder / "masks").is_dir():
        pytest.skip(f"real sample data absent: {folder}")
    img = nib.load(folder / "ct.nii.gz")
    store.write_image("abdomen_small", np.asanyarray(img.dataobj), img.affine)
    masks = {f.name.removesuffix(".nii.gz"): nib.load(f) for f in sorted((folder / "masks").glob("*.nii.gz"))}
    store.write_masks("abdomen_small", masks, img.affine, mask_source="totalsegmentator")
    classes = {int(k): v for k, v in json.loads(
        (shared_data / "vocab" / "totalsegmentator_v2_total_classes.json").read_text()).items()}
    store.write_label_map("abdomen_small", nib.load(folder / "labelmap_totalsegmentator_v2.nii.gz"), classes,
                          img.affine, mask_source="ts-labelmap")
    case_dir = store.path / case_key("abdomen_small")
    validate_store_case(case_dir)
    layers = read_attrs(case_dir / "labels")["ome"]["labels"]
    assert {n.split("-")[0] for n in layers} == {"totalsegmentator", "ts_labelmap_42fda8"}
    assert len(read_structures(case_dir)) == 117 + len(classes)
