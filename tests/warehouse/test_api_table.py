"""`Warehouse.table`: a table (or its rows of some cases) as Arrow, in its Parquet order, with the schema's types."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from ingest.runner import build
from ingest.sources.demo import DemoSource
from warehouse import Warehouse
from warehouse.core import schema
from warehouse.core.errors import QueryRefusedError


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Warehouse:
    root = tmp_path_factory.mktemp("api") / "wh"
    build(DemoSource(n=4), root, runner="local", progress=False)
    return Warehouse.open(root)


@pytest.mark.parametrize("name", list(schema.TABLES))
def test_a_table_equals_its_parquet_copy(wh, name):
    t = wh.table(name)
    assert t.schema.equals(schema.TABLES[name], check_metadata=True)
    assert t.equals(pq.read_table(wh.path / "tables" / f"{name}.parquet", schema=schema.TABLES[name]))


def test_rows_of_some_cases_keep_the_order(wh):
    whole = wh.table("sentences")
    ids = sorted(set(whole["case_id"].to_pylist()))[::2]
    part = wh.table("sentences", [*ids, "not_a_case.nii.gz"])
    assert part.num_rows and part.to_pylist() == [r for r in whole.to_pylist() if r["case_id"] in ids]
    assert wh.table("vqa", []).num_rows == 0


def test_unknown_tables_and_tables_without_cases_are_refused(wh):
    with pytest.raises(QueryRefusedError, match="unknown table"):
        wh.table("cases; DROP TABLE cases")
    with pytest.raises(QueryRefusedError, match="no case_id"):
        wh.table("anatomy", ["x"])
