"""The commit contract of a warehouse root: what makes a snapshot published, and nothing else.

A build (`warehouse.store.snapshot.SnapshotWriter`) records its **base** (the latest published
snapshot, or none) when it starts, stages every file of the next snapshot, then takes one
step: **claim the next snapshot id if the base is still the latest** (`claim`). Locally the
claim is, under an exclusive `flock` on ``ROOT/.commit.lock``, a check that the latest id is
still the base's and one ``os.rename`` of the complete staged folder (manifest included) to
``ROOT/snapshots/<base seq + 1>-<hash>``; the kernel drops the lock with its process, so a
killed build never leaves a stale one. An object store does the same with a conditional put
(if-none-match) of one small commit object named by the sequence number, after uploading the
snapshot's files under its id (readers list only claimed ids): `claim` is the one function
such a root replaces. A build whose claim fails rebases on the new latest and tries again
(`MAX_ATTEMPTS` in all), then raises `CommitConflictError`. Sequence numbers are therefore
dense, each snapshot's ``base_snapshot`` is the one before it, and no update is lost.

Builds never share a staging folder: ``ROOT/staging/<build key>/build.lock`` is held (flock)
for a build's whole life, so a second build of the same inputs waits for the first, then
builds on its snapshot (usually publishing nothing: identical). A killed build's lock dies
with it, and the same command resumes its staging. A finished build renames its staging to
``staging/.trash-*`` under its lock before removing it, so no one resumes a half-deleted one.
Before claiming, a build writes the id it claims to ``staging/<key>/claim.json``: a re-run
after a kill just after the rename finds that snapshot published and only cleans up.

Everything after the claim is derived and repaired by any later command: `ensure_views`
rewrites ``ROOT/warehouse.duckdb`` (views of the latest snapshot; the id they show is kept in
``ROOT/.warehouse.duckdb.id``) whenever it is missing or shows an older snapshot.

Test hook: ``RADGENOME_TEST_KILL_AT=<step>`` makes the build ``os._exit(137)`` at that step
(`kill_point`): ``tables`` (next snapshot's Parquet staged), ``assembled`` (folder complete,
not claimed), ``renamed`` (just after the publishing rename), ``views`` (views rewritten,
staging not yet removed).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Protocol

import pyarrow.ipc as ipc

from warehouse.core.errors import WarehouseError
from warehouse.core.schema import TABLES
from warehouse.store import duckdb_files
from warehouse.store.layout import (
    BUILD_LOCK,
    CLAIM,
    MANIFEST,
    ROOT_LOCK,
    SNAPSHOTS,
    STAGING,
    VIEWS,
    VIEWS_ID,
)

MAX_ATTEMPTS = 5  # claims a build tries (rebasing between them) before it gives up
KILL_ENV = "RADGENOME_TEST_KILL_AT"
_ID_RE = re.compile(r"^(\d{5})-[0-9a-f]{8}$")
_HELD: set[Path] = set()  # staging folders this process holds the lock of


class CommitConflictError(WarehouseError):
    """Other builds kept publishing into the root while this one tried to: nothing published."""

    exit_code = 1


def kill_point(step: str) -> None:
    """Test hook: die like ``kill -9`` at `step` when ``RADGENOME_TEST_KILL_AT`` names it."""
    if os.environ.get(KILL_ENV) == step:
        os._exit(137)


def list_snapshots(root: Path | str) -> list[str]:
    """Published snapshot ids, oldest first."""
    d = Path(root) / SNAPSHOTS
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if _ID_RE.match(p.name) and (p / MANIFEST).is_file())


def latest_id(root: Path) -> str | None:
    ids = list_snapshots(root)
    return ids[-1] if ids else None


def next_id(base_id: str | None, content_hash: str) -> str:
    """The id the claim on top of `base_id` takes."""
    return f"{(int(base_id[:5]) if base_id else 0) + 1:05d}-{content_hash[:8]}"


@contextmanager
def root_lock(root: Path) -> Iterator[None]:
    """The root's commit lock (exclusive; held for a check and a rename, or a views rewrite)."""
    with open(root / ROOT_LOCK, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def claim(root: Path, base_id: str | None, folder: Path, snapshot_id: str) -> bool:
    """Publish the complete `folder` as `snapshot_id` if `base_id` is still the latest; False if not."""
    target = root / SNAPSHOTS / snapshot_id
    target.parent.mkdir(parents=True, exist_ok=True)
    with root_lock(root):
        if latest_id(root) != base_id:
            return False
        if target.exists():  # never overwrite (only a folder no build made could be there)
            raise FileExistsError(f"{target} exists but is not a published snapshot; move it away")
        os.rename(folder, target)  # the one step that publishes
        kill_point("renamed")
    return True


class Target(Protocol):
    """Where builds publish: a local root (`LocalTarget`) or a bucket (`warehouse.store.remote.RemoteTarget`)."""

    def latest_id(self) -> str | None: ...

    def content_hash(self, snapshot_id: str) -> str | None: ...

    def is_published(self, snapshot_id: str) -> bool: ...

    def claim(self, base_id: str | None, folder: Path, snapshot_id: str) -> bool: ...


@dataclass(frozen=True)
class LocalTarget:
    """`Target` for a local root: an flock and one rename (`claim`)."""

    root: Path

    def __str__(self) -> str:
        return str(self.root)

    def latest_id(self) -> str | None:
        return latest_id(self.root)

    def content_hash(self, snapshot_id: str) -> str | None:
        return content_hash(self.root, snapshot_id)

    def is_published(self, snapshot_id: str) -> bool:
        return (self.root / SNAPSHOTS / snapshot_id / MANIFEST).is_file()

    def claim(self, base_id: str | None, folder: Path, snapshot_id: str) -> bool:
        return claim(self.root, base_id, folder, snapshot_id)


class Staged(Protocol):
    """What `publish` needs of a build (`warehouse.store.snapshot.SnapshotWriter`)."""

    target: Target
    staging: Path

    def rebase(self, latest: str | None) -> None: ...

    def stage_tables(self) -> str: ...

    def stage_snapshot(self, snapshot_id: str, content_hash: str, attempt: int) -> Path: ...


def publish(build: Staged) -> tuple[str, str]:
    """Claim the next snapshot id for `build`, rebasing on every snapshot published meanwhile.

    Returns (snapshot id, outcome): ``published``; ``identical`` (its content equals the latest
    snapshot's, so nothing is published); ``recovered`` (a run killed just after its claim).
    """
    target, staging = build.target, build.staging
    if (sid := claimed(target, staging)) is not None:
        return sid, "recovered"
    for attempt in range(1, MAX_ATTEMPTS + 1):
        base = target.latest_id()
        build.rebase(base)
        digest = build.stage_tables()
        kill_point("tables")
        if base is not None and digest == target.content_hash(base):
            if target.latest_id() != base:
                continue  # someone published meanwhile: compare with theirs
            return base, "identical"
        sid = next_id(base, digest)
        folder = build.stage_snapshot(sid, digest, attempt)
        record_claim(staging, sid)
        kill_point("assembled")
        if target.claim(base, folder, sid):
            return sid, "published"
        record_claim(staging, None)
    raise CommitConflictError(
        f"nothing published: other builds published into {target} during each of this build's {MAX_ATTEMPTS} "
        f"tries (latest now {target.latest_id()})", hint="its finished cases stay staged: run the same command again")


def content_digest(tables_dir: Path, names: Iterable[str]) -> str:
    """sha256 over the tables' Parquet bytes, in `names` order (the source of snapshot ids)."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode())
        with open(tables_dir / f"{name}.parquet", "rb") as f:  # in blocks: a table may not fit in memory
            while block := f.read(8 << 20):
                digest.update(block)
    return digest.hexdigest()


def content_hash(root: Path, snapshot_id: str) -> str | None:
    """A published snapshot's content hash (computed for snapshots that predate its record)."""
    path = root / SNAPSHOTS / snapshot_id
    recorded = json.loads((path / MANIFEST).read_text()).get("content_sha256")
    try:
        return recorded or content_digest(path / "tables", TABLES)
    except FileNotFoundError:  # an old snapshot without one of today's tables: not the same content
        return None


# -- staging folders -----------------------------------------------------------------------------
@dataclass(frozen=True)
class StagedBuild:
    """An unfinished build under ``ROOT/staging/``: re-running its command resumes and publishes it."""

    build_key: str
    path: Path
    cases: int  # cases saved so far (per-case parts, and the case rows of saved bulk parts)
    modified: float  # when a part was last saved (seconds since the epoch)

    def __str__(self) -> str:
        """The build in a few words: where, how far, when."""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.modified))
        return f"a build is staged in {self.path} ({self.cases:,} cases saved, last written {when})"


