"""The engine: subtree selection by one join, bound parameters, refused SQL."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from ingest.runner import build
from tests.fixtures.tiny_source import TinySource
from warehouse import Warehouse
from warehouse.core.errors import QueryRefusedError


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    root = tmp_path_factory.mktemp("wh")
    build(TinySource(n=3), root, runner="local", progress=False)
    return Warehouse.open(root)


SUBTREE = """SELECT s.case_id, s.text FROM sentences s
             JOIN anatomy_closure c ON c.descendant_id = s.region_id
             JOIN anatomy a ON a.region_id = c.ancestor_id WHERE a.name = $region"""


def test_subtree_is_one_join(wh):
    assert wh.sql(SUBTREE, {"region": "lung"}).height == 6          # both lobes, 3 cases
    assert wh.sql(SUBTREE, {"region": "left lung"}).height == 3
    assert wh.sql(SUBTREE, {"region": "lung lower lobe"}).height == 3  # second parent of the LLL
    assert wh.sql(SUBTREE, {"region": "heart"}).height == 3


def test_parameters_are_bound_not_formatted(wh):
    evil = "lung' OR 1=1 --"
    assert wh.sql(SUBTREE, {"region": evil}).height == 0


REFUSED = [
    "CREATE TABLE x AS SELECT 1",
    "INSERT INTO cases (case_id) VALUES ('x')",
    "DELETE FROM cases",
    "UPDATE cases SET split = 'x'",
    "DROP VIEW cases",
    "ATTACH '/tmp/other.duckdb' AS o",
    "COPY cases TO '/tmp/cases.csv'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "PRAGMA database_list",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM glob('/etc/*')",
    "SELECT 1; DROP VIEW cases",
    "EXPORT DATABASE '/tmp/x'",
]


@pytest.mark.parametrize("query", REFUSED)
def test_refused(wh, query):
    with pytest.raises(QueryRefusedError):
        wh.sql(query)
    assert wh.sql("SELECT count(*) AS n FROM cases")["n"][0] == 3


def test_file_access_is_off_even_past_the_parser(wh):
    # Straight to the connection, bypassing our check: DuckDB's locked configuration refuses.
    with pytest.raises(duckdb.Error):
        wh._engine._con.sql("SELECT * FROM read_csv('/etc/passwd')").fetchall()


def test_tables_are_read_from_the_snapshots_duckdb_file(wh, tmp_path):
    import shutil

    assert wh._engine._con.sql("SELECT current_database()").fetchall() == [("snapshot",)]
    ordered = SUBTREE + " ORDER BY s.case_id, s.text"
    with Warehouse.open(wh.root) as again:  # a second engine on the same file in this process
        assert again.sql(ordered, {"region": "lung"}).equals(wh.sql(ordered, {"region": "lung"}))
    with pytest.raises(duckdb.Error):  # attached read-only, even past our check
        wh._engine._con.sql("DELETE FROM sentences").fetchall()
    old = tmp_path / "old"  # a snapshot from before tables.duckdb: views over its Parquet
    shutil.copytree(wh.root, old)
    (old / "snapshots" / wh.snapshot_id / "tables.duckdb").unlink()
    with Warehouse.open(old) as legacy:
        assert legacy.sql(ordered, {"region": "lung"}).equals(wh.sql(ordered, {"region": "lung"}))


def test_duckdb_file_opens_in_plain_duckdb(wh):
    con = duckdb.connect(str(wh.root / "warehouse.duckdb"), read_only=True)
    assert con.sql("SELECT count(*) FROM cases").fetchall()[0][0] == 3


def test_cli_sql_formats(wh, tmp_path):
    from typer.testing import CliRunner

    from warehouse.cli import app

    r = CliRunner().invoke(app, ["sql", "-w", str(wh.root), "SELECT case_id FROM cases ORDER BY 1",
                                 "--format", "csv"])
    assert r.exit_code == 0 and r.output.splitlines() == ["case_id", "train_1_a_1.nii.gz",
                                                          "train_2_a_1.nii.gz", "train_3_a_1.nii.gz"]
    out = tmp_path / "x.parquet"
    r = CliRunner().invoke(app, ["sql", "-w", str(wh.root), "SELECT * FROM cases", "-f", "parquet", "-o", str(out)])
    assert r.exit_code == 0 and out.stat().st_size > 0


def test_cli_error_is_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "warehouse.cli", "sql", "-w", str(tmp_path), "SELECT 1"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.startswith("error:") and "not a warehouse" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_integer_sums_come_back_as_int64(wh):
    df = wh.sql("SELECT SUM(value) AS positives, COUNT(*) AS n FROM case_labels")
    assert df.schema == {"positives": pl.Int64, "n": pl.Int64}
    assert wh._engine.arrow("SELECT SUM(value) AS positives FROM case_labels").schema.field(0).type == pa.int64()
    huge = "SELECT CAST(170141183460469231731687303715884105727 AS HUGEINT) AS big, SUM(value) AS s FROM case_labels"
    df = wh.sql(huge)  # a value beyond 64 bits keeps its exact decimal; the other column is narrowed
    assert df.schema["big"] == pl.Decimal(38, 0) and df.schema["s"] == pl.Int64
    exact = wh._engine.arrow(huge)
    assert exact.schema.field(0).type == pa.decimal128(38, 0) and exact.schema.field(1).type == pa.int64()
    assert exact.column(0)[0].as_py().to_integral_value() == 2**127 - 1
