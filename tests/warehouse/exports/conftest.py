"""The warehouse the export tests share: `CohortSource(n=6)` (CTs, overlapping masks, one case without a
CT, one empty heart), built once for the package and only read."""

from __future__ import annotations

import pytest

from ingest.runner import build
from tests.fixtures.cohort_source import CohortSource
from warehouse import Warehouse


@pytest.fixture(scope="package")
def wh(tmp_path_factory) -> Warehouse:
    root = tmp_path_factory.mktemp("wh")
    build(CohortSource(n=6), root, runner="local", progress=False)
    return Warehouse.open(root)
