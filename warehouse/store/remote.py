"""The commit contract on an object store, where there is no rename and no lock.

A bucket root (``s3://bucket/prefix``) holds::

    commits/<NNNNN>.json        one per published snapshot: its id, when, base, and every file's
                                size and sha256 (what readers verify their copies against)
    snapshots/<id>/             the snapshot's files, as on a local root (manifest.json, tables/,
                                tables.duckdb), and arrays.json: which store holds each case's
                                arrays; visible only once its commit exists
    arrays/<build key>/         one array store per build, written by its workers directly; a
                                snapshot references the groups it keeps (`MappedArrays`), never copies

A build uploads every file of the next snapshot under ``snapshots/<id>/`` first, then claims the
sequence number with one conditional put (``If-None-Match: *``) of ``commits/<NNNNN>.json``:
two builds on the same base race for the same key and exactly one wins; the other gets False
from `RemoteTarget.claim` and rebases (`warehouse.store.commit.publish`). Readers list only
``commits/``, so an upload cut short is never seen: it is garbage that `collect_garbage` removes
once it is older than the grace period. Deleting an old snapshot rewrites its commit as a
tombstone (``deleted``) rather than removing it, so its sequence number is never claimed again, and
deletes the case groups only it referenced.

The local side of a bucket root lives in `ObjectRoot.cache`: a build's staging (parts, done
markers, the next snapshot's tables) and the tables of snapshots opened for reading, fetched
once and checked against the commit's sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from warehouse.core.errors import WarehouseError
from warehouse.core.ids import case_key
from warehouse.store import commit
from warehouse.store.layout import ARRAYS_DIR, COMMIT, MANIFEST, SNAPSHOTS
from warehouse.store.objects import ObjectNotFoundError, ObjectRoot

COMMITS = "commits"
VERIFIED = ".verified.json"  # in a fetched snapshot's cache folder: the files checked, and their hashes
_COMMIT_RE = re.compile(r"^(\d{5})\.json$")


class CorruptSnapshotError(WarehouseError):
    """A snapshot's file in the bucket is missing or differs from what its commit recorded."""

    exit_code = 1


# -- commits ---------------------------------------------------------------------------------------
def _commit_names(root: ObjectRoot) -> list[str]:
    """The names of the root's commit objects, oldest first (one listing, no reads)."""
    return sorted(n for n in (m["path"].rsplit("/", 1)[-1] for m in root.list(COMMITS)) if _COMMIT_RE.match(n))


def read_commits(root: ObjectRoot, *, deleted: bool = False) -> list[dict]:
    """The root's commit records, oldest first (tombstones of deleted snapshots only with `deleted`)."""
    records = [json.loads(root.get(f"{COMMITS}/{name}")) for name in _commit_names(root)]
    return [r for r in records if deleted or not r.get("deleted")]


def read_commit(root: ObjectRoot, snapshot_id: str | None = None) -> dict | None:
    """The commit record of `snapshot_id`, or of the latest live snapshot (None: no such snapshot).
    One listing and a read or two: opening a root does not read every commit it ever had."""
    if snapshot_id is not None:
        try:
            record = json.loads(root.get(commit_key(snapshot_id)))
        except (ObjectNotFoundError, ValueError):
            return None
        return record if record.get("snapshot_id") == snapshot_id and not record.get("deleted") else None
    for name in reversed(_commit_names(root)):  # the newest first; tombstones are skipped
        record = json.loads(root.get(f"{COMMITS}/{name}"))
        if not record.get("deleted"):
            return record
    return None


def list_snapshots(root: ObjectRoot) -> list[str]:
    """Published snapshot ids, oldest first."""
    return [c["snapshot_id"] for c in read_commits(root)]


def _seq(snapshot_id: str) -> int:
    return int(snapshot_id[:5])


def commit_key(snapshot_id: str) -> str:
    return f"{COMMITS}/{_seq(snapshot_id):05d}.json"


