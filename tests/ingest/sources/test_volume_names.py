"""Volume names and the folder layouts of the two releases."""

from __future__ import annotations

import pytest

from ingest.sources.volume_names import image_case_id, mask_member, parse, split_of_file, try_parse
from warehouse.core.errors import IngestError


@pytest.mark.parametrize("name, split, patient_id, scan, rec", [
    ("train_1_a_1.nii.gz", "train", "train_1", "a", 1),
    ("valid_1564_c_2.nii.gz", "validation", "valid_1564", "c", 2),
    ("train_1002_b_1", "train", "train_1002", "b", 1),
    ("train_20000_ab_12.nii", "train", "train_20000", "ab", 12),
])
def test_parse(name, split, patient_id, scan, rec):
    vol = parse(name)
    assert (vol.split, vol.patient_id, vol.scan, vol.reconstruction) == (split, patient_id, scan, rec)
    assert vol.case_id == f"{patient_id}_{scan}_{rec}.nii.gz"
    assert vol.as_row() == {"patient_id": patient_id, "scan": scan, "scan_id": f"{patient_id}_{scan}",
                            "reconstruction": rec, "split": split}


@pytest.mark.parametrize("bad", ["test_1_a_1.nii.gz", "train_1_1.nii.gz", "train_x_a_1.nii.gz", "", "train_1_A_1"])
def test_parse_refuses_other_names(bad):
    with pytest.raises(IngestError, match="not a CT-RATE volume name"):
        parse(bad)
    assert try_parse(bad) is None


def test_release_folders_differ_by_the_scan_underscore():
    vol = parse("train_1002_b_1.nii.gz")
    assert str(vol.ct_rate_path()) == "train/train_1002/train_1002_b/train_1002_b_1.nii.gz"
    assert str(vol.radgenome_image_path()) == "train_preprocessed/train_1002/train_1002b/train_1002_b_1.nii.gz"
    assert str(parse("valid_7_a_1").mask_folder("anatomy")) == "valid_anatomy_mask/seg_valid_7_a_1"


@pytest.mark.parametrize("member, expected", [
    ("train_region_mask/seg_train_1_a_1/lung.nii.gz", ("train_1_a_1.nii.gz", "lung")),
    ("./valid_anatomy_mask/seg_valid_3_a_1/left lung upper lobe.nii.gz",
     ("valid_3_a_1.nii.gz", "left lung upper lobe")),
    ("seg_train_2_b_1/trachea and bronchie.nii", ("train_2_b_1.nii.gz", "trachea and bronchie")),
    ("train_region_mask/seg_train_1_a_1/", None),
    ("train_region_mask/lung.nii.gz", None),
    ("train_region_mask/seg_train_1_a_1/sub/lung.nii.gz", None),
])
def test_mask_member(member, expected):
    assert mask_member(member) == expected


@pytest.mark.parametrize("name, split", [
    ("train_vqa_size.csv", "train"), ("validation_region_report.csv", "validation"),
    ("valid_predicted_labels.csv", "validation"), ("vqa_size.csv", None), ("lung.csv", None),
])
def test_split_of_file(name, split):
    assert split_of_file(name) == split


def test_image_case_id():
    assert image_case_id("dataset/train_preprocessed/train_1/train_1a/train_1_a_1.nii.gz") == "train_1_a_1.nii.gz"
    assert image_case_id("dataset/train_preprocessed/README.nii.gz") is None
