"""The text files of a cohort export: tables, reports, MONAI datalist and released-format CSVs.

Everything here is small (rows, not voxels), so a dry run writes it to a private temporary
folder to count files and bytes exactly. See `warehouse.exports.bundle` for the layout.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.core import schema
from warehouse.core.anatomy import anatomy
from warehouse.core.ids import case_key
from warehouse.core.release_format import CT_RATE_FILES, LICENCES, NOT_GIVEN
from warehouse.exports.radgenome_csv import export_release

if TYPE_CHECKING:
    from warehouse.api import Warehouse
    from warehouse.exports.nifti import ArrayFile

REPORT_COLUMNS = CT_RATE_FILES["reports"].columns  # (CSV column, reports column), VolumeName first


def case_keys(case_ids: Sequence[str]) -> dict[str, str]:
    """File stem of each case: the array store's case key (injective, no separators, no leading dot)."""
    return {c: case_key(c) for c in case_ids}


def safe_name(name: str) -> str:
    """A region name as a file stem: separators and control characters replaced, no leading dot."""
    out = re.sub(r"[/\\\x00-\x1f]", "_", name).lstrip(".").strip()
    return out or "region"


def write_text_files(wh: Warehouse, stage: Path, case_ids: list[str], keys: Mapping[str, str],
                     plans: Mapping[str, list[ArrayFile]], crop: str | None, masks: list[str]) -> dict[str, int]:
    """Tables, reports.csv, datalist.json and radgenome/ under `stage`; returns rows per table."""
    counts = write_tables(wh, stage / "tables", case_ids)
    reports = wh.table("reports", case_ids).to_pylist()
    write_reports_csv(stage / "reports.csv", reports)
    datalist = build_datalist(wh, case_ids, plans, crop, masks, {r["case_id"]: r for r in reports})
    (stage / "datalist.json").write_text(json.dumps(datalist, indent=2, ensure_ascii=False) + "\n")
    export_release(wh, stage / "radgenome", case_ids, released_only=False)  # derived rows too: a cohort's own
    return counts


