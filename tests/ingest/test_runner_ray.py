"""`--runner ray` on a local Ray instance writes the same snapshot, byte for byte, as the process pool."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from ingest.runner import build
from ingest.sources.folder import FolderSource
from tests.fixtures.folder_data import image_folder, reports_csv
from warehouse.cli import pipeline
from warehouse.store.snapshot import Snapshot, open_snapshot


def snapshot_files(snap: Snapshot) -> dict[str, bytes]:
    """Every Parquet table and every file of the array store (metadata and chunks), by relative path."""
    files = [*(snap.path / "tables").glob("*.parquet"), *(p for p in snap.arrays_path.rglob("*") if p.is_file())]
    return {str(p.relative_to(snap.path)): p.read_bytes() for p in sorted(files)}


def _start_local_ray(ray, attempts: int = 3) -> None:
    for attempt in range(attempts):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            return
        except Exception:  # "node timed out during startup": the raylet waits ~30 s for its agent
            ray.shutdown()
            if attempt == attempts - 1:
                raise


def test_ray_snapshot_equals_the_process_pool_one(shared_data, tmp_path):
    ray = pytest.importorskip("ray")
    images = image_folder(shared_data, tmp_path, names=("abdomen_small", "chest_crop"))
    (images / "broken.nii.gz").write_bytes(b"\x1f\x8b\x08\x00 not a whole file")
    reports = reports_csv(shared_data, tmp_path / "reports.csv", ["abdomen_small.nii.gz", "chest_crop.nii.gz"])
    masks = tmp_path / "masks"
    masks.mkdir()
    (masks / "abdomen_small").symlink_to(shared_data / "ct/abdomen_small/masks", target_is_directory=True)
    (masks / "chest_crop").symlink_to(shared_data / "ct/chest_cta/masks", target_is_directory=True)  # wrong grid
    specs = ["builtin", f"import:{masks}"]
    pool = build(FolderSource(images, reports, specs), tmp_path / "pool", runner="pool", workers=2, progress=False)

    app, ingest_app = typer.Typer(), typer.Typer()
    app.add_typer(ingest_app, name="ingest")
    pipeline.register_ingest(ingest_app)
    _start_local_ray(ray)  # what `--runner ray` would start; started here to retry a slow start on a busy machine
    try:
        result = CliRunner().invoke(app, [
            "ingest", "folder", "--images", str(images), "--reports", str(reports), "--warehouse",
            str(tmp_path / "ray"), "--segmenter", specs[0], "--segmenter", specs[1], "--runner", "ray",
            "--workers", "2", "--no-progress"])
        assert result.exit_code == 0, result.output
        assert ray.is_initialized()  # the build ran on a local Ray instance
    finally:
        ray.shutdown()

    a, b = snapshot_files(open_snapshot(tmp_path / "pool")), snapshot_files(open_snapshot(tmp_path / "ray"))
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    assert any(k.startswith("arrays.zarr/") and k.endswith("/c/0/0/0") for k in a)  # chunks were compared
    assert pool.snapshot_id[6:] == open_snapshot(tmp_path / "ray").snapshot_id[6:]  # same content hash
    assert pool.failed == 1 and pool.row_counts["region_stats"] > 100
    snap = open_snapshot(tmp_path / "pool")
    errors = pq.read_table(snap.table_path("ingest_errors")).to_pylist()
    assert sorted((e["case_id"], e["stage"]) for e in errors) == [("broken.nii.gz", "read"),
                                                                  ("chest_crop.nii.gz", "masks")]
    stats = pq.read_table(snap.table_path("region_stats")).to_pylist()  # the grid mismatch kept the rest
    assert {r["mask_source"] for r in stats if r["case_id"] == "chest_crop.nii.gz"} == {"builtin"}
