"""`ingest.structure.text`: the tokens every matcher of report structuring works on (lower case,
hyphens as spaces, plurals folded, character spans kept) and the phrase matcher over them."""

from __future__ import annotations

import pytest

from ingest.structure.text import PhraseMatcher, norm_phrase, stem, tokenize


@pytest.mark.parametrize(("word", "folded"), [
    ("nodules", "nodule"), ("densities", "density"), ("opacities", "opacity"), ("ribs", "rib"), ("masses", "mass"),
    ("mass", "mass"), ("emphysematous", "emphysematous"), ("thrombus", "thrombus"), ("pelvis", "pelvis"),
    ("is", "is"), ("has", "has"), ("glass", "glass"),
])
def test_stem_folds_plurals_only(word, folded):
    assert stem(word) == folded


@pytest.mark.parametrize(("singular", "plural"), [
    ("metastasis", "metastases"), ("bronchiectasis", "bronchiectases"), ("diagnosis", "diagnoses"),
    ("disease", "diseases"), ("abscess", "abscesses"), ("opacity", "opacities"), ("node", "nodes"),
])
def test_a_plural_meets_its_singular(singular, plural):
    assert stem(singular) == stem(plural)


def test_tokens_keep_their_spans_and_fold_case_hyphens_and_plurals():
    text = "Ground-glass OPACITIES (3.5 mm) in both_lungs?"
    tokens = tokenize(text)
    assert [t.norm for t in tokens] == ["ground", "glass", "opacity", "3.5", "mm", "in", "both", "lung", "?"]
    assert [text[t.start:t.end] for t in tokens] == ["Ground", "glass", "OPACITIES", "3.5", "mm", "in", "both",
                                                     "lungs", "?"]
    assert tokenize("") == [] and tokenize(" -- ; ") == []
    assert norm_phrase("Ground glass opacities") == norm_phrase("ground-glass opacity") == ("ground", "glass",
                                                                                              "opacity")


def test_tokens_of_non_ascii_words():
    tokens = tokenize("Nodül görüldü.")
    assert [t.norm for t in tokens] == ["nodül", "görüldü"]


def test_matcher_finds_the_leftmost_longest_phrase_without_overlaps():
    m = PhraseMatcher({"lung": "L", "left lung": "LL", "left lung lower lobe": "LLL", "lower lobe": "LO",
                       "nodule": "N"})
    text = "Nodules in the left lung lower lobes and the left lung."
    tokens = tokenize(text)
    found = m.find(tokens)
    assert [(text[tokens[x.i].start:tokens[x.j - 1].end], x.value) for x in found] == [
        ("Nodules", "N"), ("left lung lower lobes", "LLL"), ("left lung", "LL")]
    assert len(m) == 5


def test_matcher_bounds_give_indices_of_the_whole_list():
    m = PhraseMatcher([("pleural effusion", 1), ("effusion", 2)])
    tokens = tokenize("pleural effusion and pleural effusion")
    assert [(x.i, x.j, x.value) for x in m.find(tokens)] == [(0, 2, 1), (3, 5, 1)]
    assert [(x.i, x.j, x.value) for x in m.find(tokens, lo=4)] == [(4, 5, 2)]  # the phrase cut by the bound
    assert [(x.i, x.j, x.value) for x in m.find(tokens, lo=1, hi=4)] == [(1, 2, 2)]
    assert m.find(tokens, lo=3, hi=3) == []


def test_matcher_keeps_the_first_value_of_a_repeated_phrase_and_skips_empty_ones():
    m = PhraseMatcher([("nodules", "first"), ("Nodule", "second"), ("--", "empty"), ("", "empty")])
    assert len(m) == 1
    assert [x.value for x in m.find(tokenize("a nodule"))] == ["first"]
    assert PhraseMatcher({}).find(tokenize("anything at all")) == []
