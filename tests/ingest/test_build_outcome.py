"""Builds that cannot succeed say so and publish nothing; an interrupted build says how to resume and
shows as staged; a release is found wherever it sits in a folder, and what was not found is named."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pyarrow.parquet as pq
import pytest

from ingest.runner import BuildFailedError, BuildInterrupted, build
from ingest.sources import demo
from ingest.sources.folder import FolderSource, find_images
from ingest.sources.radgenome import RadGenomeSource
from ingest.sources.release_csv import ErrorSink
from tests.fixtures.cli import run
from warehouse.store.snapshot import list_snapshots, list_staged, open_snapshot

AFFINE = np.diag([-1.0, -1.0, 2.0, 1.0])


def write_ct(path: Path) -> Path:
    """A tiny CT in HU: air with a soft-tissue block."""
    hu = np.full((16, 12, 6), -1000, np.int16)
    hu[4:12, 3:9] = 40
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(hu, AFFINE), path)
    return path


def write_mask(path: Path, box: tuple[slice, ...]) -> None:
    mask = np.zeros((16, 12, 6), np.uint8)
    mask[box] = 1
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(mask, AFFINE), path)


def folder_ingest(images: Path, root: Path, *extra: str) -> list[str]:
    return ["ingest", "folder", "--images", images, "-w", root, "--runner", "local", "--no-progress",
            "--segmenter", "none", *extra]


# -- nothing to publish ------------------------------------------------------------------------
def test_an_empty_release_folder_publishes_nothing(capsys, tmp_path):
    (tmp_path / "download").mkdir()
    code, _, err = run(capsys, "ingest", "radgenome", "--release", tmp_path / "download", "-w", tmp_path / "wh")
    assert code == 1 and err.count("\n") == 1 and "none of the released files are in it" in err
    assert not (tmp_path / "wh").exists()


def test_a_reports_csv_with_the_wrong_columns_stops_the_build(capsys, tmp_path):
    write_ct(tmp_path / "images" / "valid_1_a_1.nii.gz")
    reports = tmp_path / "labels.csv"
    reports.write_text("AccessionNo,report_text\nA1,No effusion.\n")
    code, _, err = run(capsys, *folder_ingest(tmp_path / "images", tmp_path / "wh", "--reports", reports))
    assert code == 1 and err.count("\n") == 1
    assert "no VolumeName column; its columns: AccessionNo, report_text" in err and "Findings_EN" in err
    reports.write_text("Volumename,Findings_EN\nvalid_1_a_1,No effusion.\n")  # RadGenome's spelling
    code, _, err = run(capsys, *folder_ingest(tmp_path / "images", tmp_path / "wh", "--reports", reports))
    assert code == 1 and "Volumename (should be VolumeName: names are case-sensitive)" in err
    assert not (tmp_path / "wh").exists()


def test_a_build_whose_every_case_failed_names_its_errors(capsys, tmp_path):
    images = tmp_path / "images"
    for name in ("a.nii.gz", "b.nii.gz", "c.nii.gz"):
        (images / name).parent.mkdir(exist_ok=True)
        (images / name).write_bytes(b"\x1f\x8b\x08\x00 not a whole file")
    code, _, err = run(capsys, *folder_ingest(images, tmp_path / "wh"))
    lines = err.splitlines()
    assert code == 1 and lines[0] == ("error: nothing published: every case failed (3 cases, 3 ingest_errors) "
                                      "— fix the inputs the errors name and run the same command again")
    assert len(lines) == 4 and all("cannot read NIfTI" in line for line in lines[1:])
    assert not (tmp_path / "wh").exists(), "no snapshot, no staging, no folder"
    with pytest.raises(BuildFailedError) as e:
        build(FolderSource(images, None, ["none"]), tmp_path / "wh", runner="local", progress=False)
    assert e.value.exit_code == 1 and e.value.error_count == 3 and e.value.errors[0]["case_id"] == "a.nii.gz"


def test_a_failed_build_leaves_the_published_snapshots_alone(tmp_path):
    build(demo.DemoSource(n=2), tmp_path / "wh", runner="local", progress=False)
    before = list_snapshots(tmp_path / "wh")
    (tmp_path / "images").mkdir()
    with pytest.raises(BuildFailedError, match="the inputs yield no cases"):
        build(FolderSource(tmp_path / "images", None, ["none"]), tmp_path / "wh", runner="local", progress=False)
    assert list_snapshots(tmp_path / "wh") == before and list_staged(tmp_path / "wh") == []
    assert not (tmp_path / "wh" / "staging").exists()


# -- interrupted, staged, resumed ----------------------------------------------------------------
def _interrupt_after_first_case(monkeypatch) -> None:
    real, calls = demo.DemoCaseJob.run, []

    def run_once(self, ctx):
        calls.append(self.index)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(self, ctx)

    monkeypatch.setattr(demo.DemoCaseJob, "run", run_once)


def test_an_interrupted_build_says_how_to_resume_and_shows_as_staged(capsys, tmp_path, monkeypatch):
    root = tmp_path / "wh"
    demo_args = ("demo", root, "--cases", "3", "--workers", "1")
    with monkeypatch.context() as m:
        _interrupt_after_first_case(m)
        code, _, err = run(capsys, *demo_args)
    [staged] = list_staged(root)
    assert code == 130 and staged.cases == 1
    assert err.strip() == f"interrupted; run the same command again to resume (1 cases saved in {staged.path})"
    assert staged.path.parent == root / "staging" and not list_snapshots(root)

    code, out, _ = run(capsys, "snapshots", "-w", root)
    assert code == 0 and out.startswith("no published snapshot yet; a build is staged in ")
    assert f"{staged.path} (1 cases saved, last written " in out and out.rstrip().endswith(
        ": re-run its command to finish it")
    for args in (("sql", "-w", root, "SELECT 1"), ("info", "-w", root)):
        code, _, err = run(capsys, *args)
        assert code == 2 and err.startswith("error: no published snapshot yet; a build is staged in ")
        assert "re-run its command to finish it" in err and err.count("\n") == 1

    code, out, _ = run(capsys, *demo_args)  # the same command again
    assert code == 0 and "3 cases, 2 built, 1 resumed, 0 failed" in out and "ingest_errors: 0" in out
    assert list_staged(root) == [] and len(list_snapshots(root)) == 1

    with monkeypatch.context() as m:  # a second build, interrupted beside the published snapshot
        _interrupt_after_first_case(m)
        assert run(capsys, "demo", root, "--cases", "4", "--workers", "1")[0] == 130
    code, out, _ = run(capsys, "snapshots", "-w", root)
    assert code == 0 and out.splitlines()[0].startswith(list_snapshots(root)[0])
    assert out.splitlines()[1].startswith("staged: a build is staged in ")
    import json

    code, out, _ = run(capsys, "info", "-w", root)
    info = json.loads(out)
    assert code == 0 and info["snapshot_id"] == list_snapshots(root)[0]
    assert [s["cases_saved"] for s in info["staged"]] == [1] and "re-run its command" in info["staged"][0]["note"]


def test_the_python_api_sees_an_interrupt(tmp_path, monkeypatch):
    _interrupt_after_first_case(monkeypatch)
    with pytest.raises(KeyboardInterrupt) as e:
        build(demo.DemoSource(n=3), tmp_path / "wh", runner="local", progress=False)
    assert isinstance(e.value, BuildInterrupted) and e.value.saved == 1 and "run the same command again" in str(e.value)


# -- masks among the images ----------------------------------------------------------------------
@pytest.fixture
def images_with_masks(tmp_path) -> Path:
    images = tmp_path / "images"
    write_ct(images / "valid_1_a_1.nii.gz")
    write_mask(images / "seg_valid_1_a_1" / "lung.nii.gz", (slice(0, 8),))
    write_mask(images / "seg_valid_1_a_1" / "heart.nii.gz", (slice(8, 12), slice(3, 9)))
    for name in ("liver", "spleen", "kidney_left"):  # TotalSegmentator-named masks of another scan
        write_mask(images / "other" / "masks" / f"{name}.nii.gz", (slice(2, 4),))
    return images


def test_mask_folders_among_the_images_are_skipped_with_a_note(capsys, tmp_path, images_with_masks):
    errors = ErrorSink("folder")
    skipped: list[Path] = []
    assert list(find_images(images_with_masks, errors, skipped)) == ["valid_1_a_1.nii.gz"]
    assert skipped == [images_with_masks / "other" / "masks", images_with_masks / "seg_valid_1_a_1"]
    code, out, err = run(capsys, *folder_ingest(images_with_masks, tmp_path / "wh"))
    assert code == 0 and "1 cases, 1 built" in out and "ingest_errors: 1 (read: 1)" in out
    assert 'radgenome sql -w ' in out and '"SELECT stage, file, location, error FROM ingest_errors' in out
    [note] = err.splitlines()
    assert note.startswith("note: skipped 2 folder(s) of masks, not CT images (other/masks, seg_valid_1_a_1)")
    assert "add --segmenter import:DIR" in note and note.endswith(f"(e.g. import:{images_with_masks})")
    [row] = pq.read_table(open_snapshot(tmp_path / "wh").table_path("ingest_errors")).to_pylist()
    assert row["error"] == note.removeprefix("note: ") and row["file"] == str(images_with_masks)


def test_the_option_the_note_names_imports_the_masks(capsys, tmp_path, images_with_masks):
    shutil.rmtree(images_with_masks / "other")  # masks of no image here: the note would still name them
    args = folder_ingest(images_with_masks, tmp_path / "wh")[:-2] + ["--segmenter", f"import:{images_with_masks}"]
    code, out, err = run(capsys, *args)
    assert code == 0 and err == "" and "ingest_errors: 0" in out
    stats = pq.read_table(open_snapshot(tmp_path / "wh").table_path("region_stats")).to_pylist()
    assert {(r["case_id"], r["voxels"] > 0) for r in stats} == {("valid_1_a_1.nii.gz", True)} and len(stats) == 2


def test_a_folder_source_works_in_any_call_order(images_with_masks):
    alone = FolderSource(images_with_masks, None, ["none"])
    assert alone.mask_note.startswith("skipped 2 folder(s) of masks")  # known before a build, not after it
    jobs = list(alone.jobs())  # no bulk() first
    after = FolderSource(images_with_masks, None, ["none"])
    parts = list(after.bulk())
    assert [j.case_id for j in jobs] == ["valid_1_a_1.nii.gz"] and list(after.jobs()) == jobs
    assert list(alone.bulk()) == parts == [("folder-errors", {"ingest_errors": parts[0][1]["ingest_errors"]})]
    assert [e["error"] for e in parts[0][1]["ingest_errors"]] == [alone.mask_note]


def test_a_reports_csv_is_checked_from_python_too(tmp_path):
    from ingest.sources.folder import check_reports

    reports = tmp_path / "labels.csv"
    reports.write_text("AccessionNo,report_text\nA1,No effusion.\n")
    with pytest.raises(BuildFailedError, match=f"^reports {reports}: no VolumeName column; its columns: Acc"):
        check_reports(reports)
    reports.write_text("VolumeName,Findings_EN\nvalid_1_a_1.nii.gz,No effusion.\n")
    check_reports(reports)


def test_a_folder_of_masks_alone_is_no_cases(capsys, tmp_path, images_with_masks):
    code, _, err = run(capsys, *folder_ingest(images_with_masks / "seg_valid_1_a_1", tmp_path / "wh"))
    lines = err.splitlines()
    assert code == 1 and "nothing published: no case could be read (0 cases, 1 ingest_errors)" in lines[0]
    assert "skipped 1 folder(s) of masks" in lines[1] and len(lines) == 2


# -- a release wherever it sits ------------------------------------------------------------------
def test_a_nested_release_is_found_and_what_is_missing_is_named(capsys, tmp_path):
    from tests.fixtures.release import write_release

    fx = write_release(tmp_path / "in", n=3, seed=2)
    nested = tmp_path / "downloads" / "hf" / "RadGenome-ChestCT"
    data = fx.radgenome / "dataset"
    (nested / "csvs" / "more").mkdir(parents=True)
    for i, f in enumerate(sorted((data / "radgenome_files").glob("*.csv"))):  # scattered, two levels deep
        shutil.move(f, nested / "csvs" / ("more" if i % 2 else "") / f.name)
    for f in data.glob("*_mask*"):
        (nested / "masks").mkdir(exist_ok=True)
        shutil.move(f, nested / "masks" / f.name)
    (nested / "images" / "x").mkdir(parents=True)
    for d in data.glob("*_preprocessed"):
        shutil.move(d, nested / "images" / "x" / d.name)
    (tmp_path / "downloads" / ".cache").mkdir()  # hidden folders are not read
    shutil.copy(next(nested.rglob("train_vqa_size.csv")), tmp_path / "downloads" / ".cache" / "train_vqa_size.csv")

    code, out, _ = run(capsys, "ingest", "radgenome", "--release", tmp_path / "downloads", "-w", tmp_path / "wh",
                       "--runner", "local", "--no-progress", "-v")
    assert code == 0, out
    kinds = [line.split(":")[0].strip() for line in out.splitlines() if line.startswith("  ") and
             not line.startswith("      ") and "not found" not in line]
    assert {"region reports (train)", "VQA size (train)", "region masks (train)", "anatomy masks (train)",
            "preprocessed images (train)"} <= set(kinds)
    assert str(nested / "csvs" / "more") in out and ".cache" not in out, "-v lists every file used"
    [missing] = [line for line in out.splitlines() if "not found:" in line]
    assert {"region reports (validation)", "region masks (validation)", "preprocessed images (validation)"} <= set(
        missing.removeprefix("  not found: ").split(", "))
    cases = {c["case_id"]: c for c in pq.read_table(open_snapshot(tmp_path / "wh").table_path("cases")).to_pylist()}
    assert set(cases) == {c.case_id for c in fx.cases}
    assert {k for k, c in cases.items() if c["has_masks"]} == set(fx.masked)
    assert all(cases[k]["has_image"] for k in fx.masked), "the preprocessed images were found"
    assert f"{len(fx.cases)} cases" in out


def _volume_names(paths: list[Path], column: str) -> set[str]:
    out: set[str] = set()
    for path in paths:
        with open(path, newline="", encoding="utf-8") as f:
            out |= {row[column] for row in csv.DictReader(f)}
    return out


def test_the_shared_data_folder_is_a_release_and_a_ct_rate_folder(capsys, shared_data, tmp_path):
    rg = _volume_names(sorted((shared_data / "radgenome").glob("train_*.csv")), "Volumename")
    regions = _volume_names(sorted((shared_data / "radgenome_validation_regions").glob("*.csv")), "Volumename")
    meta = _volume_names([shared_data / "ct_rate" / "validation_metadata.csv"], "VolumeName")
    code, out, err = run(capsys, "ingest", "radgenome", "--release", shared_data, "--ct-rate", shared_data,
                         "-w", tmp_path / "wh", "--runner", "local", "--no-progress")
    assert code == 0, err
    for line in ("  VQA abnormality (train): 1 file", "  region files (validation): 10 files",
                 "  CT-RATE metadata: 1 file"):
        assert line in out
    [missing] = [line for line in out.splitlines() if line.startswith("  not found: ")]
    assert {"region reports", "region masks", "anatomy masks", "preprocessed images", "CT-RATE reports",
            "CT-RATE volumes"} <= set(missing.removeprefix("  not found: ").split(", "))
    n = len(rg | regions | meta)
    assert f": {n} cases, {n} built" in out
    cases = pq.read_table(open_snapshot(tmp_path / "wh").table_path("cases"), columns=["case_id"])
    assert set(cases["case_id"].to_pylist()) == rg | regions | meta

    code, out, err = run(capsys, "ingest", "radgenome", "--ct-rate", shared_data, "-w", tmp_path / "ct",
                         "--runner", "local", "--no-progress")  # --release is optional
    assert code == 0 and f": {len(meta)} cases" in out, err


def test_the_case_count_is_known_before_the_jobs_run(shared_data):
    source = RadGenomeSource(shared_data)
    assert source.expected_cases() is None
    for _ in source.bulk():
        pass
    rg = _volume_names(sorted((shared_data / "radgenome").glob("train_*.csv")), "Volumename")
    regions = _volume_names(sorted((shared_data / "radgenome_validation_regions").glob("*.csv")), "Volumename")
    assert source.expected_cases() == len(rg | regions)
