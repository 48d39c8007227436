"""Structuring backends: chosen by name, input cleaned and checked, reports run in batches, a bad report
an `error` and never an exception; the rules backend on a small batch."""

from __future__ import annotations

import math

import pytest

from ingest.structure import backend
from ingest.structure.backend import (
    BACKENDS,
    MAX_REPORT_CHARS,
    ReportInput,
    RulesBackend,
    StructuringBackend,
    clean_text,
    get_backend,
)
from ingest.structure.report import FINDINGS, IMPRESSIONS
from warehouse.core.errors import WarehouseError


class Counting(RulesBackend):
    """The rules, noting the case ids of each batch."""

    def __init__(self, batch_size: int = 512) -> None:
        self.batch_size, self.batches = batch_size, []

    def parse_batch(self, reports):
        self.batches.append([r.case_id for r in reports])
        return super().parse_batch(reports)


@pytest.mark.parametrize("value, text", [
    (None, None), ("", None), ("   ", None), ("Not given.", None), (" not given ", None), ("N/A", None),
    ("nan", None), ("-", None), (math.nan, None), (" Nodule. ", "Nodule."), (3, "3"),
])
def test_clean_text(value, text):
    assert clean_text(value) == text


def test_get_backend_by_name():
    rules = get_backend()
    assert type(rules) is RulesBackend and rules.extractor == "rules-0.1"
    assert type(get_backend("rules")) is RulesBackend
    assert set(BACKENDS) == {"rules", "vllm", "openai"}


def test_an_unknown_backend_names_the_choices():
    with pytest.raises(WarehouseError, match="unknown structuring backend 'nope'") as e:
        get_backend("nope")
    assert e.value.hint == "choose one of rules, vllm, openai" and e.value.stage == "structure"


def test_a_backend_by_import_path_is_loaded_when_asked_for(monkeypatch):
    monkeypatch.setitem(backend.BACKENDS, "counting", f"{__name__}:Counting")
    made = get_backend("counting", batch_size=3)
    assert isinstance(made, Counting) and made.batch_size == 3
    llm = get_backend("openai", base_url="http://localhost:8000", model="m")  # made, not connected
    assert type(llm).__name__ == "OpenAIBackend" and llm.extractor.startswith("openai:m@")


@pytest.mark.parametrize("path", ["ingest.structure.no_such_module:Backend", "ingest.structure.backend:NoSuchClass"])
def test_a_backend_that_cannot_be_imported_says_what_to_do(monkeypatch, path):
    monkeypatch.setitem(backend.BACKENDS, "missing", path)
    with pytest.raises(WarehouseError, match="structuring backend 'missing' is not available") as e:
        get_backend("missing")
    assert e.value.hint == "install its extra, or use --backend rules"


def test_an_option_the_backend_does_not_take_is_a_type_error():
    # the contract warehouse.cli.structure relies on to make it a usage error
    with pytest.raises(TypeError):
        get_backend("rules", model="x")


def test_rules_parse_both_sections():
    parsed = RulesBackend.parse("Nodules in both lungs. Heart size is normal.", "Lung nodule.")
    assert [(p.text, p.section, p.grounding.top_levels, p.is_abnormal) for p in parsed] == [
        ("Nodules in both lungs.", FINDINGS, ("lung",), True),
        ("Heart size is normal.", FINDINGS, ("heart",), False),
        ("Lung nodule.", IMPRESSIONS, ("lung",), True)]
    assert [[(m.term, m.status) for m in p.mentions] for p in parsed] == [
        [("pulmonary nodule", "present")], [], [("pulmonary nodule", "present")]]
    assert RulesBackend.parse(None) == []


def test_rules_on_a_small_batch():
    rules = Counting(batch_size=2)
    out = rules.structure([
        ("a", "Nodules in both lungs."),
        ReportInput("b", "Not given.", "Bilateral pleural effusion."),  # impressions only: run, but flagged
        ("c", "Not given."),  # nothing to run
        ("d", "x" * (MAX_REPORT_CHARS + 1)),
        (5, "No pleural effusion.", math.nan),  # a case id that is not text, a NaN impression
    ])
    assert rules.batches == [["a", "b"], ["5"]]
    assert [r.case_id for r in out] == ["a", "b", "c", "d", "5"]
    assert [r.ok for r in out] == [True, False, False, False, True]
    assert out[1].error == out[2].error == "empty findings (no text, or 'Not given.')"
    assert out[3].error == f"report too long (1,000,001 characters, limit {MAX_REPORT_CHARS:,})"
    assert {r.extractor for r in out} == {"rules-0.1"}
    assert [(f["term"], f["status"]) for f in out[0].findings] == [("pulmonary nodule", "present")]
    assert [(f["term"], f["status"]) for f in out[1].findings] == [("pleural effusion", "present")]
    assert out[1].label_values()["Pleural effusion"] == 1
    assert out[2].sentences == out[3].sentences == [] and out[3].findings == []
    assert [(f["term"], f["status"]) for f in out[4].findings] == [("pleural effusion", "absent")]


def test_a_report_that_names_nothing_is_an_error_not_rows():
    (res,) = RulesBackend().structure([("v", "asdkj qwe zxcm 12341")])
    assert res.error == "no anatomy or finding recognised (text not English, or garbled)"
    assert res.sentences == [] and res.findings == []


class Flaky(StructuringBackend):
    """A backend whose batch fails as a whole, or fails one report."""

    name, version = "flaky", "2"

    def __init__(self, whole: bool) -> None:
        self.whole = whole

    def parse_batch(self, reports):
        if self.whole:
            raise ConnectionError("server gone")
        return [WarehouseError("answer does not fit", stage="structure") if r.case_id == "b"
                else RulesBackend.parse(r.findings, r.impressions) for r in reports]


def test_a_failing_batch_or_report_becomes_errors():
    reports = [("a", "Nodules in both lungs."), ("b", "Nodules in both lungs.")]
    out = Flaky(whole=True).structure(reports)
    assert [r.error for r in out] == ["ConnectionError: server gone"] * 2
    assert {r.extractor for r in out} == {"flaky-2"}
    out = Flaky(whole=False).structure(reports)
    assert out[0].ok and out[0].findings[0]["extractor"] == "flaky-2"
    assert out[1].error == str(WarehouseError("answer does not fit", stage="structure"))  # as the backend said it
