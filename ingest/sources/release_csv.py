"""Reading released CSV files row by row, turning every bad row into an `ingest_errors` row.

Shared by the RadGenome, CT-RATE and folder readers. A file is streamed (never loaded
whole); bytes that are not UTF-8 are kept as surrogates so the reader can name the line
instead of failing the file. What a person gets for each problem:

* a file that is not UTF-8 text (UTF-16, a Latin-1 header), a missing column, a header
  that names a column twice: one row for the file (location ``header``); the file is skipped;
* bad UTF-8, a row with the wrong number of fields, a case name that is a path or holds
  control characters (`case_name_problem`): one row per line; the row is skipped;
* an unclosed quote (a quoted field that swallows later lines that start like a record,
  ``train_1_a_1.nii.gz,...``): one row for the line with the quote; that line is skipped
  and the lines it swallowed are read again;
* control characters (NUL, ESC, ...) in a text column: removed, with one row per line;
  the row is kept (tab, CR and LF stay).

Every text an error row carries is made printable (`printable`), so a file or member name
with undecodable bytes is named as ``bad\\xff.nii.gz``.
"""

from __future__ import annotations

import codecs
import csv
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.job import printable
from ingest.sources.volume_names import case_name_problem
from warehouse.core.release_format import CT_RATE_FILES, NOT_GIVEN

csv.field_size_limit(min(sys.maxsize, 1 << 30))  # report paragraphs can be long

_BAD_BYTES = re.compile("[\udc80-\udcff]")
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # not tab, LF, CR
# A swallowed line that starts like a record: a volume or NIfTI file name, then a comma.
_RECORD_START = re.compile(r'^\s*"?(?:(?:train|valid)_\d+_[a-z]+_\d+[^,"\n]*|[^,"\n]+\.nii(?:\.gz)?)"?\s*,')
_SHOWN = 160  # characters of a header shown in a message
_UTF16_32 = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def csv_header(path: Path) -> list[str]:
    """The stripped column names of a CSV's first line (a BOM dropped; undecodable bytes kept as
    surrogates for the message that names them). Raises `OSError` or `csv.Error`."""
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        return [h.strip() for h in next(csv.reader(fh), [])]


@dataclass
class ErrorSink:
    """Collects `ingest_errors` rows for one source (every text made `printable`)."""

    source: str
    rows: list[dict] = field(default_factory=list)

    def add(self, error: str, *, file: str | Path | None = None, location: str | None = None,
            case_id: str | None = None, stage: str = "read") -> None:
        self.rows.append({"source": self.source, "case_id": printable(case_id), "stage": stage,
                          "file": printable(file), "location": printable(location), "error": printable(error)})

    def take(self) -> list[dict]:
        out, self.rows = self.rows, []
        return out


class _Lines:
    """A text file's lines, numbered; the lines of the last record can be put back to be read again."""

    def __init__(self, f) -> None:
        self._f, self._back, self.number, self.taken = f, [], 0, []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._back.pop() if self._back else next(self._f)
        self.number += 1
        self.taken.append(line)
        return line

    def start(self) -> int:
        """Begin a record; returns the number its first line will have."""
        self.taken = []
        return self.number + 1

    def reread(self, first: int) -> None:
        """Read the record's lines after its first one again (their numbers from `first` + 1)."""
        self._back.extend(reversed(self.taken[1:]))
        self.number = first


def encoding_problem(head: bytes) -> str | None:
    """Why a file that starts with `head` is not UTF-8 text, or None."""
    if head.startswith(_UTF16_32):
        enc = "UTF-32" if head[:4] in _UTF16_32[:2] else "UTF-16"
        return f"the file is {enc} text, not UTF-8 (it starts with a {enc} byte-order mark); save it as UTF-8"
    if b"\0" in head.split(b"\n", 1)[0]:
        return "the header line holds NUL bytes (UTF-16 text without a byte-order mark?); save the file as UTF-8"
    return None


def _header_problem(header: list[str], required: Sequence[str]) -> str | None:
    """Why a header cannot be read, or None."""
    shown = printable(", ".join(header)) or "(no columns)"
    shown = shown if len(shown) <= _SHOWN else f"{shown[:_SHOWN]}... ({len(header)} columns)"
    if any(_BAD_BYTES.search(h) for h in header):
        return f"the header line is not UTF-8 text ({shown}); save the file as UTF-8"
    missing = [c for c in required if c not in header]
    if missing:
        hint = next((f"; the file seems separated by {d!r}, not commas" for d in (";", "\t", "|")
                     if len(header) == 1 and d in header[0]), "")
        return f"missing column(s) {', '.join(map(repr, missing))}; the file has {shown}{hint}"
    twice = sorted({c for c in required if header.count(c) > 1})
    if twice:
        return f"column(s) {', '.join(map(repr, twice))} appear more than once in the header; keep one of each"
    return None


