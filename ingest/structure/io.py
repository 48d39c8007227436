"""Files in and out of structuring: CT-RATE's reports CSV in; RadGenome's region_report CSV and
CT-RATE's multi_abnormality_labels CSV out; a CSV naming the rows that could not be structured."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.sources.release_csv import ErrorSink, report_rows
from ingest.structure.backend import ReportInput
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
        with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
            return [h.strip() for h in next(csv.reader(fh), [])]
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
