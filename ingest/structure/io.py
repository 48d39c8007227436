"""Files in and out of structuring: CT-RATE's reports CSV in; RadGenome's region_report CSV and
CT-RATE's multi_abnormality_labels CSV out; a CSV naming the rows that could not be structured.

`structure_csv` does the whole of it (what `radgenome structure` and `radgenome label` run):

    from ingest.structure.io import structure_csv
    summary = structure_csv("reports.csv", "regions.csv", workers=4)
    print(summary)  # counts, rows written, the errors file and the first errors
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ingest.sources.release_csv import ErrorSink, csv_header, report_rows
from ingest.structure.backend import ReportInput, RulesBackend, StructuringBackend
from ingest.structure.report import StructuredReport
from warehouse.core.errors import WarehouseError
from warehouse.core.schema import CT_RATE_LABELS

# Accepted spellings of the columns (CT-RATE writes VolumeName, RadGenome Volumename).
ID_COLUMNS = ("VolumeName", "Volumename", "volume_name", "case_id", "AccessionNo")
FINDINGS_COLUMNS = ("Findings_EN", "findings", "Findings", "report_text")
IMPRESSIONS_COLUMNS = ("Impressions_EN", "impressions", "Impressions")


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


@dataclass
class ReportsFile:
    """The reports read from a CSV, the line each came from, (line, id, error) for unreadable rows
    and (line, id, note) for rows read with a change (control characters removed)."""

    reports: list[ReportInput] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    bad: list[tuple[int, str, str]] = field(default_factory=list)
    notes: list[tuple[int, str, str]] = field(default_factory=list)


def _header(path: Path) -> list[str]:
    """The column names of a CSV's first line ([] where it cannot be read; `report_rows` then says why)."""
    try:
        return csv_header(path)
    except (OSError, csv.Error):
        return []


def _has_id(name: str) -> str | None:
    return None if name else "the row has no case id"


def read_reports(path: Path | str) -> ReportsFile:
    """The reports of a CT-RATE-style CSV, and the rows that cannot be read.

    `VolumeName` and `Findings_EN` are required (or a spelling of them in `ID_COLUMNS`,
    `FINDINGS_COLUMNS`); `Impressions_EN` and other columns are optional. Read by
    `ingest.sources.release_csv.report_rows`: a bad row (bytes that are not UTF-8, an unclosed
    quote, a wrong number of fields, no id, a duplicate id) is a `bad` row naming its line;
    a file that cannot be read at all (no such file, not UTF-8, a missing column) raises
    `WarehouseError`; a row kept with its control characters removed has a `notes` entry.
    ``Not given.`` reads as null.
    """
    path = Path(path)
    cols = _header(path)
    id_col = _pick(cols, ID_COLUMNS) or "VolumeName"
    find_col = _pick(cols, FINDINGS_COLUMNS) or "Findings_EN"
    imp_col = _pick(cols, IMPRESSIONS_COLUMNS) or "Impressions_EN"
    errors, out = ErrorSink("structure"), ReportsFile()
    columns = ((id_col, "case_id"), (find_col, "findings"), (imp_col, "impressions"))
    for line, case_id, fields in report_rows(path, errors, columns=columns, required=[id_col, find_col],
                                             check_key=_has_id, note_blank=False, stage="structure"):
        out.reports.append(ReportInput(case_id, fields["findings"], fields["impressions"]))
        out.lines.append(line)
    kept = set(out.lines)
    for e in errors.rows:
        where = e["location"] or ""
        if not where.startswith("line "):
            raise WarehouseError(f"{path.name}: {e['error']}", file=str(path), stage="structure",
                                 hint="give a CSV in CT-RATE's reports format: VolumeName,Findings_EN[,Impressions_EN]")
        line = int(where.removeprefix("line "))
        (out.notes if line in kept else out.bad).append((line, e["case_id"] or "", e["error"]))
    return out


def write_region_report(results: Iterable[StructuredReport], path: Path | str) -> int:
    """RadGenome's region_report CSV (Volumename,Anatomy,Sentence); returns the rows written."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["Volumename", "Anatomy", "Sentence"])
        for res in results:
            if res.ok:
                for anatomy_path, text in res.region_report_rows():
                    w.writerow([res.case_id, anatomy_path, text])
                    n += 1
    return n


def write_labels(results: Iterable[StructuredReport], path: Path | str) -> int:
    """CT-RATE's multi_abnormality_labels CSV (VolumeName + 18 classes, 0/1); returns the rows written."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["VolumeName", *CT_RATE_LABELS])
        for res in results:
            if res.ok:
                values = res.label_values()
                w.writerow([res.case_id, *(values[c] for c in CT_RATE_LABELS)])
                n += 1
    return n