def list_staged(root: Path | str) -> list[StagedBuild]:
    """Builds staged under `root`, with parts saved and not yet published; most recently written first.

    Bulk parts (ids ``bulk:...``, written by `ingest.runner`) count by the `cases` rows they hold.
    """
    d = Path(root).expanduser().resolve() / STAGING
    out = []
    for path in sorted(d.iterdir()) if d.is_dir() else []:
        done = path / "done"
        if path.name.startswith(".") or not done.is_dir() or next(done.iterdir(), None) is None:
            continue  # a finished build's staging being removed (.trash-*), or one with nothing saved
        try:
            out.append(StagedBuild(path.name, path, _cases_saved(path), done.stat().st_mtime))
        except FileNotFoundError:  # published and removed while we looked
            continue
    return sorted(out, key=lambda b: b.modified, reverse=True)


def _cases_saved(path: Path) -> int:
    cases = 0
    for marker in (path / "done").iterdir():
        if marker.suffix == ".partial":
            continue
        try:
            part_id = json.loads(marker.read_text())["case_id"]
        except (OSError, ValueError, KeyError):
            continue
        if not part_id.startswith("bulk:"):
            cases += 1
        elif (rows := path / "parts" / "cases" / f"{marker.name}.arrow").is_file():
            cases += ipc.open_file(rows).read_all().num_rows
    return cases


