"""The scoring of `radgenome eval`: token multisets, the rebuilt findings text, stable shares; and the
dev figures on the real data in ../shared/data (issue #4's targets), on both halves of the volumes."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from ingest.structure.eval import Counts, compare, eval_grounding, eval_labels, findings_from_paragraphs, in_part


def test_compare_counts_token_multisets():
    c = compare("Nodules in both lungs. Nodules.", "nodules in both lungs")
    assert (c.tp, c.fp, c.fn) == (4, 1, 0)
    assert Counts(4, 1, 0).f1 == pytest.approx(8 / 9)
    assert compare("", "Trachea is open.").fn == 3 and compare("", "").f1 == 1.0


def test_findings_text_keeps_region_order_and_drops_repeats():
    text = findings_from_paragraphs({"lung": "Nodules in both lungs. Aorta is normal.",
                                     "mediastinum": "Aorta is normal.", "abdomen": "Aorta is normal. Liver is normal."})
    assert text == "Aorta is normal. Nodules in both lungs. Liver is normal."


def test_parts_are_stable_and_disjoint():
    keys = [f"valid_{k}_a_1.nii.gz" for k in range(200)]
    halves = [{k for k in keys if in_part(k, p)} for p in ("1/2", "2/2")]
    assert halves[0].isdisjoint(halves[1]) and halves[0] | halves[1] == set(keys)
    assert 60 < len(halves[0]) < 140


@pytest.fixture(scope="module")
def regions(shared_data):
    return shared_data / "radgenome_validation_regions"


@pytest.mark.parametrize("part", ["1/2", "2/2"])
def test_dev_grounding_micro_f1(regions, part):
    scores = eval_grounding(regions, part=part)
    assert scores.cases > 400 and not scores.errors
    assert scores.micro_f1 >= 0.95, {k: round(c.f1, 3) for k, c in scores.per_key.items()}


@pytest.mark.parametrize("part", ["1/2", "2/2"])
def test_dev_labels_macro_f1(shared_data, part):
    scores = eval_labels(shared_data / "ct_rate" / "labeled_reports_dev.csv", part=part)
    assert scores.cases > 350 and not scores.errors
    assert scores.macro_f1 >= 0.94, {k: round(c.f1, 3) for k, c in scores.per_key.items()}


def test_vocabulary_covers_radgenome_answer_phrases(shared_data):
    """At least 90 % of the released abnormality phrases (weighted by use) name a term of the vocabulary."""
    from ingest.structure.findings import find_mentions

    counts: Counter[str] = Counter()
    data = json.loads((shared_data / "radgenome" / "train_abnormalities_sentences.json").read_text())
    for key, n in data.items():
        if isinstance(n, int) and key.startswith("<Abnormality>"):
            for phrase in key.removeprefix("<Abnormality>").strip().rstrip(".").split(", "):
                counts[phrase.strip().lower()] += n
    counts.pop("no findings", None)
    covered = sum(n for p, n in counts.items() if find_mentions(p))
    assert covered / sum(counts.values()) >= 0.9
