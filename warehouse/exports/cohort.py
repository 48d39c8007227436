"""A cohort to export: its cases, resolved from a query, and the options every export format shares.

`resolve_cohort` runs the cohort query; `Cohort` is what `warehouse.exports.bundle.export_cohort`
hands each format's writer (`bundle`, `hf`, `ome_zarr`, `dicom_seg`): the cases, their file keys,
the regions, the crop and the NIfTI plan of every case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from queries import render
from warehouse.core.errors import WarehouseError

if TYPE_CHECKING:
    from warehouse.api import Warehouse
    from warehouse.exports.nifti import ArrayFile


class ExportError(WarehouseError):
    """An export that cannot be written as asked (non-empty target, empty cohort, bad query)."""


@dataclass
class Cohort:
    """The resolved cohort and options of one export (see `export_cohort` for their meaning)."""

    wh: Warehouse
    case_ids: list[str]  # sorted, each a case of the warehouse
    keys: dict[str, str]  # case_id -> file stem (the array store's case key)
    query: str  # the query as shown to a reader (a named query's name on its first line)
    images: bool = False
    masks: list[str] = field(default_factory=list)  # regions (DAG names), in the order asked
    crop: str | None = None  # the crop region (DAG name)
    margin_mm: float = 10.0
    workers: int = 4
    plans: dict[str, list[ArrayFile]] = field(default_factory=dict)  # NIfTI files per case
    notes: list[str] = field(default_factory=list)  # cases or files left out, and why


def resolve_cohort(wh: Warehouse, sql: str | None, query: str | None,
                   params: Mapping[str, Any] | None) -> tuple[str, dict, list[str]]:
    """The query text, its bound parameters and the cohort's case ids (sorted, known to the warehouse)."""
    if (sql is None) == (query is None):
        raise ExportError("give the cohort as exactly one of a SQL query or a named query",
                          hint="--sql \"SELECT case_id FROM cases WHERE ...\" or --query NAME --param k=v")
    if query is not None:
        text, bound = render(query, **dict(params or {}))
    else:
        text, bound = sql, dict(params or {})
    df = wh.sql(text, bound)
    if "case_id" not in df.columns:
        raise ExportError(f"the cohort query returns no case_id column (it returns {', '.join(df.columns)})",
                          hint="select the cases' ids: SELECT DISTINCT case_id FROM ...")
    wanted = sorted({c for c in df["case_id"].to_list() if c is not None})
    known = set(wh.sql("SELECT case_id FROM cases WHERE case_id IN (SELECT unnest($ids))",
                       {"ids": wanted})["case_id"].to_list())
    case_ids = [c for c in wanted if c in known]
    if not case_ids:
        raise ExportError("the cohort is empty: the query returned no case of this warehouse",
                          hint=f"check it with `radgenome sql --warehouse {wh.root} \"...\"`")
    return text, dict(bound), case_ids
