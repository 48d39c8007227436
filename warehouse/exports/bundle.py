"""Cohort exports: one folder a person can hand on, written whole or not at all.

A cohort is a SQL query (or a named query with parameters) that returns ``case_id``.
`export_cohort` writes::

    OUT/README.md                       what the folder holds, where it came from, its licences
    OUT/croissant.json                  Croissant (JSON-LD) metadata of tables/*.parquet: types, column
                                        descriptions, sha256, licences, citation, Responsible-AI fields
    OUT/manifest.json                   query and parameters, snapshot id, creation time, row counts,
                                        bytes and sha256 per file, licences of the sources
    OUT/tables/<table>.{parquet,csv}    the cohort's rows of every table (anatomy tables whole)
    OUT/images/<case>.nii.gz            CT (int16 HU) on the warehouse's grid, whole or cropped
    OUT/masks/<case>/<region>.nii.gz    region masks (uint8 0/1) on the same grid as the image
    OUT/reports.csv                     the reports in CT-RATE's columns (for `radgenome ingest folder`)
    OUT/datalist.json                   a MONAI datalist: image, label and the text fields
    OUT/radgenome/...                   the cohort in the released RadGenome / CT-RATE CSV formats

``<case>`` is the array store's case key (``train_1_a_1.nii.gz`` -> ``train_1_a_1``; any other
id a sanitised stem plus a hash), so no name leaves OUT and a re-ingested folder gets the
same case ids. The bundle is built in a hidden folder beside OUT and renamed into place
when complete. A dry run builds the text files in a private temporary folder (removed
after), so its file count and their bytes are exact; NIfTI bytes are an upper bound.

The same cohort goes out in other formats too (``format``, `FORMATS`): a Hugging Face dataset
repository (`warehouse.exports.hf`), OME-Zarr images with labels (`warehouse.exports.ome_zarr`) and
DICOM SEG with a generated CT series (`warehouse.exports.dicom_seg`); each module's docstring gives
its layout. They are staged, checked and renamed the same way, each with its ``manifest.json``.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from warehouse.core.anatomy import anatomy
from warehouse.core.errors import ArrayNotFoundError
from warehouse.core.release_format import LICENCES
from warehouse.exports import bundle_tables
from warehouse.exports.cohort import Cohort, ExportError, resolve_cohort
from warehouse.exports.croissant import write_croissant
from warehouse.exports.nifti import ArrayFile, plan_case, write_case

if TYPE_CHECKING:
    from warehouse.api import Warehouse

KIND = "radgenome-warehouse cohort export"
FORMAT_VERSION = 1
# --format NAME -> the module writing it. Each has NEEDS_IMAGES, check(cohort) (raises ExportError
# before anything is written), dry_run(cohort) -> (files, bytes bound) and write(cohort, stage) -> a
# dict of manifest entries (row_counts, what it generated). Notes go to cohort.notes (the manifest's).
FORMATS = {"bundle": None, "hf": "warehouse.exports.hf", "ome-zarr": "warehouse.exports.ome_zarr",
           "dicom-seg": "warehouse.exports.dicom_seg"}

# A dry run's bound of manifest.json's "files" entry per file (a path under 300 characters, bytes, sha256)
# and of a format's own entries per case.
MANIFEST_FILE_BOUND, MANIFEST_CASE_BOUND = 450, 2048

__all__ = ["FORMATS", "ExportError", "ExportSummary", "export_cohort"]


@dataclass
class ExportSummary:
    """What an export wrote (or, for a dry run, would write)."""

    out_dir: Path
    cases: int
    files: int
    bytes: int
    dry_run: bool = False
    bytes_exact: bool = True  # False for a dry run with NIfTI files: their bytes are an upper bound
    row_counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # cases or files left out, and why
    seconds: float = 0.0

    def __str__(self) -> str:
        size = f"{'at most ' if not self.bytes_exact else ''}{self.bytes / 1e6:.1f} MB"
        verb = "would write" if self.dry_run else "wrote"
        text = f"{verb} {self.cases} cases, {self.files} files, {size} to {self.out_dir}"
        return text + (f" ({len(self.notes)} notes)" if self.notes else "") + \
            ("" if self.dry_run else f" in {self.seconds:.1f} s")


def export_cohort(wh: Warehouse, out_dir: str | Path, sql: str | None = None, query: str | None = None,
                  params: Mapping[str, Any] | None = None, images: bool = False, masks: Sequence[str] = (),
                  crop: str | None = None, margin_mm: float = 10.0, dry_run: bool = False,
                  overwrite: bool = False, workers: int = 4, format: str = "bundle") -> ExportSummary:
    """Export the cohort `sql` (or named `query`) returns, as the bundle the module docstring describes
    or in another `format` (`FORMATS`: a Hugging Face dataset folder, OME-Zarr, DICOM SEG).

    `masks`: regions whose masks to write (names, paths or synonyms of the DAG); `crop`: a
    region to crop images and masks to, grown by `margin_mm`. `workers`: threads writing
    NIfTI files (gzip runs outside the GIL).
    """
    t0 = time.perf_counter()
    writer = export_format(format)
    out = Path(out_dir).expanduser().resolve()
    check_target(out, overwrite)
    query_text, bound, case_ids = resolve_cohort(wh, sql, query, params)
    dag = anatomy()
    crop_name = dag.resolve(crop).name if crop else None
    mask_names = list(dict.fromkeys(dag.resolve(r).name for r in masks))
    keys = bundle_tables.case_keys(case_ids)
    images = images or bool(writer and writer.NEEDS_IMAGES)
    if writer is not None and writer.NEEDS_IMAGES:
        _check_images(wh, case_ids, format)
    plans, notes = _plan_arrays(wh, case_ids, keys, images, mask_names, crop_name, margin_mm)
    shown = query_text if query is None else f"-- named query {query}\n{query_text.strip()}"
    job = Cohort(wh, case_ids, keys, shown, images, mask_names, crop_name, margin_mm, workers, plans, notes)
    if writer is not None:
        writer.check(job)
    options = {"format": format, "images": images, "masks": mask_names, "crop": crop_name, "margin_mm": margin_mm}
    manifest = {
        "kind": KIND, "format_version": FORMAT_VERSION, "format": format,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "snapshot_id": wh.snapshot_id, "warehouse": str(wh.root),
        "query": {"name": query, "sql": query_text, "params": _jsonable(bound)},
        "options": options, "cases": len(case_ids), "case_files": keys,
        "licences": list(LICENCES), "notes": notes,
    }
    if writer is not None and dry_run:  # the format's bound, and manifest.json's: its entries per file and case
        files, size = writer.dry_run(job)
        size += len(_manifest_bytes(manifest)) + files * MANIFEST_FILE_BOUND + len(case_ids) * MANIFEST_CASE_BOUND
        return ExportSummary(out, len(case_ids), files + 1, size, True, False, {}, notes, time.perf_counter() - t0)
    if not dry_run:
        out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".radgenome-dry-" if dry_run else f".{out.name}.partial-",
                                  dir=None if dry_run else out.parent))
    try:
        if writer is not None:  # its own entries join the manifest (row_counts, what it generated)
            manifest.update(writer.write(job, stage) or {})
            counts = manifest.setdefault("row_counts", {})
            return _finish(stage, out, overwrite, manifest, ExportSummary(
                out, len(case_ids), 0, 0, False, True, counts, notes), t0)
        counts = bundle_tables.write_text_files(wh, stage, case_ids, keys, plans, crop_name, mask_names)
        manifest["row_counts"] = counts
        bundle_tables.write_readme(stage / "README.md", wh.snapshot_id, shown, len(case_ids), LICENCES)
        write_croissant(wh, stage, name=f"radgenome-cohort-{wh.snapshot_id}",
                        description=f"Cohort export of {len(case_ids)} cases from radgenome-warehouse snapshot "
                                    f"{wh.snapshot_id} (tables/*.parquet); the cohort query is in manifest.json.")
        array_files = [f for files in plans.values() for f in files]
        if dry_run:
            text = _hash_files(stage)
            bound_bytes = sum(f.bytes_bound for f in array_files)
            manifest["files"] = {**text, **{f.rel: {"bytes": f.bytes_bound, "sha256": "0" * 64}
                                            for f in array_files}}
            size = sum(v["bytes"] for v in text.values()) + bound_bytes + len(_manifest_bytes(manifest))
            return ExportSummary(out, len(case_ids), len(manifest["files"]) + 1, size, True, not array_files,
                                 counts, notes, time.perf_counter() - t0)
        with ThreadPoolExecutor(max(1, workers)) as pool:  # one task per case; files land in the stage
            list(pool.map(lambda files: write_case(wh, files, stage), plans.values()))
        return _finish(stage, out, overwrite, manifest, ExportSummary(
            out, len(case_ids), 0, 0, False, True, counts, notes), t0)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def export_format(name: str) -> ModuleType | None:
    """The module writing `--format name` (None: the bundle, written here)."""
    if name not in FORMATS:
        raise ExportError(f"unknown export format {name!r}", hint=f"choose one of {', '.join(FORMATS)}")
    return importlib.import_module(FORMATS[name]) if FORMATS[name] else None


def _check_images(wh: Warehouse, case_ids: list[str], format: str) -> None:
    """Refuse, before anything is written, a cohort with a case that has no CT for a format that needs one."""
    try:
        store = wh.arrays
    except ArrayNotFoundError as e:
        raise ExportError(f"this warehouse holds no arrays: --format {format} needs the CT images",
                          hint="export the tables only (--format bundle)") from e
    missing = [c for c in case_ids if not store.has_image(c)]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ExportError(f"case {missing[0]}{more} of the cohort has no CT image: --format {format} needs one",
                          hint="leave those cases out of the cohort query (e.g. JOIN a table of cases with images) "
                               "or export --format bundle")


def _finish(stage: Path, out: Path, overwrite: bool, manifest: dict, summary: ExportSummary,
            t0: float) -> ExportSummary:
    """Hash the stage's files into its manifest, write it, and publish the stage as OUT."""
    manifest["files"] = _hash_files(stage)
    (stage / "manifest.json").write_bytes(_manifest_bytes(manifest))
    summary.files = len(manifest["files"]) + 1
    summary.bytes = sum(v["bytes"] for v in manifest["files"].values()) + (stage / "manifest.json").stat().st_size
    publish(stage, out, overwrite)
    summary.seconds = time.perf_counter() - t0
    return summary


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty OUT_DIR without `overwrite`, and anything but an earlier export with it."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder", hint="choose a folder for the export")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise ExportError(f"{out} is not empty", hint="pass --overwrite to replace an earlier export, "
                                                     "or choose a new or empty folder")
    try:
        kind = json.loads((out / "manifest.json").read_text()).get("kind")
    except (OSError, ValueError):
        kind = None
    if kind != KIND:
        raise ExportError(f"{out} is not empty and is not a cohort export: --overwrite only replaces exports",
                          hint="choose a new or empty folder")


