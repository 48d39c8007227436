"""The query engine: DuckDB in process, reading one snapshot's tables read-only.

User SQL runs with external file access disabled (only the snapshot's own folder is
readable, and the setting is locked), parameters bound by DuckDB (``$name``), never
formatted into strings. Statements other than queries are refused before they run.

Integer sums come back as 64-bit integers: DuckDB widens ``SUM`` of integers to 128 bits
(HUGEINT), which Arrow and Polars can only hold as ``Decimal(38, 0)``; such a column is
narrowed to Int64 when every value fits, and kept as it is otherwise.

Limits on time, memory, spill space and SQL size: `warehouse.query_limits`.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import sqlglot
from sqlglot import exp

from warehouse.core import schema
from warehouse.core.errors import QueryRefusedError, WarehouseError
from warehouse.query_limits import (
    Limits,
    QueryInterrupted,
    QueryMemoryError,
    QueryTimeoutError,
    Stop,
    current_time_limit,
    seconds_limit,
)
from warehouse.store.duckdb_files import parquet_tables
from warehouse.store.layout import TABLES_DIR
from warehouse.store.snapshot import Snapshot

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
        if name and name.lower() in _PADDING:
            _check_built_size(node, name.lower())
        if name and name.lower().startswith(_FILE_FUNCTIONS):
            raise QueryRefusedError(f"reading files is not allowed ({name.lower()}(...))",
                                    hint="query the warehouse's tables: " + ", ".join(schema.TABLES))
        if isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier) \
                and node.name.lower() not in known:
            # sqlglot turns FROM 'file.csv' (a DuckDB file scan) into a quoted identifier too
            raise QueryRefusedError(f"unknown table {node.name!r} (reading files is not allowed)",
                                    hint="query the warehouse's tables: " + ", ".join(schema.TABLES))


# Functions that build one value of a size given by an argument: DuckDB does not count such a value
# against its memory limit and cannot interrupt its making, so a literal size past this is refused.
_PADDING = {"repeat": 1, "lpad": 1, "rpad": 1, "pad": 1}  # function (sqlglot: lpad, rpad -> pad) -> length arg
MAX_BUILT_VALUE = 100_000_000  # characters


def _check_built_size(node: exp.Expression, name: str) -> None:
    """Refuse repeat/lpad/rpad whose length is a literal over `MAX_BUILT_VALUE` (computed lengths pass:
    the memory limit and the time limit are what stop a query in general)."""
    args = [node.this, *node.expressions] if isinstance(node, exp.Anonymous) else \
        [a for a in node.args.values() if isinstance(a, exp.Expression)]
    position = _PADDING[name]
    size = args[position] if len(args) > position else None
    if isinstance(size, exp.Literal) and size.is_number and float(size.this) > MAX_BUILT_VALUE:
        name = ("lpad" if node.args.get("is_left") else "rpad") if name == "pad" else name
        raise QueryRefusedError(f"{name}(...) would build one value of {float(size.this):,.0f} characters, over "
                                f"the engine's {MAX_BUILT_VALUE:,} (such a value is outside its memory limit)",
                                hint="build smaller values")


def _hugeint_columns(rel: duckdb.DuckDBPyRelation) -> list[int]:
    """Positions of the result's 128-bit integer columns (sums of integers)."""
    return [i for i, t in enumerate(rel.types) if str(t) == "HUGEINT"]


