"""Immutable snapshots: staged, published with one atomic claim, never half-written.

The folders and files of a root: `warehouse.store.layout`.

Snapshot ids are ``NNNNN-<hash>``: a sequence number (the newest is the largest) and
a hash of the tables' content. Readers hold a path to their snapshot's folder, so a
publish never changes what an open reader sees. How a build claims the next id, rebases,
and how derived files are repaired: `warehouse.store.commit`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.ipc as ipc

from warehouse.core import schema
from warehouse.core.errors import NotAWarehouseError, SnapshotNotFoundError, WarehouseError
from warehouse.core.ids import case_key
from warehouse.store import commit, remote
from warehouse.store.arrays.mapped import MappedArrays, open_arrays
from warehouse.store.arrays.store import ArrayStore
from warehouse.store.commit import CommitConflictError, StagedBuild
from warehouse.store.duckdb_files import write_database
from warehouse.store.layout import ARRAYS_DIR, COMMIT, DATABASE, MANIFEST, SNAPSHOTS, STAGING, TABLES_DIR
from warehouse.store.objects import ObjectRoot, root_location
from warehouse.store.parquet import sort_table, write_parquet, write_sorted

__all__ = ["CommitConflictError", "Snapshot", "SnapshotWriter", "StagedBuild", "describe_snapshots", "list_snapshots",
           "list_staged", "open_snapshot"]
FORMAT_VERSION = 1
# Parts are mostly nulls and repeats: zstd stores them in an eighth of the bytes (paper scale 10: 15.7 -> 1.9 GB).
_PART_OPTIONS = ipc.IpcWriteOptions(compression="zstd")
_HASH_FULL_LIMIT = 1 << 30  # files above 1 GiB are hashed over their first 64 MiB and their size


# -- reading ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """A published snapshot: its folder and manifest.

    A bucket root's snapshot (`root` is then its URL) has its tables fetched into a local `path`
    (`warehouse.store.remote`); its arrays stay in the bucket, each case in its build's store
    (`arrays_location` is then a `MappedArrays`)."""

    root: Path | str
    snapshot_id: str
    path: Path
    manifest: dict = field(compare=False, repr=False)
    fetch: Callable[[str], object] | None = field(default=None, compare=False, repr=False)

    def table_path(self, name: str) -> Path:
        """A table's Parquet file (fetched first, for a bucket root)."""
        return self._local(f"{TABLES_DIR}/{name}.parquet")

    def _local(self, name: str) -> Path:
        path = self.path / name
        if self.fetch is not None and not path.is_file():
            self.fetch(name)
        return path

    @property
    def arrays_path(self) -> Path | str:
        """Where the arrays are: the snapshot's store, or a bucket root's array stores (a URL)."""
        return self.path / ARRAYS_DIR if self.fetch is None else f"{self.root}/{remote.ARRAYS}"

    def arrays_location(self) -> Path | MappedArrays:
        """What `open_arrays` opens (and what a DataLoader worker gets: a path, or the map alone)."""
        if self.fetch is None:
            return self.path / ARRAYS_DIR
        return MappedArrays.from_file(self._local(remote.ARRAYS_MAP), str(self.root))

    def open_arrays(self) -> ArrayStore | MappedArrays:
        """The snapshot's arrays, read-only."""
        return open_arrays(self.arrays_location())

    @property
    def database_path(self) -> Path | None:
        """The snapshot's tables in DuckDB's format; None for snapshots written before it existed."""
        path = self.path / DATABASE
        return path if path.is_file() else None


def list_snapshots(root: Path | str) -> list[str]:
    """Published snapshot ids of a local or bucket root, oldest first."""
    loc = root_location(root)
    return remote.list_snapshots(loc) if isinstance(loc, ObjectRoot) else commit.list_snapshots(loc)


def list_staged(root: Path | str) -> list[StagedBuild]:
    """Builds staged and not yet published (a bucket root's are in this machine's cache of it)."""
    loc = root_location(root)
    return commit.list_staged(loc.cache if isinstance(loc, ObjectRoot) else loc)


