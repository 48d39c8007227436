"""Files in and out of structuring: CT-RATE's reports CSV in; RadGenome's region_report CSV and
CT-RATE's multi_abnormality_labels CSV out; a CSV naming the rows that could not be structured."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.structure.backend import ReportInput
from ingest.structure.report import StructuredReport
from warehouse.errors import WarehouseError
from warehouse.schema import CT_RATE_LABELS

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

# Accepted spellings of the columns (CT-RATE writes VolumeName, RadGenome Volumename).
ID_COLUMNS = ("VolumeName", "Volumename", "volume_name", "case_id", "AccessionNo")
FINDINGS_COLUMNS = ("Findings_EN", "findings", "Findings", "report_text")
IMPRESSIONS_COLUMNS = ("Impressions_EN", "impressions", "Impressions")


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[n.lower()] for n in names if n.lower() in lower), None)


@dataclass
class ReportsFile:
    """The reports read from a CSV, the line each came from, and (line, id, error) for unreadable rows."""

    reports: list[ReportInput] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    bad: list[tuple[int, str, str]] = field(default_factory=list)


def read_reports(path: Path | str) -> ReportsFile:
    """The reports of a CT-RATE-style CSV, and the rows that cannot be read.

    `VolumeName` and `Findings_EN` are required; `Impressions_EN` and other columns are optional.
    """
    path = Path(path)
    try:
        fh = open(path, newline="", encoding="utf-8-sig", errors="replace")
    except OSError as e:
        raise WarehouseError(f"cannot read {path}: {e.strerror}", file=str(path), stage="structure") from None
    with fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        id_col, find_col = _pick(cols, ID_COLUMNS), _pick(cols, FINDINGS_COLUMNS)
        if id_col is None or find_col is None:
            need = [n for n, c in (("VolumeName", id_col), ("Findings_EN", find_col)) if c is None]
            raise WarehouseError(f"{path.name} lacks column(s) {', '.join(need)} (has: {', '.join(cols) or 'none'})",
                                 file=str(path), stage="structure",
                                 hint="give a CSV in CT-RATE's reports format: VolumeName,Findings_EN[,Impressions_EN]")
        imp_col = _pick(cols, IMPRESSIONS_COLUMNS)
        out = ReportsFile()
        for row in reader:
            line = reader.line_num
            case_id = (row.get(id_col) or "").strip()
            if not case_id:
                out.bad.append((line, "", f"row has no {id_col}"))
            elif None in row:
                out.bad.append((line, case_id, "row has more fields than the header"))
            else:
                out.reports.append(ReportInput(case_id, row.get(find_col), row.get(imp_col) if imp_col else None))
                out.lines.append(line)
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
