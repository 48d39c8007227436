"""The DuckDB files of a warehouse, built from a snapshot's Parquet: each snapshot's
``tables.duckdb`` (what the engine attaches) and the root's ``warehouse.duckdb`` (views of the
latest snapshot for the plain duckdb shell). The engine defines the same views on its own
connection with `parquet_tables` when a snapshot has no ``tables.duckdb``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from warehouse.core import schema
from warehouse.core.errors import WarehouseError
from warehouse.store.layout import DATABASE, SNAPSHOTS, TABLES_DIR, VIEWS

MEMORY_ENV = "RADGENOME_BUILD_MEMORY"  # DuckDB's memory limit while a build sorts and loads tables
DEFAULT_MEMORY = "4GB"


def write_database(snap_dir: Path) -> None:
    """Load a staged snapshot's Parquet tables into ``tables.duckdb`` (DuckDB's own format).

    Queries read DuckDB's compressed columns with zone maps from its buffer cache, with no
    Parquet decoding per query: the named queries at paper scale run a median 2x faster, up
    to 4.7x (benchmarks/paper_scale.py). Tables are ordered by `schema.cluster_key`. The Parquet
    files stay the interchange copy (Spark, Trino, pandas) and the source of the snapshot id.
    """
    import duckdb

    final = snap_dir / DATABASE
    tmp = snap_dir / f"{DATABASE}.partial"
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        build_limits(con, snap_dir.parent / f".{snap_dir.name}.spill")
        parquet_tables(con, snap_dir / TABLES_DIR, load=True)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, final)


def build_limits(con: Any, spill: Path) -> None:
    """A build's DuckDB connection under ``RADGENOME_BUILD_MEMORY`` (default 4GB), spilling to `spill`."""
    memory = os.environ.get(MEMORY_ENV, "").strip() or DEFAULT_MEMORY
    try:
        con.execute(f"SET memory_limit = '{memory}'")
    except Exception as e:  # duckdb's own error for a size it cannot read
        raise WarehouseError(f"{MEMORY_ENV}={memory!r}: {e}", hint="give a size such as 4GB") from None
    con.execute(f"SET temp_directory = '{str(spill).replace(chr(39), chr(39) * 2)}'")


def parquet_tables(con: Any, tables_dir: Path, *, load: bool = False) -> None:
    """Every table of `schema` on the DuckDB connection `con`, from the Parquet files in
    `tables_dir`: views over them, or with `load`, tables loaded in `schema.cluster_key` order."""
    for name in schema.TABLES:
        path = str(tables_dir / f"{name}.parquet").replace("'", "''")
        if not load:
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
            continue
        order = "" if schema.cluster_key(name) == schema.sort_key(name) else \
            " ORDER BY " + ", ".join(schema.cluster_key(name))  # Parquet is in sort_key order already
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{path}'){order}")


def write_views(root: Path, snapshot_id: str) -> None:
    """Write ``ROOT/warehouse.duckdb``: views of snapshot `snapshot_id` and a `snapshot_info` row
    (through a temporary file; the caller holds the root lock)."""
    import duckdb

    path = root / SNAPSHOTS / snapshot_id
    tmp = root / f".{VIEWS}.{os.getpid()}.partial"
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        parquet_tables(con, path / TABLES_DIR)
        con.execute("CREATE TABLE snapshot_info AS SELECT ? AS snapshot_id, ? AS path", [snapshot_id, str(path)])
    finally:
        con.close()
    os.replace(tmp, root / VIEWS)