def open_snapshot(root: Path | str, snapshot_id: str | None = None) -> Snapshot:
    """The latest published snapshot of a warehouse root, or the one named; a root that does not
    exist, or holds only a staged build, says so (`NotAWarehouseError`). Repairs
    ``ROOT/warehouse.duckdb`` on the way when it does not show the latest (`commit.ensure_views`).
    A bucket root (``s3://...``) fetches the snapshot's tables into its local cache, once."""
    loc = root_location(root)
    if isinstance(loc, ObjectRoot):
        return _open_remote(loc, snapshot_id)
    root = loc
    ids = commit.list_snapshots(root)
    if not ids:
        if staged := commit.list_staged(root):
            raise NotAWarehouseError(f"no published snapshot yet; {staged[0]}: re-run its command to finish it")
        if not root.exists():
            raise NotAWarehouseError(f"warehouse folder {root} does not exist",
                                     hint="give the root a build wrote to, e.g. -w build/demo")
        raise NotAWarehouseError(
            f"{root} is not a warehouse (no published snapshot in {root / SNAPSHOTS})",
            hint="build one with `radgenome demo ROOT` or `radgenome ingest ...`")
    sid = snapshot_id or ids[-1]
    if sid not in ids:
        raise SnapshotNotFoundError(f"no snapshot {sid!r} in {root}", hint=f"known: {', '.join(ids)}")
    commit.ensure_views(root, ids[-1])
    return read_snapshot(root, sid)


def _open_remote(root: ObjectRoot, snapshot_id: str | None) -> Snapshot:
    """A bucket root's snapshot: its manifest and DuckDB tables fetched (Parquet when asked for)."""
    record = remote.read_commit(root, snapshot_id)
    if record is not None:
        return remote_snapshot(root, record)
    known = remote.list_snapshots(root)  # only on the way to an error
    if not known:
        if staged := commit.list_staged(root.cache):
            raise NotAWarehouseError(f"no published snapshot in {root.url} yet; {staged[0]}: "
                                     "re-run its command to finish it")
        raise NotAWarehouseError(f"{root.url} is not a warehouse (no published snapshot in {root / remote.COMMITS})",
                                 hint="build one with `radgenome demo URL` or `radgenome ingest ... -w URL`")
    raise SnapshotNotFoundError(f"no snapshot {snapshot_id!r} in {root.url}", hint=f"known: {', '.join(known)}")


def remote_snapshot(root: ObjectRoot, record: dict, *, database: bool = True) -> Snapshot:
    """The snapshot of commit `record`: its manifest (and with `database`, tables.duckdb) fetched."""
    sid = record["snapshot_id"]
    names = [n for n in (MANIFEST, DATABASE) if n in record.get("files", {}) and (database or n == MANIFEST)]
    path = remote.fetch(root, record, names)
    manifest = json.loads((path / MANIFEST).read_text())
    manifest.update({k: record[k] for k in ("created", "attempts") if k in record})
    return Snapshot(root=root.url, snapshot_id=sid, path=path, manifest=manifest,
                    fetch=lambda name: remote.fetch(root, record, [name]))


def describe_snapshots(root: Path | str) -> list[dict]:
    """One entry per published snapshot of `root`, oldest first: its id, when it was made, its
    source and cases (an empty list where there are none)."""
    loc = root_location(root)
    if isinstance(loc, ObjectRoot):
        snapshots = [remote_snapshot(loc, r, database=False) for r in remote.read_commits(loc)]
    else:
        snapshots = [read_snapshot(loc, sid) for sid in commit.list_snapshots(loc)]
    out = []
    for snap in snapshots:
        sid, m = snap.snapshot_id, snap.manifest
        out.append({"snapshot_id": sid, "created": m.get("created"), "source": m.get("source"),
                    "cases": m.get("row_counts", {}).get("cases")})
    return out


def read_snapshot(root: Path, snapshot_id: str) -> Snapshot:
    """A published snapshot; its `manifest` is manifest.json plus commit.json (``created``)."""
    path = root / SNAPSHOTS / snapshot_id
    manifest = json.loads((path / MANIFEST).read_text())
    if (path / COMMIT).is_file():
        manifest = {**manifest, **json.loads((path / COMMIT).read_text())}
    return Snapshot(root=root, snapshot_id=snapshot_id, path=path, manifest=manifest)


