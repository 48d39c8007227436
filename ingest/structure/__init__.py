"""Structure free-text chest-CT reports: sentences grounded in the anatomy DAG, findings, CT-RATE labels.

    from ingest.structure import structure_report, structure_reports
    res = structure_report("valid_1_a_1.nii.gz", findings_text, impressions_text)
    res.sentences, res.findings, res.labels, res.region_report_rows()

The pipeline reads as its modules: `sentences` (split) -> `grounding` (with `lexicon`)
-> `findings` (with `status`, `sizes`) -> `labels`, assembled into rows by `report`;
`backend` holds the batch interface (rules by default, LLM backends behind it), `io` reads
and writes the released CSV formats (`io.structure_csv`: a reports CSV in, region reports or
labels out) and `eval` scores grounding and labels against released truth.
"""

from __future__ import annotations

from collections.abc import Iterable

from ingest.structure.backend import ReportInput, RulesBackend, StructuringBackend, get_backend
from ingest.structure.report import StructuredReport

__all__ = ["ReportInput", "RulesBackend", "StructuredReport", "StructuringBackend", "get_backend",
           "structure_report", "structure_reports"]


def structure_reports(reports: Iterable[ReportInput | tuple], backend: StructuringBackend | None = None
                      ) -> list[StructuredReport]:
    """Structure (case_id, findings, impressions) tuples; a bad report gets `error`, never raises."""
    return (backend or RulesBackend()).structure(reports)


def structure_report(case_id: str, findings_text: str | None, impressions_text: str | None = None,
                     backend: StructuringBackend | None = None) -> StructuredReport:
    """Structure one report with the rules backend (or `backend`)."""
    return structure_reports([ReportInput(case_id, findings_text, impressions_text)], backend)[0]
