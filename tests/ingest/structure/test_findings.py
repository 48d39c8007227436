"""Finding mentions on sentences written in CT-RATE's style: negation, hedging, sizes, laterality."""

from __future__ import annotations

import pytest

from ingest.structure.findings import find_mentions, is_abnormal


def status(sentence: str, top_levels: tuple[str, ...] = ()) -> dict[str, str]:
    return {m.term: m.status for m in find_mentions(sentence, None, top_levels)}


@pytest.mark.parametrize("sentence, term", [
    ("Pericardial effusion-thickening was not observed.", "pericardial effusion"),
    ("Pleural effusion-thickening was not detected in both hemithorax.", "pleural effusion"),
    ("No enlarged lymph nodes in prevascular, pre-paratracheal, subcarinal or bilateral hilar-axillary "
     "pathological dimensions were detected.", "lymphadenopathy"),
    ("Thoracic esophagus calibration was normal and no significant tumoral wall thickening was detected.",
     "esophageal wall thickening"),
    ("No pathological lymph node was detected in the mediastinum.", "lymphadenopathy"),
    ("There was no finding in favor of active infiltration in both lungs.", "infiltration"),
    ("The ground-glass infiltration observed in the upper lobe of the left lung has completely regressed.",
     "infiltration"),
])
def test_negation(sentence, term):
    assert status(sentence)[term] == "absent"


def test_negation_keeps_to_its_clause_and_list():
    s = "Calcific atheroma plaques are observed in the aorta and pericardial effusion was not observed."
    assert status(s) == {"atherosclerosis": "present", "pericardial effusion": "absent"}
    s = "No mass or lymphadenopathy was detected in the mediastinum."
    assert status(s) == {"mass": "absent", "lymphadenopathy": "absent"}
    s = ("No active infiltration or mass lesion is detected in the right lung parenchyma, and sequelae "
         "changes are observed in the lower lobe posterobasal.")
    assert status(s) == {"infiltration": "absent", "mass": "absent", "sequela": "present"}


def test_pseudo_negation_is_not_negation():
    assert status("There is no significant change in the size of the nodule in the left lung.") == {
        "pulmonary nodule": "present"}
    s = "A 13x9.3 mm lymph node that did not reach the pathological size was observed in the right paratracheal area."
    assert status(s) == {"lymph node": "present"}


@pytest.mark.parametrize("sentence, term", [
    ("Pulmonary embolism cannot be excluded.", "pulmonary embolism"),
    ("Findings suspicious for malignancy in the right upper lobe.", "mass"),
    ("It was evaluated as compatible with viral pneumonia.", "pneumonia"),
    ("Patchy ground glass densities observed in both lung bases may be due to transient atelectasis.",
     "atelectasis"),
    ("A mosaic attenuation pattern was observed in both lungs (small airway disease?).", "small airway disease"),
])
def test_hedging(sentence, term):
    assert status(sentence)[term] == "uncertain"


def test_hedge_reaches_the_diagnosis_not_the_observation():
    s = "Ground glass areas compatible with viral pneumonia are observed in both lungs."
    assert status(s) == {"ground-glass opacity": "present", "pneumonia": "uncertain"}
    s = ("Nodules of 2.3 and 3 mm in diameter were observed on the major and minor fissures in the right lung, "
         "respectively (intrapulmonary lymph node?).")
    assert status(s) == {"pulmonary nodule": "present", "intrapulmonary lymph node": "uncertain"}


def test_size_goes_to_the_nearest_mention():
    ms = find_mentions("A 12x8 mm nodule in the right lung and a 5 mm nodule in the left lung.")
    assert [(m.size_mm, m.size_text) for m in ms] == [(12.0, "12x8 mm"), (5.0, "5 mm")]
    (m,) = find_mentions("Several nonspecific nodules are observed in both lungs, the largest of which is in "
                         "the left lung lower lobe anteromedial segment (4.6 mm).")
    assert (m.term, m.raw_text, m.size_mm, m.size_text) == ("pulmonary nodule", "nonspecific nodules", 4.6, "4.6 mm")


@pytest.mark.parametrize("sentence, side", [
    ("Millimetric nonspecific nodules were observed in both lungs.", "bilateral"),
    ("Linear atelectasis is observed in the left lung lower lobe.", "left"),
    ("Right pleural effusion measuring 2 cm is observed.", "right"),
    ("Bilateral pleural effusion is observed.", "bilateral"),
    ("A nodule in the sol alt lob.", "left"),
    ("Atelectasis in the right lung and in the left lung lower lobe.", "bilateral"),
    ("Linear atelectasis is observed.", None),
])
def test_laterality(sentence, side):
    assert find_mentions(sentence)[0].laterality == side


def test_laterality_of_each_mention():
    ms = find_mentions("A 12x8 mm nodule in the right lung and a 5 mm nodule in the left lung.")
    assert [m.laterality for m in ms] == ["right", "left"]


def test_terms_are_normalised_and_raw_text_kept():
    ms = find_mentions("Calcific atheroma plaques and ground-glass densities are observed.")
    assert [(m.term, m.raw_text) for m in ms] == [("atherosclerosis", "Calcific atheroma plaques"),
                                                   ("ground-glass opacity", "ground-glass densities")]
    (m,) = find_mentions("Pleuroparenchymal sequelae density increases were observed in both lung apexes.")
    assert m.term == "sequela"  # a generic 'density increase' is the head of the sequela, not an opacity


def test_context_words_and_patterns():
    assert status("Minimal effusion is observed in the pericardial space.", ("heart",)) == {
        "pericardial effusion": "present"}
    assert status("Minimal effusion is observed in the bilateral pleural area.", ("pleura",)) == {
        "pleural effusion": "present"}
    assert status("The cardiothoracic index was slightly increased in favor of the heart.") == {
        "cardiomegaly": "present"}
    assert status("Heart sizes are not increased.") == {"cardiomegaly": "absent"}


def test_is_abnormal():
    assert is_abnormal(find_mentions("Millimetric nodules in both lungs.")) is True
    assert is_abnormal(find_mentions("Pleural effusion was not detected.")) is False
    assert is_abnormal([], "Heart contour, size are normal.") is False
    assert is_abnormal([], "Findings were discussed with the clinician.") is None
