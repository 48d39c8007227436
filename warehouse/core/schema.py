"""Every table of the warehouse as a pyarrow schema, each column documented.

This is the one schema module: ingest jobs build rows against it, snapshots write
Parquet with it, the engine exposes it as views and the README's table list is
generated from it. A column's description lives in its field metadata
(``b"description"``); `tests/warehouse/core/test_schema.py` fails when one is missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pyarrow as pa

_DESC = b"description"


def col(name: str, type_: pa.DataType, description: str, nullable: bool = True) -> pa.Field:
    """A documented column."""
    return pa.field(name, type_, nullable=nullable, metadata={_DESC: description.encode()})


def table(description: str, *fields: pa.Field, key: tuple[str, ...],
          cluster: tuple[str, ...] | None = None) -> pa.Schema:
    """A documented table; `key` is the column order rows are sorted by when written (Parquet),
    `cluster` the order of the engine's copy (tables.duckdb) when it differs: rows its common
    filters select lie together, and DuckDB's zone maps skip the rest."""
    return pa.schema(fields, metadata={_DESC: description.encode(), b"key": ",".join(key).encode(),
                                       b"cluster": ",".join(cluster or key).encode()})


STR, I8, I16, I32, I64, F32, F64, BOOL = (pa.string(), pa.int8(), pa.int16(), pa.int32(), pa.int64(),
                                          pa.float32(), pa.float64(), pa.bool_())
LIST_STR, LIST_I32 = pa.list_(pa.string()), pa.list_(pa.int32())

CASES = table(
    "One row per CT volume.",
    col("case_id", STR, "Volume name as released, e.g. train_1_a_1.nii.gz (CT-RATE's VolumeName).", False),
    col("patient_id", STR, "Patient part of the volume name: train_1 (split and patient number)."),
    col("scan", STR, "Scan letter within the patient: a, b, ... (only unique with the patient: see scan_id)."),
    col("scan_id", STR, "The scan (study) across patients: patient and scan letter, e.g. train_1_a; "
                        "count(DISTINCT scan_id) counts scans, count(*) counts volumes (reconstructions)."),
    col("reconstruction", I16, "Reconstruction number within the scan: 1, 2, ..."),
    col("split", STR, "train or validation."),
    col("age", I16, "Patient age in years (CT-RATE PatientAge 036Y -> 36)."),
    col("sex", STR, "M or F (CT-RATE PatientSex)."),
    col("manufacturer", STR, "Scanner manufacturer."),
    col("spacing_x", F64, "Voxel spacing along the first array axis, mm."),
    col("spacing_y", F64, "Voxel spacing along the second array axis, mm."),
    col("spacing_z", F64, "Voxel spacing along the third array axis (slices), mm."),
    col("shape_x", I32, "Voxels along the first array axis."),
    col("shape_y", I32, "Voxels along the second array axis."),
    col("shape_z", I32, "Voxels along the third array axis."),
    col("orientation", STR, "Axis codes of the stored array (nibabel aff2axcodes), e.g. LPS."),
    col("has_image", BOOL, "The CT volume is in the array store."),
    col("has_masks", BOOL, "Region masks are in the array store."),
    col("metadata_json", STR, "Every column of the source metadata (CT-RATE's 44) as a JSON object."),
    col("source", STR, "Which source produced the case: radgenome, ct_rate, folder, demo."),
    key=("case_id",),
)

REPORTS = table(
    "One row per radiology report (CT-RATE's columns; 'Not given.' is stored as null).",
    col("case_id", STR, "The case the report belongs to.", False),
    col("clinical_information", STR, "ClinicalInformation_EN."),
    col("technique", STR, "Technique_EN."),
    col("findings", STR, "Findings_EN."),
    col("impressions", STR, "Impressions_EN."),
    col("source", STR, "Which source produced the report."),
    key=("case_id",),
)

