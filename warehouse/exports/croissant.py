"""Croissant metadata (JSON-LD, https://mlcommons.org/croissant/) for a folder of the warehouse's tables.

`croissant_metadata` describes every ``<table>.parquet`` of a folder with the `mlcroissant` library
(nothing of the JSON-LD is written by hand here): one FileObject per file (its sha256, a
``contentUrl`` relative to where ``croissant.json`` goes), one RecordSet per table with a Field per
column (type from the Arrow schema of `warehouse.core.schema`, description from its field
metadata), the source datasets' licences and citations, and the Responsible-AI (``rai:``) fields.
The RAI texts say only what the releases and this project say; where nothing is known they say
``not stated by the release``.

`write_croissant` writes ``croissant.json`` beside a ``tables/`` folder (every cohort bundle calls
it); `export_croissant` copies (hard-links where it can) a snapshot's Parquet tables into
``OUT/tables/`` and writes ``OUT/croissant.json`` (``radgenome export-croissant``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from warehouse.core import schema
from warehouse.core.errors import WarehouseError
from warehouse.core.release_format import LICENCES

if TYPE_CHECKING:
    from warehouse.api import Warehouse

FILE_NAME = "croissant.json"
TABLES = "tables"
NOT_STATED = "not stated by the release"
LICENCE_URLS = {"CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
                "CC-BY-NC-SA-4.0": "https://creativecommons.org/licenses/by-nc-sa/4.0/"}

CITATION = """\
@article{zhang2024radgenome,
  title={RadGenome-Chest CT: A Grounded Vision-Language Dataset for Chest CT Analysis},
  author={Zhang, Xiaoman and Wu, Chaoyi and Zhao, Ziheng and Lei, Jiayu and Zhang, Ya and Wang, Yanfeng and
          Xie, Weidi},
  journal={arXiv preprint arXiv:2404.16754},
  year={2024}
}
@article{hamamci2024ctrate,
  title={Developing Generalist Foundation Models from a Multimodal Dataset for 3D Computed Tomography},
  author={Hamamci, Ibrahim Ethem and Er, Sezgin and others},
  journal={arXiv preprint arXiv:2403.17834},
  year={2024}
}"""

# Responsible-AI fields (mlcroissant's Metadata attribute -> value), from ../shared/data/README.md, the
# releases' file layouts and docs/architecture.md; a blank is named as such (NOT_STATED).
RAI: dict[str, Any] = {
    "data_collection": (
        "Secondary data. Rows are read from two public releases, RadGenome-ChestCT (grounded region reports, "
        "case disorders, VQA pairs, anatomy masks) and CT-RATE (chest CT volumes, radiology reports, "
        "44-column metadata, predicted labels of 18 abnormality classes), or derived from them by this "
        "project's ingest (sentences grounded to regions, findings, labels, VQA, region statistics); the "
        "source, extractor and mask_source columns say which produced each row. How and where the CTs "
        f"and reports were acquired (sites, time frame, consent): {NOT_STATED}."),
    "data_collection_type": ["Secondary data analysis of public releases (RadGenome-ChestCT, CT-RATE)"],
    "data_collection_raw_data": (
        "CT-RATE: chest CT volumes (NIfTI), radiology reports (ClinicalInformation_EN, Technique_EN, "
        "Findings_EN, Impressions_EN), per-volume metadata and predicted labels; RadGenome-ChestCT: region "
        "reports, case disorders, VQA files and per-structure masks of those volumes."),
    "data_collection_missing_data": (
        "CT-RATE's empty report field 'Not given.' is stored as null; a value a source does not give is "
        "null (e.g. is_abnormal where unknown, size_mm where no size is written); inputs a build rejected "
        "are rows of ingest_errors, with the reason."),
    "data_imputation_protocol": "None: this warehouse imputes no value; missing values are null.",
    "data_preprocessing_protocol": [
        "RadGenome-ChestCT images are released resampled to 3x1x1 mm with an identity affine, values in HU.",
        "CT-RATE volumes: HU = RescaleSlope x raw + RescaleIntercept and spacing from XYSpacing/ZSpacing of "
        "the metadata (the first release's NIfTI headers carry neither).",
        "Ages such as 036Y are stored as years (36); the source metadata is kept whole in cases.metadata_json.",
    ],
    "data_manipulation_protocol": (
        "Finding terms are normalised to one lower-case vocabulary (finding_terms); anatomy paths are mapped "
        "onto the regions of the anatomy DAG (anatomy, anatomy_closure)."),
    "data_annotation_protocol": [
        "RadGenome-ChestCT (as its authors describe it): CTs segmented into anatomical structures by a model "
        "(SAT, 197 categories), report sentences linked to regions of an anatomical hierarchy by an LLM, "
        "question-answer pairs generated from the structured findings by rules.",
        "RadGenome-ChestCT validation grounded region reports are released as manually verified.",
        "CT-RATE's labels of the 18 abnormality classes (case_labels.source = ct_rate_predicted) are "
        "predictions of a text classifier, not reader labels.",
        "Rows made by this project name their extractor (rules-<version>, vllm:<model>, totalsegmentator, ...).",
    ],
    "data_annotation_platform": [NOT_STATED],
    "data_annotation_analysis": [NOT_STATED],
    "annotations_per_item": NOT_STATED,
    "annotator_demographics": [NOT_STATED],
    "machine_annotation_tools": [
        "SAT (RadGenome-ChestCT masks)", "an LLM (RadGenome-ChestCT grounding of report sentences)",
        "CT-RATE's text classifier (predicted labels)",
        "this project's extractors, named per row in the extractor, source and mask_source columns"],
    "data_biases": [
        "The population is that of the source releases; its sampling (sites, scanners, demographics) is "
        f"{NOT_STATED}. cases.sex, cases.age and cases.manufacturer allow a cohort's make-up to be measured.",
        "Labels, grounding and masks are largely model output (see machine annotation tools) and carry "
        "those models' errors and biases.",
    ],
    "data_limitations": [
        "Automatic annotations (predicted labels, LLM grounding, model masks, rule-based findings and VQA) "
        "are not verified per row, except the released RadGenome-ChestCT validation region reports.",
        f"Acquisition protocol, time frame and clinical setting: {NOT_STATED}.",
        "Reports are in English (the _EN columns of CT-RATE).",
        "CT-RATE's licence (CC-BY-NC-SA-4.0) restricts every derived row to non-commercial use.",
        f"Suitability for clinical use: {NOT_STATED}; not validated by this project.",
    ],
    "data_use_cases": [
        "Research on 3D chest-CT vision-language models: grounded report generation, visual question "
        "answering, region-level retrieval and classification, the uses the source datasets were released for.",
    ],
    "data_social_impact": NOT_STATED,
    "personal_sensitive_information": [
        "Health data: chest CT images and radiology reports of patients.",
        "Demographics: patient sex and age in years (cases.sex, cases.age); the source metadata "
        "(cases.metadata_json) holds further DICOM-derived fields such as the study date and scanner.",
        f"De-identification of the released data: {NOT_STATED} in the files this warehouse reads.",
    ],
    "data_release_maintenance_plan": (
        "This file describes one export of a warehouse snapshot and is not maintained; updates of the data "
        "come from the RadGenome-ChestCT and CT-RATE releases and a new export."),
}


class CroissantError(WarehouseError):
    """Croissant metadata that cannot be written as asked (no tables, a non-empty target)."""


def croissant_metadata(wh: Warehouse, tables_dir: Path, base_dir: Path | None = None, *,
                       name: str | None = None, description: str | None = None) -> dict:
    """Croissant 1.0 JSON-LD (a dict) describing every ``<table>.parquet`` of `tables_dir`.

    `base_dir`: the folder croissant.json goes in (default: `tables_dir`'s parent); the files'
    contentUrls are relative to it. Tables are those of `schema.TABLES`, in its order."""
    import mlcroissant as mlc

    tables_dir = Path(tables_dir)
    base = Path(base_dir) if base_dir is not None else tables_dir.parent
    present = [t for t in schema.TABLES if (tables_dir / f"{t}.parquet").is_file()]
    if not present:
        raise CroissantError(f"{tables_dir} holds no table of the warehouse (<table>.parquet)",
                             hint="point it at a snapshot's or an export's tables/ folder")
    files, record_sets = [], []
    for table in present:
        path = tables_dir / f"{table}.parquet"
        file_id = Path(os.path.relpath(path, base)).as_posix()
        files.append(mlc.FileObject(
            id=file_id, name=path.name, content_url=file_id, encoding_formats=[mlc.EncodingFormat.PARQUET],
            sha256=_sha256(path), content_size=f"{path.stat().st_size} B",
            description=f"Table {table}: {schema.description(schema.TABLES[table])}"))
        record_sets.append(_record_set(mlc, table, file_id, pq.read_schema(path)))
    snapshot = wh.snapshot_id
    metadata = mlc.Metadata(
        name=name or f"radgenome-warehouse-{snapshot}",
        description=description or (
            f"Tables of radgenome-warehouse snapshot {snapshot}: grounded chest-CT data (cases, reports, "
            "sentences grounded to anatomical regions, findings, labels, VQA pairs, region statistics, "
            "the anatomy DAG) derived from RadGenome-ChestCT and CT-RATE."),
        cite_as=CITATION,
        license=[mlc.CreativeWork(name=f"{x['dataset']}: {x['licence']}", url=LICENCE_URLS.get(x["licence"]),
                                  description=f"Terms of {x['dataset']} ({x['url']}), which these rows derive from.")
                 for x in LICENCES],
        keywords=["chest CT", "radiology reports", "grounding", "visual question answering", "segmentation",
                  "RadGenome-ChestCT", "CT-RATE"],
        in_language=["en"],
        version=f"1.0.0+{_semver_build(snapshot)}",
        date_published=dt.datetime.now(dt.UTC).replace(microsecond=0),
        distribution=files, record_sets=record_sets,
        **RAI,
    )
    return metadata.to_json()


def write_croissant(wh: Warehouse, out_dir: Path, tables_dir: Path | None = None, **kwargs: Any) -> Path:
    """Write ``out_dir/croissant.json`` describing `tables_dir` (default ``out_dir/tables``); returns its path."""
    out_dir = Path(out_dir)
    jsonld = croissant_metadata(wh, tables_dir if tables_dir is not None else out_dir / TABLES, out_dir, **kwargs)
    path = out_dir / FILE_NAME
    path.write_text(json.dumps(jsonld, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def export_croissant(wh: Warehouse, out_dir: str | Path, **kwargs: Any) -> Path:
    """The snapshot's tables as ``OUT/tables/<table>.parquet`` (hard links where the file system allows,
    else copies) and ``OUT/croissant.json`` describing them; written in a folder beside OUT and renamed
    into place. OUT must be new or empty. Returns the path of croissant.json.

    A hard link shares the snapshot's file: replace an exported table, never edit it in place."""
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CroissantError(f"{out} exists and is not an empty folder", hint="choose a new or empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        (stage / TABLES).mkdir()
        for table in schema.TABLES:
            _place_table(wh, table, stage / TABLES / f"{table}.parquet")
        write_croissant(wh, stage, **kwargs)
        if out.is_dir():
            out.rmdir()
        os.rename(stage, out)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    return out / FILE_NAME


def _place_table(wh: Warehouse, table: str, target: Path) -> None:
    """The snapshot's own Parquet file (a bucket root's: fetched into the cache and checked first)."""
    source = wh.table_file(table)
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, target)


