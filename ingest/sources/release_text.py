"""The text stages of an imported release: findings on RadGenome's grounded rows, structure for the rest.

`ReleaseText` watches the bulk rows of a release build go by, keeps each case's released
`sentences` rows back, and, once every file is read, gives them out again read:

- a case with a released region report: each row's `is_abnormal`, and its findings
  (`ingest.structure.released`: RadGenome's regions kept);
- a case with a CT-RATE report but no region report: the whole structuring of a new report
  (sentences grounded in the DAG, findings, and VQA pairs where the release has none);
- either: the 18 CT-RATE labels where CT-RATE gives the case none, and case disorders where
  RadGenome gives none, both derived from the findings (`source` names the extractor, so released
  and derived rows stay apart). Released VQA terms get their vocabulary term at read time
  (`radgenome_csv`).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from ingest.structure import RulesBackend, structure_reports
from ingest.structure.backend import ReportInput
from ingest.structure.labels import disorder_rows
from ingest.structure.released import read_released
from ingest.vqa import generate_vqa

CHUNK_CASES = 1_000  # cases per saved part (and per task of the process pool)


@dataclass
class ReleaseText:
    """Collects what the text stages need while a release's bulk rows are read.

    `enabled=False` lets the released rows through as they are (no findings, no derived rows);
    `workers` > 1 reads the parts in a process pool, in order.
    """

    enabled: bool = True
    workers: int = 1
    sentences: dict[str, list[dict]] = field(default_factory=dict)
    reports: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    labelled: set[str] = field(default_factory=set)  # cases with CT-RATE labels
    vqa_cases: set[str] = field(default_factory=set)
    disorder_cases: set[str] = field(default_factory=set)  # cases in a released case_disorders file

    def take(self, chunk: dict[str, list[dict]]) -> dict[str, list[dict]]:
        """Note a bulk chunk; its `sentences` rows are kept back (returned chunk without them)."""
        if not self.enabled:
            return chunk
        for row in chunk.pop("sentences", []):
            self.sentences.setdefault(row["case_id"], []).append(row)
        for row in chunk.get("reports", []):
            self.reports[row["case_id"]] = (row.get("findings"), row.get("impressions"))
        for row in chunk.get("vqa", []):
            self.vqa_cases.add(row["case_id"])
            if row["type"] == "disorders":
                self.disorder_cases.add(row["case_id"])
        self.labelled.update(r["case_id"] for r in chunk.get("case_labels", []) if r["kind"] == "ct_rate")
        return chunk

    def parts(self) -> Iterator[tuple[str, dict[str, list[dict]]]]:
        """(part id, rows) of the read text, a thousand cases a part, in case order."""
        cases = sorted(set(self.sentences) | set(self.reports))
        tasks = [self._task(cases[k:k + CHUNK_CASES]) for k in range(0, len(cases), CHUNK_CASES)]
        if self.workers <= 1 or len(tasks) <= 1:
            results: Iterator[dict[str, list[dict]]] = map(TextTask.run, tasks)
            yield from ((f"text:{k}", out) for k, out in enumerate(results))
            return
        # forkserver: workers never inherit the parent's threads half-locked (as the runner's pool)
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("forkserver")) as pool:
            yield from ((f"text:{k}", out) for k, out in enumerate(pool.map(TextTask.run, tasks)))

    def _task(self, batch: list[str]) -> TextTask:
        return TextTask(released={c: self.sentences[c] for c in batch if c in self.sentences},
                        reports={c: self.reports[c] for c in batch if c not in self.sentences},
                        labelled=self.labelled.intersection(batch), vqa_cases=self.vqa_cases.intersection(batch),
                        disorder_cases=self.disorder_cases.intersection(batch))


@dataclass
class TextTask:
    """The text stages of a batch of cases: everything a worker process needs, and nothing else."""

    released: dict[str, list[dict]]
    reports: dict[str, tuple[str | None, str | None]]
    labelled: set[str]
    vqa_cases: set[str]
    disorder_cases: set[str]

    def run(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        backend = RulesBackend()
        for case_id, rows in self.released.items():
            res = read_released(case_id, rows, backend.extractor)
            out.setdefault("sentences", []).extend(res.sentences)
            out.setdefault("findings", []).extend(res.findings)
            self._labels(out, case_id, res.ct_rate_label_rows(), res.disorder_rows())
        cases = list(self.reports)
        for case_id, res in zip(cases, structure_reports([ReportInput(c, *self.reports[c]) for c in cases], backend),
                                strict=True):
            if not res.ok:
                out.setdefault("ingest_errors", []).append({
                    "source": "radgenome", "case_id": case_id, "stage": "structure",
                    "error": f"report not structured: {res.error}; its other rows are kept"})
                continue
            out.setdefault("sentences", []).extend(res.sentences)
            out.setdefault("findings", []).extend(res.findings)
            disorders = disorder_rows(case_id, res.findings, res.extractor)
            self._labels(out, case_id, res.labels, disorders)
            if case_id not in self.vqa_cases:
                out.setdefault("vqa", []).extend(generate_vqa(case_id, res.sentences, res.findings,
                                                              [r["label"] for r in disorders],
                                                              extractor=f"{res.extractor}+vqa-rules"))
        return out

    def _labels(self, out: dict[str, list[dict]], case_id: str, ct_rate: list[dict], disorders: list[dict]) -> None:
        """Derived labels only where the release has none of that kind for the case."""
        if case_id not in self.labelled:
            out.setdefault("case_labels", []).extend(ct_rate)
        if case_id not in self.disorder_cases:
            out.setdefault("case_labels", []).extend(disorders)
