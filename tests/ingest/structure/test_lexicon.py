"""The grounding lexicon: region names, synonyms and RadGenome's cues in one matcher, the longest phrase first."""

from __future__ import annotations

import pytest

from ingest.structure.lexicon import GROUNDED, TIERS, Cue, lexicon, load_cues, top_levels_of
from ingest.structure.text import tokenize
from warehouse.core.anatomy import TOP_LEVEL, anatomy


def cues(text: str) -> list[tuple[str, str, str]]:
    """(matched words, region, tier) of each lexicon match in `text`."""
    tokens = tokenize(text)
    return [(text[tokens[m.i].start:tokens[m.j - 1].end], m.value.region, m.value.tier)
            for m in lexicon().find(tokens)]


def test_dag_paths_decide_top_levels():
    assert top_levels_of("aorta") == {"abdomen", "mediastinum"}
    assert top_levels_of("left lung lower lobe") == {"lung"}
    assert top_levels_of("heart ascending aorta") == {"heart"}


def test_cue_file_names_only_known_regions(tmp_path):
    assert set(load_cues()) <= {"place", "weak", "finding"}
    bad = tmp_path / "cues.toml"
    bad.write_text('[place]\n"no such region" = ["x"]\n')
    with pytest.raises(ValueError, match="unknown region"):
        load_cues.__wrapped__(bad)


def test_cue_file_names_only_known_tiers(tmp_path):
    bad = tmp_path / "cues.toml"
    bad.write_text('[strong]\n"lung" = ["x"]\n')
    with pytest.raises(ValueError, match=r"cues\.toml: unknown section \[strong\]"):
        load_cues.__wrapped__(bad)
    good = tmp_path / "good.toml"
    good.write_text('[weak]\n"lung" = ["chest"]\n')
    assert load_cues.__wrapped__(good) == {"weak": {"lung": ["chest"]}}


def test_the_released_cue_file_is_read_once():
    assert load_cues() is load_cues() and set(load_cues()) == set(TIERS)
    assert lexicon() is lexicon() and len(lexicon()) > len(list(anatomy()))


def test_others_has_no_paragraph():
    assert GROUNDED == TOP_LEVEL[:-1] and "others" not in GROUNDED
    assert top_levels_of("others") == frozenset()
    assert top_levels_of("inferior vena cava") == frozenset()  # RadGenome files it under others only


def test_a_region_without_its_own_paths_takes_its_ancestors_top_levels():
    dag = anatomy()
    for name in ("lung", "left lung lower lobe", "pulmonary artery"):
        region = dag.get(name)
        tops = {p.split("/", 1)[0] for p in region.paths} if region.paths else dag.ancestors(name)
        assert top_levels_of(name) == {t for t in tops if t in GROUNDED}


@pytest.mark.parametrize("text, found", [
    ("the pulmonary artery", [("pulmonary artery", "pulmonary artery", "place")]),  # not 'pulmonary' (lung)
    ("LLL", [("LLL", "left lung lower lobe", "place")]),  # a synonym
    ("sol alt lob", [("sol alt lob", "left lung lower lobe", "place")]),
    ("axillary", [("axillary", "mediastinum", "place")]),  # RadGenome files axillary nodes under mediastinum
    ("subpleural nodules", [("subpleural", "pleura", "place"), ("nodules", "lung", "finding")]),
    ("hiatal hernia", [("hiatal hernia", "esophagus", "finding")]),
    ("Osteophytes", [("Osteophytes", "bone", "finding")]),
    ("Please correlate clinically.", []),
])
def test_lexicon_finds_names_synonyms_and_cues(text, found):
    assert cues(text) == found


def test_the_longest_phrase_wins():
    assert cues("inferior vena cava") == [("inferior vena cava", "inferior vena cava", "place")]
    assert cues("vena cava") == [("vena cava", "mediastinum", "place")]


def test_each_cue_carries_its_regions_top_levels():
    (m,) = lexicon().find(tokenize("thoracic aorta"))
    assert m.value == Cue("aorta", "place", top_levels_of("aorta"))
    assert m.value.top_levels == {"abdomen", "mediastinum"}
