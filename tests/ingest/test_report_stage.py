"""The text stages of one case: a report becomes sentences, findings, labels and VQA rows, or one error row."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.job import CaseOutput
from ingest.report_stage import report_rows
from ingest.structure import ReportInput, RulesBackend
from warehouse.core.schema import CT_RATE_LABELS

CASE = "valid_1_a_1.nii.gz"
FINDINGS = "A 6 mm nodule is observed in the left lung lower lobe. No pleural effusion."


class Named(RulesBackend):
    name, version = "test", "9"


class Broken(RulesBackend):
    name, version = "broken", "1"

    def parse_batch(self, reports: Sequence[ReportInput]) -> list:
        raise RuntimeError("model server down")


def test_a_report_adds_every_table_of_the_text_stages():
    out = CaseOutput()
    assert report_rows(out, "demo", CASE, FINDINGS, "Lung nodule.") is True
    assert set(out.rows) == {"sentences", "findings", "case_labels", "vqa"} and out.errors == []
    assert {r["case_id"] for rows in out.rows.values() for r in rows} == {CASE}
    assert {r["anatomy_path"] for r in out.rows["sentences"]} >= {"", "lung", "pleura"}
    assert [(f["term"], f["status"]) for f in out.rows["findings"]] == [
        ("pulmonary nodule", "present"), ("pleural effusion", "absent"), ("pulmonary nodule", "present")]
    ct_rate = [r for r in out.rows["case_labels"] if r["kind"] == "ct_rate"]
    disorders = [r for r in out.rows["case_labels"] if r["kind"] == "disorder"]
    assert [r["label"] for r in ct_rate] == list(CT_RATE_LABELS)
    assert {r["label"] for r in ct_rate if r["value"] == 1} == {"Lung nodule"}
    assert [(r["label"], r["value"]) for r in disorders] == [("pulmonary nodule", 1)]  # once, in report order
    assert out.rows["vqa"] and {r["extractor"] for r in out.rows["vqa"]} == {"rules-0.1+vqa-rules"}
    assert {r["extractor"] for r in out.rows["sentences"] + out.rows["findings"]} == {"rules-0.1"}


def test_the_caller_chooses_the_backend():
    out = CaseOutput()
    assert report_rows(out, "folder", CASE, FINDINGS, None, backend=Named()) is True
    assert {r["extractor"] for r in out.rows["findings"]} == {"test-9"}
    assert {r["source"] for r in out.rows["case_labels"]} == {"test-9"}
    assert {r["extractor"] for r in out.rows["vqa"]} == {"test-9+vqa-rules"}


def test_a_report_that_cannot_be_structured_is_one_error_row_and_nothing_else():
    for findings, why in [("Not given.", "empty findings"), (None, "empty findings"),
                          ("asdkj qwe zxcm 12341", "not English, or garbled")]:
        out = CaseOutput()
        assert report_rows(out, "folder", CASE, findings, None) is False
        assert out.rows == {}
        (error,) = out.errors
        assert (error["source"], error["case_id"], error["stage"]) == ("folder", CASE, "structure")
        assert error["error"].startswith("report not structured: ") and why in error["error"]


def test_a_failing_backend_is_an_error_row():
    out = CaseOutput()
    assert report_rows(out, "demo", CASE, FINDINGS, None, backend=Broken()) is False
    assert out.rows == {}
    assert [e["error"] for e in out.errors] == ["report not structured: RuntimeError: model server down"]
    assert out.tables() == {"ingest_errors": out.errors}
