"""Grounding sentences in the anatomy DAG: RadGenome's regions and filing conventions."""

from __future__ import annotations

import pytest

from ingest.structure.grounding import ground_sentences, ground_tokens


def tops(sentence: str) -> tuple[str, ...]:
    return ground_tokens(sentence).top_levels


@pytest.mark.parametrize("sentence, top_levels, regions", [
    ("Millimetric nonspecific nodules were observed in both lungs.", ("lung",), ("lung",)),
    ("Linear atelectasis in the left lower lobe.", ("lung",), ("left lung lower lobe",)),
    ("A nodule in the sol alt lob.", ("lung",), ("left lung lower lobe",)),
    ("Trachea, both main bronchi are open.", ("trachea and bronchie",), ("bronchie", "trachea")),
    ("Thoracic aorta diameter is normal.", ("mediastinum", "abdomen"), ("aorta",)),
    ("The heart and mediastinal vascular structures have a natural appearance.", ("mediastinum", "heart"),
     ("heart", "mediastinum")),
    ("Bilateral adrenal glands were normal and no space-occupying lesion was detected.", ("abdomen",),
     ("adrenal gland",)),
    ("Vertebral corpus heights are preserved.", ("bone",), ("vertebrae",)),
])
def test_places(sentence, top_levels, regions):
    g = ground_tokens(sentence)
    assert (g.top_levels, g.regions, g.how) == (top_levels, regions, "place")


def test_radgenome_conventions():
    # a subpleural lesion of the lung is filed under pleura; so is a sentence on both effusions
    assert tops("There is a millimetric subpleural nodule in the right lung.") == ("pleura",)
    assert tops("No pleural or pericardial effusion was detected.") == ("pleura",)
    # axillary and hilar lymph nodes are filed under mediastinum
    assert tops("No lymph node was observed in the supraclavicular fossa and axilla in pathological size.") == (
        "mediastinum",)
    assert tops("Calcific atheroma plaques are observed in the aortic arch and coronary arteries.") == (
        "mediastinum", "heart", "abdomen")


def test_preamble_and_parentheses_count_less():
    assert tops("When examined in the lung parenchyma window; Pleural effusion was not detected.") == ("pleura",)
    assert tops("When examined in the lung parenchyma window; Emphysematous changes are observed.") == ("lung",)
    assert tops("Interlobular septal thickenings in the upper lobes of both lungs (cardiac pathology?).") == ("lung",)


def test_findings_place_a_sentence_that_names_no_place():
    g = ground_tokens("No pathological lymph node was detected.")
    assert (g.top_levels, g.how) == (("mediastinum",), "finding")
    assert tops("Sliding type hiatal hernia is observed.") == ("esophagus",)
    assert tops("Osteophytes are observed.") == ("bone",)


def test_a_sentence_without_cues_continues_its_neighbour():
    gs = ground_sentences(["Please correlate clinically.", "Nodules are seen in both lungs.",
                           "It was evaluated in favor of granuloma.", "Follow-up is recommended."])
    assert [g.top_levels for g in gs] == [("lung",)] * 4
    assert [g.how for g in gs] == ["context", "place", "finding", "context"]
    assert ground_sentences(["Please correlate clinically."])[0].grounded is False
