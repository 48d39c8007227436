"""The anatomy DAG against the released vocabularies."""

from __future__ import annotations

import json

import pytest

from warehouse.core.anatomy import COARSE_REGIONS, TOP_LEVEL, Anatomy, anatomy
from warehouse.core.errors import UnknownRegionError


def test_all_released_paths_resolve_to_their_last_component(shared_data):
    a = anatomy()
    paths = [p.strip() for p in (shared_data / "vocab/radgenome_anatomy_paths.txt").read_text().splitlines()
             if p.strip()]
    assert len(paths) == 174
    listed = {p for r in a for p in r.paths}
    for p in paths:
        assert p in listed, p
        assert a.resolve(p).name == p.rsplit("/", 1)[-1]


def test_all_mask_names_are_regions(shared_data):
    a = anatomy()
    names = [n.strip() for n in (shared_data / "vocab/radgenome_anatomy_mask_names.txt").read_text().splitlines()
             if n.strip() and not n.startswith("#")]
    assert len(names) == 210
    for n in names:
        assert n in a and n in a.get(n).radgenome_masks
    assert all(a.get(r).region_mask for r in COARSE_REGIONS)


def test_every_totalsegmentator_class_maps(shared_data):
    a = anatomy()
    classes = json.loads((shared_data / "vocab/totalsegmentator_v2_total_classes.json").read_text())
    for name in classes.values():
        assert name in a.from_totalsegmentator(name).totalsegmentator
    assert a.from_totalsegmentator("lung_upper_lobe_left").name == "left lung upper lobe"
    assert a.from_totalsegmentator("clavicula_left").name == "left clavicle"
    assert a.from_totalsegmentator("vertebrae_T6").name == "thoracic vertebrae 6 (t6)"


def test_left_lower_lobe_has_two_parents():
    a = anatomy()
    r = a.get("left lung lower lobe")
    assert set(r.parents) == {"left lung", "lung lower lobe"}
    assert {"left lung", "lung lower lobe", "lung"} <= a.ancestors(r.name)
    assert "left lung lower lobe" in a.descendants("lung")
    assert a.get("left rib 5").parents == ("left rib", "rib 5")


def test_lung_doubling_is_one_region():
    a = anatomy()
    assert a.resolve("lung/lung").name == "lung"
    assert a.level("lung") == 0 and a.level("left lung") == 1


def test_closure_table_is_complete_and_has_depths():
    a = anatomy()
    t = a.tables()
    closure = t["anatomy_closure"].to_pylist()
    pairs = {(c["ancestor_id"], c["descendant_id"]): c["depth"] for c in closure}
    lung, lll = a.get("lung").region_id, a.get("left lung lower lobe").region_id
    assert pairs[(lung, lll)] == 2 and pairs[(lll, lll)] == 0
    assert (lll, lung) not in pairs
    assert t["anatomy"].num_rows == len(a) and set(TOP_LEVEL) <= set(t["anatomy"]["name"].to_pylist())


def test_synonyms_resolve():
    a = anatomy()
    assert a.resolve("LLL").name == "left lung lower lobe"
    assert a.resolve("left lower lobe").name == "left lung lower lobe"
    assert a.resolve("both lungs").name == "lung"


def test_unknown_region_names_close_matches():
    with pytest.raises(UnknownRegionError) as e:
        anatomy().resolve("left lung lowr lobe")
    assert "left lung lower lobe" in str(e.value)


def test_cycle_is_rejected(tmp_path):
    f = tmp_path / "a.toml"
    f.write_text('[[region]]\nname = "a"\nparents = ["b"]\n[[region]]\nname = "b"\nparents = ["a"]\n')
    with pytest.raises(ValueError, match="cycle"):
        Anatomy.load(f)


def test_ids_are_stable_and_unique():
    a = anatomy()
    assert len({r.region_id for r in a}) == len(a)
    assert a.get("lung").region_id == Anatomy.load().get("lung").region_id
