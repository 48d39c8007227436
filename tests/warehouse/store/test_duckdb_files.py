"""`warehouse.store.duckdb_files`: a snapshot's ``tables.duckdb`` (`write_database`), views over its
Parquet (`parquet_tables`) and the root's ``warehouse.duckdb`` (`write_views`) give the Parquet's
rows, compared with pyarrow reading the files directly."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from warehouse.core import schema
from warehouse.core.reference import reference_tables
from warehouse.store.duckdb_files import parquet_tables, write_database, write_views

STATUSES = ["present", "absent", "uncertain"]
TERMS = ["pulmonary nodule", "emphysema", "atelectasis", "pleural effusion"]


def _rows() -> dict[str, list[dict]]:
    """A few rows for the case tables; findings and case_labels get a cluster order unlike their sort order."""
    cases = [{"case_id": f"train_{i}_a_1.nii.gz", "age": 30 + i, "sex": "MF"[i % 2], "source": "test"}
             for i in range(5)]
    findings = [{"finding_id": f"f_{i:03d}", "case_id": cases[i % 5]["case_id"], "term": TERMS[i % 4],
                 "status": STATUSES[i % 3], "size_mm": float(i) if i % 2 else None} for i in range(23)]
    labels = [{"case_id": c["case_id"], "kind": kind, "label": label, "value": (i + j) % 2, "ordinal": j}
              for i, c in enumerate(cases) for kind in ("disorder", "ct_rate")
              for j, label in enumerate(["Emphysema", "Atelectasis", "Cardiomegaly"])]
    return {"cases": cases, "findings": findings, "case_labels": labels}


def write_tables(tables_dir: Path) -> dict[str, pa.Table]:
    """Every schema table as Parquet in `tables_dir`, sorted by its sort key as a build writes them."""
    tables_dir.mkdir(parents=True)
    given = {**{n: schema.empty(n) for n in schema.TABLES}, **reference_tables(),
             **{n: schema.to_table(n, r) for n, r in _rows().items()}}
    out = {}
    for name, table in given.items():
        out[name] = table.sort_by([(k, "ascending") for k in schema.sort_key(name)])
        pq.write_table(out[name], tables_dir / f"{name}.parquet")
    return out


def rows(con, name: str, order: str = "rowid") -> list[dict]:
    """A table's rows from DuckDB (`order`: columns, or rowid for the order they were stored in)."""
    return con.sql(f"SELECT * FROM {name} ORDER BY {order}").to_arrow_table().to_pylist()


def sorted_rows(table: pa.Table, keys: list[str]) -> list[dict]:
    return table.sort_by([(k, "ascending") for k in keys]).to_pylist()


@pytest.fixture
def snap(tmp_path) -> tuple[Path, dict[str, pa.Table]]:
    snap_dir = tmp_path / "root" / "snapshots" / "00001-abcdef01"
    return snap_dir, write_tables(snap_dir / "tables")


