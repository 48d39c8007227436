"""`warehouse.core.release_format`: the released RadGenome-ChestCT / CT-RATE column tables agree with
`warehouse.core.schema` and with the released files, `NOT_GIVEN` is read and written as null, and the
licences name both datasets."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from warehouse.core import schema
from warehouse.core.release_format import (
    CT_RATE_FILES,
    CT_RATE_LABEL_SOURCE,
    LICENCES,
    NOT_GIVEN,
    RADGENOME_FILES,
    REGION_FILE,
    REGION_FILES_EXTRACTOR,
    RELEASE_EXTRACTOR,
    RELEASED_SOURCES,
    ReleasedFile,
)

ALL_FILES: list[ReleasedFile] = [*RADGENOME_FILES.values(), REGION_FILE, *CT_RATE_FILES.values()]
IDS = [f"{f.folder}/{f.kind}" for f in ALL_FILES]


@pytest.mark.parametrize("spec", ALL_FILES, ids=IDS)
def test_every_mapped_column_exists_in_the_schema(spec):
    assert spec.table in schema.TABLES
    names = schema.TABLES[spec.table].names
    missing = [(released, col) for released, col in spec.columns if col not in names]
    assert not missing, f"{spec.kind}: released columns mapped onto no {spec.table} column: {missing}"


@pytest.mark.parametrize("spec", ALL_FILES, ids=IDS)
def test_headers_are_unique_and_start_with_the_case(spec):
    assert len(set(spec.header)) == len(spec.header) == len(spec.columns)
    assert spec.columns[0][1] == "case_id" and spec.header[0] in ("Volumename", "VolumeName")
    assert all(c and c == c.strip() for c in spec.header)


def test_kinds_are_keys_and_file_names_follow_the_split():
    for table in (RADGENOME_FILES, CT_RATE_FILES):
        assert all(kind == f.kind for kind, f in table.items())
    assert RADGENOME_FILES["vqa_size"].file_name("train") == "train_vqa_size.csv"
    assert RADGENOME_FILES["vqa_size"].file_name("validation") == "validation_vqa_size.csv"
    labels = CT_RATE_FILES["predicted_labels"]
    assert (labels.file_name("train"), labels.file_name("validation")) == (
        "train_predicted_labels.csv", "valid_predicted_labels.csv")  # CT-RATE's own prefix
    names = [f.file_name(s) for f in RADGENOME_FILES.values() for s in ("train", "validation")]
    assert len(set(names)) == len(names)


def test_vqa_files_are_the_schemas_vqa_types():
    vqa = [f for f in RADGENOME_FILES.values() if f.table == "vqa"]
    assert sorted(f.vqa_type for f in vqa) == sorted(schema.VQA_TYPES)
    assert all(f.vqa_type is None for f in ALL_FILES if f.table != "vqa")
    assert all(f.kind == f"vqa_{f.vqa_type}" for f in vqa if f.vqa_type != "disorders")


def test_ct_rate_label_columns_are_its_18_classes_in_order():
    labels = CT_RATE_FILES["predicted_labels"]
    assert labels.header[1:] == list(schema.CT_RATE_LABELS)
    assert {col for _, col in labels.columns[1:]} == {"value"}  # one case_labels row per class
    assert CT_RATE_FILES["reports"].header == [
        "VolumeName", "ClinicalInformation_EN", "Technique_EN", "Findings_EN", "Impressions_EN"]


def test_released_sources_are_the_extractor_and_label_names():
    assert RELEASED_SOURCES == {RELEASE_EXTRACTOR, REGION_FILES_EXTRACTOR, CT_RATE_LABEL_SOURCE}
    assert len(RELEASED_SOURCES) == 3


def test_licences_name_both_datasets():
    assert [x["dataset"] for x in LICENCES] == ["RadGenome-ChestCT", "CT-RATE"]
    for x in LICENCES:
        assert set(x) == {"dataset", "licence", "url"} and all(x.values())
        assert x["url"].startswith("https://huggingface.co/datasets/")
    assert {x["licence"] for x in LICENCES} == {"CC-BY-4.0", "CC-BY-NC-SA-4.0"}  # CT-RATE: non-commercial


def test_not_given_is_read_as_null_and_written_for_null(tmp_path):
    """The one constant both ways: the export writes it for a null field, the readers read it as null."""
    from ingest.sources.release_csv import ErrorSink, report_rows
    from warehouse.exports.bundle_tables import write_reports_csv

    assert NOT_GIVEN == "Not given."
    columns = [c for _, c in CT_RATE_FILES["reports"].columns]
    rows = [dict.fromkeys(columns, None) | {"case_id": "train_1_a_1.nii.gz", "findings": "A nodule."},
            dict(zip(columns, ["train_2_a_1.nii.gz", "Cough.", "Plain.", "Normal.", "None."], strict=True))]
    path = tmp_path / "reports.csv"
    write_reports_csv(path, rows)
    with open(path, newline="", encoding="utf-8") as f:
        written = list(csv.reader(f))
    assert written[0] == CT_RATE_FILES["reports"].header
    assert written[1] == ["train_1_a_1.nii.gz", NOT_GIVEN, NOT_GIVEN, "A nodule.", NOT_GIVEN]
    errors = ErrorSink("test")
    back = {name: fields for _, name, fields in report_rows(path, errors)}
    assert not errors.rows
    assert back == {r["case_id"]: {c: r[c] for c in columns[1:]} for r in rows}
    path.write_text("VolumeName,Findings_EN\nx_1_a_1.nii.gz,  Not given.  \n")  # padded: still null
    assert [f for _, _, f in report_rows(path, errors, required=["VolumeName"])][0]["findings"] is None


def test_released_files_have_these_headers(shared_data: Path):
    """The sample of the real release (../shared/data) has the columns the tables say."""
    checked = 0
    for spec in RADGENOME_FILES.values():
        path = shared_data / "radgenome" / spec.file_name("train")
        if path.is_file():
            assert _header(path) == spec.header, path
            checked += 1
    for path in sorted((shared_data / "radgenome_validation_regions").glob("*.csv")):
        assert _header(path) == REGION_FILE.header, path
        checked += 1
    metadata = shared_data / "ct_rate" / "validation_metadata.csv"
    if metadata.is_file():
        assert _header(metadata)[:1] == CT_RATE_FILES["metadata"].header
    assert checked > 0, "no released CSV found in the sample"


def _header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f))