SENTENCES = table(
    "One row per grounded sentence x region (RadGenome's region_report rows).",
    col("sentence_id", STR, "Deterministic id derived from the row's content.", False),
    col("case_id", STR, "The case.", False),
    col("region_id", I32, "Region of the anatomy DAG; null for the whole-report row."),
    col("anatomy_path", STR, "RadGenome '/' path, e.g. lung/lung/left lung; '' for the whole report."),
    col("ordinal", I32, "Order of the row within the case (report order)."),
    col("text", STR, "The sentence, or the region's paragraph for a top-level row."),
    col("is_abnormal", BOOL, "The text reports at least one present finding; null where unknown."),
    col("extractor", STR, "What produced the row: radgenome-release, rules-<version>, vllm:<model>, ..."),
    key=("case_id", "ordinal", "sentence_id"),
)

FINDINGS = table(
    "One row per finding mention.",
    col("finding_id", STR, "Deterministic id derived from the row's content.", False),
    col("sentence_id", STR, "The sentence the finding was read from; null for released VQA-derived rows."),
    col("case_id", STR, "The case.", False),
    col("region_id", I32, "Region of the anatomy DAG the finding lies in."),
    col("anatomy_path", STR, "RadGenome '/' path of that region."),
    col("term", STR, "Normalised finding term (one vocabulary, lower case), e.g. pulmonary nodule."),
    col("raw_text", STR, "The words the term was read from."),
    col("sentence", STR, "The sentence the mention was read from (its `sentences` row may be a whole paragraph)."),
    col("status", STR, "present, absent or uncertain."),
    col("size_mm", F64, "Largest dimension in mm where a size is given."),
    col("size_text", STR, "The size as written, e.g. 12x8 mm."),
    col("laterality", STR, "left, right, bilateral or null."),
    col("ct_rate_label", STR, "The CT-RATE class (one of the 18, exact spelling) this mention is evidence for; "
                              "null where none. A mention that is evidence for two classes has a row for each."),
    col("extractor", STR, "What produced the row."),
    key=("case_id", "finding_id"),
    cluster=("status", "term", "case_id", "finding_id"),  # present findings of a term lie together
)

CASE_LABELS = table(
    "One row per case x label: the 18 CT-RATE classes and the case-level disorders.",
    col("case_id", STR, "The case.", False),
    col("kind", STR, "ct_rate (the 18 classes) or disorder (RadGenome's case disorders).", False),
    col("label", STR, "Class name (CT-RATE spelling) or disorder term.", False),
    col("value", I8, "1 present, 0 absent."),
    col("ordinal", I32, "Position in the source list (the CT-RATE class order, or the disorder list)."),
    col("source", STR, "ct_rate_predicted, radgenome-release, rules-<version>, vllm:<model>, ..."),
    key=("case_id", "kind", "ordinal", "label"),
    cluster=("kind", "label", "case_id"),
)

VQA = table(
    "One row per question-answer pair (RadGenome's five VQA types).",
    col("vqa_id", STR, "Deterministic id derived from the row's content.", False),
    col("case_id", STR, "The case.", False),
    col("type", STR, "abnormality, presence, location, size or disorders.", False),
    col("question", STR, "The question, from RadGenome's templates (deterministic choice)."),
    col("answer", STR, "The answer in the released form: a list, Yes./No., a path, 50 mm, ..."),
    col("region_id", I32, "Region the pair is about; its mask is one call away."),
    col("anatomy_path", STR, "RadGenome '/' path of that region ('' for disorders)."),
    col("term", STR, "The abnormality or finding text the question names (released spelling)."),
    col("terms", LIST_STR, "The row's released phrases (the answer list of abnormality and disorders rows, "
                           "else `term`) in the findings vocabulary (finding_terms.term), in order, once each: "
                           "'nonspecific nodules' -> [pulmonary nodule]; [] for 'no findings' or no vocabulary term."),
    col("size_mm", F64, "For size questions: the answer in mm (largest value of a range)."),
    col("ordinal", I32, "Order within the case and type (the released row order)."),
    col("extractor", STR, "What produced the row."),
    key=("case_id", "type", "ordinal", "vqa_id"),
)

