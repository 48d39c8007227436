"""Fixtures of the array store tests: an empty store and a random CT (`tests.fixtures.arrays_data`)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.arrays_data import new_store, random_ct
from warehouse.store.arrays import ArrayStore


@pytest.fixture
def store(tmp_path) -> ArrayStore:
    return new_store(tmp_path)


@pytest.fixture
def ct() -> np.ndarray:
    return random_ct()
