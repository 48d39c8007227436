"""End to end: the real CTs (NIfTI and a DICOM series) and real report texts through `ingest folder`."""

from __future__ import annotations

import json

import duckdb
import nibabel as nib
import numpy as np
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from ingest.runner import build
from ingest.sources.folder import FolderSource
from tests.fixtures.cli import app_of
from tests.fixtures.folder_data import dev_reports, image_folder, mask_folder, reports_csv, torchscript_model
from warehouse.cli import pipeline
from warehouse.core.anatomy import anatomy
from warehouse.core.errors import IngestError
from warehouse.store.arrays import ArrayStore
from warehouse.store.snapshot import open_snapshot

CASES = ["abdomen_small.nii.gz", "chest_cta.nii.gz", "chest_crop", "lung1.nii.gz"]


@pytest.fixture(scope="module")
def built(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("folder")
    images = image_folder(shared_data, tmp, dicom=("chest_crop",))
    (images / "broken.nii.gz").write_bytes(b"\x1f\x8b\x08\x00 not a whole file")
    reports = reports_csv(shared_data, tmp / "reports.csv", [*CASES, "ghost.nii.gz"])
    model = torchscript_model(tmp / "air.ts", kind="air", spacing=[4.0, 4.0, 4.0], roi_size=[64, 64, 64])
    specs = ["builtin", f"import:{mask_folder(shared_data, tmp)}", f"monai:{model}"]
    summary = build(FolderSource(images, reports, specs), tmp / "wh", runner="pool", workers=2, progress=False)
    snap = open_snapshot(tmp / "wh")
    tables = {n: pq.read_table(snap.table_path(n)).to_pylist() for n in
              ("cases", "reports", "region_stats", "sentences", "findings", "vqa", "ingest_errors")}
    return summary, snap, tables


def _name(region_id: int) -> str:
    return anatomy().get(region_id).name


def test_every_good_case_completes_and_bad_inputs_are_rows(built):
    summary, _, t = built
    assert summary.cases == 5 and summary.failed == 1
    assert sorted(r["case_id"] for r in t["cases"]) == sorted(CASES)
    errors = {(e["case_id"], e["stage"]): e for e in t["ingest_errors"]}
    assert errors[("broken.nii.gz", "read")]["error"].startswith("cannot read NIfTI")
    assert "has no image" in errors[("ghost.nii.gz", "report")]["error"]
    lesion = errors[("lung1.nii.gz", "masks")]
    assert "lesion" in lesion["error"] and lesion["file"].endswith("lesion.nii.gz")
    assert summary.errors_by_stage == {"read": 1, "report": 1, "masks": 1}


def test_cases_record_grid_orientation_and_dicom_tags(built):
    cases = {r["case_id"]: r for r in built[2]["cases"]}
    assert all(r["orientation"] == "LPS" and r["has_image"] and r["has_masks"] for r in cases.values())
    assert (cases["lung1.nii.gz"]["shape_x"], cases["lung1.nii.gz"]["shape_z"]) == (512, 48)
    assert cases["lung1.nii.gz"]["spacing_z"] == pytest.approx(5.0)
    assert json.loads(cases["abdomen_small.nii.gz"]["metadata_json"])["original_orientation"] == "RAS"
    crop = cases["chest_crop"]
    assert json.loads(crop["metadata_json"])["format"] == "dicom"
    assert (crop["age"], crop["sex"], crop["manufacturer"]) == (61, "F", "TestVendor")


def test_region_statistics_from_each_provider(built, shared_data):
    stats = built[2]["region_stats"]
    by = {(r["case_id"], _name(r["region_id"]), r["mask_source"]): r for r in stats}
    assert {r["mask_source"] for r in stats} == {"builtin", "totalsegmentator", "imported", "monai"}
    for case in CASES:
        for region in ("left lung", "right lung", "lung", "body"):
            assert (case, region, "builtin") in by
    assert by[("abdomen_small.nii.gz", "lung", "totalsegmentator")]["volume_ml"] == pytest.approx(110.646)
    assert 2000 < by[("chest_cta.nii.gz", "lung", "builtin")]["volume_ml"] < 7000
    heart = by[("chest_cta.nii.gz", "heart", "imported")]
    assert heart["voxels"] > 0 and 100 < heart["hu_mean"] < 600  # an angiography: contrast-filled heart
    pa = by[("chest_crop", "pulmonary artery", "totalsegmentator")]  # the DICOM case takes a NIfTI mask
    ref = np.asanyarray(nib.load(shared_data / "ct/chest_crop/masks/pulmonary_artery.nii.gz").dataobj) > 0
    assert pa["voxels"] == int(ref.sum()) and pa["bbox_max_x"] > pa["bbox_min_x"]
    assert by[("lung1.nii.gz", "lung", "monai")]["voxels"] > 0


def test_arrays_read_back(built, shared_data):
    snap = built[1]
    store = ArrayStore(snap.arrays_path, mode="r")
    hu, affine = store.image("chest_crop")
    nii = nib.load(shared_data / "ct/chest_crop/ct.nii.gz")
    np.testing.assert_array_equal(hu, np.maximum(np.asanyarray(nii.dataobj), -1024))  # LPS: stored as is
    np.testing.assert_allclose(affine, nii.affine, atol=1e-3)
    mask, _ = store.region_mask("abdomen_small.nii.gz", "left lung", mask_source="builtin")
    assert 1000 < mask.sum() < 2000


def test_reports_are_structured_and_grounded(built, shared_data):
    t = built[2]
    texts = dev_reports(shared_data, len(CASES))
    reports = {r["case_id"]: r for r in t["reports"]}
    assert set(reports) == set(CASES) and reports["lung1.nii.gz"]["findings"] == texts[3]
    assert reports["lung1.nii.gz"]["impressions"] is None  # "Not given."
    grounded = [s for s in t["sentences"] if s["region_id"] is not None]
    assert {s["case_id"] for s in grounded} == set(CASES)
    assert any(_name(s["region_id"]) in anatomy().descendants("lung") for s in grounded)
    assert {f["status"] for f in t["findings"]} >= {"present", "absent"}
    assert {v["type"] for v in t["vqa"]} == {"abnormality", "presence", "location", "size", "disorders"}
    assert all(v["region_id"] is not None for v in t["vqa"] if v["type"] != "disorders")  # a mask is one call away


def test_sql_by_region_subtree(built):
    snap = built[1]
    con = duckdb.connect(str(snap.root / "warehouse.duckdb"), read_only=True)
    rows = con.execute("""
        SELECT s.case_id, a.name, s.mask_source, s.volume_ml FROM region_stats s
        JOIN anatomy_closure c ON c.descendant_id = s.region_id
        JOIN anatomy up ON up.region_id = c.ancestor_id AND up.name = ?
        JOIN anatomy a ON a.region_id = s.region_id
        WHERE s.voxels > 0 ORDER BY 1, 2, 3""", ["lung"]).fetchall()
    names = {r[1] for r in rows}
    assert {"lung", "left lung", "right lung", "left lung lower lobe"} <= names
    sentences = con.execute("""
        SELECT count(*) FROM sentences s JOIN anatomy_closure c ON c.descendant_id = s.region_id
        JOIN anatomy up ON up.region_id = c.ancestor_id WHERE up.name = 'lung'""").fetchone()[0]
    assert sentences > 0
    con.close()


def _cli() -> typer.Typer:
    return app_of(pipeline)


def test_cli_ingest_folder(shared_data, tmp_path):
    images = image_folder(shared_data, tmp_path, names=("abdomen_small",))
    reports = reports_csv(shared_data, tmp_path / "r.csv", ["abdomen_small"])  # joined without .nii.gz
    result = CliRunner().invoke(_cli(), ["ingest", "folder", "--images", str(images), "--reports", str(reports),
                                         "--warehouse", str(tmp_path / "wh"), "--runner", "local", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "1 cases, 1 built" in result.output
    snap = open_snapshot(tmp_path / "wh")
    assert pq.read_table(snap.table_path("reports")).column("case_id").to_pylist() == ["abdomen_small.nii.gz"]
    bad = CliRunner().invoke(_cli(), ["ingest", "folder", "--images", str(images), "--warehouse",
                                      str(tmp_path / "wh"), "--segmenter", "magic"])
    assert isinstance(bad.exception, IngestError) and "unknown segmenter" in str(bad.exception)
    assert CliRunner().invoke(_cli(), ["ingest", "folder", "--images", str(tmp_path / "nope"), "--warehouse",
                                       str(tmp_path / "wh")]).exit_code == 2


def test_discovery_names_and_duplicates(tmp_path):
    from tests.fixtures.folder_data import write_dicom_series

    images = tmp_path / "images"
    (images / "a" / "b").mkdir(parents=True)
    hu = np.full((12, 10, 6), -1000, np.int16)
    hu[3:9, 2:8] = 40
    affine = np.diag([-1.0, -1.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(hu, affine), images / "a" / "valid_3_b_2.nii.gz")
    nib.save(nib.Nifti1Image(hu, affine), images / "a" / "b" / "valid_3_b_2.nii")  # the same case again
    write_dicom_series(hu, affine, images / "scanner_export", PatientAge="007M")
    (images / "notes.txt").write_text("not an image")
    reports = tmp_path / "r.csv"
    reports.write_text("VolumeName,Findings_EN,Impressions_EN\nvalid_3_b_2,Heart size is normal.,Not given.\n"
                       "scanner_export,No pleural effusion.,Normal.\nscanner_export.nii.gz,Again.,\n")
    summary = build(FolderSource(images, reports, ["none"]), tmp_path / "wh", runner="local", progress=False)
    snap = open_snapshot(tmp_path / "wh")
    cases = {r["case_id"]: r for r in pq.read_table(snap.table_path("cases")).to_pylist()}
    assert set(cases) == {"valid_3_b_2.nii.gz", "scanner_export"} and summary.failed == 0
    vol = cases["valid_3_b_2.nii.gz"]
    assert (vol["patient_id"], vol["split"], vol["scan"], vol["reconstruction"]) == ("valid_3", "validation", "b", 2)
    assert cases["scanner_export"]["age"] == 0 and not cases["scanner_export"]["has_masks"]
    errors = pq.read_table(snap.table_path("ingest_errors")).to_pylist()
    assert sorted((e["stage"], e["error"].split(";")[0][:22]) for e in errors) == [
        ("read", "a second image for cas"), ("report", "duplicate VolumeName")]
    reports_rows = {r["case_id"]: r for r in pq.read_table(snap.table_path("reports")).to_pylist()}
    assert reports_rows["scanner_export"]["impressions"] == "Normal."