REGION_STATS = table(
    "One row per case x region with a mask (empty masks included, voxels = 0).",
    col("case_id", STR, "The case.", False),
    col("region_id", I32, "Region of the anatomy DAG.", False),
    col("mask_source", STR, "radgenome, totalsegmentator, builtin, monai, demo, ..."),
    col("voxels", I64, "Voxels inside the mask."),
    col("volume_ml", F64, "Mask volume in millilitres."),
    *(col(f"bbox_{e}_{a}", I32,
          f"Bounding box {e} along axis {a}, voxels ({'inclusive' if e == 'min' else 'exclusive'}).")
      for e in ("min", "max") for a in "xyz"),
    *(col(f"bbox_{e}_mm_{a}", F64, f"Bounding box {e} corner along world axis {a}, mm.")
      for e in ("min", "max") for a in "xyz"),
    *(col(f"centroid_mm_{a}", F64, f"Centroid along world axis {a}, mm.") for a in "xyz"),
    col("hu_mean", F64, "Mean HU inside the mask (null without an image)."),
    col("hu_std", F64, "Standard deviation of HU inside the mask."),
    # region first: "cases whose <region> volume ..." then reads 1 of ~20 row groups at paper scale
    key=("region_id", "case_id", "mask_source"),
)

ANATOMY = table(
    "One row per region of the anatomy DAG (from warehouse/core/anatomy.toml).",
    col("region_id", I32, "Stable id derived from the name.", False),
    col("name", STR, "RadGenome's spelling, e.g. trachea and bronchie.", False),
    col("path", STR, "Canonical '/' path (the first released path, else derived from the first parent)."),
    col("paths", LIST_STR, "Every '/' path RadGenome's files use for the region."),
    col("parent_ids", LIST_I32, "Direct parents (two for left lung lower lobe)."),
    col("level", I16, "Shortest distance from a top-level region (0 for the 10 coarse regions and others)."),
    col("is_leaf", BOOL, "The region has no children."),
    col("is_top_level", BOOL, "One of RadGenome's top-level regions."),
    col("top_level", STR, "Name of the top-level region of the canonical path."),
    col("synonyms", LIST_STR, "Phrases that name the region in report text."),
    col("radgenome_masks", LIST_STR, "RadGenome per-structure mask names."),
    col("totalsegmentator", LIST_STR, "TotalSegmentator v2 class names."),
    col("sat", LIST_STR, "SAT terms."),
    key=("region_id",),
)

ANATOMY_CLOSURE = table(
    "Transitive closure of the DAG: every (ancestor, descendant) pair, itself at depth 0.",
    col("ancestor_id", I32, "The ancestor region.", False),
    col("descendant_id", I32, "A region under it (or itself).", False),
    col("depth", I16, "Shortest number of edges from ancestor to descendant.", False),
    key=("ancestor_id", "descendant_id"),
)

FINDING_TERMS = table(
    "One row per term of the findings vocabulary (warehouse/core/finding_terms.toml): what findings.term "
    "and vqa.terms hold.",
    col("term", STR, "The normalised term, lower case.", False),
    col("synonyms", LIST_STR, "Phrases in report text that the term stands for (plurals fold when matching)."),
    col("region", STR, "The region of the anatomy DAG a mention lies in when its sentence names none."),
    col("region_id", I32, "That region's id."),
    col("top_level", STR, "The top-level region of that region."),
    col("ct_rate_labels", LIST_STR, "CT-RATE classes a present mention of the term can be evidence for "
                                    "(some only in the right place: a nodule of the thyroid is no Lung nodule)."),
    key=("term",),
)

