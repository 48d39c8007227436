"""Snapshots: determinism, atomic publish, resume, carried-over rows."""

from __future__ import annotations

import threading

import pytest

from ingest.runner import BuildFailedError, build
from tests.fixtures.tiny_source import TinyJob, TinySource
from warehouse import Warehouse
from warehouse.core import schema
from warehouse.core.errors import NotAWarehouseError, SnapshotNotFoundError
from warehouse.store.snapshot import SnapshotWriter, list_snapshots, open_snapshot


def _table_bytes(root):
    snap = open_snapshot(root)
    return {p.name: p.read_bytes() for p in (snap.path / "tables").glob("*.parquet")}


def test_two_builds_write_identical_parquet(tmp_path):
    build(TinySource(n=4), tmp_path / "a", runner="local", progress=False)
    build(TinySource(n=4), tmp_path / "b", runner="pool", workers=2, progress=False)
    a, b = _table_bytes(tmp_path / "a"), _table_bytes(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) == len(schema.TABLES)
    assert a == b


def test_bad_case_becomes_an_error_row_and_the_rest_completes(tmp_path):
    s = build(TinySource(n=3, failing=("train_2_a_1.nii.gz",)), tmp_path, runner="local", progress=False)
    assert s.failed == 1 and s.row_counts["cases"] == 2
    wh = Warehouse.open(tmp_path)
    err = wh.sql("SELECT case_id, stage, error FROM ingest_errors").to_dicts()
    assert err[0]["case_id"] == "train_2_a_1.nii.gz" and "broken on purpose" in err[0]["error"]


def test_resume_skips_finished_cases_and_matches_uninterrupted(tmp_path):
    src = TinySource(n=4)
    # simulate a killed build: two cases saved, nothing published
    w = SnapshotWriter(tmp_path / "r", src.build_key())
    from ingest.job import JobContext, run_job

    for job in list(src.jobs())[:2]:
        w.save_part(*run_job(job, JobContext(w.arrays_path, src.name)))
    w.close()  # what a kill does: the staging's lock goes, its parts stay
    assert list_snapshots(tmp_path / "r") == []
    s = build(src, tmp_path / "r", runner="local", progress=False)
    assert s.skipped == 2 and s.built == 2
    build(src, tmp_path / "u", runner="local", progress=False)
    assert _table_bytes(tmp_path / "r") == _table_bytes(tmp_path / "u")


def test_reader_keeps_its_snapshot_while_another_is_published(tmp_path):
    build(TinySource(n=2), tmp_path, runner="local", progress=False)
    wh = Warehouse.open(tmp_path)
    first = wh.snapshot_id
    seen: list[int] = []
    stop = threading.Event()

    def read():
        while not stop.is_set():
            seen.append(wh.sql("SELECT count(*) AS n FROM cases")["n"][0])

    t = threading.Thread(target=read)
    t.start()
    try:
        for n in (5, 7):
            build(TinySource(n=n, name="tiny"), tmp_path, runner="local", progress=False)
    finally:
        stop.set()
        t.join()
    assert set(seen) == {2}  # whole snapshot N only, never a half-written N+1
    assert wh.snapshot_id == first and len(list_snapshots(tmp_path)) == 3
    assert Warehouse.open(tmp_path).sql("SELECT count(*) AS n FROM cases")["n"][0] == 7
    assert Warehouse.open(tmp_path, snapshot=first).sql("SELECT count(*) AS n FROM cases")["n"][0] == 2


def test_other_sources_rows_are_carried_over(tmp_path):
    build(TinySource(n=2), tmp_path, runner="local", progress=False)
    build(OtherCase(name="other"), tmp_path, runner="local", progress=False)
    wh = Warehouse.open(tmp_path)
    assert wh.sql("SELECT source, count(*) AS n FROM cases GROUP BY 1 ORDER BY 1").rows() == [("other", 1), ("tiny", 2)]


class OtherCase(TinySource):
    """One case no TinySource makes."""

    def jobs(self):
        yield TinyJob("valid_9_a_1.nii.gz")


def test_a_build_with_no_cases_publishes_nothing(tmp_path):
    build(TinySource(n=2), tmp_path, runner="local", progress=False)
    with pytest.raises(BuildFailedError, match="no cases"):
        build(TinySource(n=0, name="other"), tmp_path, runner="local", progress=False)
    assert list_snapshots(tmp_path) == [open_snapshot(tmp_path).snapshot_id]


def test_manifest_records_counts_and_versions(tmp_path):
    build(TinySource(n=2), tmp_path, runner="local", progress=False)
    m = open_snapshot(tmp_path).manifest
    assert m["row_counts"]["sentences"] == 6 and m["row_counts"]["anatomy"] > 200
    assert "duckdb" in m["versions"] and m["snapshot_id"].startswith("00001-")


def test_not_a_warehouse(tmp_path):
    with pytest.raises(NotAWarehouseError, match="not a warehouse"):
        Warehouse.open(tmp_path)
    build(TinySource(n=1), tmp_path, runner="local", progress=False)
    with pytest.raises(SnapshotNotFoundError):
        Warehouse.open(tmp_path, snapshot="99999-deadbeef")
