"""CT-RATE's 18 abnormality classes per case, from the finding mentions of its report.

A class is positive when one of its terms is mentioned as present or uncertain (a
radiologist's hedge still flags the finding, as CT-RATE's manual labels do), subject to
the class's conditions: lung classes need a sentence about the chest (not a thyroid or
liver nodule), calcified plaques count as coronary or arterial by the vessels the
sentence names, and any reported mediastinal, hilar or axillary lymph node counts as
lymphadenopathy (CT-RATE's manual labels flag millimetric nodes too), an intrapulmonary
node does not. Dev figures (macro-F1 on the two halves of labeled_reports_dev.csv) are
printed by `radgenome eval labels --part k/2`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ingest.structure.findings import Mention
from ingest.structure.status import ABSENT
from warehouse.schema import CT_RATE_LABELS

# class -> the terms that flag it (terms of vocab/terms.toml)
CLASS_TERMS: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "Medical material": ["medical device", "sternotomy"],
    "Arterial wall calcification": ["atherosclerosis", "calcification"],
    "Cardiomegaly": ["cardiomegaly"],
    "Pericardial effusion": ["pericardial effusion"],
    "Coronary artery wall calcification": ["coronary calcification", "atherosclerosis", "calcification"],
    "Hiatal hernia": ["hiatal hernia"],
    "Lymphadenopathy": ["lymphadenopathy", "lymph node"],
    "Emphysema": ["emphysema", "bulla"],
    "Atelectasis": ["atelectasis"],
    "Lung nodule": ["pulmonary nodule", "calcified nodule", "ground-glass nodule"],
    "Lung opacity": ["ground-glass opacity", "opacity", "crazy paving"],
    "Pulmonary fibrotic sequela": ["fibrosis", "sequela", "fibroatelectasis", "honeycombing"],
    "Pleural effusion": ["pleural effusion"],
    "Mosaic attenuation pattern": ["mosaic attenuation"],
    "Peribronchial thickening": ["peribronchial thickening"],
    "Consolidation": ["consolidation"],
    "Bronchiectasis": ["bronchiectasis"],
    "Interlobular septal thickening": ["interlobular septal thickening"],
}.items()}

_CORONARY = re.compile(r"\b(?:(?:left|right)\s+)?(?:anterior\s+descending\s+)?(?:coronary|lad|circumflex|rca|lcx)"
                       r"(?:\s+(?:arter(?:y|ies)|artery walls?|vascular structures|vessels?|system))?\b", re.IGNORECASE)
_ARTERIAL = re.compile(r"\b(?:aort\w*|arter\w*|arch|vascular|vessels?|carotid|subclavian|brachiocephalic|"
                       r"iliac|celiac|mesenteric|valve|truncus|trunk)\b", re.IGNORECASE)
VESSEL_PLACES = frozenset({"mediastinum", "abdomen", "heart"})


@dataclass(frozen=True, slots=True)
class LabelledMention:
    """A mention with the sentence it was read from (label conditions look at the sentence)."""

    mention: Mention
    sentence: str
    top_levels: tuple[str, ...] = ()


# Classes of the lungs: a mention counts only in a sentence about the chest (not the liver, the skin).
LUNG_CLASSES = frozenset({"Emphysema", "Atelectasis", "Lung nodule", "Lung opacity", "Pulmonary fibrotic sequela",
                          "Mosaic attenuation pattern", "Peribronchial thickening", "Consolidation",
                          "Bronchiectasis", "Interlobular septal thickening"})
CHEST = frozenset({"lung", "pleura", "trachea and bronchie"})
LUNG = frozenset({"lung", "pleura"})
PARENCHYMA_CLASSES = frozenset({"Atelectasis", "Lung nodule", "Lung opacity", "Consolidation"})


def _class_holds(label: str, lm: LabelledMention) -> bool:
    """Conditions beyond the term list."""
    m, sentence = lm.mention, lm.sentence
    if label == "Coronary artery wall calcification":
        return m.term == "coronary calcification" or bool(_CORONARY.search(sentence))
    if label == "Arterial wall calcification":
        if _ARTERIAL.search(_CORONARY.sub(" ", sentence)):
            return True
        return (m.term == "atherosclerosis" and not _CORONARY.search(sentence)
                and (not lm.top_levels or bool(VESSEL_PLACES.intersection(lm.top_levels))))
    if label in LUNG_CLASSES and lm.top_levels:
        if not (LUNG if label in PARENCHYMA_CLASSES else CHEST).intersection(lm.top_levels):
            return False
    if label == "Lymphadenopathy":  # a node read only in a lung sentence is an intrapulmonary node
        return lm.top_levels != ("lung",)
    return True


def ct_rate_labels(mentions: Iterable[LabelledMention]) -> dict[str, int]:
    """The 18 classes (CT-RATE's order) as 0/1 from a case's mentions."""
    out = dict.fromkeys(CT_RATE_LABELS, 0)
    for lm in mentions:
        m = lm.mention
        if m.status == ABSENT:
            continue
        for label, terms in CLASS_TERMS.items():
            if not out[label] and m.term in terms and _class_holds(label, lm):
                out[label] = 1
    return out


def label_rows(case_id: str, values: dict[str, int], source: str) -> list[dict]:
    """CASE_LABELS rows for the 18 classes."""
    return [{"case_id": case_id, "kind": "ct_rate", "label": label, "value": int(values[label]),
             "ordinal": k, "source": source} for k, label in enumerate(CT_RATE_LABELS)]
