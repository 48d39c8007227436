"""CT-RATE's 18 classes from finding mentions, and the vocabularies they rest on."""

from __future__ import annotations

import pytest

from ingest.structure import structure_report
from ingest.structure.findings import vocabulary
from warehouse.core.anatomy import anatomy
from warehouse.core.schema import CT_RATE_LABELS
from warehouse.core.terms import CLASS_TERMS


def positives(findings: str) -> set[str]:
    return {k for k, v in structure_report("v", findings).label_values().items() if v}


def test_every_class_term_is_in_the_vocabulary():
    names = {t.name for t in vocabulary().phrases.values()} | {t.name for _, t in vocabulary().patterns}
    assert tuple(CLASS_TERMS) == CT_RATE_LABELS
    for label, terms in CLASS_TERMS.items():
        assert terms <= names, (label, terms - names)
    for term in vocabulary().phrases.values():
        assert anatomy().get(term.region)


@pytest.mark.parametrize("text, expected", [
    ("Calcific atheroma plaques are observed in the aorta.", {"Arterial wall calcification"}),
    ("Calcifications were observed in the coronary arteries.", {"Coronary artery wall calcification"}),
    ("Calcific atherosclerotic changes were observed in the thoracic aorta and coronary artery walls.",
     {"Arterial wall calcification", "Coronary artery wall calcification"}),
    ("A catheter extending from the right internal jugular vein to the superior vena cava was observed.",
     {"Medical material"}),
    ("The cardiothoracic index was slightly increased.", {"Cardiomegaly"}),
    ("Effusion reaching a thickness of 5 mm was observed in the pericardial space.", {"Pericardial effusion"}),
    ("Sliding type hiatal hernia is observed.", {"Hiatal hernia"}),
    ("Right upper paratracheal millimetric lymph node is observed.", {"Lymphadenopathy"}),
    ("Emphysematous changes are observed in both lungs.", {"Emphysema"}),
    ("Linear atelectasis is observed in the left lung lower lobe.", {"Atelectasis"}),
    ("Ground glass densities are observed in both lungs.", {"Lung opacity"}),
    ("Pleuroparenchymal sequelae changes in the apex of both lungs.", {"Pulmonary fibrotic sequela"}),
    ("Minimal effusion is observed in the bilateral pleural area.", {"Pleural effusion"}),
    ("A mosaic attenuation pattern was observed in both lungs.", {"Mosaic attenuation pattern"}),
    ("Minimal peribronchial thickenings in both lungs.", {"Peribronchial thickening"}),
    ("Consolidation is observed in the right lung lower lobe.", {"Consolidation"}),
    ("Cylindrical bronchiectasis in both lower lobes.", {"Bronchiectasis"}),
    ("Interlobular septal thickenings are observed in both lungs.", {"Interlobular septal thickening"}),
])
def test_each_class(text, expected):
    assert positives(text) == expected


def test_negated_findings_give_no_labels():
    text = ("Pericardial effusion-thickening was not observed. No enlarged lymph nodes were detected. "
            "Pleural effusion-thickening was not detected. No nodular or infiltrative lesion is detected.")
    assert positives(text) == set()


def test_hedged_findings_are_no_evidence():
    assert positives("Findings may be compatible with atelectasis.") == set()
    assert positives("Atelectasis is observed in the right lung lower lobe.") == {"Atelectasis"}


def test_each_positive_label_has_a_present_finding_of_its_class():
    text = ("Calcific atherosclerotic changes were observed in the thoracic aorta and coronary artery walls. "
            "Minimal effusion is observed in the bilateral pleural area. Possible atelectasis in the left lung. "
            "No pericardial effusion.")
    res = structure_report("v", text)
    evidence = {f["ct_rate_label"] for f in res.findings if f["status"] == "present"}
    assert {k for k, v in res.label_values().items() if v} == evidence - {None} == {
        "Arterial wall calcification", "Coronary artery wall calcification", "Pleural effusion"}
    ids = [f["finding_id"] for f in res.findings]
    assert len(ids) == len(set(ids))
    assert {f["ct_rate_label"] for f in res.findings if f["status"] != "present"} == {
        "Atelectasis", "Pericardial effusion"}


def test_lung_classes_need_a_chest_sentence():
    assert positives("A hypodense nodule with a diameter of 9 mm was observed in the left thyroid lobe.") == set()
    assert positives("Increased density in paraduodenal fatty tissues is observed in the upper abdomen.") == set()
    assert positives("There are intrapulmonary lymph nodes in the bilateral major fissure.") == set()
