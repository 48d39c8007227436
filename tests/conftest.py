"""Shared fixtures. Real data lives in ../shared/data beside the project; tests that need it skip
(with the reason) where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RADGENOME_SHARED_DATA", ROOT.parent / "shared" / "data"))

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a skip saying it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA} (set RADGENOME_SHARED_DATA)")
    return SHARED_DATA
