"""Reading released CSV files row by row, turning every bad row into an `ingest_errors` row.

Shared by the RadGenome and CT-RATE readers. A file is streamed (never loaded whole);
bytes that are not UTF-8 are kept as surrogates so the reader can name the line instead
of failing the file. What a person gets for each problem:

* a missing column: one row for the file (location ``header``); the file is skipped;
* bad UTF-8, a row with the wrong number of fields: one row per line; the row is skipped.
"""

from __future__ import annotations

import csv
import hashlib
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

csv.field_size_limit(min(sys.maxsize, 1 << 30))  # report paragraphs can be long

_BAD_BYTES = re.compile("[\udc80-\udcff]")


def row_id(*parts: object, n: int = 20) -> str:
    """A deterministic id from a row's content (and its ordinal, so duplicates stay distinct)."""
    return hashlib.blake2b("\x1f".join("" if p is None else str(p) for p in parts).encode(),
                           digest_size=16).hexdigest()[:n]


@dataclass
class ErrorSink:
    """Collects `ingest_errors` rows for one source."""

    source: str
    rows: list[dict] = field(default_factory=list)

    def add(self, error: str, *, file: str | Path | None = None, location: str | None = None,
            case_id: str | None = None, stage: str = "read") -> None:
        self.rows.append({"source": self.source, "case_id": case_id, "stage": stage,
                          "file": None if file is None else str(file), "location": location, "error": error})

    def take(self) -> list[dict]:
        out, self.rows = self.rows, []
        return out


def read_csv(path: Path, required: Sequence[str], errors: ErrorSink, *, stage: str = "read",
             key: str | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each good row of a CSV with at least the `required` columns.

    `key` names the column that identifies the case, so error rows can name it.
    """
    try:
        f = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as e:
        errors.add(f"cannot open the file: {e.strerror}", file=path, stage=stage)
        return
    with f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            errors.add("the file is empty (no header line)", file=path, location="header", stage=stage)
            return
        except csv.Error as e:
            errors.add(f"unreadable header: {e}", file=path, location="header", stage=stage)
            return
        missing = [c for c in required if c not in header]
        if missing:
            errors.add(f"missing column(s) {', '.join(map(repr, missing))}; the file has {', '.join(header)}",
                       file=path, location="header", stage=stage)
            return
        last = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                errors.add(f"malformed CSV: {e}", file=path, location=f"line {last + 1}", stage=stage)
                return
            line, last = last + 1, reader.line_num
            if not row:
                continue
            values = dict(zip(header, row, strict=False))
            case_id = values.get(key) if key else None
            if _BAD_BYTES.search("\x00".join(row)):
                bad = next(c for c, v in values.items() if _BAD_BYTES.search(v))
                errors.add(f"column {bad!r} is not valid UTF-8; the row is skipped",
                           file=path, location=f"line {line}",
                           case_id=None if case_id is None or _BAD_BYTES.search(case_id) else case_id,
                           stage=stage)
                continue
            if len(row) != len(header):
                errors.add(f"{len(row)} fields where the header has {len(header)}; the row is skipped",
                           file=path, location=f"line {line}", case_id=case_id, stage=stage)
                continue
            yield line, values