def collect_garbage(root: Path | str, keep: int | None, grace: timedelta = timedelta(hours=1), *,
                    dry_run: bool = False, abandoned: bool = False) -> commit.Collected:
    """Delete all but the newest `keep` snapshots (each only once the one after it is older than
    `grace`: `commit.superseded`) and, in a bucket, the arrays only they referenced and unpublished
    uploads older than `grace` (with `abandoned`, unpublished builds' arrays too: `remote.collect_garbage`).
    `dry_run` only says what it would delete."""
    if keep is not None and keep < 1:
        raise WarehouseError(f"--keep {keep}: the latest snapshot is always kept", hint="give --keep 1 or more")
    loc = root_location(root)
    if isinstance(loc, ObjectRoot):
        return remote.collect_garbage(loc, keep, grace, dry_run=dry_run, abandoned=abandoned)
    open_snapshot(loc)  # says what is wrong with a root that is not a warehouse
    records = [{"snapshot_id": sid, **read_snapshot(loc, sid).manifest} for sid in commit.list_snapshots(loc)]
    old = [r["snapshot_id"] for r in commit.superseded(records, keep, grace)]
    objects = sum(1 for sid in old for p in (loc / SNAPSHOTS / sid).rglob("*") if p.is_file())
    if not dry_run:
        commit.delete_snapshots(loc, old)
    return commit.Collected(old, [], objects)


