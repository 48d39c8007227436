"""The released RadGenome-ChestCT and CT-RATE CSVs: their columns, and writing them back.

`RADGENOME_FILES` and `CT_RATE_FILES` (`warehouse.core.release_format`) map each released column
onto a warehouse column; the ingest readers and `export_release` both use them, so the
round trip is one table read in two directions.
For the real release files the export equals the input as multisets of rows: the raw
texts (``Size``, comma lists of ``Abnormality`` and ``Disorders``) are kept beside their
parsed values, and CT-RATE's 44 metadata columns are kept as strings in ``metadata_json``.

Output layout (the release layouts, so the folder can be ingested again)::

    OUT/dataset/radgenome_files/{train,validation}_{region_report,vqa_*,case_disorders}.csv
    OUT/radgenome_validation_regions/<top-level region>.csv
    OUT/ct_rate/dataset/radiology_text_reports/{train,validation}_reports.csv
    OUT/ct_rate/dataset/metadata/{train,validation}_metadata.csv
    OUT/ct_rate/dataset/multi_abnormality_labels/{train,valid}_predicted_labels.csv

Each file is one SQL query through the `Warehouse` (filters, joins, grouping and order in
DuckDB); Python only writes the rows. Rows are in the order of the tables' Parquet copies
within each case (`schema.sort_key`, nulls first), so an export is the same file every time.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from warehouse.api import Warehouse
from warehouse.core.release_format import (
    CT_RATE_FILES,
    NOT_GIVEN,
    RADGENOME_FILES,
    REGION_FILE,
    REGION_FILES_EXTRACTOR,
    RELEASED_SOURCES,
    ReleasedFile,
)
from warehouse.core.schema import CT_RATE_LABELS

CT_RATE_REPORT_SOURCE = "ct_rate"  # reports.source of CT-RATE's report files


def export_release(wh: Warehouse, out_dir: Path | str, cases: Iterable[str] | None = None, *,
                   released_only: bool = True) -> dict[str, int]:
    """Write the snapshot's rows (of `cases` only, if given) as the released CSVs under `out_dir`.

    `released_only` (the default) writes the rows the releases gave, so an imported release comes
    back as it was; False adds the rows the build derived (structured reports, their findings'
    labels and disorders, generated VQA), as a cohort of new CTs needs.
    Returns {path relative to `out_dir`: data rows}; files with no rows are not written.
    """
    ids = None if cases is None else sorted(set(cases))
    if ids == []:
        return {}
    out, q = Path(out_dir), _Queries(ids, released_only)
    written: dict[str, int] = {}
    for rel, header, rows in _files(wh, q):
        n = _write(out / rel, header, rows)
        if n:
            written[rel] = n
    return dict(sorted(written.items()))


class _Queries:
    """The SQL pieces every file shares: the case filter, the released-rows filter and each case's split."""

    def __init__(self, ids: list[str] | None, released_only: bool) -> None:
        self.params: dict[str, Any] = {}
        if ids is not None:
            self.params["ids"] = ids
        self.released_only = released_only
        if released_only:
            self.params["released"] = sorted(RELEASED_SOURCES)

    def where(self, *conditions: str, by: str | None = None) -> str:
        """WHERE clause of `conditions`, the case filter and, with `by`, the released rows' filter."""
        parts = list(conditions)
        if "ids" in self.params:
            parts.append("case_id IN (SELECT unnest($ids))")
        if by is not None and self.released_only:
            parts.append(f"{by} IN (SELECT unnest($released))")  # NULL is no released source
        return ("WHERE " + " AND ".join(parts)) if parts else ""

    def with_split(self, rows: str, columns: str, order: str) -> str:
        """`columns` of the query `rows`, each row with `_train`, ordered by `order`.

        A case's split is its `cases.split`, else its name's (`valid_...` is validation), as the
        release's file names give it."""
        return f"""
            WITH picked AS ({rows}),
                 splits AS (SELECT case_id, max(nullif(split, '')) AS split FROM cases
                            {self.where()} GROUP BY case_id)
            SELECT coalesce(s.split, CASE WHEN starts_with(picked.case_id, 'valid') THEN 'validation'
                                          ELSE 'train' END) = 'train' AS _train, {columns}
            FROM picked LEFT JOIN splits AS s ON s.case_id = picked.case_id
            ORDER BY {order}"""


