"""The query engine: DuckDB in process, reading one snapshot's tables read-only.

User SQL runs with external file access disabled (only the snapshot's own folder is
readable, and the setting is locked), parameters bound by DuckDB (``$name``), never
formatted into strings. Statements other than queries are refused before they run.

Integer sums come back as 64-bit integers: DuckDB widens ``SUM`` of integers to 128 bits
(HUGEINT), which Arrow and Polars can only hold as ``Decimal(38, 0)``; such a column is
narrowed to Int64 when every value fits, and kept as it is otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import sqlglot
from sqlglot import exp

from warehouse import schema
from warehouse.errors import QueryRefusedError
from warehouse.snapshot import TABLES_DIR, Snapshot, parquet_tables

# Table functions that read files or the network; refused by name with a clear message
# (DuckDB's locked configuration refuses them too — this is the readable first line).
_FILE_FUNCTIONS = ("read_", "glob", "parquet_", "sniff_csv", "iceberg_", "delta_scan", "postgres_",
                   "mysql_", "sqlite_", "query_table", "httpfs")


@lru_cache(maxsize=512)  # the same library query runs often; parsing it costs milliseconds
def check_read_only(query: str) -> None:
    """Refuse anything but a read-only query over the warehouse's tables.

    DuckDB's own parser decides the statement types (so the check agrees with what would
    run); sqlglot finds file-reading functions and string-literal tables inside a query.
    """
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as e:
        raise QueryRefusedError(f"SQL does not parse: {e}") from None
    if len(statements) != 1:
        raise QueryRefusedError(f"expected one SQL statement, got {len(statements)}",
                                hint="run statements one at a time")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryRefusedError(f"only read-only queries are allowed; this is a {kind.name} statement",
                                hint="the warehouse is read-only: SELECT (or WITH ... SELECT) only")
    try:
        tree = sqlglot.parse_one(query, read="duckdb")
    except sqlglot.errors.ParseError:
        return  # DuckDB parsed it as a SELECT; the locked configuration still blocks file access
    known = set(schema.TABLES) | {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    for node in tree.walk():
        name = None
        if isinstance(node, exp.Anonymous):
            name = node.name
        elif isinstance(node, exp.Func):
            name = node.sql_name()
        if name and name.lower().startswith(_FILE_FUNCTIONS):
            raise QueryRefusedError(f"reading files is not allowed ({name.lower()}(...))",
                                    hint="query the warehouse's tables: " + ", ".join(schema.TABLES))
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier) \
                and node.name.lower() not in known:
            # sqlglot turns FROM 'file.csv' (a DuckDB file scan) into a quoted identifier too
            raise QueryRefusedError(f"unknown table {node.name!r} (reading files is not allowed)",
                                    hint="query the warehouse's tables: " + ", ".join(schema.TABLES))


def _hugeint_columns(rel: duckdb.DuckDBPyRelation) -> list[int]:
    """Positions of the result's 128-bit integer columns (sums of integers)."""
    return [i for i, t in enumerate(rel.types) if str(t) == "HUGEINT"]


class Engine:
    """A read-only DuckDB connection to a snapshot's tables, locked down for user SQL."""

    def __init__(self, snapshot: Snapshot, *, threads: int | None = None) -> None:
        self.snapshot = snapshot
        self._lock = threading.Lock()
        con = duckdb.connect(":memory:")  # an instance of its own: its locked settings bind no other
        if snapshot.database_path is not None:  # the tables in DuckDB's format, attached read-only
            db = str(snapshot.database_path).replace("'", "''")
            con.execute(f"ATTACH '{db}' AS snapshot (READ_ONLY)")
            con.execute("USE snapshot")
        else:  # a snapshot from before tables.duckdb: views over its Parquet
            parquet_tables(con, snapshot.path / TABLES_DIR)
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        snap_dir = str(snapshot.path).replace("'", "''").rstrip("/") + "/"
        con.execute(f"SET allowed_directories = ['{snap_dir}']")
        con.execute("SET enable_external_access = false")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET lock_configuration = true")
        self._con = con

    def relation(self, query: str, params: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyRelation:
        check_read_only(query)
        try:
            return self._con.sql(query, params=dict(params) if params else None)
        except duckdb.PermissionException as e:
            raise QueryRefusedError(f"refused by the engine: {e}") from None

    def sql(self, query: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """Run a read-only query with bound parameters; the result as a Polars DataFrame."""
        with self._lock:  # a DuckDB connection runs one statement at a time
            rel = self.relation(query, params)
            if rel is None:
                return pl.DataFrame()
            wide, df = _hugeint_columns(rel), rel.pl()
            for name in (df.columns[i] for i in wide):
                try:
                    df = df.with_columns(df[name].cast(pl.Int64, strict=True))
                except pl.exceptions.InvalidOperationError:  # a value beyond 64 bits: keep the decimal
                    pass
            return df

    def arrow(self, query: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Like `sql`, as an Arrow table."""
        with self._lock:
            rel = self.relation(query, params)
            if rel is None:
                return pa.table({})
            wide, table = _hugeint_columns(rel), rel.to_arrow_table()
            for i in wide:
                try:
                    table = table.set_column(i, table.field(i).name, table.column(i).cast(pa.int64()))
                except pa.ArrowInvalid:  # a value beyond 64 bits: keep the decimal
                    pass
            return table

    def close(self) -> None:
        self._con.close()
