"""A miniature release (from the demo's cases) in, through the CLI and a process pool, and back out."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from ingest.runner import build
from ingest.sources import radgenome_case
from ingest.sources.radgenome import RadGenomeSource
from tests.fixtures.release import EMPTY_STRUCTURES, released_masks, write_release
from warehouse.cli.release import register, register_ingest
from warehouse.core.anatomy import anatomy
from warehouse.store.snapshot import open_snapshot


def _app() -> typer.Typer:
    app, ingest = typer.Typer(), typer.Typer()
    app.add_typer(ingest, name="ingest")
    register(app)
    register_ingest(ingest)
    return app


def _table(snap, name: str) -> list[dict]:
    return pq.read_table(snap.table_path(name)).to_pylist()


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixture")
    fx = write_release(root / "in", n=10, seed=0)
    result = CliRunner().invoke(_app(), ["ingest", "radgenome", "--release", str(fx.radgenome), "--ct-rate",
                                         str(fx.ct_rate), "--warehouse", str(root / "wh"), "--workers", "2",
                                         "--no-progress"])
    assert result.exit_code == 0, result.output
    return root, fx, open_snapshot(root / "wh"), result.output


def test_jobs_need_no_bulk_first(release):
    _, fx, _, _ = release
    alone = RadGenomeSource(fx.radgenome, fx.ct_rate)
    assert alone.expected_cases() is None  # a progress total reads nothing
    jobs = list(alone.jobs())  # bulk() never ran: the jobs read the CSVs' case ids themselves
    assert sorted(j.case_id for j in jobs) == sorted(c.case_id for c in fx.cases)
    after = RadGenomeSource(fx.radgenome, fx.ct_rate)
    parts = list(after.bulk())
    assert after.expected_cases() == len(fx.cases)
    assert list(after.jobs()) == jobs
    assert list(alone.bulk()) == parts  # and bulk() after the jobs gives the rows it gives first


def test_cases_with_neither_image_nor_masks_are_bulk_rows_in_either_order(release):
    _, fx, _, _ = release
    csvs = fx.radgenome / "dataset" / "radgenome_files"  # the CSVs alone: every case is a `cases` row
    assert list(RadGenomeSource(csvs, text_stages=False).jobs()) == []
    source = RadGenomeSource(csvs, text_stages=False)
    cases = [r["case_id"] for _, rows in source.bulk() for r in rows.get("cases", ())]
    assert sorted(cases) == sorted(c.case_id for c in fx.cases) and list(source.jobs()) == []


def test_every_case_is_ingested_with_its_image(release):
    root, fx, snap, output = release
    assert "10 cases, 10 built" in output
    cases = {c["case_id"]: c for c in _table(snap, "cases")}
    assert set(cases) == {c.case_id for c in fx.cases}
    assert all(c["has_image"] for c in cases.values())
    assert {k for k, c in cases.items() if c["has_masks"]} == set(fx.masked)
    assert _table(snap, "ingest_errors") == []
    for case in fx.cases:
        row = cases[case.case_id]
        assert row["age"] == int(case.metadata["PatientAge"][:-1]) and row["orientation"] == "LPS"
        assert (row["shape_x"], row["shape_y"], row["shape_z"]) == case.hu.shape
        assert row["source"] == "radgenome", "every fixture case is in RadGenome's CSVs"


def test_ct_rate_volumes_are_rescaled_to_hu_with_either_intercept(release):
    from warehouse.store.arrays import ArrayStore

    _, fx, snap, _ = release
    store = ArrayStore(snap.arrays_path, mode="r")
    from_ct_rate = [c for c in fx.cases if c.case_id not in fx.masked]
    assert {c.metadata["RescaleIntercept"] for c in from_ct_rate} == {"-1024", "-8192"}
    for case in from_ct_rate:
        hu, affine = store.image(case.case_id)
        assert np.array_equal(hu, np.maximum(case.hu, -1024)), case.case_id
        assert np.allclose(np.abs(np.diag(affine)[:3]), np.abs(np.diag(case.affine)[:3]), atol=1e-4)


def test_masks_from_archives_split_parts_and_folders_read_back_bit_exact(release):
    from warehouse.store.arrays import ArrayStore

    _, fx, snap, _ = release
    store, dag = ArrayStore(snap.arrays_path, mode="r"), anatomy()
    for case in (c for c in fx.cases if c.case_id in fx.masked):
        hu, _ = store.image(case.case_id)
        assert np.array_equal(hu, np.maximum(case.hu, -1024))
        region, structures = released_masks(case)
        stored = {(s["mask_source"], s["name"]): s for s in store.structures(case.case_id)}
        assert len(stored) == len(region) + len(structures) and len(region) >= 5
        for source, masks in (("radgenome-region", region), ("radgenome", structures)):
            for name, mask in masks:
                assert stored[source, name]["voxels"] == int(mask.sum())
                if mask.any():
                    got, _ = store.region_mask(case.case_id, dag.resolve(name).name, mask_source=source)
                    assert np.array_equal(got, mask != 0), (case.case_id, source, name)
        for empty in EMPTY_STRUCTURES:
            assert stored["radgenome", empty]["voxels"] == 0
    stats = _table(snap, "region_stats")
    empty_ids = {dag.resolve(n).region_id for n in EMPTY_STRUCTURES}
    assert sum(r["region_id"] in empty_ids and r["voxels"] == 0 for r in stats) == 2 * len(fx.masked)


def test_export_release_gives_back_every_released_csv(release):
    root, fx, _, _ = release
    result = CliRunner().invoke(_app(), ["export-release", str(root / "out"), "--warehouse", str(root / "wh")])
    assert result.exit_code == 0, result.output
    for rel, n in fx.rows.items():
        out = root / "out" / rel.removeprefix("radgenome/")  # the export writes RadGenome's dataset/ at the top
        with open(root / "in" / rel, newline="") as a, open(out, newline="") as b:
            want, got = Counter(map(tuple, csv.reader(a))), Counter(map(tuple, csv.reader(b)))
        assert got == want and sum(got.values()) == n + 1, rel
    assert f"{sum(fx.rows.values()):,} rows" in result.output


def test_a_killed_build_resumes_to_the_same_snapshot(release, tmp_path, monkeypatch):
    root, fx, snap, _ = release
    real_run, calls = radgenome_case.ReleaseCaseJob.run, []

    def dies_on_the_fifth(self, ctx):
        calls.append(self.case_id)
        if len(calls) == 5:
            raise KeyboardInterrupt  # the process is killed mid-build
        return real_run(self, ctx)

    monkeypatch.setattr(radgenome_case.ReleaseCaseJob, "run", dies_on_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        build(RadGenomeSource(fx.radgenome, fx.ct_rate), tmp_path / "wh", runner="local", progress=False)
    monkeypatch.setattr(radgenome_case.ReleaseCaseJob, "run", real_run)
    summary = build(RadGenomeSource(fx.radgenome, fx.ct_rate), tmp_path / "wh", runner="local", progress=False)
    assert (summary.skipped, summary.built) == (4, 6)
    resumed = open_snapshot(tmp_path / "wh")
    assert resumed.snapshot_id.split("-")[1] == snap.snapshot_id.split("-")[1], "same tables, byte for byte"


def test_the_ingest_command_says_what_is_missing(tmp_path):
    def said(result) -> str:  # the error box's text, unwrapped
        return " ".join(result.output.replace("│", " ").split())

    result = CliRunner().invoke(_app(), ["ingest", "radgenome", "--warehouse", str(tmp_path / "wh")])
    assert result.exit_code == 2 and "give --release, --ct-rate or both" in said(result)
    result = CliRunner().invoke(_app(), ["ingest", "radgenome", "--release", str(tmp_path / "nowhere"),
                                         "--warehouse", str(tmp_path / "wh")])
    assert result.exit_code == 2 and "is not a folder" in said(result)
    assert not (tmp_path / "wh").exists()
