"""`export --format dicom-seg`: SEGs read back by highdicom equal the warehouse's masks, the generated CT series
ingests back to the same voxels and affine, UIDs repeat, bad input is one line with nothing written."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ingest.images import read_dicom_series
from ingest.runner import build
from tests.fixtures.cli import export_command
from tests.fixtures.cohort_source import affine_of
from warehouse import Warehouse
from warehouse.core.boxes import slices
from warehouse.exports import dicom_seg
from warehouse.exports.bundle import ExportError, export_cohort

hd = pytest.importorskip("highdicom")
pydicom = pytest.importorskip("pydicom")

WITH_CT = "SELECT case_id FROM cases WHERE has_image"
MASKS = ("left lung", "heart", "lung")


@pytest.fixture(scope="module")
def exported(wh, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("exports") / "seg"
    export_cohort(wh, out, sql=WITH_CT, masks=MASKS, format="dicom-seg")
    return out, json.loads((out / "manifest.json").read_text())


def _files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}


def _ct(folder: Path) -> list:
    """A CT series' datasets in slice order (InstanceNumber)."""
    return sorted((pydicom.dcmread(p) for p in folder.glob("*.dcm")), key=lambda ds: int(ds.InstanceNumber))


def _segments(seg_file: Path, ct_folder: Path) -> dict[str, np.ndarray]:
    """Each segment of a SEG as a volume on the CT series' grid, in the warehouse's (i, j, k) voxel order."""
    seg = hd.seg.segread(seg_file)
    uids = [ds.SOPInstanceUID for ds in _ct(ct_folder)]
    numbers = seg.get_segment_numbers()
    pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=numbers, assert_missing_frames_are_empty=True)
    return {seg.get_segment_description(n).segment_label: pixels[..., m].transpose(2, 1, 0).astype(bool)
            for m, n in enumerate(numbers)}


def _assert_segments_are_masks(store, out: Path, entry: dict, case_id: str, box=None) -> int:
    checked = 0
    for seg in entry["seg"]:
        got = _segments(out / seg["file"], out / entry["ct_series"]["folder"])
        assert list(got) == [s["region"] for s in seg["segments"]]
        for s in seg["segments"]:
            want = store.region_mask(case_id, s["region"], mask_source=seg["mask_source"])[0]
            want = want if box is None else want[slices(box)]
            assert got[s["region"]].shape == want.shape and np.array_equal(got[s["region"]], want), (case_id, s)
            assert s["frames"] == int(np.count_nonzero(want.any(axis=(0, 1))))  # a frame per slice with a voxel
            checked += 1
    return checked


# -- the demo-like cohort --------------------------------------------------------------------------------
def test_layout_manifest_and_hashes(wh, exported):
    out, m = exported
    files = _files(out)
    assert m["format"] == "dicom-seg" and m["options"]["images"] and m["options"]["masks"] == list(MASKS)
    assert set(m["files"]) == set(files) - {"manifest.json"}
    for rel, entry in m["files"].items():
        assert entry["sha256"] == hashlib.sha256(files[rel].read_bytes()).hexdigest()
    assert sorted(m["dicom_seg"]) == sorted(m["case_files"]) and "valid_6_a_1.nii.gz" not in m["dicom_seg"]
    for case_id, entry in m["dicom_seg"].items():
        key = m["case_files"][case_id]
        ct = entry["ct_series"]
        assert entry["key"] == key and ct["folder"] == f"{key}/ct" and ct["crop"] is None
        assert ct["generated"].startswith("from the warehouse volume") and "new study" in ct["generated"]
        assert sorted(p for p in files if p.startswith(f"{key}/ct/")) == [
            f"{key}/ct/{k:04d}.dcm" for k in range(1, ct["instances"] + 1)]
        assert ct["instances"] == wh.arrays.grid(case_id).shape[2] == sum(ct["transfer_syntaxes"].values())
        assert [s["file"] for s in entry["seg"]] == [f"{key}/seg-demo.dcm"]
        assert entry["seg"][0]["algorithm_type"] == "AUTOMATIC"
    segments = {s["region"]: s for s in m["dicom_seg"]["train_1_a_1.nii.gz"]["seg"][0]["segments"]}
    assert segments["left lung"]["type"] == "SCT 39607008 Lung" and segments["left lung"]["modifier"] == \
        "SCT 7771000 Left"
    assert segments["heart"]["type"] == "SCT 80891009 Heart" and "modifier" not in segments["heart"]


