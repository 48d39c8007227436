"""`warehouse.core.terms`: the finding vocabulary (finding_terms.toml), looking a term up by its
name, phrases and plurals, resolving what a user typed, and the `finding_terms` table."""

from __future__ import annotations

import re

import pytest

from warehouse.core import schema
from warehouse.core.anatomy import anatomy
from warehouse.core.errors import WarehouseError
from warehouse.core.schema import CT_RATE_LABELS
from warehouse.core.terms import (
    CLASS_TERMS,
    UnknownTermError,
    lookup_term,
    resolve_term,
    term_entries,
    terms_table,
    vocabulary_data,
)


# -- the data file -------------------------------------------------------------------------------
def test_every_term_lies_in_a_region_and_its_phrases_are_lower_case():
    entries = term_entries()
    assert len(entries) > 50 and list(entries) == list(vocabulary_data()["term"])  # the file's order
    dag = anatomy()
    for name, e in entries.items():
        assert e.name == name and e.region in dag, name
        assert e.phrases, f"{name} has no phrase"
        assert all(p == p.lower() and p.strip() == p for p in e.phrases), name
        for pattern in e.patterns:
            re.compile(pattern)


def test_class_terms_name_only_vocabulary_terms():
    assert tuple(CLASS_TERMS) == CT_RATE_LABELS
    vocabulary = set(term_entries())
    for label, terms in CLASS_TERMS.items():
        assert terms and terms <= vocabulary, f"{label}: {sorted(terms - vocabulary)} not in finding_terms.toml"


def test_ct_rate_labels_of_a_term():
    entries = term_entries()
    assert entries["pulmonary nodule"].ct_rate_labels == ("Lung nodule",)
    # a calcified plaque is arterial or coronary by where it is: one term, two classes, in CT-RATE's order
    assert entries["atherosclerosis"].ct_rate_labels == ("Arterial wall calcification",
                                                        "Coronary artery wall calcification")
    assert entries["mass"].ct_rate_labels == ()  # not one of CT-RATE's 18 classes


def test_every_phrase_finds_its_own_term():
    # a phrase listed under two terms (or folding to another term's name) would silently go to one of them
    for name, e in term_entries().items():
        assert lookup_term(name) == name
        for phrase in e.phrases:
            assert lookup_term(phrase) == name, f"{phrase!r} of {name!r} finds {lookup_term(phrase)!r}"


# -- lookup and resolve --------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "term"), [
    ("pulmonary nodule", "pulmonary nodule"),  # the term
    ("lung nodule", "pulmonary nodule"),  # a phrase
    ("Nodules", "pulmonary nodule"),  # a plural, any case
    ("  Lung   NODULE. ", "pulmonary nodule"),  # spacing and punctuation fold
    ("opacities", "opacity"),  # -ies
    ("bronchiectases", "bronchiectasis"),  # -ses -> -sis
    ("bronchiectasis", "bronchiectasis"),  # already singular: not cut
    ("ground glass opacities", "ground-glass opacity"),
    ("GGO", "ground-glass opacity"),
])
def test_lookup_finds_terms_phrases_and_plurals(text, term):
    assert lookup_term(text) == term
    assert resolve_term(text) == term


@pytest.mark.parametrize("text", ["", "broken wrist", "nodul es", "a nodule in the lung", "zzzz"])
def test_lookup_of_text_that_names_no_term_is_none(text):
    assert lookup_term(text) is None


def test_plural_of_a_term_ending_in_ss():
    assert lookup_term("masses") == "mass"


def test_resolve_suggests_the_closest_terms():
    with pytest.raises(UnknownTermError, match="did you mean 'pulmonary nodule'") as e:
        resolve_term("pulmonary nodul")
    assert isinstance(e.value, WarehouseError) and isinstance(e.value, KeyError)
    assert "finding_terms" in e.value.hint
    assert str(e.value).startswith("unknown finding term 'pulmonary nodul'")  # not quoted as a KeyError is
    with pytest.raises(UnknownTermError) as e:
        resolve_term("qqqqqqqq")
    assert "did you mean" not in str(e.value)


# -- the table -----------------------------------------------------------------------------------
def test_terms_table_has_one_row_per_term_with_its_region():
    table = terms_table()
    assert table.schema == schema.TABLES["finding_terms"]
    rows = table.to_pylist()
    entries = term_entries()
    assert [r["term"] for r in rows] == list(entries)
    dag = anatomy()
    for r in rows:
        e = entries[r["term"]]
        region = dag.get(e.region)
        assert (r["region"], r["region_id"]) == (region.name, region.region_id)
        assert r["top_level"] == dag.path(region.name).split("/")[0]
        assert r["term"] not in r["synonyms"] and set(r["synonyms"]) == set(e.phrases) - {e.name}
        assert r["ct_rate_labels"] == [label for label in CT_RATE_LABELS if r["term"] in CLASS_TERMS[label]]
    every_label = {label for r in rows for label in r["ct_rate_labels"]}
    assert every_label == set(CT_RATE_LABELS)  # each CT-RATE class has a term that flags it
