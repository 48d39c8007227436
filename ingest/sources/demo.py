"""The embedded synthetic demo source: N seeded cases, no downloads.

Each `DemoCaseJob` is just (seed, index): it regenerates its case inside `run`, so jobs
pickle cheaply to a process pool or Ray. A job writes the CT and masks through the
array store and returns `cases`, `reports` and `region_stats` rows; its report then goes
through the real text stages (`ingest.report_stage`: structuring, labels, VQA), so the demo
exercises what a new hospital's reports would. ``DemoSource(structure=False)`` fills
`sentences`, `findings`, `case_labels` (and VQA from them) from the generator's ground truth
instead, with ``extractor="demo-truth"``. `DemoSource.truth_tables()` always
returns the truth, for later stages to be checked against.

The generator reads as its modules: `demo_case` (CT-RATE names, metadata, one case),
`demo_report` (report writer and truth) with `demo_vocab` (its sentence and finding
tables), `demo_volume` (grid and anatomy masks) and `demo_paint` (HU, findings drawn).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import ClassVar

import nibabel as nib
import numpy as np

from ingest.job import CaseJob, CaseOutput, JobContext, Rows, Source
from ingest.report_stage import report_rows
from ingest.sources.demo_case import GENERATOR_VERSION, SyntheticCase, case_name, generate_case, generate_cases
from ingest.sources.demo_report import path_of
from ingest.vqa import generate_vqa
from warehouse.core.anatomy import anatomy
from warehouse.core.ids import content_id
from warehouse.core.release_format import NOT_GIVEN

TRUTH_EXTRACTOR = "demo-truth"
SOURCE_NAME = "demo"

__all__ = ["DemoCaseJob", "DemoSource", "SyntheticCase", "generate_case", "generate_cases", "truth_rows",
           "case_row", "report_row", "region_report_rows"]


def _id(prefix: str, *parts: object) -> str:
    """A deterministic id from the row's content: `prefix` + 16 hex digits of `warehouse.core.ids.content_id`."""
    return prefix + content_id(*parts, size=16)


def case_row(case: SyntheticCase) -> dict:
    """The case's `cases` row."""
    spacing = np.linalg.norm(case.affine[:3, :3], axis=0)
    return {
        "case_id": case.case_id, "patient_id": case.name.patient_id, "scan": case.name.scan,
        "scan_id": case.name.scan_id,
        "reconstruction": case.name.reconstruction, "split": case.name.split,
        "age": int(case.metadata["PatientAge"][:3]), "sex": case.metadata["PatientSex"],
        "manufacturer": case.metadata["Manufacturer"],
        **{f"spacing_{a}": float(s) for a, s in zip("xyz", spacing, strict=True)},
        **{f"shape_{a}": int(n) for a, n in zip("xyz", case.hu.shape, strict=True)},
        "orientation": "".join(nib.aff2axcodes(case.affine)), "has_image": True, "has_masks": bool(case.masks),
        "metadata_json": json.dumps(case.metadata, ensure_ascii=False), "source": SOURCE_NAME,
    }


def report_row(case: SyntheticCase) -> dict:
    """The case's `reports` row ('Not given.' stored as null, as for CT-RATE)."""
    r = {k: (None if v == NOT_GIVEN else v) for k, v in case.report.items()}
    return {"case_id": case.case_id, "clinical_information": r["ClinicalInformation_EN"],
            "technique": r["Technique_EN"], "findings": r["Findings_EN"], "impressions": r["Impressions_EN"],
            "source": SOURCE_NAME}


