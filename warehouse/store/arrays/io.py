"""Where the store's bytes are, and reading and writing its Zarr arrays: TensorStore where it is
safe, zarr-python otherwise.

A store is a local folder (a `Path`) or a folder in a bucket (a `RemoteNode`, ``s3://bucket/...``
through `warehouse.store.objects`). Both answer the few pathlib calls the store makes on its
metadata (``/``, ``read_bytes``, ``is_file``, ``iterdir``), so reading a case's metadata is one
code path; `zarr_store` and `open_array` pick the library that moves the voxels.

zarr-python creates every array (its metadata: Zarr v3, sharding, zstd, blosc). Moving the
voxels goes through TensorStore when it can: reading a region touches a handful of 64^3
chunks and zarr-python 3 spends about half a millisecond of Python per chunk on its async
path, while TensorStore reads the same arrays in C++ about eight times faster (a 480x480x240
case, `benchmarks/masks.py`) and writes a case's label layers in half the CPU time
(`benchmarks/ingest.py`). Both handle the same bytes, so the choice never changes a
result (tests read and write through both). From a bucket, both read a shard's index and
then only the chunks a region overlaps (HTTP range requests), never the whole shard.

Remote reads keep recently read chunks in memory, up to ``RADGENOME_ARRAY_CACHE_MB`` (default
512; 0: off): TensorStore's own `cache_pool`, and zarr 3's `CacheStore` (byte ranges in memory,
LRU) for zarr-python. Local reads are not cached (the page cache does it; memory stays flat).

Forked processes: TensorStore aborts a process forked from one that has used it, and obstore (whose
tokio runtime's threads do not survive a fork) hangs in one forked from a process that has used it,
even with new stores (PyTorch's DataLoader forks its workers by default). Such a child uses the
other library: zarr-python instead of TensorStore locally; for a bucket, TensorStore for every
read (metadata too) when only obstore ran in the parent, zarr-python over obstore when only
TensorStore did. When both ran, a read fails with a one-line error asking for
``multiprocessing_context="forkserver"`` (or ``spawn``). Set ``RADGENOME_ARRAY_READER=zarr`` to
use zarr-python wherever it works.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import zarr

from warehouse.core.errors import WarehouseError
from warehouse.store.objects import ObjectNotFoundError, ObjectRoot, ObjectStoreError, is_url, translate

ENV = "RADGENOME_ARRAY_READER"
CACHE_ENV = "RADGENOME_ARRAY_CACHE_MB"
CACHE_MB = 512  # remote reads' chunk cache, per process and per library
_owner_pid: int | None = None  # the process whose TensorStore threads are running
_context: Any = None  # TensorStore's context for local arrays (no cache)
_remote_contexts: dict[int, Any] = {}  # ... and for arrays in a bucket, by chunk cache size
_tokio_forked_pid: int | None = None  # set in a child forked while obstore's runtime was running


class ArrayReader(Protocol):
    """What the store needs of an array: its shape and numpy reads of basic slices."""

    shape: tuple[int, ...]

    def __getitem__(self, selection: Any) -> np.ndarray: ...


# -- where the bytes are -----------------------------------------------------------------------
class RemoteNode:
    """A key under a bucket root with the pathlib calls the store makes on a local folder."""

    def __init__(self, root: ObjectRoot, key: str = "") -> None:
        self.root, self.key = root, key.strip("/")

    def __truediv__(self, name: str) -> RemoteNode:
        return RemoteNode(self.root, f"{self.key}/{name}" if self.key else name)

    def __str__(self) -> str:
        return self.root / self.key if self.key else self.root.url

    def __repr__(self) -> str:
        return f"RemoteNode({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteNode) and str(other) == str(self)

    def __hash__(self) -> int:
        return hash(str(self))

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def read_bytes(self) -> bytes:
        """The object's bytes; FileNotFoundError when there is none (as `Path.read_bytes`)."""
        if not obstore_usable():
            with errors("read", self):
                value = _kvstore(self.root, "").read(self.key).result()
            if value.state != "value":
                raise FileNotFoundError(str(self))
            return bytes(value.value)
        try:
            return self.root.get(self.key)
        except ObjectNotFoundError:
            raise FileNotFoundError(str(self)) from None

    def is_file(self) -> bool:
        if not obstore_usable():
            with errors("check", self):
                return _kvstore(self.root, "").read(self.key).result().state == "value"
        return self.root.exists(self.key)

    def is_dir(self) -> bool:
        """True: `iterdir` yields folders only (a bucket has no empty folders to tell apart)."""
        return True

    def iterdir(self) -> Iterator[RemoteNode]:
        """The folders directly under this one."""
        if obstore_usable():
            names = self.root.list_dirs(self.key)
        else:
            prefix = f"{self.key}/" if self.key else ""
            with errors("list", self):
                keys = [k.decode() for k in _kvstore(self.root, "").list().result()]
            names = sorted({k[len(prefix):].split("/", 1)[0] for k in keys if k.startswith(prefix)
                            and "/" in k[len(prefix):]})
        return iter([self / n for n in names])


