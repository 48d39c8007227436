"""Sentence splitting and clause scopes on CT-RATE-style text."""

from __future__ import annotations

from ingest.structure.sentences import MAX_SENTENCE_CHARS, clauses, split_sentences


def test_decimals_and_abbreviations_do_not_split():
    text = ("A nodule of 4.6 mm is seen, approx. 5 mm from the fissure. "
            "A 13x9.3 mm lymph node was observed (e.g. in the right paratracheal area).")
    assert split_sentences(text) == [
        "A nodule of 4.6 mm is seen, approx. 5 mm from the fissure.",
        "A 13x9.3 mm lymph node was observed (e.g. in the right paratracheal area).",
    ]


def test_numbered_lists_bullets_and_quotes_are_boundaries_without_markers():
    text = ('Bone structures are natural. " Thoracic CT examination within normal limits '
            "• Pleuroparenchymal sequelae (cyst?). 1. Nodule in the right lung. 2) Minimal effusion.")
    assert split_sentences(text) == [
        "Bone structures are natural.", "Thoracic CT examination within normal limits",
        "Pleuroparenchymal sequelae (cyst?).", "Nodule in the right lung.", "Minimal effusion."]


def test_question_marks_inside_parentheses_stay_in_the_sentence():
    text = "Nodules were observed in the right lung (intrapulmonary lymph node?). No effusion."
    assert split_sentences(text) == ["Nodules were observed in the right lung (intrapulmonary lymph node?).",
                                     "No effusion."]


def test_semicolon_preamble_stays_with_its_sentence_but_is_its_own_clause():
    s = ("When examined in the lung parenchyma window; Aeration of both lung parenchyma is normal and "
         "no nodular or infiltrative lesion is detected in the lung parenchyma.")
    assert split_sentences(s) == [s]
    assert [s[a:b] for a, b in clauses(s)] == [
        "When examined in the lung parenchyma window", "Aeration of both lung parenchyma is normal",
        "no nodular or infiltrative lesion is detected in the lung parenchyma."]


def test_clauses_join_lists_but_cut_between_statements():
    s = "No enlarged lymph nodes in prevascular, pre-paratracheal, subcarinal or bilateral hilar regions were detected."
    assert clauses(s) == [(0, len(s))]
    s = "Calcific plaques are observed in the aorta, and pericardial effusion was not observed."
    assert [s[a:b] for a, b in clauses(s)] == ["Calcific plaques are observed in the aorta",
                                               "pericardial effusion was not observed."]


def test_empty_and_garbage():
    assert split_sentences(None) == [] and split_sentences("") == [] and split_sentences(" . ; ") == []
    long = "word " * 2000
    pieces = split_sentences(long)
    assert len(pieces) > 1 and all(len(p) <= MAX_SENTENCE_CHARS for p in pieces)
    assert sum(p.count("word") for p in pieces) == 2000