def _files(wh: Warehouse, q: _Queries) -> Iterator[tuple[str, list[str], Sequence[Sequence]]]:
    """(path, header, rows) of every file the export may write, in turn (one query each)."""
    regions = {"regions": REGION_FILES_EXTRACTOR}
    # RadGenome: region reports (the sentences not from the validation region files)
    spec = RADGENOME_FILES["region_report"]
    rows = f"SELECT * FROM sentences {q.where('extractor IS DISTINCT FROM $regions', by='extractor')}"
    order = "picked.case_id, picked.ordinal NULLS FIRST, picked.sentence_id"
    yield from _by_split(_arrow(wh, q.with_split(rows, _columns(spec, "picked"), order), q.params | regions),
                         spec, "dataset")

    # RadGenome: validation region files, one per top-level region
    t = _arrow(wh, f"""SELECT split_part(coalesce(anatomy_path, ''), '/', 1) AS _top, {_columns(REGION_FILE)}
                         FROM sentences {q.where('extractor = $regions')}
                         ORDER BY case_id, ordinal NULLS FIRST, sentence_id""", q.params | regions)
    for top in sorted(t["_top"].unique().to_pylist()):
        yield f"{REGION_FILE.folder}/{top}.csv", REGION_FILE.header, _pylist_rows(
            t.filter(pc.equal(t["_top"], top)).drop_columns(["_top"]))

    # RadGenome: VQA files; a case with no disorders row gets its disorder labels, joined as released
    order = "picked.case_id, picked.ordinal NULLS FIRST, picked.vqa_id NULLS FIRST"
    for spec in RADGENOME_FILES.values():
        if spec.vqa_type is None:
            continue
        rows = f"""SELECT case_id, anatomy_path, term, answer, ordinal, vqa_id FROM vqa
                   {q.where('type = $type', by='extractor')}"""
        if spec.vqa_type == "disorders":
            labels = q.where("kind = 'disorder'", by="source")
            rows += f""" UNION ALL
                SELECT case_id, NULL, NULL, string_agg(label, ', ' ORDER BY ordinal NULLS FIRST, label), 0, NULL
                FROM case_labels {labels} AND case_id NOT IN (SELECT case_id FROM ({rows}))
                GROUP BY case_id"""
        t = _arrow(wh, q.with_split(rows, _columns(spec, "picked"), order), q.params | {"type": spec.vqa_type})
        yield from _by_split(t, spec, "dataset")

    # CT-RATE: reports, empty fields as the release writes them
    spec = CT_RATE_FILES["reports"]
    fields = [f'coalesce(picked."{c}", $not_given)' for _, c in spec.columns[1:]]
    rows = f"SELECT * FROM reports {q.where('source = $report_source')}"
    order = ", ".join(["picked.case_id", *(f"{f} NULLS FIRST" for f in fields)])
    t = _arrow(wh, q.with_split(rows, ", ".join(["picked.case_id", *fields]), order),
               q.params | {"not_given": NOT_GIVEN, "report_source": CT_RATE_REPORT_SOURCE})
    yield from _by_split(t, spec, "ct_rate/dataset")

    # CT-RATE: metadata, every released column as released (a folder's metadata has no VolumeName)
    spec = CT_RATE_FILES["metadata"]
    rows = f"SELECT case_id, metadata_json FROM cases {q.where('metadata_json IS NOT NULL')}"
    t = _arrow(wh, q.with_split(rows, "picked.case_id, picked.metadata_json", "picked.case_id"), q.params)
    meta = [(train, m) for train, text in zip(t["_train"].to_pylist(), t["metadata_json"].to_pylist(), strict=True)
            if text for m in [json.loads(text)] if "VolumeName" in m]
    header = list(dict.fromkeys(k for _, m in meta for k in m if k != "case_id"))  # first seen, case order
    for split in ("train", "validation"):
        yield (f"ct_rate/dataset/{spec.folder}/{spec.file_name(split)}", header,
               [[m.get(k) for k in header] for train, m in meta if train == (split == "train")])

    # CT-RATE: predicted labels, a column per class (a class given twice: its row of the highest ordinal)
    spec = CT_RATE_FILES["predicted_labels"]
    classes = {f"l{i}": name for i, name in enumerate(CT_RATE_LABELS)}
    wide = ", ".join(f"last(value ORDER BY ordinal NULLS FIRST) FILTER (WHERE label = ${p}) AS {p}" for p in classes)
    rows = f"SELECT case_id, {wide} FROM case_labels {q.where('kind = $kind', by='source')} GROUP BY case_id"
    columns = ", ".join(["picked.case_id", *(f"picked.{p}" for p in classes)])
    t = _arrow(wh, q.with_split(rows, columns, "picked.case_id"), q.params | classes | {"kind": "ct_rate"})
    yield from _by_split(t, spec, "ct_rate/dataset")


def _arrow(wh: Warehouse, sql: str, params: dict[str, Any]) -> pa.Table:
    """`wh.arrow` with the parameters `sql` names (DuckDB refuses any other)."""
    return wh.arrow(sql, {k: v for k, v in params.items() if k in set(re.findall(r"\$(\w+)", sql))})


def _columns(spec: ReleasedFile, table: str | None = None) -> str:
    """The warehouse columns of a released file, in file order."""
    prefix = f"{table}." if table else ""
    return ", ".join(f'{prefix}"{c}"' for _, c in spec.columns)


def _by_split(t: pa.Table, spec: ReleasedFile, folder: str) -> Iterator[tuple[str, list[str], Sequence[Sequence]]]:
    """The train and validation files of `spec` from rows with `_train` first."""
    for split in ("train", "validation"):
        part = t.filter(pc.equal(t["_train"], split == "train")).drop_columns(["_train"])
        yield f"{folder}/{spec.folder}/{spec.file_name(split)}", spec.header, _pylist_rows(part)


def _pylist_rows(t: pa.Table) -> list[tuple]:
    """Rows as tuples of Python values, converted a column at a time."""
    return list(zip(*(c.to_pylist() for c in t.columns), strict=True))


def _write(path: Path, header: list[str], rows: Sequence[Sequence]) -> int:
    """Write the CSV (None as empty) when there is a row; returns the rows written."""
    if not rows:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return len(rows)