def publish(stage: Path, out: Path, overwrite: bool) -> None:
    """Move the finished stage to OUT in one rename (an earlier export is moved aside first)."""
    check_target(out, overwrite)
    old = None
    if out.is_dir():
        if any(out.iterdir()):
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.rename(out, old)
        else:
            out.rmdir()
    os.rename(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _plan_arrays(wh: Warehouse, case_ids: list[str], keys: dict[str, str], images: bool, masks: list[str],
                 crop: str | None, margin_mm: float) -> tuple[dict[str, list[ArrayFile]], list[str]]:
    if not images and not masks:
        return {}, []
    try:
        wh.arrays  # noqa: B018 -- opened here (not in the writer threads), so a missing store says so first
    except ArrayNotFoundError as e:
        raise ExportError("this warehouse holds no arrays: images and masks cannot be exported",
                          hint="export the tables only (no --images, --masks)") from e
    if len({bundle_tables.safe_name(r) for r in masks}) != len(masks):
        raise ExportError(f"regions {masks} would share a mask file name", hint="export them one at a time")
    plans, notes = {}, []
    for c in case_ids:
        plans[c], more = plan_case(wh, c, keys[c], bundle_tables.safe_name, image=images, masks=masks,
                                   crop=crop, margin_mm=margin_mm)
        notes += more
    return plans, notes


def _hash_files(folder: Path) -> dict[str, dict]:
    """Bytes and sha256 of every file under `folder`, by path relative to it."""
    out = {}
    for p in sorted(x for x in folder.rglob("*") if x.is_file()):
        with open(p, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        out[p.relative_to(folder).as_posix()] = {"bytes": p.stat().st_size, "sha256": digest}
    return out


def _manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _jsonable(params: Mapping[str, Any]) -> dict:
    return {k: v if isinstance(v, str | int | float | bool | None | list) else str(v) for k, v in params.items()}
