"""CT-RATE's 18 abnormality classes per case, from the finding mentions of its report.

A class is positive when one of its terms is mentioned as present (a hedged mention,
"possible atelectasis", does not flag it: each positive label then has a present finding as its
evidence; counting hedges too scored 0.0045 higher on the dev reports), subject to
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
from ingest.structure.status import PRESENT
from warehouse.core.schema import CT_RATE_LABELS
from warehouse.core.terms import CLASS_TERMS

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


def mention_classes(lm: LabelledMention) -> tuple[str, ...]:
    """The CT-RATE classes a mention is evidence for, whatever its status (a negated pleural
    effusion still names the Pleural effusion class): its term's classes whose conditions hold."""
    return tuple(label for label, terms in CLASS_TERMS.items() if lm.mention.term in terms and _class_holds(label, lm))


def ct_rate_labels(mentions: Iterable[LabelledMention]) -> dict[str, int]:
    """The 18 classes (CT-RATE's order) as 0/1 from a case's mentions: a class is positive when a
    mention reported as present is evidence for it. So every positive label has a finding row with
    that `ct_rate_label` and status present (a hedged mention, status uncertain, does not flag it)."""
    out = dict.fromkeys(CT_RATE_LABELS, 0)
    for lm in mentions:
        if lm.mention.status == PRESENT:
            for label in mention_classes(lm):
                out[label] = 1
    return out


def label_rows(case_id: str, values: dict[str, int], source: str) -> list[dict]:
    """CASE_LABELS rows for the 18 classes."""
    return [{"case_id": case_id, "kind": "ct_rate", "label": label, "value": int(values[label]),
             "ordinal": k, "source": source} for k, label in enumerate(CT_RATE_LABELS)]


def disorder_rows(case_id: str, findings: list[dict], source: str) -> list[dict]:
    """Case disorders (CASE_LABELS rows, kind disorder): the present findings' terms in report order."""
    terms = dict.fromkeys(f["term"] for f in findings if f.get("status") == "present" and f.get("term"))
    return [{"case_id": case_id, "kind": "disorder", "label": t, "value": 1, "ordinal": i, "source": source}
            for i, t in enumerate(terms)]