# -- hashing ------------------------------------------------------------------------------------
def file_digest(path: Path) -> dict:
    """Size and sha256 of an input file (large files: first 64 MiB plus size)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size <= _HASH_FULL_LIMIT:
            return {"path": str(path), "size": size, "sha256": hashlib.file_digest(f, "sha256").hexdigest()}
        h = hashlib.sha256(f.read(64 << 20))
        h.update(str(size).encode())
        return {"path": str(path), "size": size, "sha256_head64m": h.hexdigest()}


def describe_inputs(paths: Iterable[Path | str]) -> list[dict]:
    """Manifest entries for input files and folders (folders: every file below them)."""
    out = []
    for p in map(Path, paths):
        files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
        out.extend(file_digest(f) for f in files if f.exists())
    return out


# -- writing ------------------------------------------------------------------------------------
class SnapshotWriter:
    """Stages one build and publishes it as the next snapshot (the contract: `warehouse.store.commit`).

    Per-case results are saved as they finish (Arrow IPC parts plus a done marker), so a
    killed build, re-run with the same `build_key`, skips finished cases; the staging folder
    is locked while a writer holds it, so a second build of the same key waits (`on_wait` is
    told once). Rows of cases this build does not touch are carried over from the base (the
    latest snapshot when the build starts, or when it rebases), and their arrays are
    hard-linked, so a snapshot is always complete on its own. `base=False` carries nothing.
    After `publish`, `outcome` says what happened: ``published``; ``identical`` (the content
    equals the latest snapshot's, which is returned and nothing is published); ``recovered``
    (an earlier run of this build was killed just after publishing it: only cleaned up).
    """

    def __init__(self, root: Path | str, build_key: str, *, base: Snapshot | None | bool = True,
                 on_wait: Callable[[str], None] | None = None) -> None:
        self.location = root_location(root)
        if isinstance(self.location, ObjectRoot):  # staged in this machine's cache, published to the bucket
            self.location.check_access()
            self.target: commit.Target = remote.RemoteTarget(self.location)
            self.root = self.location.cache
        else:
            self.target = commit.LocalTarget(self.location)
            self.root = self.location
        self.build_key = build_key
        self.staging = self.root / STAGING / build_key
        self.commit_dir = self.staging / "commit"
        self._lock: IO | None = commit.lock_staging(self.staging, on_wait)
        commit.sweep_trash(self.staging.parent)
        (self.staging / "parts").mkdir(exist_ok=True)
        (self.staging / "done").mkdir(exist_ok=True)
        legacy = self.staging / "snapshot" / ARRAYS_DIR  # staged before the commit contract
        if legacy.is_dir() and isinstance(self.arrays_path, Path) and not self.arrays_path.exists():
            os.rename(legacy, self.arrays_path)
        self._carry = base is True or isinstance(base, Snapshot)
        latest = self.target.latest_id()
        self.base: Snapshot | None = base if isinstance(base, Snapshot) else \
            self._snapshot(latest) if base is True and latest else None
        self.base_id = self.base.snapshot_id if self.base else latest  # what the claim expects as latest
        self.outcome: str | None = None

    @property
    def arrays_path(self) -> Path | str:
        """Where this build's jobs write arrays: the staging folder, or for a bucket root a prefix in
        the bucket (so workers on other machines write there directly)."""
        if isinstance(self.location, ObjectRoot):
            return self.location / remote.build_arrays(self.staging, self.build_key)
        return self.staging / ARRAYS_DIR

    def _snapshot(self, snapshot_id: str) -> Snapshot:
        if isinstance(self.location, ObjectRoot):
            record = remote.read_commit(self.location, snapshot_id)
            if record is None:
                raise SnapshotNotFoundError(f"no snapshot {snapshot_id!r} in {self.location.url}")
            return remote_snapshot(self.location, record, database=False)
        return read_snapshot(self.root, snapshot_id)

    # per-case parts
    def is_done(self, case_id: str) -> bool:
        return (self.staging / "done" / case_key(case_id)).exists()

    def done_cases(self) -> set[str]:
        return {json.loads(p.read_text())["case_id"] for p in (self.staging / "done").iterdir()}

    def save_part(self, part_id: str, tables: Mapping[str, pa.Table | list]) -> None:
        """Save one case's (or one bulk chunk's) rows; the done marker is written last."""
        key = case_key(part_id)
        for name, rows in tables.items():
            t = schema.to_table(name, rows)
            if t.num_rows == 0:
                continue
            d = self.staging / "parts" / name
            d.mkdir(exist_ok=True)
            tmp = d / f"{key}.arrow.partial"
            with ipc.new_file(tmp, t.schema, options=_PART_OPTIONS) as w:
                w.write_table(t)
            os.replace(tmp, d / f"{key}.arrow")
        marker = self.staging / "done" / key
        marker.with_suffix(".partial").write_text(json.dumps({"case_id": part_id}))
        os.replace(marker.with_suffix(".partial"), marker)

    def _parts(self, name: str) -> list[Path]:
        """The saved part files of table `name` (of finished cases and chunks only)."""
        d = self.staging / "parts" / name
        done = {p.name for p in (self.staging / "done").iterdir()}
        return [p for p in sorted(d.glob("*.arrow")) if p.stem in done] if d.is_dir() else []

    # publishing
    def publish(self, *, replaced_cases: Iterable[str], source: str, tables: Mapping[str, pa.Table] | None = None,
                inputs: list[dict] | None = None, extra: Mapping | None = None) -> Snapshot:
        """Assemble the next snapshot on the latest one and claim it; returns the snapshot (see `outcome`).

        `replaced_cases`: case ids this build (re)built; the base snapshot's rows for them are
        dropped, every other row is carried over. `tables`: whole tables that replace the
        base's outright (e.g. the anatomy tables). Raises `CommitConflictError` when other
        builds won every claim it tried (its staging is kept: the same command resumes).
        The writer's lock is released either way.
        """
        self._request = {"replaced": pa.array(sorted(set(replaced_cases)), pa.string()), "source": source,
                         "tables": dict(tables or {}), "inputs": inputs or [], "extra": dict(extra or {})}
        try:
            sid, self.outcome = commit.publish(self)
            if not isinstance(self.location, ObjectRoot):
                commit.ensure_views(self.root)
            elif self.outcome == "identical":  # nothing references this run's arrays
                remote.remove_prefix(self.location, remote.build_arrays(self.staging, self.build_key))
            commit.kill_point("views")
            self.discard()
            return self._snapshot(sid)
        finally:
            self.close()

    def rebase(self, latest: str | None) -> None:
        """Build on `latest` (a build may have published since this one started), and start the next
        snapshot's folder afresh."""
        if latest != self.base_id:
            self.base_id = latest
            if self._carry:
                self.base = self._snapshot(latest) if latest else None
        shutil.rmtree(self.commit_dir, ignore_errors=True)
        (self.commit_dir / TABLES_DIR).mkdir(parents=True)

    def stage_tables(self) -> str:
        """The next snapshot's Parquet tables (the base's rows not replaced, plus this build's), sorted out of
        core with bounded memory (`warehouse.store.parquet.write_sorted`); returns their content hash."""
        r, self._counts = self._request, {}
        tables_dir = self.commit_dir / TABLES_DIR
        for name in schema.TABLES:
            path = tables_dir / f"{name}.parquet"
            if name in r["tables"]:
                t = sort_table(name, schema.to_table(name, r["tables"][name]))
                write_parquet(t, path)
                self._counts[name] = t.num_rows
                continue
            base = self.base.table_path(name) if self._carry and self.base is not None else None
            keep, params = None, {}
            if name == "ingest_errors":
                keep, params = "source IS DISTINCT FROM $source", {"source": r["source"]}
            elif "case_id" in schema.TABLES[name].names:
                keep, params = "case_id IS NULL OR case_id NOT IN (SELECT unnest($replaced))", \
                    {"replaced": r["replaced"].to_pylist()}
            self._counts[name] = write_sorted(name, path, self._parts(name), base if base and base.exists() else None,
                                              keep, params, self.staging / "spill")
        shutil.rmtree(self.staging / "spill", ignore_errors=True)
        return commit.content_digest(tables_dir, schema.TABLES)

    def stage_snapshot(self, snapshot_id: str, content_hash: str, attempt: int) -> Path:
        """Complete the next snapshot's folder (tables.duckdb, arrays, manifest) and return it.

        manifest.json holds the same bytes for the same inputs on the same base; what varies
        between identical builds (the time, the claims tried) goes to commit.json."""
        write_database(self.commit_dir)
        replaced = set(self._request["replaced"].to_pylist())
        if isinstance(self.location, ObjectRoot):  # which store holds each case: nothing is copied
            base = self.base if self._carry else None
            base_map = remote.read_map(base._local(remote.ARRAYS_MAP)) if base is not None else None
            own = remote.build_arrays(self.staging, self.build_key)
            mapping = remote.arrays_map(self.location, own, base_map, replaced)
            (self.commit_dir / remote.ARRAYS_MAP).write_text(json.dumps(mapping, sort_keys=True))
        else:
            self._assemble_arrays(replaced)
        manifest = {
            "format_version": FORMAT_VERSION,
            "snapshot_id": snapshot_id,
            "base_snapshot": self.base_id,
            "build_key": self.build_key,
            "source": self._request["source"],
            "content_sha256": content_hash,
            "row_counts": self._counts,
            "inputs": self._request["inputs"],
            "versions": _versions(),
            **self._request["extra"],
        }
        (self.commit_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        volatile = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "attempts": attempt}
        (self.commit_dir / COMMIT).write_text(json.dumps(volatile, indent=2, sort_keys=True))
        return self.commit_dir

    def _assemble_arrays(self, replaced: set[str]) -> None:
        """The next snapshot's arrays: this build's, then the base's case groups it did not rebuild
        (hard links both, so the staged files stay and a rebase can assemble again)."""
        dst_root = self.commit_dir / ARRAYS_DIR
        if self.arrays_path.is_dir():
            _link_tree(self.arrays_path, dst_root)
        if not self._carry or self.base is None or not self.base.arrays_path.is_dir():
            return
        dst_root.mkdir(parents=True, exist_ok=True)
        for src in self.base.arrays_path.iterdir():
            dst = dst_root / src.name
            if src.is_dir():
                attrs = src / "zarr.json"
                case_id = json.loads(attrs.read_text()).get("attributes", {}).get("case_id") \
                    if attrs.exists() else None
                if case_id in replaced or dst.exists():
                    continue
                _link_tree(src, dst)
            elif not dst.exists():
                shutil.copy2(src, dst)

    def discard(self) -> None:
        """Remove this build's staging and release its lock (published, or nothing to publish)."""
        commit.release_staging(self.staging, self._lock, remove=True)
        self._lock = None

    def close(self) -> None:
        """Release the staging's lock, keeping what is staged (a re-run resumes it)."""
        if getattr(self, "_lock", None) is not None:
            commit.release_staging(self.staging, self._lock, remove=False)
            self._lock = None

    def __del__(self) -> None:  # a writer dropped without `close`: its lock goes with it
        try:
            self.close()
        except Exception:
            pass


def _link_tree(src: Path, dst: Path) -> None:
    for dirpath, _, files in os.walk(src):
        out = dst / Path(dirpath).relative_to(src)
        out.mkdir(parents=True, exist_ok=True)
        for f in files:
            if f.endswith(".partial"):  # a write cut short by a kill
                continue
            try:
                os.link(Path(dirpath) / f, out / f)
            except OSError:  # another file system: copy instead
                shutil.copy2(Path(dirpath) / f, out / f)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("radgenome-warehouse", "duckdb", "pyarrow", "polars", "zarr", "nibabel"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out
