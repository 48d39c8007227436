"""Immutable snapshots: staged, published with one atomic rename, never half-written.

Layout of a warehouse root::

    ROOT/
      snapshots/<id>/            one published snapshot (never modified again)
        tables/<table>.parquet   every table of `warehouse.schema` (the interchange copy)
        tables.duckdb            the same rows in DuckDB's own format (what the engine queries)
        arrays.zarr/             CT volumes and label layers (see `warehouse.arrays`)
        manifest.json            inputs (paths, sizes, hashes), versions, row counts
      staging/<build key>/       a build in progress; a re-run with the same key resumes it
      warehouse.duckdb           views over the latest snapshot, for the plain duckdb shell

Snapshot ids are ``NNNNN-<hash>``: a sequence number (the newest is the largest) and
a hash of the tables' content. Readers hold a path to their snapshot's folder, so a
publish never changes what an open reader sees.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from warehouse import schema
from warehouse.errors import NotAWarehouseError, SnapshotNotFoundError

FORMAT_VERSION = 1
SNAPSHOTS, STAGING, TABLES_DIR, ARRAYS_DIR, MANIFEST = "snapshots", "staging", "tables", "arrays.zarr", "manifest.json"
DATABASE = "tables.duckdb"
_ID_RE = re.compile(r"^(\d{5})-[0-9a-f]{8}$")
_HASH_FULL_LIMIT = 1 << 30  # files above 1 GiB are hashed over their first 64 MiB and their size


# -- reading ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """A published snapshot: its folder and manifest."""

    root: Path
    snapshot_id: str
    path: Path
    manifest: dict = field(compare=False, repr=False)

    def table_path(self, name: str) -> Path:
        return self.path / TABLES_DIR / f"{name}.parquet"

    @property
    def arrays_path(self) -> Path:
        return self.path / ARRAYS_DIR

    @property
    def database_path(self) -> Path | None:
        """The snapshot's tables in DuckDB's format; None for snapshots written before it existed."""
        path = self.path / DATABASE
        return path if path.is_file() else None


def list_snapshots(root: Path | str) -> list[str]:
    """Published snapshot ids, oldest first."""
    d = Path(root) / SNAPSHOTS
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if _ID_RE.match(p.name) and (p / MANIFEST).is_file())


def open_snapshot(root: Path | str, snapshot_id: str | None = None) -> Snapshot:
    """The latest published snapshot of a warehouse root, or the one named."""
    root = Path(root).expanduser().resolve()
    ids = list_snapshots(root)
    if not ids:
        raise NotAWarehouseError(
            f"{root} is not a warehouse (no published snapshot in {root / SNAPSHOTS})",
            hint="build one with `radgenome demo ROOT` or `radgenome ingest ...`")
    sid = snapshot_id or ids[-1]
    if sid not in ids:
        raise SnapshotNotFoundError(f"no snapshot {sid!r} in {root}", hint=f"known: {', '.join(ids)}")
    path = root / SNAPSHOTS / sid
    manifest = json.loads((path / MANIFEST).read_text())
    return Snapshot(root=root, snapshot_id=sid, path=path, manifest=manifest)


@dataclass(frozen=True)
class StagedBuild:
    """An unfinished build under ``ROOT/staging/``: re-running its command resumes and publishes it."""

    build_key: str
    path: Path
    cases: int  # cases saved so far (per-case parts, and the case rows of saved bulk parts)
    modified: float  # when a part was last saved (seconds since the epoch)


def list_staged(root: Path | str) -> list[StagedBuild]:
    """Builds staged under `root`, with parts saved and not yet published; most recently written first.

    Bulk parts (ids ``bulk:...``, written by `ingest.runner`) count by the `cases` rows they hold.
    """
    d = Path(root).expanduser().resolve() / STAGING
    out = []
    for path in sorted(d.iterdir()) if d.is_dir() else []:
        done = path / "done"
        if not done.is_dir() or next(done.iterdir(), None) is None:
            continue
        cases = 0
        for marker in done.iterdir():
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
        out.append(StagedBuild(path.name, path, cases, done.stat().st_mtime))
    return sorted(out, key=lambda b: b.modified, reverse=True)


# -- hashing ------------------------------------------------------------------------------------
def file_digest(path: Path) -> dict:
    """Size and sha256 of an input file (large files: first 64 MiB plus size)."""
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= _HASH_FULL_LIMIT:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
            return {"path": str(path), "size": size, "sha256": h.hexdigest()}
        h.update(f.read(64 << 20))
        h.update(str(size).encode())
        return {"path": str(path), "size": size, "sha256_head64m": h.hexdigest()}


def describe_inputs(paths: Iterable[Path | str]) -> list[dict]:
    """Manifest entries for input files and folders (folders: every file below them)."""
    out = []
    for p in map(Path, paths):
        files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
        out.extend(file_digest(f) for f in files if f.exists())
    return out


def safe_key(case_id: str) -> str:
    """A file-system-safe, collision-free key for a case id."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", case_id)[:80].strip(".") or "case"
    return f"{stem}-{hashlib.sha1(case_id.encode()).hexdigest()[:8]}"