def write_readme(path: Path, snapshot_id: str, query: str, cases: int, licences: Sequence[Mapping]) -> None:
    """A short README for whoever receives the folder: contents, provenance, licences (attribution)."""
    lines = [f"# Cohort export: {cases} cases", "",
             f"Exported by radgenome-warehouse from snapshot `{snapshot_id}` with the cohort query:", "",
             *(f"    {line}" for line in query.strip().splitlines()), "",
             "`manifest.json` lists every file with its sha256, the query parameters and row counts;",
             "`croissant.json` describes the tables as Croissant (JSON-LD) metadata that `mlcroissant` loads.",
             "`tables/` holds the cohort's rows (Parquet and CSV), `images/` and `masks/` NIfTI files on the",
             "warehouse's grid, `datalist.json` a MONAI datalist, `reports.csv` the reports in CT-RATE's",
             "columns and `radgenome/` the rows in the released RadGenome-ChestCT / CT-RATE formats.", "",
             "## Licences", "", "The data derive from these datasets; keep their terms and cite them:", "",
             *(f"- {x['dataset']}: {x['licence']} ({x['url']})" for x in licences), ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def cohort_table(wh: Warehouse, name: str, case_ids: Sequence[str]) -> pa.Table:
    """Table `name`'s rows of the cohort, in the snapshot's order; a reference table whole (it gives ids and
    terms their meaning)."""
    return wh.table(name, None if name in schema.REFERENCE_TABLES else case_ids)


def write_tables(wh: Warehouse, folder: Path, case_ids: list[str]) -> dict[str, int]:
    """Every table as Parquet and CSV: the cohort's rows (reference tables whole), in the snapshot's order."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name in schema.TABLES:
        t = cohort_table(wh, name, case_ids)
        pq.write_table(t, folder / f"{name}.parquet", compression="zstd")
        _frame_for_csv(t).write_csv(folder / f"{name}.csv")
        counts[name] = t.num_rows
    return counts


def _frame_for_csv(t: pa.Table) -> pl.DataFrame:
    """Polars frame with list columns as JSON text (CSV has no lists)."""
    df = pl.from_arrow(t)
    lists = [c for c, dtype in df.schema.items() if isinstance(dtype, pl.List)]
    return df.with_columns(pl.Series(c, [None if v is None else json.dumps(v.to_list(), ensure_ascii=False)
                                         for v in df[c]], pl.String) for c in lists)


def write_reports_csv(path: Path, reports: list[dict]) -> None:
    """The reports in CT-RATE's columns (`Not given.` for empty fields), as `ingest folder` reads them."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([c for c, _ in REPORT_COLUMNS])
        for r in reports:
            w.writerow([r["case_id"]] + [NOT_GIVEN if r[c] is None else r[c] for _, c in REPORT_COLUMNS[1:]])


def region_texts(wh: Warehouse, case_ids: Sequence[str], region: str | None) -> dict[str, str]:
    """Per case, the grounded text about `region` and everything under it (the whole findings without one).

    Rows are taken shallowest first (a region's paragraph before its sub-regions' fragments)
    and in report order; a row whose text an earlier row already holds is left out.
    """
    if region is None:
        df = wh.sql("SELECT case_id, findings, impressions FROM reports WHERE case_id IN (SELECT unnest($ids))",
                    {"ids": list(case_ids)})
        return {r["case_id"]: " ".join(t for t in (r["findings"], r["impressions"]) if t)
                for r in df.iter_rows(named=True)}
    rid = anatomy().resolve(region).region_id
    df = wh.sql("""SELECT s.case_id, s.text FROM sentences s
                   JOIN anatomy_closure c ON c.descendant_id = s.region_id
                   WHERE c.ancestor_id = $rid AND s.case_id IN (SELECT unnest($ids)) AND s.text IS NOT NULL
                   ORDER BY s.case_id, c.depth, s.ordinal, s.sentence_id""", {"rid": rid, "ids": list(case_ids)})
    picked: dict[str, list[str]] = {}
    for case_id, text in df.iter_rows():
        have = picked.setdefault(case_id, [])
        if not any(text in t for t in have):
            have.append(text)
    return {c: " ".join(t) for c, t in picked.items()}


def build_datalist(wh: Warehouse, case_ids: list[str], plans: Mapping[str, list[ArrayFile]], crop: str | None,
                   masks: list[str], reports: Mapping[str, dict]) -> dict:
    """A MONAI (Decathlon-style) datalist: `training` (train split) and `validation` entries.

    `image` and `label` are paths relative to the bundle (`label`: one mask file, or a list
    of them in `--masks` order, loaded by `LoadImaged` as channels); `text` is the grounded
    text of the crop region (the whole findings without one).
    """
    splits = dict(wh.sql("SELECT case_id, split FROM cases WHERE case_id IN (SELECT unnest($ids))",
                         {"ids": case_ids}).iter_rows())
    texts = region_texts(wh, case_ids, crop)
    out: dict = {"name": "radgenome-warehouse cohort", "description": f"snapshot {wh.snapshot_id}",
                 "licence": "; ".join(f"{x['dataset']}: {x['licence']}" for x in LICENCES), "tensorImageSize": "3D",
                 "modality": {"0": "CT"}, "regions": masks, "crop_region": crop, "training": [], "validation": []}
    if len(masks) == 1:
        out["labels"] = {"0": "background", "1": masks[0]}
    for c in case_ids:
        files = plans.get(c, [])
        entry: dict = {"case_id": c, "split": splits.get(c)}
        image = [f.rel for f in files if f.kind == "image"]
        if image:
            entry["image"] = image[0]
        labels = [f.rel for f in files if f.kind == "mask"]
        if labels:
            entry["label"] = labels[0] if len(labels) == 1 else labels
            entry["label_regions"] = [f.region for f in files if f.kind == "mask"]
        report = reports.get(c, {})
        entry.update(region=crop, text=texts.get(c, ""), findings=report.get("findings"),
                     impressions=report.get("impressions"))
        out["validation" if splits.get(c) == "validation" else "training"].append(entry)
    out["numTraining"], out["numValidation"] = len(out["training"]), len(out["validation"])
    return out
