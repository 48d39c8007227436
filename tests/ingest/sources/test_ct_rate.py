"""CT-RATE's files: metadata parsing, labels and reports, and volumes in HU whichever header they have."""

from __future__ import annotations

import gzip
import json
import struct

import nibabel as nib
import numpy as np
import pytest

from ingest.sources.ct_rate import (
    case_columns,
    parse_age,
    parse_spacing,
    read_labels,
    read_reports,
    read_volume,
)
from ingest.sources.release_csv import ErrorSink
from warehouse.core.errors import IngestError
from warehouse.core.schema import CT_RATE_LABELS


@pytest.mark.parametrize("meta, spacing", [
    ({"XYSpacing": "[0.341796875, 0.341796875]", "ZSpacing": "1.5"}, (0.341796875, 0.341796875, 1.5)),
    ({"XYSpacing": "[0.7, 0.6]", "ZSpacing": "1"}, (0.7, 0.6, 1.0)),
    ({"XYSpacing": "[nan, nan]", "ZSpacing": "1"}, None), ({"XYSpacing": "", "ZSpacing": "1"}, None),
    ({"XYSpacing": "[0.7, 0.7]", "ZSpacing": ""}, None), ({"XYSpacing": "[0.7, 0.7]", "ZSpacing": "nan"}, None),
    ({"XYSpacing": "[0.7]", "ZSpacing": "1"}, None), ({"XYSpacing": "[0, 0.7]", "ZSpacing": "1"}, None), ({}, None),
])
def test_parse_spacing(meta, spacing):
    assert parse_spacing(meta) == spacing


@pytest.mark.parametrize("text, age", [("036Y", 36), ("089Y", 89), ("018M", 1), ("", None), (None, None),
                                       ("abc", None)])
def test_parse_age(text, age):
    assert parse_age(text) == age


def test_case_columns_keep_every_released_column_as_text():
    meta = {"VolumeName": "valid_1_a_1.nii.gz", "PatientSex": "F", "PatientAge": "052Y", "Manufacturer": "PNMS",
            "XYSpacing": "[0.5, 0.5]", "ZSpacing": "2", "Rows": "512", "Columns": "500", "NumberofSlices": "90",
            "RescaleIntercept": "-8192", "CTDIvol": "7.830488795", "SeriesDescription": ""}
    row = case_columns(meta)
    assert (row["age"], row["sex"], row["manufacturer"]) == (52, "F", "PNMS")
    assert (row["spacing_x"], row["spacing_z"], row["shape_x"], row["shape_y"], row["shape_z"]) == (0.5, 2.0, 500,
                                                                                                   512, 90)
    assert json.loads(row["metadata_json"]) == meta and list(json.loads(row["metadata_json"])) == list(meta)


def test_labels_and_reports(tmp_path):
    header = "VolumeName," + ",".join(CT_RATE_LABELS)
    ones = ",".join("1" if i % 3 == 0 else "0" for i in range(18))
    path = tmp_path / "valid_predicted_labels.csv"
    path.write_text(f"{header}\nvalid_1_a_1.nii.gz,{ones}\nvalid_2_a_1.nii.gz,{ones.replace('1', '2', 1)}\n"
                    f"valid_1_a_1.nii.gz,{ones}\n")
    errors, seen = ErrorSink("radgenome"), set()
    rows = next(read_labels(path, errors, seen))["case_labels"]
    assert [(r["label"], r["value"], r["ordinal"]) for r in rows[:2]] == [("Medical material", 1, 0),
                                                                        ("Arterial wall calcification", 0, 1)]
    assert len(rows) == 18 and [e["location"] for e in errors.rows] == ["line 3", "line 4"]
    assert "must be 0 or 1" in errors.rows[0]["error"] and "duplicate" in errors.rows[1]["error"]
    reports = tmp_path / "validation_reports.csv"
    reports.write_text("VolumeName,ClinicalInformation_EN,Technique_EN,Findings_EN,Impressions_EN\n"
                       'valid_1_a_1.nii.gz,Not given.,"Thin, axial",Normal.,\n')
    row = next(read_reports(reports, errors, set()))["reports"][0]
    assert (row["clinical_information"], row["technique"], row["impressions"]) == (None, "Thin, axial", "")


def _meta(intercept: str, spacing: str = "[0.5, 0.75]") -> dict:
    return {"RescaleSlope": "1", "RescaleIntercept": intercept, "XYSpacing": spacing, "ZSpacing": "2"}


@pytest.fixture
def hu() -> np.ndarray:
    return np.random.default_rng(0).integers(-1024, 2000, (6, 5, 4)).astype(np.int16)


@pytest.mark.parametrize("intercept", ["-1024", "-8192"])
def test_a_bare_volume_takes_rescale_and_spacing_from_the_metadata(tmp_path, hu, intercept):
    img = nib.Nifti1Image((hu - int(intercept)).astype(np.uint16), None)
    nib.save(img, tmp_path / "v.nii.gz")
    ct = read_volume(tmp_path / "v.nii.gz", _meta(intercept))
    assert np.array_equal(ct.hu, hu) and ct.axcodes == "LPS"
    assert ct.spacing == pytest.approx((0.5, 0.75, 2.0))


def test_a_header_with_rescale_and_geometry_wins_over_the_metadata(tmp_path, hu):
    raw = bytearray(nib.Nifti1Image((hu + 1024).astype(np.int16), np.diag([-0.8, -0.8, 3.0, 1.0])).to_bytes())
    struct.pack_into("<ff", raw, 112, 1.0, -1024.0)  # scl_slope, scl_inter as a scanner writes them
    (tmp_path / "v.nii.gz").write_bytes(gzip.compress(bytes(raw)))
    ct = read_volume(tmp_path / "v.nii.gz", _meta("-8192", spacing="[nan, nan]"))
    assert np.array_equal(ct.hu, hu) and ct.spacing == pytest.approx((0.8, 0.8, 3.0))


def test_a_bare_volume_without_metadata_is_refused_with_what_to_do(tmp_path, hu):
    nib.save(nib.Nifti1Image((hu + 1024).astype(np.uint16), None), tmp_path / "v.nii.gz")
    with pytest.raises(IngestError, match="no rescale") as e:
        read_volume(tmp_path / "v.nii.gz", None)
    assert "--ct-rate" in e.value.hint
    with pytest.raises(IngestError, match="no geometry"):
        read_volume(tmp_path / "v.nii.gz", _meta("-1024", spacing=""))


def test_values_already_in_hu_are_not_rescaled_twice(tmp_path, hu):
    nib.save(nib.Nifti1Image(hu, np.diag([-0.7, -0.7, 1.5, 1.0])), tmp_path / "v.nii.gz")
    ct = read_volume(tmp_path / "v.nii.gz", _meta("-8192"))
    assert np.array_equal(ct.hu, hu) and ct.spacing == pytest.approx((0.7, 0.7, 1.5))