# -- writing ------------------------------------------------------------------------------------
def write_parquet(table: pa.Table, path: Path) -> None:
    """Deterministic Parquet: sorted rows, fixed settings, written to a temp file then renamed."""
    tmp = path.with_suffix(".parquet.partial")
    pq.write_table(table, tmp, compression="zstd", row_group_size=256_000, write_statistics=True,
                   use_dictionary=True, store_schema=True)
    os.replace(tmp, path)


def sort_table(name: str, table: pa.Table) -> pa.Table:
    if table.num_rows == 0:
        return table
    keys = [(k, "ascending", "at_start") for k in schema.sort_key(name)]
    return table.take(pc.sort_indices(table, sort_keys=keys))


class SnapshotWriter:
    """Stages one build and publishes it as a new snapshot.

    Per-case results are saved as they finish (Arrow IPC parts plus a done marker), so a
    killed build, re-run with the same `build_key`, skips finished cases. Rows of cases
    this build does not touch are carried over from the base snapshot, and their arrays
    are hard-linked, so a snapshot is always complete on its own.
    """

    def __init__(self, root: Path | str, build_key: str, *, base: Snapshot | None | bool = True) -> None:
        self.root = Path(root).expanduser().resolve()
        self.build_key = build_key
        self.staging = self.root / STAGING / build_key
        self.snap_dir = self.staging / "snapshot"
        (self.snap_dir / TABLES_DIR).mkdir(parents=True, exist_ok=True)
        (self.staging / "parts").mkdir(exist_ok=True)
        (self.staging / "done").mkdir(exist_ok=True)
        if base is True:
            base = open_snapshot(self.root) if list_snapshots(self.root) else None
        self.base: Snapshot | None = base or None

    @property
    def arrays_path(self) -> Path:
        return self.snap_dir / ARRAYS_DIR

    # per-case parts
    def is_done(self, case_id: str) -> bool:
        return (self.staging / "done" / safe_key(case_id)).exists()

    def done_cases(self) -> set[str]:
        return {json.loads(p.read_text())["case_id"] for p in (self.staging / "done").iterdir()}

    def save_part(self, part_id: str, tables: Mapping[str, pa.Table | list]) -> None:
        """Save one case's (or one bulk chunk's) rows; the done marker is written last."""
        key = safe_key(part_id)
        for name, rows in tables.items():
            t = schema.to_table(name, rows)
            if t.num_rows == 0:
                continue
            d = self.staging / "parts" / name
            d.mkdir(exist_ok=True)
            tmp = d / f"{key}.arrow.partial"
            with ipc.new_file(tmp, t.schema) as w:
                w.write_table(t)
            os.replace(tmp, d / f"{key}.arrow")
        marker = self.staging / "done" / key
        marker.with_suffix(".partial").write_text(json.dumps({"case_id": part_id}))
        os.replace(marker.with_suffix(".partial"), marker)

    def _parts(self, name: str) -> pa.Table:
        d = self.staging / "parts" / name
        done = {p.name for p in (self.staging / "done").iterdir()}
        tables = [ipc.open_file(p).read_all() for p in sorted(d.glob("*.arrow")) if p.stem in done] \
            if d.is_dir() else []
        return pa.concat_tables(tables) if tables else schema.empty(name)

    # publishing
    def publish(self, *, replaced_cases: Iterable[str], source: str, tables: Mapping[str, pa.Table] | None = None,
                inputs: list[dict] | None = None, extra: Mapping | None = None) -> Snapshot:
        """Write every table, the manifest, and publish with one rename. Returns the new snapshot.

        `replaced_cases`: case ids this build (re)built; the base snapshot's rows for them are
        dropped, every other row is carried over. `tables`: whole tables that replace the
        base's outright (e.g. the anatomy tables).
        """
        replaced = pa.array(sorted(set(replaced_cases)), pa.string())
        given = dict(tables or {})
        counts, digest = {}, hashlib.sha256()
        for name in schema.TABLES:
            if name in given:
                t = schema.to_table(name, given[name])
            else:
                t = self._parts(name)
                if self.base is not None and self.base.table_path(name).exists():
                    old = pq.read_table(self.base.table_path(name), schema=schema.TABLES[name])
                    if name == "ingest_errors":
                        old = old.filter(pc.invert(pc.equal(old["source"], source)))
                    elif "case_id" in old.column_names:
                        old = old.filter(pc.invert(pc.is_in(old["case_id"], value_set=replaced)))
                    t = pa.concat_tables([old, t])
            t = sort_table(name, t)
            path = self.snap_dir / TABLES_DIR / f"{name}.parquet"
            write_parquet(t, path)
            counts[name] = t.num_rows
            digest.update(name.encode() + path.read_bytes())
        write_database(self.snap_dir)
        self._carry_arrays(set(replaced.to_pylist()))

        seq = int(list_snapshots(self.root)[-1][:5]) + 1 if list_snapshots(self.root) else 1
        manifest = {
            "format_version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": source,
            "base_snapshot": self.base.snapshot_id if self.base else None,
            "row_counts": counts,
            "inputs": inputs or [],
            "versions": _versions(),
            **(dict(extra) if extra else {}),
        }
        while True:  # another build may publish between our listing and our rename
            sid = f"{seq:05d}-{digest.hexdigest()[:8]}"
            manifest["snapshot_id"] = sid
            (self.snap_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
            target = self.root / SNAPSHOTS / sid
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(self.snap_dir, target)  # the one atomic step
                break
            except OSError:
                if not target.exists():
                    raise
                seq += 1
        shutil.rmtree(self.staging, ignore_errors=True)
        snap = open_snapshot(self.root, sid)
        _write_duckdb_views(snap)
        return snap

    def _carry_arrays(self, replaced: set[str]) -> None:
        """Hard-link the base snapshot's case groups that this build did not rebuild."""
        if self.base is None or not self.base.arrays_path.is_dir():
            return
        dst_root = self.arrays_path
        dst_root.mkdir(parents=True, exist_ok=True)
        src_root = self.base.arrays_path
        for src in src_root.iterdir():
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


def _link_tree(src: Path, dst: Path) -> None:
    for dirpath, _, files in os.walk(src):
        out = dst / Path(dirpath).relative_to(src)
        out.mkdir(parents=True, exist_ok=True)
        for f in files:
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


def write_database(snap_dir: Path) -> None:
    """Load a staged snapshot's Parquet tables into ``tables.duckdb`` (DuckDB's own format).

    Queries read DuckDB's compressed columns with zone maps from its buffer cache, with no
    Parquet decoding per query: the named queries at paper scale run a median 2x faster, up
    to 4.7x (benchmarks/paper_scale.py). Tables are ordered by `schema.cluster_key`. The Parquet
    files stay the interchange copy (Spark, Trino, pandas) and the source of the snapshot id.
    """
    import duckdb

    final = snap_dir / DATABASE
    tmp = snap_dir / f"{DATABASE}.partial"
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        parquet_tables(con, snap_dir / TABLES_DIR, load=True)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, final)


def parquet_tables(con: Any, tables_dir: Path, *, load: bool = False) -> None:
    """Every table of `schema` on the DuckDB connection `con`, from the Parquet files in
    `tables_dir`: views over them, or with `load`, tables loaded in `schema.cluster_key` order."""
    for name in schema.TABLES:
        path = str(tables_dir / f"{name}.parquet").replace("'", "''")
        if not load:
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
            continue
        order = "" if schema.cluster_key(name) == schema.sort_key(name) else \
            " ORDER BY " + ", ".join(schema.cluster_key(name))  # Parquet is in sort_key order already
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{path}'){order}")


def _write_duckdb_views(snap: Snapshot) -> None:
    """ROOT/warehouse.duckdb with views over the latest snapshot (replaced atomically)."""
    import duckdb

    final = snap.root / "warehouse.duckdb"
    tmp = snap.root / f".warehouse.duckdb.{os.getpid()}.partial"
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        parquet_tables(con, snap.path / TABLES_DIR)
        con.execute("CREATE TABLE snapshot_info AS SELECT ? AS snapshot_id, ? AS path",
                    [snap.snapshot_id, str(snap.path)])
    finally:
        con.close()
    os.replace(tmp, final)
