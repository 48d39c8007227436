"""`export_release` reads through a `Warehouse`: a cohort's files are the whole export's rows of its cases."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from ingest.runner import build
from ingest.sources.demo import DemoSource
from ingest.sources.radgenome import RadGenomeSource
from tests.fixtures.release import write_release
from warehouse import Warehouse
from warehouse.cli.release import register
from warehouse.exports import export_release


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """Derived rows only: structured reports, their labels and disorders, generated VQA."""
    root = tmp_path_factory.mktemp("demo") / "wh"
    build(DemoSource(n=8), root, runner="local", progress=False)
    return root


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """A miniature release: every released file kind, both splits."""
    tmp = tmp_path_factory.mktemp("release")
    fx = write_release(tmp / "in", n=6, seed=0)
    build(RadGenomeSource(fx.radgenome, fx.ct_rate), tmp / "wh", runner="local", progress=False)
    return tmp / "wh"


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


@pytest.mark.parametrize("released_only", [True, False])
@pytest.mark.parametrize("which", ["demo", "release"])
def test_a_cohorts_files_are_the_whole_exports_rows_of_its_cases(request, which, released_only, tmp_path):
    with Warehouse.open(request.getfixturevalue(which)) as wh:
        ids = wh.sql("SELECT case_id FROM cases ORDER BY case_id")["case_id"].to_list()
        whole = export_release(wh, tmp_path / "all", released_only=released_only)
        cohort = set(ids[::2])
        part = export_release(wh, tmp_path / "part", [*cohort, "not_a_case.nii.gz"], released_only=released_only)
    assert whole and part
    want = {}
    for rel in whole:
        header, *body = _rows(tmp_path / "all" / rel)
        mine = [r for r in body if r[0] in cohort]  # every released file starts with the volume name
        if mine:
            want[rel] = [header, *mine]
    assert {rel: _rows(tmp_path / "part" / rel) for rel in part} == want
    assert part == {rel: len(rows) - 1 for rel, rows in want.items()}


def test_released_only_leaves_the_derived_rows_out(demo, tmp_path):
    with Warehouse.open(demo) as wh:
        released = export_release(wh, tmp_path / "released")
        everything = export_release(wh, tmp_path / "all", released_only=False)
    assert set(released) < set(everything)
    assert any("region_report" in rel for rel in everything) and not any("region_report" in rel for rel in released)


def test_reads_no_parquet_and_an_empty_cohort_writes_nothing(release, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the export read a Parquet file itself")

    for name in ("read_table", "ParquetFile", "ParquetDataset"):
        monkeypatch.setattr(pq, name, refuse)
    with Warehouse.open(release) as wh:
        assert export_release(wh, tmp_path / "out")
        assert export_release(wh, tmp_path / "empty", []) == {}
    assert not (tmp_path / "empty").exists()


def test_the_cli_exports_the_snapshot_asked_for(release, tmp_path):
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `export-release` a subcommand
    snapshot = Warehouse.open(release).snapshot_id
    result = CliRunner().invoke(app, ["export-release", str(tmp_path / "cli"), "-w", str(release),
                                      "--snapshot", snapshot])
    assert result.exit_code == 0, result.output
    with Warehouse.open(release) as wh:
        written = export_release(wh, tmp_path / "root")
    assert f"{sum(written.values()):,} rows" in result.output
    for rel in written:
        assert (tmp_path / "cli" / rel).read_bytes() == (tmp_path / "root" / rel).read_bytes(), rel
