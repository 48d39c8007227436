"""Bad report input: a clear per-report error or an empty result, never a crash of the batch."""

from __future__ import annotations

import math
import time

import pytest

from ingest.structure import ReportInput, RulesBackend, get_backend, structure_report, structure_reports
from warehouse.core.errors import WarehouseError


@pytest.mark.parametrize("findings", [None, "", "   ", "Not given.", "not given", math.nan])
def test_empty_findings_are_named(findings):
    res = structure_report("v", findings)
    assert not res.ok and "empty findings" in res.error
    assert res.sentences == [] and res.findings == [] and res.labels == []


@pytest.mark.parametrize("text", ["asdkj qwe zxcm 12341 !!! ### %%% lorem ipsum dolor sit amet",
                                  "Сердце и средостение без особенностей.", "\x00\x01\x02 \ufffd\ufffd"])
def test_unreadable_text_is_an_error_not_rows(text):
    res = structure_report("v", text)
    assert not res.ok and "not English, or garbled" in res.error and res.sentences == []


def test_impressions_without_findings_still_give_labels_but_are_flagged():
    res = structure_report("v", "Not given.", "Bilateral pleural effusion.")
    assert "empty findings" in res.error
    assert res.label_values()["Pleural effusion"] == 1 and res.paragraphs() == {}


def test_a_50kb_report_is_structured_quickly():
    text = ("Calcific atheroma plaques are observed in the aorta. A 4.6 mm nodule in the left lung lower lobe. "
            "Pleural effusion-thickening was not detected. ") * 350
    assert len(text) > 50_000
    t = time.perf_counter()
    res = structure_report("v", text)
    assert res.ok and time.perf_counter() - t < 10
    assert res.label_values()["Lung nodule"] == 1


def test_one_failing_report_does_not_stop_the_batch(monkeypatch):
    real = RulesBackend.parse

    def parse(findings, impressions=None):
        if "boom" in findings:
            raise RuntimeError("parser exploded")
        return real(findings, impressions)

    monkeypatch.setattr(RulesBackend, "parse", staticmethod(parse))
    out = structure_reports([ReportInput("a", "Nodules in both lungs."), ReportInput("b", "boom nodule"),
                             ReportInput("c", "Not given.")])
    assert [r.ok for r in out] == [True, False, False]
    assert out[1].error == "RuntimeError: parser exploded" and "empty findings" in out[2].error


def test_backends_by_name(monkeypatch):
    from ingest.structure import backend

    assert get_backend("rules").extractor == "rules-0.1"
    with pytest.raises(WarehouseError, match="unknown structuring backend"):
        get_backend("nope")
    monkeypatch.setitem(backend.BACKENDS, "missing", "ingest.structure.no_such_module:Backend")
    with pytest.raises(WarehouseError, match="not available") as e:
        get_backend("missing", model="x")
    assert "--backend rules" in e.value.hint
