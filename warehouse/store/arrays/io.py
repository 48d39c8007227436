"""Reading and writing the store's Zarr arrays: TensorStore where it is safe, zarr-python otherwise.

zarr-python creates every array (its metadata: Zarr v3, sharding, zstd, blosc). Moving the
voxels goes through TensorStore when it can: reading a region touches a handful of 64^3
chunks and zarr-python 3 spends about half a millisecond of Python per chunk on its async
path, while TensorStore reads the same arrays in C++ about eight times faster (a 480x480x240
case, `benchmarks/masks.py`) and writes a case's label layers in half the CPU time
(`benchmarks/ingest.py`). Both handle the same bytes, so the choice never changes a
result (tests read and write through both).

TensorStore aborts a process forked from one that has used it (PyTorch's DataLoader forks
its workers by default), so such a child uses zarr-python instead. Set
``RADGENOME_ARRAY_READER=zarr`` to always use zarr-python.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import zarr

ENV = "RADGENOME_ARRAY_READER"
_owner_pid: int | None = None  # the process whose TensorStore threads are running
_context: Any = None


class ArrayReader(Protocol):
    """What the store needs of an array: its shape and numpy reads of basic slices."""

    shape: tuple[int, ...]

    def __getitem__(self, selection: Any) -> np.ndarray: ...


class _TensorStoreArray:
    """A TensorStore handle with numpy's read interface."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.shape = tuple(int(n) for n in handle.shape)

    def __getitem__(self, selection: Any) -> np.ndarray:
        return self._handle[selection].read().result()


def backend() -> str:
    """``tensorstore`` or ``zarr``: what `open_array` uses in this process now."""
    if os.environ.get(ENV, "").lower() == "zarr":
        return "zarr"
    if _owner_pid is not None and _owner_pid != os.getpid():
        return "zarr"  # forked from a process that used TensorStore: using it here would abort
    try:
        import tensorstore  # noqa: F401
    except ImportError:
        return "zarr"
    return "tensorstore"


def _tensorstore(root: Path, path: str, *, write: bool = False) -> Any:
    import tensorstore as ts

    global _owner_pid, _context
    if _context is None:
        _owner_pid = os.getpid()
        # No chunk cache: a read decodes what it needs and memory stays flat over many cases.
        _context = ts.Context({"cache_pool": {"total_bytes_limit": 0}})
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(root / path)}}
    return ts.open(spec, read=not write, write=write, open=True, context=_context).result()


def open_array(root: Path, path: str, store: zarr.storage.StoreLike) -> ArrayReader:
    """Open the array at `path` (relative to the store at `root`) for reading."""
    if backend() == "zarr":
        return zarr.open_array(store, path=path, mode="r")
    return _TensorStoreArray(_tensorstore(root, path))


def write_array(root: Path, path: str, store: zarr.storage.StoreLike, data: np.ndarray, **create: Any) -> None:
    """Create the array at `path` with zarr-python (`create`: chunks, shards, compressors, ...)
    and write all of `data` into it."""
    out = zarr.create_array(store, name=path, shape=data.shape, dtype=data.dtype, **create)
    if backend() == "zarr":
        out[...] = data
    else:
        _tensorstore(root, path, write=True).write(data).result()
