"""Shared fixtures. Real data lives in ../shared/data beside the project; tests that need it skip
(with the reason) where it is absent."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from tests import SHARED_DATA

# s3_server, s3_env, bucket: a real S3 server on localhost; counting_s3_server: one that logs and can refuse
pytest_plugins = ["tests.fixtures.s3", "tests.fixtures.s3_counting"]

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# Process pools and build workers start from the forkserver: import the heavy modules there once, not
# in every worker (TensorStore is left out: a process forked after it started its threads must not use it).
multiprocessing.set_forkserver_preload(["duckdb", "pandas", "ingest.runner", "warehouse.api"])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a skip saying it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA} (set RADGENOME_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def real_warehouse(shared_data, tmp_path_factory) -> Path:
    """A warehouse built from ../shared/data the way the README tells a user
    (`radgenome ingest radgenome --release ../shared/data --ct-rate ../shared/data`), once per run."""
    from ingest.runner import build
    from ingest.sources.radgenome import RadGenomeSource

    root = tmp_path_factory.mktemp("real_warehouse") / "wh"
    build(RadGenomeSource(shared_data, shared_data), root, runner="local", progress=False)
    return root
