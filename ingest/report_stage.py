"""The text stages of one case, in order: structure the report → findings → labels → VQA.

Sources with reports (the demo, folders of new CTs, CT-RATE) call `report_rows`; the
backend (rules by default, an LLM behind the same interface) is chosen by the caller.
"""

from __future__ import annotations

from ingest.job import CaseOutput
from ingest.vqa import generate_vqa


def report_rows(out: CaseOutput, source: str, case_id: str, findings: str | None, impressions: str | None,
                backend=None) -> bool:
    """Add the case's sentences, findings, case_labels (the 18 CT-RATE classes, and the case-level
    disorders: its present findings in report order) and vqa rows to `out`.

    A report that cannot be structured becomes an `ingest_errors` row (stage ``structure``)
    and adds nothing else; returns whether it was structured.
    """
    from ingest.structure import structure_report
    from ingest.structure.labels import disorder_rows

    res = structure_report(case_id, findings, impressions, backend=backend)
    if not res.ok:
        out.error(source, f"report not structured: {res.error}", case_id=case_id, stage="structure")
        return False
    out.add("sentences", res.sentences)
    out.add("findings", res.findings)
    out.add("case_labels", res.labels)
    disorders = disorder_rows(case_id, res.findings, res.extractor)
    out.add("case_labels", disorders)
    out.add("vqa", generate_vqa(case_id, res.sentences, res.findings, [r["label"] for r in disorders],
                                extractor=f"{res.extractor}+vqa-rules"))
    return True