def test_segments_equal_the_warehouse_masks(wh, exported):
    out, m = exported
    checked = sum(_assert_segments_are_masks(wh.arrays, out, e, c) for c, e in m["dicom_seg"].items())
    assert checked == 5 * len(MASKS)
    empty = m["dicom_seg"]["train_5_a_1.nii.gz"]["seg"][0]["segments"][1]  # the fixture's empty heart
    assert empty["region"] == "heart" and empty["frames"] == 0


def test_dicom_attributes_and_highdicom_geometry(wh, exported):
    out, m = exported
    case_id = "valid_2_a_1.nii.gz"
    entry = m["dicom_seg"][case_id]
    seg = pydicom.dcmread(out / entry["seg"][0]["file"])
    cts = _ct(out / entry["ct_series"]["folder"])
    assert seg.SOPInstanceUID == entry["seg"][0]["sop_instance_uid"] and seg.Modality == "SEG"
    assert seg.SegmentationType == "BINARY" and seg.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert seg.StudyInstanceUID == cts[0].StudyInstanceUID == entry["ct_series"]["study_instance_uid"]
    assert seg.FrameOfReferenceUID == cts[0].FrameOfReferenceUID
    assert seg.PatientID == cts[0].PatientID == "valid_2_a_1" and not cts[0].PatientBirthDate  # no PHI
    assert cts[0].Modality == "CT" and cts[0].SOPClassUID == pydicom.uid.CTImageStorage
    assert cts[0].ImageOrientationPatient == [1, 0, 0, 0, 1, 0] and cts[0].PixelSpacing == [0.9, 0.8]
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_of(1)
    for k, ds in enumerate(cts):  # positions straight from the fixture's affine
        np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], (lps @ [0, 0, k, 1])[:3], atol=1e-6)
    # highdicom's own volumes, moved onto the warehouse grid by their affines, give the same voxels
    shape, affine = wh.arrays.grid(case_id)
    grid = hd.VolumeGeometry(affine, shape, "PATIENT", from_reference_convention="RAS").permute_spatial_axes([2, 1, 0])
    ct = hd.get_volume_from_series(cts, dtype=np.int16).match_geometry(grid)
    assert np.array_equal(ct.array, wh.arrays.image(case_id)[0].transpose(2, 1, 0))
    lung = hd.seg.segread(out / entry["seg"][0]["file"]).get_volume(segment_numbers=[3]).match_geometry(grid)
    assert np.array_equal(lung.array[..., 0], wh.arrays.region_mask(case_id, "lung")[0].transpose(2, 1, 0))


def test_ct_series_ingests_back_to_the_same_voxels_and_affine(wh, exported):
    out, m = exported
    for case_id, entry in m["dicom_seg"].items():
        image = read_dicom_series(out / entry["ct_series"]["folder"])
        hu, affine = wh.arrays.image(case_id)
        assert np.array_equal(image.hu, hu), case_id
        np.testing.assert_allclose(image.affine, affine, atol=1e-5)
        assert image.metadata["SeriesInstanceUID"] == entry["ct_series"]["series_instance_uid"]


def _undated(path: Path) -> bytes:
    """A DICOM file's bytes without the dates that say when it was written."""
    ds = pydicom.dcmread(path)
    for item in [ds, *ds.get("ContributingEquipmentSequence", [])]:
        for keyword in ("InstanceCreationDate", "InstanceCreationTime", "ContributionDateTime"):
            if keyword in item:
                delattr(item, keyword)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_crop_and_a_reexport_repeats_uids(wh, exported, tmp_path):
    _, whole = exported
    case = "valid_2_a_1.nii.gz"
    sql = f"SELECT '{case}' AS case_id"
    runs = [export_cohort(wh, tmp_path / name, sql=sql, masks=("heart", "left lung"), crop="left lung",
                          margin_mm=5, format="dicom-seg") for name in ("a", "b")]
    assert runs[0].files == runs[1].files
    ma, mb = (json.loads((tmp_path / n / "manifest.json").read_text()) for n in ("a", "b"))
    assert ma["dicom_seg"] == mb["dicom_seg"] and set(ma["files"]) == set(mb["files"])  # the same UIDs
    for rel in ma["files"]:  # and the same files, but for when they were written
        assert _undated(tmp_path / "a" / rel) == _undated(tmp_path / "b" / rel), rel
    entry = ma["dicom_seg"][case]
    box = tuple(map(tuple, entry["ct_series"]["box"]))
    assert entry["ct_series"]["crop"] == "left lung" and box != ((0, 0, 0), wh.arrays.grid(case).shape)
    cropped = read_dicom_series(tmp_path / "a" / entry["ct_series"]["folder"])
    assert np.array_equal(cropped.hu, wh.arrays.image(case)[0][slices(box)])
    assert _assert_segments_are_masks(wh.arrays, tmp_path / "a", entry, case, box) == 2
    # a crop is another series, in the same study and frame of reference
    full = whole["dicom_seg"][case]["ct_series"]
    assert entry["ct_series"]["series_instance_uid"] != full["series_instance_uid"]
    assert entry["ct_series"]["study_instance_uid"] == full["study_instance_uid"]
    assert entry["ct_series"]["frame_of_reference_uid"] == full["frame_of_reference_uid"]


