"""VQA generation by RadGenome's rules."""

from __future__ import annotations

import json

from ingest.vqa import generate_vqa, templates
from warehouse.core.anatomy import anatomy

A = anatomy()
RLL = A.get("right lung lower lobe").region_id


def _case():
    sentences = [{"region_id": RLL}, {"region_id": A.get("trachea").region_id}, {"region_id": None}]
    findings = [
        {"region_id": RLL, "term": "consolidation", "status": "present"},
        {"region_id": A.get("pleura").region_id, "term": "pleural effusion", "status": "present",
         "size_mm": 50.0, "size_text": "50 mm"},
        {"region_id": A.get("trachea").region_id, "term": "obstructive pathology", "status": "absent"},
        {"region_id": RLL, "term": "mass", "status": "uncertain"},
    ]
    return sentences, findings


def test_all_five_types_with_released_answer_forms():
    rows = generate_vqa("c1", *_case())
    by = {}
    for r in rows:
        by.setdefault(r["type"], []).append(r)
    assert set(by) == {"abnormality", "presence", "location", "size", "disorders"}
    abn = {r["anatomy_path"]: r["answer"] for r in by["abnormality"]}
    assert abn["trachea and bronchie/trachea"] == "no findings"
    # each released path of the lobe and every prefix of it
    for p in ("lung", "lung/lung", "lung/lung/right lung", "lung/lung/right lung/right lung lower lobe",
              "lung/lung/lung lower lobe", "lung/lung/lung lower lobe/right lung lower lobe"):
        assert abn[p] == "consolidation", p
    assert {r["answer"] for r in by["presence"]} == {"Yes.", "No."}
    assert all(r["answer"] == r["anatomy_path"] for r in by["location"])
    assert by["size"][0]["answer"] == "50 mm" and by["size"][0]["size_mm"] == 50.0
    assert by["disorders"][0]["answer"] == "consolidation, pleural effusion"


def test_a_size_repeated_in_the_impressions_is_asked_once():
    sentences, findings = _case()
    findings.append(dict(findings[1]))  # the same effusion and size, mentioned again
    sizes = [r for r in generate_vqa("c1", sentences, findings) if r["type"] == "size"]
    assert len(sizes) == 1


def test_negated_findings_answer_no_and_draws_avoid_the_cases_terms():
    rows = generate_vqa("c1", *_case())
    no = {r["anatomy_path"]: r["term"] for r in rows if r["type"] == "presence" and r["answer"] == "No."}
    assert no["trachea and bronchie/trachea"] == "obstructive pathology"
    assert all(t not in ("consolidation", "pleural effusion") for t in no.values())


def test_questions_come_from_the_released_templates():
    rows = generate_vqa("c1", *_case())
    t = templates()
    for r in rows:
        fields = {"region": A.resolve(r["anatomy_path"]).name if r["anatomy_path"] else "",
                  "abnormality": r["term"] or ""}
        assert r["question"] in {x.format(**fields) for x in t[r["type"]]}, r


def test_deterministic_and_unique_ids():
    a, b = generate_vqa("c1", *_case()), generate_vqa("c1", *_case())
    assert json.dumps(a) == json.dumps(b)
    assert len({r["vqa_id"] for r in a}) == len(a)
    assert generate_vqa("c2", *_case())[0]["vqa_id"] != a[0]["vqa_id"]


def test_normal_case_has_no_findings_everywhere():
    rows = generate_vqa("n1", [{"region_id": A.get("heart").region_id}], [])
    assert {r["answer"] for r in rows if r["type"] == "abnormality"} == {"no findings"}
    assert not [r for r in rows if r["type"] in ("location", "size")]
