"""Findings on RadGenome's released region-report rows: each row's `is_abnormal` from its own text, each
sentence read once and its findings grounded where RadGenome filed it; what no paragraph holds, by the rules."""

from __future__ import annotations

from ingest.structure.released import ReleasedText, read_released
from warehouse.core.anatomy import anatomy
from warehouse.core.schema import CT_RATE_LABELS

CASE, EXTRACTOR = "valid_1_a_1.nii.gz", "rules-0.1"
NODULE = "A 6 mm nodule is observed in the left lung lower lobe."
EFFUSION = "No pleural effusion."
HEART = "Heart size is normal."
SUBPLEURAL = "Millimetric subpleural nodules are observed in both lungs."
OSTEOPHYTES = "Osteophytes are observed in the thoracic vertebrae."
DISCUSSED = "Findings were discussed with the clinician."


def row(ordinal: int, path: str, text: str) -> dict:
    """A released `sentences` row as the RadGenome reader makes it ('' path: the whole report)."""
    return {"case_id": CASE, "anatomy_path": path, "text": text, "ordinal": ordinal,
            "region_id": anatomy().resolve(path).region_id if path else None, "sentence_id": f"{CASE}:{ordinal}"}


def findings(res: ReleasedText) -> list[tuple]:
    return [(f["sentence_id"], f["anatomy_path"], f["term"], f["status"], f["ct_rate_label"]) for f in res.findings]


def test_each_row_is_flagged_from_its_own_text():
    lobe = anatomy().path("left lung lower lobe")
    rows = [row(0, "", f"{NODULE} {EFFUSION} {HEART}"), row(1, "lung", NODULE), row(2, lobe, NODULE),
            row(3, "pleura", EFFUSION), row(4, "heart", HEART), row(5, "mediastinum", DISCUSSED)]
    res = read_released(CASE, rows, EXTRACTOR)
    assert res.sentences is rows and (res.case_id, res.extractor) == (CASE, EXTRACTOR)
    assert [r["is_abnormal"] for r in rows] == [True, True, True, False, False, None]  # None: says neither


def test_a_finding_lies_in_the_most_specific_row_that_holds_its_sentence():
    lobe = anatomy().path("left lung lower lobe")
    assert lobe == "lung/lung/left lung/left lung lower lobe"
    rows = [row(0, "", f"{NODULE} {EFFUSION}"), row(1, "lung", NODULE), row(2, lobe, NODULE),
            row(3, "pleura", EFFUSION)]
    res = read_released(CASE, rows, EXTRACTOR)
    assert findings(res) == [(f"{CASE}:2", lobe, "pulmonary nodule", "present", "Lung nodule"),
                             (f"{CASE}:3", "pleura", "pleural effusion", "absent", "Pleural effusion")]
    nodule = res.findings[0]
    assert (nodule["size_mm"], nodule["size_text"], nodule["laterality"]) == (6.0, "6 mm", "left")
    assert all(f["case_id"] == CASE and f["extractor"] == EXTRACTOR for f in res.findings)
    assert [m.top_levels for m in res.mentions] == [("lung",), ("pleura",)]


def test_a_sentence_filed_under_two_paragraphs_is_one_mention():
    rows = [row(0, "", SUBPLEURAL), row(1, "lung", SUBPLEURAL), row(2, "pleura", SUBPLEURAL)]
    res = read_released(CASE, rows, EXTRACTOR)
    assert findings(res) == [(f"{CASE}:1", "lung", "pulmonary nodule", "present", "Lung nodule")]
    assert res.findings[0]["laterality"] == "bilateral"
    (m,) = res.mentions
    assert m.top_levels == ("lung", "pleura") and m.sentence == SUBPLEURAL
    assert [r["is_abnormal"] for r in rows] == [True, True, True]


def test_a_fragment_under_a_child_region_is_not_a_second_mention():
    lobe = anatomy().path("left lung lower lobe")
    sentence = "A 6 mm nodule is observed in the left lung lower lobe and the right lung is normal."
    fragment = "A 6 mm nodule is observed in the left lung lower lobe"
    rows = [row(0, "", sentence), row(1, "lung", sentence), row(2, lobe, fragment)]
    res = read_released(CASE, rows, EXTRACTOR)
    assert findings(res) == [(f"{CASE}:2", lobe, "pulmonary nodule", "present", "Lung nodule")]


def test_a_fragment_listed_before_its_paragraph_is_still_one_mention():
    lobe = anatomy().path("left lung lower lobe")
    sentence = "A 6 mm nodule is observed in the left lung lower lobe and the right lung is normal."
    fragment = "A 6 mm nodule is observed in the left lung lower lobe"
    rows = [row(0, "", sentence), row(1, lobe, fragment), row(2, "lung", sentence)]
    res = read_released(CASE, rows, EXTRACTOR)
    assert findings(res) == [(f"{CASE}:1", lobe, "pulmonary nodule", "present", "Lung nodule")]


def test_sentences_no_paragraph_holds_are_grounded_by_the_rules():
    rows = [row(0, "", f"{HEART} {OSTEOPHYTES} {DISCUSSED}"), row(1, "heart", HEART)]
    res = read_released(CASE, rows, EXTRACTOR)
    # the finding of a sentence only the whole report holds is filed under that report's row
    assert findings(res) == [(f"{CASE}:0", "bone/bone/vertebrae/thoracic vertebrae", "osteophyte", "present", None)]
    assert res.mentions[0].top_levels == ("bone",)


def test_a_case_with_no_paragraphs_is_read_whole():
    res = read_released(CASE, [row(0, "", f"{NODULE} {EFFUSION}")], EXTRACTOR)
    assert [(f["sentence_id"], f["term"], f["status"]) for f in res.findings] == [
        (f"{CASE}:0", "pulmonary nodule", "present"), (f"{CASE}:0", "pleural effusion", "absent")]


def test_labels_and_disorders_from_the_present_findings():
    lobe = anatomy().path("left lung lower lobe")
    rows = [row(0, "", f"{NODULE} {EFFUSION} {OSTEOPHYTES}"), row(1, lobe, NODULE), row(2, "pleura", EFFUSION)]
    res = read_released(CASE, rows, EXTRACTOR)
    labels = res.ct_rate_label_rows()
    assert [r["label"] for r in labels] == list(CT_RATE_LABELS)
    assert {r["label"] for r in labels if r["value"] == 1} == {"Lung nodule"}  # the effusion is absent
    assert all((r["case_id"], r["kind"], r["source"]) == (CASE, "ct_rate", EXTRACTOR) for r in labels)
    assert [(r["label"], r["value"], r["ordinal"], r["kind"]) for r in res.disorder_rows()] == [
        ("pulmonary nodule", 1, 0, "disorder"), ("osteophyte", 1, 1, "disorder")]


def test_no_rows_no_findings():
    res = read_released(CASE, [], EXTRACTOR)
    assert (res.sentences, res.findings, res.mentions, res.disorder_rows()) == ([], [], [], [])
    assert {r["value"] for r in res.ct_rate_label_rows()} == {0}