def test_bad_input_is_one_line_and_writes_nothing(wh, tmp_path):
    out = tmp_path / "out"
    cases = [
        ({"sql": "SELECT case_id FROM cases", "masks": MASKS}, "has no CT image"),  # valid_6 has none
        ({"sql": WITH_CT}, "needs --masks"),
        ({"sql": WITH_CT, "masks": ("heart", "liver")}, "no case of the cohort has a mask for region 'liver'"),
        ({"sql": WITH_CT, "masks": MASKS, "format": "dicom-sr"}, "unknown export format"),
    ]
    for kwargs, says in cases:
        with pytest.raises(ExportError) as e:
            export_cohort(wh, out, **{"format": "dicom-seg", **kwargs})
        assert says in str(e.value) and "\n" not in str(e.value), kwargs
        assert list(tmp_path.iterdir()) == []


def test_dry_run_counts_what_is_written(wh, exported):
    out, _ = exported
    dry = export_cohort(wh, out.with_name("dry"), sql=WITH_CT, masks=MASKS, format="dicom-seg", dry_run=True)
    files = _files(out)
    assert dry.dry_run and not dry.bytes_exact and not out.with_name("dry").exists()
    assert dry.files == len(files)
    assert sum(p.stat().st_size for n, p in files.items() if n != "manifest.json") <= dry.bytes - 1


# -- geometry, codes and pixels, without a warehouse ----------------------------------------------------
def test_an_oblique_grid_round_trips_and_a_sheared_one_is_refused(tmp_path):
    a, b = np.radians(12.0), np.radians(6.0)
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]]) @ \
        np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    affine = np.eye(4)
    affine[:3, :3] = np.diag([-1.0, -1.0, 1.0]) @ rot @ np.diag([0.7, 0.8, 2.0])  # L, P, S order, rotated
    affine[:3, 3] = (30.0, -12.5, 40.0)
    assert nib.aff2axcodes(affine) == ("L", "P", "S")
    hu = np.random.default_rng(0).integers(-1024, 1500, (12, 10, 5)).astype(np.int16)
    dicom_seg.orientation(affine, "oblique")
    ids = dicom_seg.Ids("snap", "oblique", ((0, 0, 0), hu.shape))
    for k, ds in enumerate(dicom_seg.ct_series(hu, affine, ids, {"id": "oblique"}, ("20250101", "120000"))):
        ds.save_as(tmp_path / f"{k}.dcm", enforce_file_format=True)
    image = read_dicom_series(tmp_path)
    assert np.array_equal(image.hu, hu)
    np.testing.assert_allclose(image.affine, affine, atol=1e-5)
    sheared = affine.copy()
    sheared[1, 2] += 0.2
    with pytest.raises(ExportError, match="sheared grid") as e:
        dicom_seg.orientation(sheared, "tilted")
    assert "\n" not in str(e.value)


def test_region_codes():
    assert dicom_seg.region_code("heart")[0].value == "80891009" and dicom_seg.region_code("heart")[1] is None
    kind, side = dicom_seg.region_code("right kidney")
    assert (kind.meaning, side.meaning) == ("Kidney", "Right")
    assert dicom_seg.region_code("left lung upper lobe") == (hd.sr.CodedConcept("91723000", "SCT",
                                                                                 "Anatomical Structure"), None)
    assert dicom_seg.region_code("pulmonary embolism")[0].meaning == "Anatomical Structure"  # a finding, not anatomy


