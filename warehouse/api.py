"""`Warehouse`: the one Python entry point. The CLI commands mirror its methods."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from queries import get_query
from warehouse.core import schema
from warehouse.core.errors import QueryLimitWarning, QueryRefusedError
from warehouse.engine import Engine
from warehouse.store.snapshot import Snapshot, list_snapshots, list_staged, open_snapshot


class Warehouse:
    """A read-only view of one snapshot of a warehouse root.

    >>> wh = Warehouse.open("build/demo")                     # latest snapshot
    >>> wh.sql("SELECT count(*) AS n FROM sentences WHERE is_abnormal")
    """

    def __init__(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._engine = Engine(snapshot)

    @classmethod
    def open(cls, root: str | Path, snapshot: str | None = None) -> Warehouse:
        """Open the latest snapshot of `root`, or the snapshot with id `snapshot`."""
        return cls(open_snapshot(root, snapshot))

    # -- identity ------------------------------------------------------------------------------
    @property
    def snapshot_id(self) -> str:
        return self._snapshot.snapshot_id

    @property
    def root(self) -> Path:
        return self._snapshot.root

    @property
    def path(self) -> Path:
        """The snapshot's folder (tables/, arrays.zarr, manifest.json)."""
        return self._snapshot.path

    def table_file(self, name: str) -> Path:
        """Table `name`'s Parquet file in this snapshot (for a bucket root, fetched and checked first)."""
        if name not in schema.TABLES:
            raise QueryRefusedError(f"unknown table {name!r}", hint="tables: " + ", ".join(schema.TABLES))
        return self._snapshot.table_path(name)

    @property
    def manifest(self) -> dict:
        return self._snapshot.manifest

    def snapshots(self) -> list[str]:
        """Every published snapshot id of this root, oldest first."""
        return list_snapshots(self.root)

    def info(self) -> dict:
        """Snapshot id, row counts, sources and inputs, as recorded in the manifest, and the root's
        builds staged but not yet published (``staged``, only where there are some)."""
        m = self.manifest
        sources = self.sql("SELECT source, count(*) AS cases FROM cases GROUP BY source ORDER BY source")
        out = {"snapshot_id": self.snapshot_id, "path": str(self.path), "created": m.get("created"),
               "row_counts": m.get("row_counts", {}), "sources": dict(sources.iter_rows()),
               "inputs": len(m.get("inputs", [])), "base_snapshot": m.get("base_snapshot")}
        if staged := list_staged(self.root):
            out["staged"] = [{"path": str(b.path), "cases_saved": b.cases,
                              "note": f"{b}: re-run its command to finish it"} for b in staged]
        return out

    # -- SQL -------------------------------------------------------------------------------------
    def sql(self, query: str, params: Mapping[str, Any] | None = None, *,
            timeout: float | None = None) -> pl.DataFrame:
        """Run read-only SQL over the snapshot's tables with bound `$name` parameters.

        A query past its time limit raises `QueryTimeoutError`: `timeout` seconds (0: none), else
        RADGENOME_QUERY_TIMEOUT's, 60 by default (`warehouse.engine` lists every limit)."""
        return self._engine.sql(query, params, timeout=timeout)

    def page(self, query: str, params: Mapping[str, Any] | None = None, *, limit: int, offset: int = 0,
             timeout: float | None = None) -> pl.DataFrame:
        """Rows `offset` to `offset + limit` of `sql`'s result (in its order): a page of a long result
        without fetching the rest."""
        return self._engine.sql(query, params, timeout=timeout, limit=limit, offset=offset)

    def arrow(self, query: str, params: Mapping[str, Any] | None = None, *,
              timeout: float | None = None) -> pa.Table:
        """Like `sql`, returning an Arrow table."""
        return self._engine.arrow(query, params, timeout=timeout)

    def table(self, name: str, case_ids: Iterable[str] | None = None, *,
              timeout: float | None = None) -> pa.Table:
        """Table `name` (only the rows of `case_ids`, if given) as Arrow with the schema's types, in the
        order of its Parquet copy (`schema.sort_key`, nulls first). `timeout` as for `sql`."""
        if name not in schema.TABLES:
            raise QueryRefusedError(f"unknown table {name!r}", hint="tables: " + ", ".join(schema.TABLES))
        table_schema = schema.TABLES[name]
        columns = ", ".join(f'"{c}"' for c in table_schema.names)
        order = ", ".join(f'"{c}" NULLS FIRST' for c in schema.sort_key(name))
        where, params = "", None
        if case_ids is not None:
            if "case_id" not in table_schema.names:
                raise QueryRefusedError(f"table {name!r} has no case_id to select rows by",
                                        hint="read it whole (case_ids=None)")
            where, params = "WHERE case_id IN (SELECT unnest($ids))", {"ids": list(case_ids)}
        t = self.arrow(f"SELECT {columns} FROM {name} {where} ORDER BY {order}", params, timeout=timeout)
        return t.cast(table_schema)  # DuckDB's list fields and lost descriptions back to the schema's

    def query(self, name: str, *, timeout: float | None = None, **params: Any) -> pl.DataFrame:
        """Run a named query of the library (`queries/*.sql`) with typed parameters.

        A query whose tables are empty in this snapshot raises `QueryNotApplicableError` saying
        what is missing; a result as long as the query's `limit` warns (`QueryLimitWarning`):
        `query_total` counts the rows there are. `timeout` as for `sql` (no named query has a
        parameter of that name)."""
        q = get_query(name)
        bound = q.bind(**params)
        q.check_applicable(self.manifest.get("row_counts", {}))
        df = self._engine.sql(q.sql, bound, timeout=timeout)
        if q.has_param("limit") and bound["limit"] is not None and df.height >= bound["limit"]:
            warnings.warn(QueryLimitWarning(f"{name}: {df.height:,} rows, its limit; more may match "
                                            f"(query_total counts them; pass a larger limit)"), stacklevel=2)
        return df

    def query_total(self, name: str, **params: Any) -> int:
        """The rows a named query gives without its `limit` (its other parameters as given)."""
        q = get_query(name)
        bound = q.bind(**params)
        if q.has_param("limit"):
            bound["limit"] = 2**62
        return int(self._engine.sql(f"SELECT count(*) AS n FROM ({q.sql}) AS q", bound)["n"][0])

    # -- arrays ----------------------------------------------------------------------------------
    @cached_property
    def arrays(self):
        """The snapshot's array store, read-only (`warehouse.store.arrays.ArrayStore`)."""
        return self._snapshot.open_arrays()

    def image(self, case_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The CT volume (int16 HU) and its 4x4 affine."""
        return self.arrays.image(case_id)

    def region_mask(self, case_id: str, region: str | int, crop: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """A region's mask (bool) and affine; a parent without a mask is the union of its descendants."""
        return self.arrays.region_mask(case_id, region, crop=crop)

    def region_crop(self, case_id: str, region: str | int, margin_mm: float = 10.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """HU crop, mask crop and affine of a region's bounding box grown by `margin_mm`."""
        return self.arrays.region_crop(case_id, region, margin_mm=margin_mm)

    def close(self) -> None:
        """Close the SQL engine (the array store holds no open files)."""
        self._engine.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Warehouse({str(self.root)!r}, snapshot={self.snapshot_id!r})"