Node = Path | RemoteNode


def node(location: Path | str | RemoteNode) -> Node:
    """A store's location as given (a path, ``file://`` or a bucket URL) as a `Path` or `RemoteNode`."""
    if isinstance(location, RemoteNode | Path):
        return location
    if is_url(location):
        return RemoteNode(ObjectRoot(str(location)))
    text = str(location)
    return Path(text.removeprefix("file://") if text.startswith("file://") else text)


def cache_bytes() -> int:
    """The remote chunk cache's size in bytes (``RADGENOME_ARRAY_CACHE_MB``; 0: off)."""
    raw = os.environ.get(CACHE_ENV, "").strip()
    try:
        mb = float(raw) if raw else CACHE_MB
    except ValueError:
        raise ObjectStoreError(f"{CACHE_ENV}={raw!r} is not a number of megabytes",
                               hint=f"set it to e.g. {CACHE_MB}, or 0 for no cache") from None
    return max(0, int(mb * (1 << 20)))


def zarr_store(location: Node, read_only: bool) -> zarr.abc.store.Store:
    """zarr-python's store for `location`: a LocalStore, or an ObjectStore over obstore (read-only:
    behind a bounded in-memory cache of the byte ranges read)."""
    if isinstance(location, Path):
        return zarr.storage.LocalStore(location, read_only=read_only)
    _check_obstore(location)
    store: Any = zarr.storage.ObjectStore(location.root.sub_store(location.key), read_only=read_only)
    if read_only and (limit := cache_bytes()):
        from zarr.experimental.cache_store import CacheStore

        store = CacheStore(store, cache_store=zarr.storage.MemoryStore(), max_size=limit, cache_set_data=False)
    return store


@contextmanager
def errors(action: str, where: Any) -> Iterator[None]:
    """Errors reading or writing a bucket (obstore's, TensorStore's, zarr's on bytes it cannot decode)
    as one-line `ObjectStoreError`s naming `where`; local stores' errors pass unchanged."""
    from obstore.exceptions import BaseError

    try:
        yield
    except (WarehouseError, FileNotFoundError):
        raise
    except (BaseError, OSError, ValueError, RuntimeError) as e:
        if isinstance(where, Path):
            raise
        text = re.sub(r"\s*\[tensorstore_spec=.*", "", str(e), flags=re.S)  # TensorStore's spec: long, says nothing
        cause: BaseException = FileNotFoundError(text) if text.startswith("NOT_FOUND") else RuntimeError(text)
        raise translate(e if isinstance(e, BaseError | OSError) else cause, action, str(where)) from None


# -- which library, in this process ------------------------------------------------------------
def _tokio_threads() -> bool:
    """Whether obstore's tokio runtime has threads in this process (Linux: their names)."""
    tasks = f"/proc/{os.getpid()}/task"
    try:
        tids = os.listdir(tasks)
    except OSError:
        return False
    for tid in tids:
        try:
            with open(f"{tasks}/{tid}/comm") as f:
                if f.read().startswith("tokio"):
                    return True
        except OSError:
            continue
    return False


_fork_state: tuple[int, bool] = (0, False)


def _before_fork() -> None:
    global _fork_state
    if "obstore" in sys.modules:
        _fork_state = (os.getpid(), _tokio_threads())


def _after_fork_in_child() -> None:
    global _tokio_forked_pid
    parent, tokio = _fork_state
    if tokio or (_tokio_forked_pid is not None and parent == _tokio_forked_pid):
        _tokio_forked_pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def obstore_usable() -> bool:
    """False in a process forked while obstore's runtime was running (obstore would hang there)."""
    return _tokio_forked_pid != os.getpid()


def _tensorstore_usable() -> bool:
    if _owner_pid is not None and _owner_pid != os.getpid():
        return False  # forked from a process that used TensorStore: using it here would abort
    try:
        import tensorstore  # noqa: F401
    except ImportError:
        return False
    return True


def backend(location: Node | None = None) -> str:
    """``tensorstore`` or ``zarr``: what `open_array` uses in this process now (for `location`)."""
    want_zarr = os.environ.get(ENV, "").lower() == "zarr"
    ts_ok = _tensorstore_usable()
    zarr_ok = True
    if isinstance(location, RemoteNode):
        ts_ok = ts_ok and location.root.tensorstore_kvstore("") is not None
        zarr_ok = obstore_usable()
    if ts_ok and (not want_zarr or not zarr_ok):
        return "tensorstore"
    if zarr_ok:
        return "zarr"
    raise _forked_error(location)