INGEST_ERRORS = table(
    "One row per rejected input; a build never stops for one bad case.",
    col("source", STR, "Source being ingested.", False),
    col("case_id", STR, "The case, where known."),
    col("stage", STR, "Stage that failed: read, masks, image, report, structure, ..."),
    col("file", STR, "The file (and tar member) that was rejected."),
    col("location", STR, "Line, row or member inside the file, where known."),
    col("error", STR, "What is wrong and what to do about it.", False),
    key=("source", "case_id", "file", "location", "error"),
)

TABLES: dict[str, pa.Schema] = {
    "cases": CASES,
    "reports": REPORTS,
    "sentences": SENTENCES,
    "findings": FINDINGS,
    "case_labels": CASE_LABELS,
    "vqa": VQA,
    "region_stats": REGION_STATS,
    "anatomy": ANATOMY,
    "anatomy_closure": ANATOMY_CLOSURE,
    "finding_terms": FINDING_TERMS,
    "ingest_errors": INGEST_ERRORS,
}

# Tables of the project's own data files, the same in every snapshot (no case_id): exports write them whole.
REFERENCE_TABLES: tuple[str, ...] = ("anatomy", "anatomy_closure", "finding_terms")

# CT-RATE's 18 abnormality classes, in the order of its label files.
CT_RATE_LABELS: tuple[str, ...] = (
    "Medical material", "Arterial wall calcification", "Cardiomegaly", "Pericardial effusion",
    "Coronary artery wall calcification", "Hiatal hernia", "Lymphadenopathy", "Emphysema", "Atelectasis",
    "Lung nodule", "Lung opacity", "Pulmonary fibrotic sequela", "Pleural effusion",
    "Mosaic attenuation pattern", "Peribronchial thickening", "Consolidation", "Bronchiectasis",
    "Interlobular septal thickening",
)

VQA_TYPES: tuple[str, ...] = ("abnormality", "presence", "location", "size", "disorders")
FINDING_STATUSES: tuple[str, ...] = ("present", "absent", "uncertain")


def description(schema_or_field: pa.Schema | pa.Field) -> str:
    """The description stored with a table or column."""
    return (schema_or_field.metadata or {}).get(_DESC, b"").decode()


def sort_key(name: str) -> list[str]:
    """Columns a table's rows are sorted by when written (deterministic output)."""
    return TABLES[name].metadata[b"key"].decode().split(",")


def cluster_key(name: str) -> list[str]:
    """Columns the engine's copy of a table (tables.duckdb) is ordered by."""
    return TABLES[name].metadata[b"cluster"].decode().split(",")


def to_table(name: str, rows: Iterable[Mapping] | pa.Table) -> pa.Table:
    """Rows (dicts or a table) as an Arrow table of `name`'s exact schema; unknown keys are an error."""
    schema = TABLES[name]
    if isinstance(rows, pa.Table):
        extra = set(rows.column_names) - set(schema.names)
        if extra:
            raise ValueError(f"table {name!r} has no columns {sorted(extra)}")
        cols = {f.name: (rows.column(f.name).cast(f.type) if f.name in rows.column_names
                         else pa.nulls(rows.num_rows, f.type)) for f in schema}
        return _normalised(name, pa.table(cols, schema=schema))
    rows = list(rows)
    for r in rows:
        extra = set(r) - set(schema.names)
        if extra:
            raise ValueError(f"table {name!r} has no columns {sorted(extra)}")
    return _normalised(name, pa.Table.from_pylist(rows, schema=schema))


LOWER_CASE = {"findings": ("term",)}  # columns kept in lower case, so queries compare them as stored


def _normalised(name: str, table: pa.Table) -> pa.Table:
    import pyarrow.compute as pc

    for column in LOWER_CASE.get(name, ()):
        i = table.schema.get_field_index(column)
        table = table.set_column(i, table.schema.field(i), pc.utf8_lower(table.column(i)))
    return table


def empty(name: str) -> pa.Table:
    """An empty table of `name`'s schema."""
    return TABLES[name].empty_table()
