"""Deterministic Parquet files of the warehouse's tables: sorted rows, fixed settings.

The same rows always give the same bytes (the snapshot id is a hash of them), whether a table is
written whole (`write_parquet`) or streamed in order (`ParquetRows`): both write row groups of
exactly `ROW_GROUP` rows with one writer's settings. `write_sorted` merges a build's tables out of
core: DuckDB sorts the base snapshot's rows and the build's saved parts together under a memory
limit (spilling to disk), so a table larger than memory is staged with bounded memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from warehouse.core import schema
from warehouse.store.duckdb_files import build_limits

ROW_GROUP = 256_000


def sort_table(name: str, table: pa.Table) -> pa.Table:
    """`table`'s rows in `schema.sort_key` order (nulls first; a stable sort)."""
    if table.num_rows == 0:
        return table
    keys = [(k, "ascending", "at_start") for k in schema.sort_key(name)]
    return table.take(pc.sort_indices(table, sort_keys=keys))


class ParquetRows:
    """A Parquet file written from tables given in order: row groups of exactly `ROW_GROUP` rows, so
    the bytes equal those of the whole table written at once. Written to a temp file, then renamed."""

    def __init__(self, path: Path, table_schema: pa.Schema) -> None:
        self.path, self.tmp = path, path.with_suffix(".parquet.partial")
        self.schema, self.rows, self._held = table_schema, 0, []
        self._writer = pq.ParquetWriter(self.tmp, table_schema, compression="zstd", write_statistics=True,
                                        use_dictionary=True, store_schema=True)

    def write(self, rows: pa.Table | pa.RecordBatch) -> None:
        t = pa.Table.from_batches([rows]) if isinstance(rows, pa.RecordBatch) else rows
        self._held.append(t.cast(self.schema))
        self.rows += t.num_rows
        held = sum(x.num_rows for x in self._held)
        if held >= ROW_GROUP:
            whole = held - held % ROW_GROUP
            t = pa.concat_tables(self._held)
            self._writer.write_table(t.slice(0, whole).combine_chunks(), row_group_size=ROW_GROUP)
            self._held = [t.slice(whole).combine_chunks()]

    def close(self) -> None:
        """Write the last row group and publish the file."""
        rest = pa.concat_tables(self._held) if self._held else self.schema.empty_table()
        if rest.num_rows or not self.rows:  # an empty table: one empty row group, as write_table writes it
            self._writer.write_table(rest.combine_chunks(), row_group_size=ROW_GROUP)
        self._writer.close()
        os.replace(self.tmp, self.path)

    def __enter__(self) -> ParquetRows:
        return self

    def __exit__(self, kind: type | None, *exc: Any) -> None:
        if kind is None:
            self.close()
        else:
            self._writer.close()
            self.tmp.unlink(missing_ok=True)


def write_parquet(table: pa.Table, path: Path) -> None:
    """A whole (sorted) table as deterministic Parquet."""
    with ParquetRows(path, table.schema) as out:
        out.write(table)


def write_sorted(name: str, path: Path, parts: Iterable[Path], base: Path | None, keep: str | None,
                 params: dict, spill: Path) -> int:
    """Stage table `name`: the rows of the Arrow IPC `parts` and, from the Parquet file `base`, the rows
    the SQL condition `keep` selects (``$name`` parameters from `params`), sorted by `schema.sort_key`
    out of core, written to `path`. Returns the rows written.

    DuckDB's ORDER BY is not stable, but every table's sort key tells its rows apart (rows it cannot
    tell apart are equal), so the bytes are those `sort_table` + `write_parquet` give."""
    import duckdb

    table_schema = schema.TABLES[name]
    sources, con = [], duckdb.connect(":memory:")
    try:
        build_limits(con, spill)
        con.execute("SET preserve_insertion_order = false")  # the ORDER BY gives the order
        parts = sorted(parts)
        if parts:
            con.register("parts", ds.dataset(parts, format="ipc", schema=table_schema))
            sources.append("SELECT * FROM parts")
        if base is not None:
            con.register("base", ds.dataset(base, format="parquet", schema=table_schema))
            sources.append(f"SELECT * FROM base WHERE {keep or 'true'}")
        with ParquetRows(path, table_schema) as out:
            if sources:
                order = ", ".join(f'"{k}" NULLS FIRST' for k in schema.sort_key(name))
                columns = ", ".join(f'"{c}"' for c in table_schema.names)
                rel = con.sql(f"SELECT {columns} FROM ({' UNION ALL '.join(sources)}) ORDER BY {order}",
                              params=(params or None) if base is not None else None)
                for batch in rel.to_arrow_reader(batch_size=ROW_GROUP):
                    out.write(batch)
        return out.rows
    finally:
        con.close()