def read_csv(path: Path, required: Sequence[str], errors: ErrorSink, *, stage: str = "read",
             key: str | None = None, check_key: Callable[[str], str | None] | None = None,
             ) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each good row of a CSV with at least the `required` columns.

    `key` names the column that identifies the case, so error rows can name it; `check_key`
    says why a key value cannot be a case (the row is then skipped), or None.
    """
    try:
        with open(path, "rb") as raw:
            head = raw.read(4096)
        f = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as e:
        errors.add(f"cannot open the file: {e.strerror}", file=path, stage=stage)
        return
    with f:
        if (why := encoding_problem(head)) is not None:
            errors.add(why, file=path, location="header", stage=stage)
            return
        lines = _Lines(f)
        reader = csv.reader(lines)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            errors.add("the file is empty (no header line)", file=path, location="header", stage=stage)
            return
        except csv.Error as e:
            errors.add(f"unreadable header: {e}", file=path, location="header", stage=stage)
            return
        if (why := _header_problem(header, required)) is not None:
            errors.add(why, file=path, location="header", stage=stage)
            return
        while True:
            line = lines.start()
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                errors.add(f"malformed CSV: {e}", file=path, location=f"line {line}", stage=stage)
                return
            if not row:
                continue
            good = _check_row(row, header, lines, line, path, errors, stage, key, check_key)
            if good is not None:
                yield line, good


def _check_row(row: list[str], header: list[str], lines: _Lines, line: int, path: Path, errors: ErrorSink,
               stage: str, key: str | None, check_key: Callable[[str], str | None] | None) -> dict | None:
    """The row as {column: value}, its text cleaned of control characters; None (and error rows) if bad."""
    where = f"line {line}"
    values = dict(zip(header, row, strict=False))
    case_id = values.get(key) if key else None
    if case_id is not None and check_key is not None and check_key(case_id.strip()) is not None:
        case_id = None  # not a name an error row can carry as a case
    swallowed = [n for n, text in enumerate(lines.taken[1:], line + 1) if _RECORD_START.match(text)]
    to_end = row[-1].endswith(("\n", "\r")) and sum(t.count('"') for t in lines.taken) % 2 == 1
    if swallowed or to_end:
        what = (f"runs on over line(s) {line + 1}..{lines.number}, which start like rows (first: line "
                f"{swallowed[0]})" if swallowed else "runs to the end of the file")
        errors.add(f"an unclosed quote (\") {what}; line {line} is skipped and the lines after it are read "
                   "again — close the quote", file=path, location=where, stage=stage, case_id=case_id)
        lines.reread(line)
        return None
    if _BAD_BYTES.search("\x00".join(row)):
        bad = next(c for c, v in values.items() if _BAD_BYTES.search(v))
        errors.add(f"column {bad!r} is not valid UTF-8; the row is skipped", file=path, location=where,
                   case_id=None if case_id is None or _BAD_BYTES.search(case_id) else case_id, stage=stage)
        return None
    if len(row) != len(header):
        errors.add(f"{len(row)} fields where the header has {len(header)}; the row is skipped",
                   file=path, location=where, case_id=case_id, stage=stage)
        return None
    if key is not None and check_key is not None:
        why = check_key(values[key].strip())
        if why is not None:
            errors.add(f"{key} {printable(values[key].strip())!r}: {why}; the row is skipped", file=path,
                       location=where, stage=stage)
            return None
    dirty = [c for c, v in values.items() if CONTROL.search(v)]
    if dirty:
        chars = sorted({printable(ch) for c in dirty for ch in CONTROL.findall(values[c])})
        errors.add(f"column(s) {', '.join(map(repr, dirty))} held control characters ({', '.join(chars)}); "
                   "they were removed and the row is kept", file=path, location=where, case_id=case_id,
                   stage=stage)
        values = {c: CONTROL.sub("", v) for c, v in values.items()}
    return values


REPORT_COLUMNS = CT_RATE_FILES["reports"].columns  # (CSV column, reports column), VolumeName first


def report_rows(path: Path, errors: ErrorSink, *, columns: Sequence[tuple[str, str]] = REPORT_COLUMNS,
                required: Sequence[str] | None = None, same: Callable[[str], str] | None = str,
                seen: set[str] | None = None, check_key: Callable[[str], str | None] | None = case_name_problem,
                note_blank: bool = True, stage: str = "report") -> Iterator[tuple[int, str, dict[str, str | None]]]:
    """``(line, VolumeName, {reports column: text})`` for each good row of a CT-RATE-style reports CSV.

    The one reader of report CSVs (`read_reports` here, `ingest.sources.folder`,
    `ingest.structure.io`): rows come through `release_csv.read_csv`, so a file that is not
    UTF-8, a missing column, bad bytes, an unclosed quote or a bad case name is an error row
    in `errors`, never an exception. `columns` pairs each CSV column with its output key, the
    case's column first; `required` (default: all of them) must be in the header, the others
    read as null when absent. A field that is ``Not given.`` is null; one of nothing but
    whitespace is null too, with an error row if `note_blank`. A row whose ``same(VolumeName)``
    is in `seen` is a duplicate (error row, skipped); `same=None` keeps duplicates.
    """
    key = columns[0][0]
    seen = set() if seen is None else seen
    header = [c for c, _ in columns] if required is None else list(required)
    for line, row in read_csv(path, header, errors, stage=stage, key=key, check_key=check_key):
        name = row[key].strip()
        if same is not None:
            if same(name) in seen:
                errors.add(f"duplicate {key}; the later report is skipped", file=path, location=f"line {line}",
                           case_id=name, stage=stage)
                continue
            seen.add(same(name))
        blank = [c for c, _ in columns[1:] if row.get(c) and not row[c].strip()]
        if blank and note_blank:
            errors.add(f"column(s) {', '.join(map(repr, blank))} hold nothing but whitespace; stored as empty "
                       f"(write {NOT_GIVEN!r} for a field with no text)", file=path, location=f"line {line}",
                       case_id=name, stage=stage)
        yield line, name, {col: None if c in blank or (row.get(c) or "").strip() == NOT_GIVEN else row.get(c)
                           for c, col in columns[1:]}
