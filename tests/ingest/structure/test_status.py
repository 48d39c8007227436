"""Status cues and their scope: negations and hedges reach forward or backward within a clause,
pseudo-cues cancel what they overlap, and an absent cue wins over a hedge."""

from __future__ import annotations

import pytest

from ingest.structure.status import ABSENT, PRESENT, UNCERTAIN, StatusCue, cue_matchers, find_cues, status_of
from ingest.structure.text import Match, tokenize


def cue(i: int, j: int, *effects: tuple[str, str]) -> Match[StatusCue]:
    return Match(i, j, StatusCue(frozenset(effects)))


def found(text: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(cue words, sorted effects) of each status cue in `text`."""
    tokens = tokenize(text)
    return [(" ".join(t.norm for t in tokens[m.i:m.j]), sorted(m.value.effects)) for m in find_cues(tokens)]


def status(text: str, mention: str) -> str:
    """Status of the first occurrence of the words `mention` in `text`, the whole text one clause."""
    tokens, words = tokenize(text), [t.norm for t in tokenize(mention)]
    i = next(k for k in range(len(tokens)) if [t.norm for t in tokens[k:k + len(words)]] == words)
    return status_of(i, i + len(words), find_cues(tokens), 0, len(tokens))


@pytest.mark.parametrize("text, cues", [
    ("No pleural effusion.", [("no", [(ABSENT, "forward")])]),
    ("Effusion was not observed.", [("was not observed", [(ABSENT, "backward")])]),
    ("Pulmonary embolism cannot be excluded.", [("cannot be excluded", [(UNCERTAIN, "backward"),
                                                                        (UNCERTAIN, "forward")])]),
    ("Findings suspicious for malignancy.", [("suspicious for", [(UNCERTAIN, "forward")])]),  # the longest cue
    ("Nodule (granuloma?).", [("?", [(UNCERTAIN, "backward"), (UNCERTAIN, "forward")])]),
    ("Calcific atheroma plaques are observed.", []),
])
def test_find_cues(text, cues):
    assert found(text) == cues


@pytest.mark.parametrize("text", [
    "There is no significant change in the size of the nodule.",
    "A lymph node that did not reach the pathological size.",
    "The examination was not contrast-enhanced.",
    "Not only the right lung.",
])
def test_a_pseudo_cue_drops_the_cues_it_overlaps(text):
    assert found(text) == []


@pytest.mark.parametrize("text, mention, expected", [
    ("No pleural effusion.", "pleural effusion", ABSENT),
    ("Pleural effusion was not detected.", "pleural effusion", ABSENT),
    ("Pulmonary embolism cannot be excluded.", "pulmonary embolism", UNCERTAIN),
    ("Findings suspicious for malignancy.", "malignancy", UNCERTAIN),
    ("Findings suspicious for malignancy.", "findings", PRESENT),  # a forward cue does not reach back
    ("Nodules in both lungs (granuloma?).", "granuloma", UNCERTAIN),
    ("Calcific atheroma plaques are observed in the aorta.", "atheroma plaques", PRESENT),
    ("There is no significant change in the nodule.", "nodule", PRESENT),
    ("No pleural effusion that cannot be excluded.", "pleural effusion", ABSENT),  # absent wins over a hedge
])
def test_status_of_a_mention_in_a_sentence(text, mention, expected):
    assert status(text, mention) == expected


def test_no_cue_is_present():
    assert status_of(2, 4, [], 0, 10) == PRESENT


def test_a_forward_cue_reaches_the_words_after_it_within_the_clause():
    no = cue(3, 4, (ABSENT, "forward"))
    assert status_of(5, 6, [no], 0, 10) == ABSENT
    assert status_of(5, 6, [no], 4, 10) == PRESENT  # the cue is in the clause before
    assert status_of(1, 2, [no], 0, 10) == PRESENT  # the mention is before the cue


def test_a_backward_cue_reaches_the_words_before_it_within_the_clause():
    not_seen = cue(6, 8, (ABSENT, "backward"))
    assert status_of(2, 4, [not_seen], 0, 10) == ABSENT
    assert status_of(2, 4, [not_seen], 0, 7) == PRESENT  # the cue runs past the clause
    assert status_of(8, 9, [not_seen], 0, 10) == PRESENT  # the mention is after the cue


def test_a_cue_inside_the_mention_counts_whichever_way_it_reaches():
    # "heart sizes are not increased": a pattern mention holding its cue
    assert status_of(0, 5, [cue(2, 4, (ABSENT, "backward"))], 0, 5) == ABSENT
    assert status_of(0, 5, [cue(2, 3, (UNCERTAIN, "forward"))], 0, 5) == UNCERTAIN


def test_a_cue_overlapping_the_start_of_a_mention_reaches_it():
    # "no pathological" + "pathological lymph node"
    assert status_of(1, 4, [cue(0, 2, (ABSENT, "forward"))], 0, 6) == ABSENT


def test_absent_wins_over_uncertain_and_a_pseudo_cue_does_nothing():
    cues = [cue(0, 1, (UNCERTAIN, "forward")), cue(4, 6, (ABSENT, "backward"))]
    assert status_of(2, 3, cues, 0, 6) == ABSENT
    assert status_of(2, 3, cues[:1], 0, 6) == UNCERTAIN
    assert status_of(2, 3, [cue(0, 1)], 0, 6) == PRESENT


def test_cue_matchers_read_the_status_file(tmp_path):
    path = tmp_path / "status.toml"
    path.write_text('[absent]\nforward = ["no", "not"]\nbackward = ["not", "absent"]\n'
                    '[uncertain]\nforward = ["possible"]\nbackward = ["possible", "?"]\n'
                    '[pseudo]\nphrases = ["no change", "not"]\n')
    pseudo, cues = cue_matchers.__wrapped__(path)
    assert len(pseudo) == 2 and len(cues) == 4  # 'not' is a pseudo-cue only
    by_phrase = {" ".join(t.norm for t in tokenize(p)): m.value.effects
                 for p in ("no", "absent", "possible", "?") for m in cues.find(tokenize(p))}
    assert by_phrase == {"no": {(ABSENT, "forward")}, "absent": {(ABSENT, "backward")},
                         "possible": {(UNCERTAIN, "forward"), (UNCERTAIN, "backward")},
                         "?": {(UNCERTAIN, "backward")}}
    assert all(m.value.effects == frozenset() for m in pseudo.find(tokenize("no change, not")))


def test_the_released_status_file_is_read_once():
    assert cue_matchers() is cue_matchers()
    pseudo, cues = cue_matchers()
    assert len(pseudo) > 10 and len(cues) > 100