def test_write_database_loads_every_table_with_the_parquet_rows(snap):
    snap_dir, given = snap
    write_database(snap_dir)
    assert (snap_dir / "tables.duckdb").is_file() and not (snap_dir / "tables.duckdb.partial").exists()
    con = duckdb.connect(str(snap_dir / "tables.duckdb"), read_only=True)
    try:
        names = {r[0] for r in con.sql("SELECT table_name FROM information_schema.tables "
                                       "WHERE table_type = 'BASE TABLE'").fetchall()}
        assert names == set(schema.TABLES)  # tables, not views: the file stands alone
        for name in schema.TABLES:
            key = ", ".join(schema.sort_key(name))
            assert rows(con, name, key) == given[name].to_pylist(), name
            assert con.sql(f"SELECT * FROM {name} LIMIT 0").columns == given[name].column_names
    finally:
        con.close()
    (snap_dir / "tables").rename(snap_dir / "moved")  # the rows are in the file, not read from Parquet
    con = duckdb.connect(str(snap_dir / "tables.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM findings").fetchall()[0][0] == 23
    con.close()


@pytest.mark.parametrize("name", ["findings", "case_labels", "cases"])
def test_write_database_stores_rows_in_cluster_key_order(snap, name):
    snap_dir, given = snap
    write_database(snap_dir)
    con = duckdb.connect(str(snap_dir / "tables.duckdb"), read_only=True)
    try:
        stored = rows(con, name)  # in the order the rows were inserted
    finally:
        con.close()
    assert stored == sorted_rows(given[name], schema.cluster_key(name))
    if name != "cases":
        assert stored != given[name].to_pylist()  # the Parquet's order (sort_key) differs here


def test_write_database_replaces_an_earlier_file_and_a_stale_partial(snap):
    snap_dir, given = snap
    (snap_dir / "tables.duckdb").write_bytes(b"not a database")
    (snap_dir / "tables.duckdb.partial").write_bytes(b"left by a killed build")
    write_database(snap_dir)
    con = duckdb.connect(str(snap_dir / "tables.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM cases").fetchall()[0][0] == 5
    con.close()
    assert not (snap_dir / "tables.duckdb.partial").exists()


def test_parquet_tables_defines_views_over_the_files(tmp_path):
    tables_dir = tmp_path / "o'brien's warehouse" / "tables"  # a quote in the path is escaped
    given = write_tables(tables_dir)
    con = duckdb.connect(":memory:")
    try:
        parquet_tables(con, tables_dir)
        kinds = dict(con.sql("SELECT table_name, table_type FROM information_schema.tables").fetchall())
        assert kinds == {name: "VIEW" for name in schema.TABLES}
        for name in schema.TABLES:
            key = ", ".join(schema.sort_key(name))
            assert rows(con, name, key) == given[name].to_pylist(), name
        # a view reads the file when queried: a new file shows
        pq.write_table(given["cases"].slice(0, 2), tables_dir / "cases.parquet")
        assert con.execute("SELECT count(*) FROM cases").fetchall()[0][0] == 2
    finally:
        con.close()


def test_parquet_tables_load_copies_into_tables(tmp_path):
    given = write_tables(tmp_path / "tables")
    con = duckdb.connect(":memory:")
    try:
        parquet_tables(con, tmp_path / "tables", load=True)
        (tmp_path / "tables" / "cases.parquet").unlink()
        assert con.execute("SELECT count(*) FROM cases").fetchall()[0][0] == given["cases"].num_rows
    finally:
        con.close()


def test_parquet_tables_needs_every_table(tmp_path):
    write_tables(tmp_path / "tables")
    (tmp_path / "tables" / "vqa.parquet").unlink()
    con = duckdb.connect(":memory:")
    try:
        with pytest.raises(duckdb.Error, match="vqa"):
            parquet_tables(con, tmp_path / "tables", load=True)
    finally:
        con.close()


def test_write_views_points_the_root_at_one_snapshot(tmp_path):
    root = tmp_path / "root"
    first = write_tables(root / "snapshots" / "00001-aaaaaaaa" / "tables")
    write_tables(root / "snapshots" / "00002-bbbbbbbb" / "tables")
    pq.write_table(first["cases"].slice(0, 3), root / "snapshots" / "00002-bbbbbbbb" / "tables" / "cases.parquet")
    for sid, n_cases in (("00001-aaaaaaaa", 5), ("00002-bbbbbbbb", 3)):
        write_views(root, sid)
        assert [p.name for p in root.iterdir() if p.is_file()] == ["warehouse.duckdb"]  # no temporary file left
        con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
        try:
            info = con.execute("SELECT snapshot_id, path FROM snapshot_info").fetchall()
            assert info == [(sid, str(root / "snapshots" / sid))]
            assert con.execute("SELECT count(*) FROM cases").fetchall()[0][0] == n_cases
            key = ", ".join(schema.sort_key("findings"))
            assert rows(con, "findings", key) == first["findings"].to_pylist()
        finally:
            con.close()
