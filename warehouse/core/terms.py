"""The findings vocabulary: one normalised term per finding, its phrases, default region and CT-RATE classes.

`finding_terms.toml` (beside this module) is the one data file: report structuring reads its
phrases and patterns (`ingest/structure/findings.py`), the build writes it as the `finding_terms`
table, and named queries resolve a term parameter with `resolve_term` ("nodules", "lung nodule"
-> ``pulmonary nodule``; a typo is an error with "did you mean"). Which terms are evidence for
which of CT-RATE's 18 classes is `CLASS_TERMS`, a table of its own because two classes share
terms (a calcified plaque is coronary or arterial by where it is).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyarrow as pa

from warehouse.core.anatomy import anatomy
from warehouse.core.errors import WarehouseError
from warehouse.core.schema import CT_RATE_LABELS, to_table

VOCAB_PATH = Path(__file__).with_name("finding_terms.toml")

# CT-RATE class -> the terms that flag it (conditions on the sentence are the labeller's:
# ingest/structure/labels.py).
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
assert tuple(CLASS_TERMS) == CT_RATE_LABELS


class UnknownTermError(WarehouseError, KeyError):
    """A finding term that is not in the vocabulary; the message names the closest ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return WarehouseError.__str__(self)


@dataclass(frozen=True)
class TermEntry:
    """One term of the vocabulary as the data file gives it."""

    name: str
    region: str
    phrases: tuple[str, ...]
    patterns: tuple[str, ...] = ()

    @property
    def ct_rate_labels(self) -> tuple[str, ...]:
        return tuple(label for label, terms in CLASS_TERMS.items() if self.name in terms)


@cache
def vocabulary_data(path: Path = VOCAB_PATH) -> dict:
    """The parsed data file: ``{"term": {name: {region, phrases, patterns}}, "context": {...}}``."""
    with open(path, "rb") as f:
        return tomllib.load(f)


@cache
def term_entries() -> dict[str, TermEntry]:
    """{term: TermEntry}, in the data file's order."""
    return {name: TermEntry(name, e["region"], tuple(e.get("phrases", ())), tuple(e.get("patterns", ())))
            for name, e in vocabulary_data()["term"].items()}


def fold_plural(word: str) -> str:
    """A lower-case word with its plural folded, the one rule for report text and the vocabulary
    alike (a key for matching, not a spelling to show): opacities -> opacity, nodules -> nodule,
    masses -> mass; Greek plurals meet their singulars on one key (metastases and metastasis ->
    metastase, like disease and diseases); words of three letters and those ending in -ss, -us or
    -is other than -sis are kept."""
    if len(word) <= 3:
        return word
    if word.endswith("sis"):  # metastasis, atelectasis: the key of their -ses plurals
        return word[:-2] + "e" if len(word) > 5 else word
    if word.endswith(("ss", "us", "is")):  # mass, fibrous, pelvis
        return word
    if word.endswith("sses"):  # masses, abscesses
        return word[:-2]
    if word.endswith("ies") and len(word) > 4:  # opacities
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") else word


def _key(text: str) -> str:
    return " ".join(fold_plural(w) for w in re.findall(r"[\w-]+", text.lower()))


@cache
def _by_phrase() -> dict[str, str]:
    """Phrase (and term) keys -> term; a phrase of two terms goes to the first in the file."""
    out: dict[str, str] = {}
    for entry in term_entries().values():
        out.setdefault(_key(entry.name), entry.name)
    for entry in term_entries().values():
        for phrase in entry.phrases:
            out.setdefault(_key(phrase), entry.name)
    return out


def lookup_term(text: str) -> str | None:
    """The vocabulary term that `text` names exactly (the term, a phrase, or their plural); None otherwise."""
    return _by_phrase().get(_key(text))


def resolve_term(text: str) -> str:
    """The vocabulary term a user means: the term itself, one of its phrases, or their plural
    ("Nodules", "lung nodule" -> ``pulmonary nodule``). Raises `UnknownTermError` with the closest terms."""
    found = lookup_term(text)
    if found is not None:
        return found
    key = _key(text)
    near = difflib.get_close_matches(key, _by_phrase(), n=3, cutoff=0.75)
    guesses = list(dict.fromkeys(_by_phrase()[k] for k in near))
    guess = f"did you mean {' or '.join(repr(g) for g in guesses)}? " if guesses else ""
    raise UnknownTermError(f"unknown finding term {text!r}; {guess}".rstrip("; "),
                           hint="SELECT term, synonyms FROM finding_terms lists the vocabulary")


def terms_table() -> pa.Table:
    """The `finding_terms` table."""
    dag = anatomy()
    rows = []
    for entry in term_entries().values():
        region = dag.get(entry.region)
        rows.append({"term": entry.name, "synonyms": [p for p in entry.phrases if p != entry.name],
                     "region": region.name, "region_id": region.region_id, "top_level": dag.top_level(region.name),
                     "ct_rate_labels": list(entry.ct_rate_labels)})
    return to_table("finding_terms", rows)