def test_noise_is_stored_uncompressed_and_ct_jpeg_ls():
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    noise = np.random.default_rng(1).integers(-32768, 32767, (32, 32)).astype(np.int16)
    dicom_seg.set_pixels(ds, noise)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian and np.array_equal(ds.pixel_array,
                                                                                                     noise)
    smooth = np.full((32, 32), -1000, np.int16)
    smooth[8:24, 8:24] = 40
    dicom_seg.set_pixels(ds, smooth)
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGLSLossless and np.array_equal(ds.pixel_array, smooth)


# -- the CLI ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli():
    return export_command()


def test_cli_dry_run_then_export(cli, wh, tmp_path):
    args = ["-w", wh.root, "--sql", "SELECT case_id FROM cases WHERE case_id LIKE 'train%'", "--format",
            "dicom-seg", "--masks", "heart, left lung", tmp_path / "out"]
    dry = cli(*args, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert list(tmp_path.iterdir()) == []
    real = cli(*args)
    assert real.exit_code == 0, real.output
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    counts = {line.split(":")[0]: int(line.split(":")[1].split()[0]) for line in dry.output.splitlines()
              if line.startswith(("files", "bytes"))}
    assert counts["files"] == len(files) == 3 * (20 + 1) + 1
    assert counts["bytes"] >= sum(p.stat().st_size for p in files)
    bad = cli("-w", wh.root, "--sql", WITH_CT, "--format", "dicom-seg", tmp_path / "bad")
    assert isinstance(bad.exception, ExportError) and "needs --masks" in str(bad.exception)
    assert not (tmp_path / "bad").exists()


# -- real CTs and TotalSegmentator masks -------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(shared_data, tmp_path_factory) -> tuple[Warehouse, Path, dict]:
    """abdomen_small twice, as NIfTI and as a DICOM series, with builtin and imported TotalSegmentator masks."""
    from ingest.sources.folder import FolderSource
    from tests.fixtures.folder_data import ct_path, image_folder, reports_csv, write_dicom_series

    tmp = tmp_path_factory.mktemp("real")
    images = image_folder(shared_data, tmp, names=("abdomen_small",))
    img = nib.load(ct_path(shared_data, "abdomen_small"))
    write_dicom_series(np.asanyarray(img.dataobj).astype(np.int16), img.affine, images / "abdomen_dicom")
    masks = tmp / "masks"
    masks.mkdir()
    for name in ("abdomen_small", "abdomen_dicom"):
        (masks / name).symlink_to(shared_data / "ct" / "abdomen_small" / "masks", target_is_directory=True)
    reports = reports_csv(shared_data, tmp / "r.csv", ["abdomen_small.nii.gz", "abdomen_dicom"])
    build(FolderSource(images, reports, ["builtin", f"import:{masks}"]), tmp / "wh", runner="local", progress=False)
    wh = Warehouse.open(tmp / "wh")
    out = tmp / "out"
    export_cohort(wh, out, sql=WITH_CT, masks=("liver", "left kidney", "lung", "trachea"), format="dicom-seg")
    return wh, out, json.loads((out / "manifest.json").read_text())


def test_real_masks_round_trip_per_source(real):
    wh, out, m = real
    assert sorted(m["dicom_seg"]) == ["abdomen_dicom", "abdomen_small.nii.gz"]
    checked = 0
    for case_id, entry in m["dicom_seg"].items():
        sources = {s["mask_source"]: [x["region"] for x in s["segments"]] for s in entry["seg"]}
        assert sources == {"builtin": ["lung", "trachea"],
                           "totalsegmentator": ["liver", "left kidney", "lung", "trachea"]}
        checked += _assert_segments_are_masks(wh.arrays, out, entry, case_id)
        image = read_dicom_series(out / entry["ct_series"]["folder"])
        assert np.array_equal(image.hu, wh.arrays.image(case_id)[0])
        np.testing.assert_allclose(image.affine, wh.arrays.grid(case_id).affine, atol=1e-4)
    assert checked == 12
    dicom_case = wh.sql("SELECT metadata_json FROM cases WHERE case_id = 'abdomen_dicom'").item()
    original = json.loads(dicom_case)["SeriesInstanceUID"]
    said = m["dicom_seg"]["abdomen_dicom"]["ct_series"]["generated"]
    assert f"DICOM series {original}" in said and "NIfTI" in m["dicom_seg"]["abdomen_small.nii.gz"]["ct_series"][
        "generated"]
    assert m["dicom_seg"]["abdomen_small.nii.gz"]["ct_series"]["transfer_syntaxes"] == {
        "JPEG-LS Lossless Image Compression": 30}