def _record_set(mlc: Any, table: str, file_id: str, file_schema: pa.Schema) -> Any:
    table_schema = schema.TABLES[table]
    fields = []
    for column in table_schema:
        if column.name not in file_schema.names:
            continue
        data_type, repeated = _data_type(mlc, column.type)
        fields.append(mlc.Field(
            id=f"{table}/{column.name}", name=column.name, description=schema.description(column),
            data_types=[data_type], repeated=repeated or None,
            source=mlc.Source(file_object=file_id, extract=mlc.Extract(column=column.name))))
    return mlc.RecordSet(id=table, name=table, description=schema.description(table_schema), fields=fields)


def _data_type(mlc: Any, arrow_type: pa.DataType) -> tuple[Any, bool]:
    """Croissant data type of an Arrow type, and whether the column is a list of it (a repeated field)."""
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return _data_type(mlc, arrow_type.value_type)[0], True
    t = mlc.DataType
    types = {pa.string(): t.TEXT, pa.large_string(): t.TEXT, pa.bool_(): t.BOOL,
             pa.int8(): t.INT8, pa.int16(): t.INT16, pa.int32(): t.INT32, pa.int64(): t.INT64,
             pa.uint8(): t.UINT8, pa.uint16(): t.UINT16, pa.uint32(): t.UINT32, pa.uint64(): t.UINT64,
             pa.float16(): t.FLOAT16, pa.float32(): t.FLOAT32, pa.float64(): t.FLOAT64}
    if arrow_type in types:
        return types[arrow_type], False
    if pa.types.is_timestamp(arrow_type):
        return t.DATETIME, False
    if pa.types.is_date(arrow_type):
        return t.DATE, False
    raise CroissantError(f"no Croissant data type for the Arrow type {arrow_type}",
                         hint="add it to warehouse/exports/croissant.py")


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _semver_build(snapshot_id: str) -> str:
    """The snapshot id as semver build metadata (dot-separated [0-9A-Za-z-] identifiers)."""
    return ".".join(p for p in re.split(r"[^0-9A-Za-z-]+", snapshot_id) if p) or "snapshot"
