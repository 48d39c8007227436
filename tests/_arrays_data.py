"""Shared data for the array store tests (tests/test_arrays_*.py): a case id, an affine that is
not the identity, box masks, a random CT, and a worker that writes one case from another process."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from warehouse.core.anatomy import anatomy
from warehouse.store.arrays import ArrayStore

# Real sample data beside the project (as tests/conftest.py finds it); tests that need it skip.
DATA = Path(os.environ.get("RADGENOME_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
CASE = "train_1_a_1.nii.gz"
# Flipped axes, anisotropic spacing and an offset: world coordinates are not voxel indices.
AFFINE = np.array([[-0.7, 0, 0, 120.0], [0, -0.7, 0, 95.0], [0, 0, 2.5, -300.0], [0, 0, 0, 1]])


def rid(name: str) -> int:
    """The region id of an anatomy region name."""
    return anatomy().resolve(name).region_id


def box_mask(shape, lo, hi) -> np.ndarray:
    """A boolean mask of `shape`, true on the box [lo, hi)."""
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = True
    return m


def random_ct() -> np.ndarray:
    """A small seeded int16 CT (24 x 20 x 12) of HU values."""
    return np.random.default_rng(0).integers(-1000, 1500, (24, 20, 12)).astype(np.int16)


def new_store(tmp_path: Path) -> ArrayStore:
    """An empty writable array store under `tmp_path`."""
    return ArrayStore(tmp_path / "arrays.zarr", mode="a")


def write_case(args) -> str:
    """Write one random case (image and a heart mask of seed `seed`) into the store at `path`; for
    process pools (importable by name in a spawned child)."""
    path, case_id, seed = args
    rng = np.random.default_rng(seed)
    store = ArrayStore(path)
    store.write_image(case_id, rng.integers(-1000, 1000, (40, 40, 20)).astype(np.int16), np.eye(4))
    store.write_masks(case_id, {"heart": rng.random((40, 40, 20)) < 0.3}, np.eye(4))
    return case_id