def write_errors(errors: list[tuple[int, str, str]], path: Path | str) -> None:
    """The rows that could not be structured: row (line of the input CSV), VolumeName, error."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "VolumeName", "error"])
        w.writerows(errors)


# -- structuring a whole CSV ------------------------------------------------------------------------
CHUNK = 512  # reports per task: large enough to amortise a process hop, small enough for a smooth bar
FIRST_ERRORS = 10  # errors a summary names (the errors file lists them all)
Writer = Callable[[Iterable[StructuredReport], Path], int]
KINDS: dict[str, Writer] = {"region_report": write_region_report, "labels": write_labels}
ProgressOption = bool | Callable[[int, int], None]


@dataclass
class StructureSummary:
    """What `structure_csv` did: how many reports it read and structured, the rows it wrote, and the
    rows that could not be structured (all in `errors_file`, the first `FIRST_ERRORS` here)."""

    input_csv: Path
    out: Path
    kind: str
    extractor: str
    reports: int  # data rows of the input, readable or not
    structured: int
    rows: int  # rows written to `out`
    error_count: int = 0
    errors_file: Path | None = None  # None when every row was structured
    first_errors: list[tuple[int, str, str]] = field(default_factory=list)  # (line, case id, message)

    @property
    def ok(self) -> bool:
        """Whether any report was structured (the CLI exits 1 otherwise)."""
        return self.structured > 0

    @property
    def headline(self) -> str:
        return (f"{self.structured} of {self.reports} reports structured by {self.extractor}; "
                f"{self.rows} rows written to {self.out}")

    def error_lines(self) -> list[str]:
        """A heading and one line per error shown; [] when every row was structured."""
        if not self.error_count:
            return []
        return [f"{self.error_count} row(s) could not be structured (all listed in {self.errors_file}):",
                *(f"  line {line} {case_id or '(no id)'}: {message}" for line, case_id, message in self.first_errors)]

    def __str__(self) -> str:
        return "\n".join([self.headline, *self.error_lines()])


def structure_csv(input_csv: Path | str, out: Path | str, backend: StructuringBackend | None = None, *,
                  kind: str = "region_report", workers: int = 1, progress: ProgressOption = False
                  ) -> StructureSummary:
    """Structure every report of a CT-RATE reports CSV (`read_reports`) and write `kind`:
    ``region_report`` (RadGenome's region_report CSV) or ``labels`` (CT-RATE's 18 labels).

    `backend`: the rules backend when None. `workers`: processes for the rules backend (an LLM
    backend batches on its own and runs in this process). `progress`: True shows a progress bar
    (for more than one chunk of reports), a callable gets (reports done, reports) after each chunk.
    The rows that could not be structured (unreadable or failing) are written to
    ``OUT.errors.csv`` (`write_errors`); a file that cannot be read at all raises `WarehouseError`.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    input_csv, out = Path(input_csv), Path(out)
    backend = backend or RulesBackend()
    src = read_reports(input_csv)
    results = _structure(src.reports, backend, workers, progress)
    rows = KINDS[kind](results, out)
    failed = [(line, r.case_id, r.error) for line, r in zip(src.lines, results, strict=True) if r.error]
    errors = sorted(src.bad + failed)
    errors_file = out.with_name(out.name + ".errors.csv") if errors else None
    if errors_file is not None:
        write_errors(errors, errors_file)
    return StructureSummary(input_csv=input_csv, out=out, kind=kind, extractor=backend.extractor,
                            reports=len(src.reports) + len(src.bad), structured=sum(r.ok for r in results),
                            rows=rows, error_count=len(errors), errors_file=errors_file,
                            first_errors=errors[:FIRST_ERRORS])


def _structure(reports: list[ReportInput], backend: StructuringBackend, workers: int, progress: ProgressOption
               ) -> list[StructuredReport]:
    """`backend.structure` over chunks of `reports`, in `workers` processes, in order."""
    if workers > 1 and not backend.extractor.startswith("rules"):
        workers = 1  # an LLM backend batches itself; one engine per process would only compete for memory
    chunks = [reports[k:k + CHUNK] for k in range(0, len(reports), CHUNK)]
    results: list[StructuredReport] = []
    with _progress(progress, len(reports), show=len(chunks) > 1) as advance:
        pool = ProcessPoolExecutor(workers) if workers > 1 and len(chunks) > 1 else None
        try:
            for part in (pool.map(backend.structure, chunks) if pool else map(backend.structure, chunks)):
                results.extend(part)
                advance(len(part))
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)
    return results


@contextmanager
def _progress(progress: ProgressOption, total: int, show: bool) -> Iterator[Callable[[int], None]]:
    """A function to call with the reports each chunk did: it moves a rich bar, or calls `progress`."""
    if callable(progress):
        done = 0

        def tell(n: int) -> None:
            nonlocal done
            done += n
            progress(done, total)

        yield tell
        return
    from rich.progress import Progress as Bar

    with Bar(transient=True, disable=not (progress and show)) as bar:
        task = bar.add_task("structuring", total=total)
        yield lambda n: bar.advance(task, n)
