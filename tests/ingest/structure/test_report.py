"""Structured reports as warehouse rows and RadGenome region_report rows."""

from __future__ import annotations

from ingest.structure import structure_report, structure_reports
from warehouse.core import schema
from warehouse.core.anatomy import anatomy

FINDINGS = (
    "Trachea, both main bronchi are open. Calcific atheroma plaques are observed in the aortic arch and coronary "
    "arteries. Pericardial effusion-thickening was not observed. When examined in the lung parenchyma window; "
    "A 4.6 mm nodule is observed in the left lung lower lobe. It was evaluated in favor of granuloma. "
    "Pleural effusion-thickening was not detected. Vertebral corpus heights are preserved.")
IMPRESSIONS = "Nodule in the left lower lobe. Atherosclerosis."


def test_rows_fit_the_schema_and_ids_are_deterministic():
    a = structure_report("valid_1_a_1.nii.gz", FINDINGS, IMPRESSIONS)
    b = structure_report("valid_1_a_1.nii.gz", FINDINGS, IMPRESSIONS)
    assert a.ok and a.extractor == "rules-0.1"
    for table, rows in (("sentences", a.sentences), ("findings", a.findings), ("case_labels", a.labels)):
        assert schema.to_table(table, rows).num_rows == len(rows) > 0
    assert a.sentences == b.sentences and a.findings == b.findings
    ids = [r["sentence_id"] for r in a.sentences]
    assert len(set(ids)) == len(ids)
    other = structure_report("valid_2_a_1.nii.gz", FINDINGS, IMPRESSIONS)
    assert not set(ids) & {r["sentence_id"] for r in other.sentences}
    assert {r["extractor"] for r in a.sentences + a.findings} == {"rules-0.1"}
    assert {r["source"] for r in a.labels} == {"rules-0.1"}


def test_region_report_rows_follow_radgenome_format():
    res = structure_report("v", FINDINGS)
    rows = res.region_report_rows()
    assert rows[0] == ("", " ".join(r["text"] for r in res.sentences[:1]))
    top = [a for a, _ in rows if "/" not in a and a]
    assert top == ["trachea and bronchie", "mediastinum", "heart", "lung", "pleura", "abdomen", "bone"]
    para = res.paragraphs()
    assert para["lung"] == ("When examined in the lung parenchyma window; A 4.6 mm nodule is observed in the left "
                            "lung lower lobe. It was evaluated in favor of granuloma.")
    aorta_sentence = "Calcific atheroma plaques are observed in the aortic arch and coronary arteries."
    assert para["mediastinum"] == para["abdomen"] == aorta_sentence  # the aorta lies under both
    assert para["heart"].startswith(aorta_sentence)
    children = dict(rows)
    assert children["lung/lung/left lung/left lung lower lobe"].startswith("When examined")
    assert children["mediastinum/aorta"] == children["abdomen/abdomen/aorta"] == aorta_sentence
    for path, _ in rows[1:]:  # every child row sits under the paragraph before it
        assert anatomy().resolve(path)


def test_findings_link_to_rows_and_regions():
    res = structure_report("v", FINDINGS, IMPRESSIONS)
    ids = {r["sentence_id"]: r for r in res.sentences}
    by_term = {}
    for f in res.findings:
        assert f["sentence_id"] in ids
        by_term.setdefault(f["term"], []).append(f)
    nodule = by_term["pulmonary nodule"][0]
    assert (nodule["size_mm"], nodule["size_text"], nodule["laterality"], nodule["status"]) == (
        4.6, "4.6 mm", "left", "present")
    assert nodule["anatomy_path"] == "lung/lung/left lung/left lung lower lobe"
    assert nodule["region_id"] == anatomy().get("left lung lower lobe").region_id
    assert ids[nodule["sentence_id"]]["anatomy_path"] == nodule["anatomy_path"]
    assert {f["status"] for f in by_term["pericardial effusion"]} == {"absent"}
    assert anatomy().get(by_term["pericardial effusion"][0]["region_id"]).name == "heart tissue"


def test_labels_and_abnormal_flags():
    res = structure_report("v", FINDINGS, IMPRESSIONS)
    assert [r["ordinal"] for r in res.labels] == list(range(18))
    assert [r["label"] for r in res.labels] == list(schema.CT_RATE_LABELS)
    positive = {r["label"] for r in res.labels if r["value"]}
    assert positive == {"Arterial wall calcification", "Coronary artery wall calcification", "Lung nodule"}
    flags = {r["anatomy_path"]: r["is_abnormal"] for r in res.sentences}
    assert flags[""] is True and flags["lung"] is True and flags["pleura"] is False and flags["bone"] is False
    assert res.is_abnormal is True
    normal = structure_report("n", "Trachea, both main bronchi are open. Heart contour, size are normal.")
    assert normal.is_abnormal is False and not any(r["value"] for r in normal.labels)


def test_batch_api_takes_tuples():
    out = structure_reports([("a", FINDINGS, None), ("b", "Nodules in both lungs.", "")])
    assert [r.case_id for r in out] == ["a", "b"] and all(r.ok for r in out)