@dataclass(frozen=True)
class RemoteTarget:
    """`warehouse.store.commit.Target` for a bucket root."""

    root: ObjectRoot

    def latest_id(self) -> str | None:
        """The newest claimed id, tombstones included (sequence numbers are never reused)."""
        names = _commit_names(self.root)
        return json.loads(self.root.get(f"{COMMITS}/{names[-1]}"))["snapshot_id"] if names else None

    def content_hash(self, snapshot_id: str) -> str | None:
        manifest = json.loads(self.root.get(f"{SNAPSHOTS}/{snapshot_id}/{MANIFEST}"))
        return manifest.get("content_sha256")

    def is_published(self, snapshot_id: str) -> bool:
        try:
            record = json.loads(self.root.get(commit_key(snapshot_id)))
        except ObjectNotFoundError:
            return False
        return record.get("snapshot_id") == snapshot_id

    def claim(self, base_id: str | None, folder: Path, snapshot_id: str) -> bool:
        """Upload `folder`'s files (its arrays are already in their stores: `arrays_map`), then claim
        `snapshot_id` with a conditional put; False if another build claimed that number first.
        On success `folder` becomes this root's cached copy of the snapshot."""
        if self.latest_id() != base_id:
            return False  # stale already: do not upload
        files = upload_folder(self.root, folder, f"{SNAPSHOTS}/{snapshot_id}")
        extra = json.loads((folder / COMMIT).read_text()) if (folder / COMMIT).is_file() else {}
        record = {**extra, "snapshot_id": snapshot_id, "base_snapshot": base_id, "files": files}
        commit.kill_point("uploaded")
        if not self.root.put(commit_key(snapshot_id), json.dumps(record, indent=1, sort_keys=True).encode(),
                             create=True):
            return False
        commit.kill_point("renamed")
        cached = snapshot_cache(self.root, snapshot_id)
        if not cached.exists():
            cached.parent.mkdir(parents=True, exist_ok=True)
            os.rename(folder, cached)
            (cached / VERIFIED).write_text(json.dumps(files, sort_keys=True))
        return True