def lock_staging(staging: Path, on_wait: Callable[[str], None] | None = None) -> IO:
    """Create (or reopen) a build's staging folder and hold its lock; waits while another process
    builds the same inputs. Returns the open lock file (closing it releases the lock)."""
    if staging in _HELD:
        raise WarehouseError(f"this process is already building into {staging}",
                             hint="finish or close the other SnapshotWriter of the same build key first")
    told = False
    while True:
        try:
            staging.mkdir(parents=True, exist_ok=True)
            f = open(staging / BUILD_LOCK, "a+")
        except FileNotFoundError:  # a finishing build removed the folder meanwhile
            continue
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait and not told:
                f.seek(0)
                holder = f.read().strip() or "?"
                on_wait(f"waiting for another build of the same inputs (pid {holder}) to finish: {staging}")
                told = True
            fcntl.flock(f, fcntl.LOCK_EX)
        if _same_file(f, staging / BUILD_LOCK):
            _HELD.add(staging)
            f.truncate(0)
            f.write(f"{os.getpid()}\n")
            f.flush()
            return f
        f.close()  # we waited on a folder that has since been removed: start over


def _same_file(f: IO, path: Path) -> bool:
    try:
        a, b = os.fstat(f.fileno()), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def release_staging(staging: Path, lock: IO | None, *, remove: bool) -> None:
    """Release a build's lock; with `remove`, first move its staging aside (atomically, while still
    locked) and delete it, and the staging/ folder when it is left empty."""
    trash = staging.parent / f".trash-{uuid.uuid4().hex[:12]}"
    if remove and lock is not None:
        try:
            os.rename(staging, trash)
        except FileNotFoundError:
            pass
    if lock is not None:
        lock.close()
    _HELD.discard(staging)
    if remove:
        shutil.rmtree(trash, ignore_errors=True)
        sweep_trash(staging.parent)
        try:
            staging.parent.rmdir()
        except OSError:
            pass


