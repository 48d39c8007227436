"""Resolving a cohort and choosing an export format: what every format is handed, and the refusals."""

from __future__ import annotations

import pytest

from ingest.runner import build
from tests.fixtures.cohort_source import CohortSource
from warehouse import Warehouse
from warehouse.exports.bundle import FORMATS, export_cohort, export_format
from warehouse.exports.cohort import ExportError, resolve_cohort

ALL = "SELECT case_id FROM cases"


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Warehouse:
    root = tmp_path_factory.mktemp("wh")
    build(CohortSource(n=4), root, runner="local", progress=False)
    return Warehouse.open(root)


def test_a_cohort_is_the_sorted_known_case_ids(wh):
    text, bound, ids = resolve_cohort(wh, ALL + " UNION ALL SELECT 'nope' UNION ALL SELECT NULL "
                                      "ORDER BY case_id DESC", None, None)
    assert ids == sorted(wh.sql(ALL)["case_id"].to_list()) and "nope" not in ids and bound == {}


def test_a_named_query_binds_its_parameters(wh):
    text, bound, ids = resolve_cohort(wh, None, "sentences_mentioning", {"term": "nodule"})
    assert "nodule" in bound.values() and text.strip() and ids


@pytest.mark.parametrize(("sql", "query", "message"), [
    (None, None, "exactly one"), (ALL, "sentences_mentioning", "exactly one"),
    ("SELECT split FROM cases", None, "no case_id column"), (ALL + " WHERE false", None, "cohort is empty")])
def test_bad_cohorts_are_one_line(wh, sql, query, message):
    with pytest.raises(ExportError, match=message) as e:
        resolve_cohort(wh, sql, query, None)
    assert "\n" not in e.value.message


def test_an_unknown_format_names_the_choices(wh, tmp_path):
    with pytest.raises(ExportError, match="unknown export format 'nifti'") as e:
        export_cohort(wh, tmp_path / "out", sql=ALL, format="nifti")
    assert all(name in e.value.hint for name in FORMATS)
    assert export_format("bundle") is None
    assert list(tmp_path.iterdir()) == []