def _forked_error(location: Any) -> ObjectStoreError:
    return ObjectStoreError(f"cannot read {location} in this process: it was forked from one that had "
                            "started obstore and TensorStore, and neither works after a fork",
                            hint="DataLoader(..., multiprocessing_context='forkserver') (or 'spawn'), or read "
                                 "no arrays in the parent before the workers start")


def _check_obstore(location: RemoteNode) -> None:
    if not obstore_usable():
        raise _forked_error(location)


# -- TensorStore -------------------------------------------------------------------------------
class _TensorStoreArray:
    """A TensorStore handle with numpy's read interface."""

    def __init__(self, handle: Any, where: Any) -> None:
        self._handle, self._where = handle, where
        self.shape = tuple(int(n) for n in handle.shape)

    def __getitem__(self, selection: Any) -> np.ndarray:
        with errors("read", self._where):
            return self._handle[selection].read().result()


def _ts_context(cached: bool) -> Any:
    """The context of local arrays and remote writes (no cache), or of remote reads (`cached`)."""
    import tensorstore as ts

    global _owner_pid, _context
    if _owner_pid != os.getpid():
        _owner_pid, _context = os.getpid(), None
        _remote_contexts.clear()
    if not cached:
        if _context is None:
            # No chunk cache: a read decodes what it needs and memory stays flat over many cases.
            _context = ts.Context({"cache_pool": {"total_bytes_limit": 0}})
        return _context
    limit = cache_bytes()
    if limit not in _remote_contexts:
        _remote_contexts[limit] = ts.Context({"cache_pool": {"total_bytes_limit": limit}})
    return _remote_contexts[limit]


def _kvstore_spec(root: ObjectRoot, key: str) -> dict:
    spec = root.tensorstore_kvstore(key)
    if spec is None:
        raise ObjectStoreError(f"cannot read {root / key} with TensorStore: only s3:// is supported")
    if os.environ.get("AWS_ACCESS_KEY_ID"):  # else TensorStore logs its search of ~/.aws on stderr
        spec["aws_credentials"] = {"type": "environment"}
    return spec


def _kvstore(root: ObjectRoot, key: str) -> Any:
    import tensorstore as ts

    if not _tensorstore_usable():
        raise _forked_error(root / key)
    return ts.KvStore.open(_kvstore_spec(root, key), context=_ts_context(True)).result()


def _tensorstore(location: Node, path: str, *, write: bool = False, cached: bool = True) -> Any:
    import tensorstore as ts

    if isinstance(location, Path):
        spec: dict = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(location / path)}}
        context = _ts_context(False)
    else:
        spec = {"driver": "zarr3", "kvstore": _kvstore_spec(location.root, f"{location.key}/{path}")}
        cached = cached and not write
        if cached:  # a store opened read-only is a snapshot's: its bytes never change
            spec |= {"recheck_cached_data": False, "recheck_cached_metadata": False}
        context = _ts_context(cached)  # writes, and reads of a store being written, cache nothing
    with errors("write" if write else "read", location / path):
        return ts.open(spec, read=not write, write=write, open=True, context=context).result()


# -- one array ---------------------------------------------------------------------------------
def open_array(root: Node, path: str, store: zarr.abc.store.Store | Callable[[], zarr.abc.store.Store], *,
               cached: bool = True) -> ArrayReader:
    """Open the array at `path` (relative to the store at `root`) for reading; `store` is the
    store's zarr-python store, or a function that opens it (called only when zarr-python reads).
    `cached`: remote reads may assume the bytes do not change while the store is open (a snapshot's)."""
    if backend(root) == "zarr":
        if callable(store):
            store = store()
        with errors("read", root / path):
            return _ZarrArray(zarr.open_array(store, path=path, mode="r", zarr_format=3), root / path)
    return _TensorStoreArray(_tensorstore(root, path, cached=cached), root / path)


class _ZarrArray:
    """A zarr-python array whose store errors read as one line (remote stores)."""

    def __init__(self, array: zarr.Array, where: Any) -> None:
        self._array, self._where = array, where
        self.shape = tuple(array.shape)

    def __getitem__(self, selection: Any) -> np.ndarray:
        with errors("read", self._where):
            return self._array[selection]


def write_array(root: Node, path: str, store: zarr.abc.store.Store, data: np.ndarray, **create: Any) -> None:
    """Create the array at `path` with zarr-python (`create`: chunks, shards, compressors, ...)
    and write all of `data` into it."""
    with errors("write", root / path):
        out = zarr.create_array(store, name=path, shape=data.shape, dtype=data.dtype, **create)
        if backend(root) == "zarr":
            out[...] = data
            return
    handle = _tensorstore(root, path, write=True)
    with errors("write", root / path):
        handle.write(data).result()