def sweep_trash(staging_root: Path) -> None:
    """Remove stagings that finished builds moved aside but were killed while deleting."""
    for p in staging_root.glob(".trash-*") if staging_root.is_dir() else ():
        shutil.rmtree(p, ignore_errors=True)


def record_claim(staging: Path, snapshot_id: str | None) -> None:
    """Record (or with None, forget) the id this staging is about to claim."""
    path = staging / CLAIM
    if snapshot_id is None:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps({"snapshot_id": snapshot_id}))
    os.replace(tmp, path)


def claimed(target: Target, staging: Path) -> str | None:
    """The published snapshot this staging became (a build killed after its claim), or None."""
    try:
        sid = json.loads((staging / CLAIM).read_text())["snapshot_id"]
    except (OSError, ValueError, KeyError):
        return None
    return sid if target.is_published(sid) else None


# -- old snapshots ---------------------------------------------------------------------------------
def delete_snapshots(root: Path, snapshot_ids: Iterable[str]) -> None:
    """Remove old snapshots of a local root: each folder renamed aside under the commit lock (it leaves
    every listing at once), then deleted. Open readers keep the files they hold open."""
    for sid in snapshot_ids:
        trash = root / SNAPSHOTS / f".trash-{sid}-{uuid.uuid4().hex[:8]}"
        with root_lock(root):
            if sid == latest_id(root):
                raise WarehouseError(f"{sid} is the latest snapshot of {root}: it is never deleted")
            os.rename(root / SNAPSHOTS / sid, trash)
        shutil.rmtree(trash, ignore_errors=True)
    for left in (root / SNAPSHOTS).glob(".trash-*"):  # a delete killed half-way
        shutil.rmtree(left, ignore_errors=True)


@dataclass
class Collected:
    """What `collect_garbage` removed (or, in a dry run, would remove)."""

    deleted_snapshots: list[str]
    garbage_prefixes: list[str]
    objects: int

    def __str__(self) -> str:
        return (f"{len(self.deleted_snapshots)} old snapshots ({', '.join(self.deleted_snapshots) or '-'}) and "
                f"{len(self.garbage_prefixes)} unpublished uploads or abandoned arrays: {self.objects:,} objects")


def superseded(records: list[dict], keep: int | None, grace: timedelta) -> list[dict]:
    """The snapshots `--keep N` deletes: all but the newest `keep`, each only once the snapshot after
    it was published more than `grace` ago (readers open the latest; one that opened it before then
    has had `grace` to finish). None keeps all."""
    if keep is None or len(records) <= keep:
        return []
    now = datetime.now(UTC)
    candidates = records[:len(records) - keep]
    return [r for r, after in zip(candidates, records[1:], strict=False) if now - created(after) >= grace]


def created(record: dict) -> datetime:
    """When a commit record (or a local snapshot's commit.json) says it was published."""
    try:
        return datetime.strptime(record["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return datetime.now(UTC)  # unknown: treat as just published (never deleted early)


# -- derived files -------------------------------------------------------------------------------
def ensure_views(root: Path, latest: str | None = None) -> None:
    """Make ``ROOT/warehouse.duckdb`` show the latest snapshot, rewriting it (atomically) when it is
    missing or stale. Best effort: a root this process cannot write is left as it is."""
    latest = latest or latest_id(root)
    if latest is None or _views_id(root) == latest:
        return
    import duckdb

    try:
        with root_lock(root):
            latest = latest_id(root)  # under the lock: never replaced by an older one
            if latest is None or _views_id(root) == latest:
                return
            for stale in root.glob(f".{VIEWS}.*.partial*"):  # left by a process killed while writing
                stale.unlink(missing_ok=True)
            duckdb_files.write_views(root, latest)
            tmp = root / f"{VIEWS_ID}.partial"
            tmp.write_text(latest)
            os.replace(tmp, root / VIEWS_ID)
    except (OSError, duckdb.Error):
        pass


def _views_id(root: Path) -> str | None:
    try:
        return (root / VIEWS_ID).read_text().strip() if (root / VIEWS).is_file() else None
    except OSError:
        return None