class Engine:
    """A read-only DuckDB connection to a snapshot's tables, locked down for user SQL, under `Limits`."""

    def __init__(self, snapshot: Snapshot, *, threads: int | None = None, limits: Limits | None = None) -> None:
        self.snapshot = snapshot
        self.limits = limits or Limits.from_env()
        self._lock = threading.Lock()
        con = duckdb.connect(":memory:")  # an instance of its own: its locked settings bind no other
        try:
            self._spill_dir = self._open(con, snapshot, threads)
        except RuntimeError as e:  # Ctrl-C while DuckDB attaches: its own interruption
            con.close()
            if str(e) != "Query interrupted":
                raise
            raise QueryInterrupted() from None
        except BaseException:
            con.close()
            raise
        self._cleanup = weakref.finalize(self, _close, con, self._spill_dir)  # the connection and spill folder
        self._con = con

    def _open(self, con: duckdb.DuckDBPyConnection, snapshot: Snapshot, threads: int | None) -> str | None:
        """Attach the snapshot's tables and lock the connection down; returns the spill folder."""
        if snapshot.database_path is not None:  # the tables in DuckDB's format, attached read-only
            db = str(snapshot.database_path).replace("'", "''")
            con.execute(f"ATTACH '{db}' AS snapshot (READ_ONLY)")
            con.execute("USE snapshot")
        else:  # a snapshot from before tables.duckdb: views over its Parquet
            parquet_tables(con, snapshot.path / TABLES_DIR)
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        spill_dir = self._set_memory(con)
        snap_dir = str(snapshot.path).replace("'", "''").rstrip("/") + "/"
        con.execute(f"SET allowed_directories = ['{snap_dir}']")
        con.execute("SET enable_external_access = false")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET lock_configuration = true")
        return spill_dir

    def _set_memory(self, con: duckdb.DuckDBPyConnection) -> str | None:
        """Set the memory limit and the spill folder (a private one, or none); returns the folder."""
        try:
            con.execute(f"SET memory_limit = '{self.limits.memory}'")  # values checked by Limits
        except duckdb.Error as e:
            raise WarehouseError(f"RADGENOME_QUERY_MEMORY={self.limits.memory!r}: {e}") from None
        self.memory_limit = str(con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0])
        if self.limits.spill == "0":
            con.execute("SET temp_directory = ''")
            return None
        spill_dir = tempfile.mkdtemp(prefix="radgenome-duckdb-")
        con.execute(f"SET temp_directory = '{spill_dir.replace(chr(39), chr(39) * 2)}'")
        con.execute(f"SET max_temp_directory_size = '{self.limits.spill}'")
        return spill_dir

    def relation(self, query: str, params: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyRelation:
        if self.limits.max_sql and len(query) > self.limits.max_sql:  # before a parser spends time and memory
            raise QueryRefusedError(f"the SQL is {len(query):,} characters, over the limit of "
                                    f"{self.limits.max_sql:,}", hint="bind long lists as a parameter "
                                    "($ids) instead of writing them out, or raise RADGENOME_QUERY_MAX_SQL")
        check_read_only(query)
        try:
            return self._con.sql(query, params=dict(params) if params else None)
        except duckdb.PermissionException as e:
            raise QueryRefusedError(f"refused by the engine: {e}") from None

    def sql(self, query: str, params: Mapping[str, Any] | None = None, *,
            timeout: float | None = None, limit: int | None = None, offset: int = 0) -> pl.DataFrame:
        """Run a read-only query with bound parameters; the result as a Polars DataFrame.
        `timeout`: seconds (0: none) instead of `time_limit`'s or the engine's limit. `limit`, `offset`:
        only those rows of the result (a page), limited on the relation so the rest is not fetched."""
        with self._lock, self._limited(timeout):  # a DuckDB connection runs one statement at a time
            rel = self.relation(query, params)
            if rel is None:
                return pl.DataFrame()
            if limit is not None:
                rel = rel.limit(int(limit), offset=int(offset))
            wide, df = _hugeint_columns(rel), rel.pl()
            for name in (df.columns[i] for i in wide):
                try:
                    df = df.with_columns(df[name].cast(pl.Int64, strict=True))
                except pl.exceptions.InvalidOperationError:  # a value beyond 64 bits: keep the decimal
                    pass
            return df

    def arrow(self, query: str, params: Mapping[str, Any] | None = None, *,
              timeout: float | None = None) -> pa.Table:
        """Like `sql`, as an Arrow table."""
        with self._lock, self._limited(timeout):
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

    @contextmanager
    def _limited(self, timeout: float | None) -> Iterator[None]:
        """Run the block under the time limit and Ctrl-C (`_Stop`); turn interruptions and out-of-memory
        into this module's errors."""
        if timeout is None:
            timeout = current_time_limit()
        seconds = self.limits.timeout if timeout is None else seconds_limit(timeout, "timeout")
        with Stop(self._con, seconds) as stop:
            try:
                yield
            except duckdb.InterruptException:
                if stop.reason != "timeout":  # Ctrl-C, or interrupted from elsewhere
                    raise QueryInterrupted() from None
                raise QueryTimeoutError(f"the query was stopped at its time limit of {seconds:g} s",
                                        hint="raise it with --timeout SECONDS, timeout= in Python or "
                                        "RADGENOME_QUERY_TIMEOUT (0: no limit)") from None
            except duckdb.OutOfMemoryException as e:
                raise QueryMemoryError(
                    f"the query ran out of memory ({_first_line(e)})",
                    hint=f"it may use {self.memory_limit} of memory (RADGENOME_QUERY_MEMORY) and "
                         f"{self.limits.spill if self._spill_dir else 'no'} spill space on disk "
                         "(RADGENOME_QUERY_SPILL): narrow the query (filter, aggregate, LIMIT) or raise them") from None
            except RuntimeError as e:  # DuckDB's own answer to Ctrl-C
                if str(e) != "Query interrupted":
                    raise
                raise QueryInterrupted() from None
            except KeyboardInterrupt:  # Ctrl-C while Python ran: make sure DuckDB stops too
                self._con.interrupt()
                raise QueryInterrupted() from None

    def close(self) -> None:
        self._cleanup()


def _first_line(e: BaseException) -> str:
    """DuckDB's first line of an error, without its `Out of Memory Error: `-style prefix."""
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return re.sub(r"^[A-Z][A-Za-z ]{0,40} Error: ", "", first)


def _close(con: duckdb.DuckDBPyConnection, spill_dir: str | None) -> None:
    con.close()
    if spill_dir:
        shutil.rmtree(spill_dir, ignore_errors=True)