def upload_folder(root: ObjectRoot, folder: Path, prefix: str) -> dict[str, dict]:
    """Upload every file below `folder` (arrays aside) to `prefix`; returns each one's size and sha256."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(ARRAYS_DIR + "/") or rel.endswith(".partial") or rel == VERIFIED:
            continue
        files[rel] = _digest(path)
        root.put(f"{prefix}/{rel}", path)
    return files


def _digest(path: Path) -> dict:
    with open(path, "rb") as f:
        return {"size": path.stat().st_size, "sha256": hashlib.file_digest(f, "sha256").hexdigest()}


# -- arrays ----------------------------------------------------------------------------------------
ARRAYS = "arrays"
ARRAYS_MAP = "arrays.json"


def build_arrays(staging: Path, build_key: str) -> str:
    """The array store a build's workers write to, relative to the root: ``arrays/<build key>-<run>``,
    named once per staging (a resumed build keeps it). A new run of the same inputs gets a store of its
    own, so it never rewrites the arrays a published snapshot references."""
    record = staging / "arrays_store"
    try:
        return record.read_text().strip()
    except FileNotFoundError:
        name = f"{ARRAYS}/{build_key}-{uuid.uuid4().hex[:8]}"
        tmp = record.with_suffix(".partial")
        tmp.write_text(name)
        os.replace(tmp, record)
        return name


def arrays_map(root: ObjectRoot, own: str, base_map: dict[str, str] | None, replaced: Iterable[str]) -> dict:
    """The next snapshot's ``arrays.json``: the case groups of this build's store `own`, and the base's
    groups of the cases it did not rebuild (case key -> store, relative to the root), as
    ``{"format": 1, "stores": {store: [case keys]}}``."""
    built = set(root.list_dirs(own))
    drop = built | {case_key(c) for c in replaced}
    keys = {k: store for k, store in (base_map or {}).items() if k not in drop} | dict.fromkeys(built, own)
    stores: dict[str, list[str]] = {}
    for key, store in sorted(keys.items()):
        stores.setdefault(store, []).append(key)
    return {"format": 1, "stores": stores}


def remove_prefix(root: ObjectRoot, prefix: str) -> int:
    """Delete every object under `prefix` (e.g. a build's store that no snapshot references)."""
    keys = [m["path"] for m in root.list(prefix)]
    root.delete(keys)
    return len(keys)


def read_map(path: Path) -> dict[str, str]:
    """A snapshot's ``arrays.json`` as case key -> store."""
    data = json.loads(path.read_text())
    return {key: store for store, keys in data["stores"].items() for key in keys}


def _relative(path: str, prefix: str) -> str:
    """A listed object's path (relative to the root) below `prefix`."""
    return path[len(prefix.strip("/")) + 1:]


# -- reading ---------------------------------------------------------------------------------------
def snapshot_cache(root: ObjectRoot, snapshot_id: str) -> Path:
    """The local folder a snapshot's tables are fetched into."""
    return root.cache / SNAPSHOTS / snapshot_id


def fetch(root: ObjectRoot, record: dict, names: Iterable[str]) -> Path:
    """Make the cache hold `names` (files of the snapshot of commit `record`), checked against the
    commit's sha256: a file is downloaded once, and a copy that differs is fetched again."""
    sid, files = record["snapshot_id"], record.get("files", {})
    folder = snapshot_cache(root, sid)
    folder.mkdir(parents=True, exist_ok=True)
    verified_path = folder / VERIFIED
    try:
        verified = json.loads(verified_path.read_text())
    except (OSError, ValueError):
        verified = {}
    changed = False
    for name in names:
        expected = files.get(name)
        if expected is None:
            raise CorruptSnapshotError(f"snapshot {sid} of {root.url} has no file {name!r} in its commit",
                                       hint="the commit was written by another version, or by hand: "
                                            "open another snapshot with --snapshot")
        local = folder / name
        if verified.get(name) == expected and local.is_file() and local.stat().st_size == expected["size"]:
            continue
        try:
            root.download(f"{SNAPSHOTS}/{sid}/{name}", local)
        except ObjectNotFoundError:
            raise CorruptSnapshotError(
                f"snapshot {sid} of {root.url}: its commit names {name} but the bucket has no such object",
                hint="the snapshot was deleted or damaged: open an earlier one with --snapshot, "
                     "or publish it again") from None
        got = _digest(local)
        if got != expected:
            local.unlink()
            raise CorruptSnapshotError(
                f"snapshot {sid} of {root.url}: {name} has sha256 {got['sha256'][:12]}... "
                f"({got['size']:,} bytes), its commit says {expected['sha256'][:12]}... ({expected['size']:,})",
                hint="the object was changed after publishing: open an earlier snapshot with --snapshot")
        verified[name] = expected
        changed = True
    if changed:
        tmp = verified_path.with_suffix(".partial")
        tmp.write_text(json.dumps(verified, sort_keys=True))
        os.replace(tmp, verified_path)
    return folder


# -- garbage and old snapshots ---------------------------------------------------------------------
def collect_garbage(root: ObjectRoot, keep: int | None, grace: timedelta, *, dry_run: bool = False,
                    abandoned: bool = False) -> commit.Collected:
    """Delete old snapshots (`superseded`): their files, and the case groups in ``arrays/`` that no
    remaining snapshot references. Uploads no commit names are deleted once nothing was written to
    them for `grace` (a build may still be uploading). With `abandoned`, also case groups no snapshot
    references and untouched for `grace`: builds that never published (re-running one after that
    rebuilds nothing it recorded as done, so only use it for builds that will not be resumed)."""
    now = datetime.now(UTC)
    every = read_commits(root, deleted=True)
    live = [r for r in every if not r.get("deleted")]
    old = commit.superseded(live, keep, grace)
    old_ids = {r["snapshot_id"] for r in old}
    kept = [r for r in live if r["snapshot_id"] not in old_ids]
    referenced = {(store, key) for r in kept for key, store in _snapshot_map(root, r).items()}
    freed = {(store, key) for r in old for key, store in _snapshot_map(root, r).items()} - referenced
    claimed_ids = {r["snapshot_id"] for r in every}
    live_ids = {r["snapshot_id"] for r in kept}
    groups: dict[str, list[dict]] = {}
    for m in root.list(SNAPSHOTS):
        groups.setdefault(f"{SNAPSHOTS}/{_relative(m['path'], SNAPSHOTS).split('/', 1)[0]}", []).append(m)
    doomed, garbage = [], []
    for prefix, objs in sorted(groups.items()):
        name = prefix.split("/", 1)[1]
        if name in old_ids:
            doomed.append(prefix)
        elif name in live_ids:
            continue
        elif name in claimed_ids or now - max(m["last_modified"] for m in objs) >= grace:
            garbage.append(prefix)  # left by a delete cut short, or an upload whose claim failed or never came
    array_groups: dict[str, list[dict]] = {}
    for m in root.list(ARRAYS):
        parts = _relative(m["path"], ARRAYS).split("/")
        if len(parts) > 2:  # arrays/<store>/<case key>/...
            array_groups.setdefault(f"{ARRAYS}/{parts[0]}/{parts[1]}", []).append(m)
    for prefix, objs in sorted(array_groups.items()):
        store, key = prefix.rsplit("/", 1)
        if (store, key) in freed:
            doomed.append(prefix)
        elif abandoned and (store, key) not in referenced and now - max(m["last_modified"] for m in objs) >= grace:
            garbage.append(prefix)
    everything = {**groups, **array_groups}
    if not dry_run:
        for r in old:  # the tombstone first: no reader opens the snapshot from now on
            tomb = {**r, "deleted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": {}}
            root.put(commit_key(r["snapshot_id"]), json.dumps(tomb, indent=1, sort_keys=True).encode())
        for prefix in doomed + garbage:
            root.delete(m["path"] for m in everything[prefix])
        for r in old:
            shutil.rmtree(snapshot_cache(root, r["snapshot_id"]), ignore_errors=True)
    return commit.Collected(sorted(old_ids), garbage, sum(len(everything[p]) for p in doomed + garbage))


def _snapshot_map(root: ObjectRoot, record: dict) -> dict[str, str]:
    """A published snapshot's case key -> store (fetched and checked like its tables)."""
    if ARRAYS_MAP not in record.get("files", {}):
        return {}
    return read_map(fetch(root, record, [ARRAYS_MAP]) / ARRAYS_MAP)
