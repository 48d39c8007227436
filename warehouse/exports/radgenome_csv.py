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
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.core.release_format import (
    CT_RATE_FILES,
    NOT_GIVEN,
    RADGENOME_FILES,
    REGION_FILE,
    REGION_FILES_EXTRACTOR,
    RELEASED_SOURCES,
)
from warehouse.core.schema import CT_RATE_LABELS
from warehouse.store.snapshot import Snapshot, open_snapshot


def _split(case_id: str, splits: dict[str, str]) -> str:
    return splits.get(case_id) or ("validation" if case_id.startswith("valid") else "train")


def _write(path: Path, header: list[str], rows: Iterable[list]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow(["" if v is None else v for v in row])
            n += 1
    return n


def _read(snap: Snapshot, table: str, columns: list[str], cases: set[str] | None) -> list[dict]:
    t = pq.read_table(snap.table_path(table), columns=columns)
    if cases is not None:
        t = t.filter(pc.is_in(t["case_id"], value_set=pa.array(sorted(cases), pa.string())))
    return t.to_pylist()


def _by_split_and_order(rows: list[dict], splits: dict[str, str], *order: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: tuple((r[k] is not None, r[k]) for k in ("case_id", *order))):
        out[_split(r["case_id"], splits)].append(r)
    return out


def export_release(root: Path | str, out_dir: Path | str, snapshot: str | None = None,
                   cases: Iterable[str] | None = None, *, released_only: bool = True) -> dict[str, int]:
    """Write the snapshot's rows (of `cases` only, if given) as the released CSVs under `out_dir`.

    `released_only` (the default) writes the rows the releases gave, so an imported release comes
    back as it was; False adds the rows the build derived (structured reports, their findings'
    labels and disorders, generated VQA), as a cohort of new CTs needs.
    Returns {path relative to `out_dir`: data rows}; files with no rows are not written.
    """
    snap, out = open_snapshot(root, snapshot), Path(out_dir)
    only = None if cases is None else set(cases)
    cases = _read(snap, "cases", ["case_id", "split", "metadata_json"], only)
    splits = {c["case_id"]: c["split"] for c in cases if c["split"]}
    written: dict[str, int] = {}

    def keep(rows: list[dict], column: str) -> list[dict]:
        return [r for r in rows if r[column] in RELEASED_SOURCES] if released_only else rows

    def emit(rel: str, header: list[str], rows: Iterable[list]) -> None:
        rows = list(rows)
        if rows:
            written[rel] = _write(out / rel, header, rows)

    # RadGenome: sentences (region reports and validation region files)
    sentences = keep(_read(snap, "sentences", ["case_id", "anatomy_path", "text", "ordinal", "extractor"], only),
                     "extractor")
    regions = [s for s in sentences if s["extractor"] == REGION_FILES_EXTRACTOR]
    report = [s for s in sentences if s["extractor"] != REGION_FILES_EXTRACTOR]
    spec = RADGENOME_FILES["region_report"]
    for split, rows in _by_split_and_order(report, splits, "ordinal").items():
        emit(f"dataset/{spec.folder}/{spec.file_name(split)}", spec.header,
             ([r[c] for _, c in spec.columns] for r in rows))
    by_top: dict[str, list[dict]] = defaultdict(list)
    for r in sorted(regions, key=lambda r: (r["case_id"], r["ordinal"])):
        by_top[(r["anatomy_path"] or "").split("/")[0]].append(r)
    for top, rows in sorted(by_top.items()):
        emit(f"{REGION_FILE.folder}/{top}.csv", REGION_FILE.header, ([r[c] for _, c in REGION_FILE.columns]
                                                                    for r in rows))

    # RadGenome: VQA files and case disorders
    vqa = keep(_read(snap, "vqa", ["case_id", "type", "anatomy_path", "term", "answer", "ordinal", "extractor"],
                     only), "extractor")
    by_type: dict[str, list[dict]] = defaultdict(list)
    for r in vqa:
        by_type[r["type"]].append(r)
    labels = keep(_read(snap, "case_labels", ["case_id", "kind", "label", "value", "ordinal", "source"], only),
                  "source")
    have = {r["case_id"] for r in by_type["disorders"]}
    rejoined: dict[str, list[str]] = defaultdict(list)
    for r in sorted((r for r in labels if r["kind"] == "disorder" and r["case_id"] not in have),
                    key=lambda r: (r["case_id"], r["ordinal"])):
        rejoined[r["case_id"]].append(r["label"])
    by_type["disorders"] += [{"case_id": c, "answer": ", ".join(t), "ordinal": 0} for c, t in rejoined.items()]
    for spec in RADGENOME_FILES.values():
        if spec.vqa_type is None:
            continue
        for split, rows in _by_split_and_order(by_type[spec.vqa_type], splits, "ordinal").items():
            emit(f"dataset/{spec.folder}/{spec.file_name(split)}", spec.header,
                 ([r[c] for _, c in spec.columns] for r in rows))

    # CT-RATE: reports, metadata (every released column, as released), predicted labels
    spec = CT_RATE_FILES["reports"]
    reports = _read(snap, "reports", [c for _, c in spec.columns] + ["source"], only)
    for split, rows in _by_split_and_order([r for r in reports if r["source"] == "ct_rate"], splits).items():
        emit(f"ct_rate/dataset/{spec.folder}/{spec.file_name(split)}", spec.header,
             ([r["case_id"]] + [NOT_GIVEN if r[c] is None else r[c] for _, c in spec.columns[1:]] for r in rows))
    spec = CT_RATE_FILES["metadata"]
    meta = [{"case_id": c["case_id"], **m} for c in cases if c["metadata_json"]
            for m in [json.loads(c["metadata_json"])] if "VolumeName" in m]  # CT-RATE's columns, not a folder's
    header = list(dict.fromkeys(k for m in meta for k in m if k != "case_id"))
    for split, rows in _by_split_and_order(meta, splits).items():
        emit(f"ct_rate/dataset/{spec.folder}/{spec.file_name(split)}", header, ([r.get(k) for k in header]
                                                                               for r in rows))
    spec = CT_RATE_FILES["predicted_labels"]
    wide: dict[str, dict[str, int]] = defaultdict(dict)
    for r in labels:
        if r["kind"] == "ct_rate":
            wide[r["case_id"]][r["label"]] = r["value"]
    for split, rows in _by_split_and_order([{"case_id": c, **v} for c, v in wide.items()], splits).items():
        emit(f"ct_rate/dataset/{spec.folder}/{spec.file_name(split)}", spec.header,
             ([r["case_id"]] + [r.get(name) for name in CT_RATE_LABELS] for r in rows))
    return dict(sorted(written.items()))