def truth_rows(case: SyntheticCase, extractor: str = TRUTH_EXTRACTOR) -> Rows:
    """The ground truth as `sentences` (one row per sentence x region), `findings` and `case_labels` rows."""
    dag = anatomy()
    sentences, findings = [], []
    sentence_ids: dict[tuple[int, str | None], str] = {}
    for s in case.truth.sentences:
        for region in s.regions or (None,):
            path = path_of(region) if region else ""
            sid = _id("s_", case.case_id, len(sentences), path, s.text)
            sentence_ids[(s.ordinal, region)] = sid
            sentences.append({"sentence_id": sid, "case_id": case.case_id,
                              "region_id": dag.get(region).region_id if region else None, "anatomy_path": path,
                              "ordinal": len(sentences), "text": s.text, "is_abnormal": s.is_abnormal,
                              "extractor": extractor})
        for f in s.findings:
            sid = sentence_ids[(s.ordinal, f.region)]
            findings.append({"finding_id": _id("f_", sid, f.term, f.status, f.region), "sentence_id": sid,
                             "case_id": case.case_id, "region_id": dag.get(f.region).region_id,
                             "anatomy_path": path_of(f.region), "term": f.term, "raw_text": f.raw_text,
                             "status": f.status, "size_mm": f.size_mm, "size_text": f.size_text,
                             "laterality": f.laterality, "extractor": extractor})
    labels = [{"case_id": case.case_id, "kind": "ct_rate", "label": name, "value": value, "ordinal": i,
               "source": extractor} for i, (name, value) in enumerate(case.truth.labels.items())]
    labels += [{"case_id": case.case_id, "kind": "disorder", "label": d, "value": 1, "ordinal": i,
                "source": extractor} for i, d in enumerate(case.truth.disorders)]
    return {"sentences": sentences, "findings": findings, "case_labels": labels}


def region_report_rows(case: SyntheticCase) -> list[dict]:
    """The truth in RadGenome's region_report format: one `Volumename,Anatomy,Sentence` row per top-level region."""
    return [{"Volumename": case.case_id, "Anatomy": top, "Sentence": text}
            for top, text in case.truth.region_paragraphs().items()]


@dataclass
class DemoCaseJob(CaseJob):
    """One synthetic case, regenerated from (seed, index) where it runs."""

    seed: int
    index: int
    structure: bool = True
    case_id: str = ""
    stage: str = "demo"

    def __post_init__(self) -> None:
        if not self.case_id:
            self.case_id = case_name(self.seed, self.index).case_id

    def run(self, ctx: JobContext) -> CaseOutput:
        """Write the CT and masks, return the case's rows."""
        from warehouse.store.arrays import ArrayStore

        case = generate_case(self.seed, self.index)
        store = ArrayStore(ctx.arrays_path, mode="a")
        store.write_image(case.case_id, case.hu, case.affine)
        out = CaseOutput()
        out.add("region_stats", store.write_masks(case.case_id, case.masks, case.affine, mask_source=SOURCE_NAME))
        out.add("cases", case_row(case))
        out.add("reports", report_row(case))
        if self.structure:
            report_rows(out, SOURCE_NAME, case.case_id, case.report["Findings_EN"], case.report["Impressions_EN"])
        else:
            truth = truth_rows(case)
            for table, rows in truth.items():
                out.add(table, rows)
            out.add("vqa", generate_vqa(case.case_id, truth["sentences"], truth["findings"], extractor="demo-truth"))
        return out


@dataclass
class DemoSource(Source):
    """`n` synthetic cases drawn with `seed`; `structure=True` runs report structuring instead of the truth."""

    n: int = 20
    seed: int = 0
    structure: bool = True
    name: ClassVar[str] = SOURCE_NAME
    _truth: dict[str, list[dict]] | None = field(default=None, init=False, repr=False)

    def jobs(self) -> list[DemoCaseJob]:
        return [DemoCaseJob(seed=self.seed, index=i, structure=self.structure) for i in range(self.n)]

    def build_key(self) -> str:
        """Distinct per (n, seed, structure, generator version), so a re-run resumes only the same demo."""
        return f"{self.name}-{_id('', self.n, self.seed, self.structure, GENERATOR_VERSION)}"

    def truth_tables(self) -> Rows:
        """The ground truth of every case as `sentences`, `findings` and `case_labels` rows."""
        if self._truth is None:
            tables: Rows = {"sentences": [], "findings": [], "case_labels": []}
            for i in range(self.n):
                for table, rows in truth_rows(generate_case(self.seed, i, volume=False)).items():
                    tables[table].extend(rows)
            self._truth = tables
        return self._truth
