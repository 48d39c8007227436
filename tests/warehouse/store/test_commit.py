"""One commit contract for a root (`warehouse.store.commit`): concurrent builds, kills, readers, no-op rebuilds.

Builds and readers run in separate processes ('forkserver' children, tests/fixtures/build_workers.py) on
a tiny source with 8-voxel arrays; kills are SIGKILL at random moments, or ``os._exit`` at a named
step of publishing (``RADGENOME_TEST_KILL_AT``). The default variants run a few trials each;
`-m long` runs many (the `*_long` tests).
"""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import random
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from ingest.runner import build
from tests.fixtures.build_workers import CubeSource, build_worker, case_id, read_worker
from warehouse import Warehouse
from warehouse.core import schema
from warehouse.core.errors import WarehouseError
from warehouse.store import commit
from warehouse.store.arrays import ArrayStore
from warehouse.store.commit import CommitConflictError
from warehouse.store.snapshot import SnapshotWriter, list_snapshots, list_staged, open_snapshot, read_snapshot

TIMEOUT = 120  # seconds any one worker may take before the test fails (never hangs)
CTX = mp.get_context("forkserver")  # children never inherit this process's threads (DuckDB)


# -- helpers -----------------------------------------------------------------------------------
class Worker:
    """A build or read in a separate process, started and running (its `ready` file written)."""

    def __init__(self, target, spec: dict) -> None:
        tag, files = f"{os.getpid()}-{next(_serial)}", Path(spec["root"]).parent
        files.mkdir(parents=True, exist_ok=True)
        self.ready, self.out = files / f".{tag}.ready", files / f".{tag}.out"
        self.proc = CTX.Process(target=target, args=({**spec, "ready": str(self.ready), "out": str(self.out)},))
        self.proc.start()
        deadline = time.monotonic() + TIMEOUT
        while not self.ready.exists() and self.proc.is_alive() and time.monotonic() < deadline:
            time.sleep(0.002)

    def finish(self) -> tuple[int | None, dict | None]:
        self.proc.join(TIMEOUT)
        if self.proc.is_alive():
            self.proc.kill()
            pytest.fail(f"a worker ran past {TIMEOUT}s")
        return self.proc.exitcode, json.loads(self.out.read_text()) if self.out.exists() else None


_serial = itertools.count()


def start(target, spec: dict, env: dict | None = None) -> Worker:
    return Worker(target, {**spec, "env": env or {}})


def spec(root: Path, name: str, first: int, n: int = 2, **more) -> dict:
    return {"root": str(root), "name": name, "first": first, "n": n, **more}


def cases_of(snap) -> set[str]:
    return set(pq.read_table(snap.table_path("cases"), columns=["case_id"])["case_id"].to_pylist())


def check_root(root: Path) -> list[str]:
    """Every published snapshot complete and consistent, ids dense, each built on the one before;
    no staging left; warehouse.duckdb shows the latest. Returns the ids."""
    ids = list_snapshots(root)
    assert [int(s[:5]) for s in ids] == list(range(1, len(ids) + 1)), ids
    for i, sid in enumerate(ids):
        snap = read_snapshot(root, sid)
        m = snap.manifest
        assert m["snapshot_id"] == sid and m["base_snapshot"] == (ids[i - 1] if i else None)
        assert commit.content_digest(snap.path / "tables", schema.TABLES) == m["content_sha256"]
        assert m["content_sha256"].startswith(sid[6:])
        tables = {name: pq.read_table(snap.table_path(name)) for name in schema.TABLES}
        assert {k: t.num_rows for k, t in tables.items()} == m["row_counts"]
        cases = tables["cases"]["case_id"].to_pylist()
        assert len(cases) == len(set(cases))
        sentences = tables["sentences"]["case_id"].to_pylist()
        assert sorted(sentences) == sorted(c for c in cases for _ in range(3)), sid
        with_arrays = set(tables["region_stats"]["case_id"].to_pylist())
        assert with_arrays == set(cases), sid
        assert set(ArrayStore(snap.arrays_path, mode="r").cases()) == set(cases), sid
        con = duckdb.connect(str(snap.database_path), read_only=True)
        try:
            assert con.execute("SELECT count(*) FROM cases").fetchone()[0] == len(cases)
        finally:
            con.close()
    assert not (root / "staging").exists(), list((root / "staging").iterdir())
    assert views_id(root) == ids[-1]
    return ids


def views_id(root: Path) -> str | None:
    """The snapshot ROOT/warehouse.duckdb shows, read without `open_snapshot` (which repairs it)."""
    if not (root / "warehouse.duckdb").exists():
        return None
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT snapshot_id FROM snapshot_info").fetchone()[0]
    finally:
        con.close()


def table_bytes(snap) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (snap.path / "tables").glob("*.parquet")}


def array_bytes(snap) -> dict[str, bytes]:
    return {str(p.relative_to(snap.arrays_path)): p.read_bytes() for p in snap.arrays_path.rglob("*") if p.is_file()}


def seed(root: Path) -> None:
    build(CubeSource("seed", first=100, n=2), root, runner="local", progress=False)


# -- (a) builds into one root at once ----------------------------------------------------------
SCENARIOS = {  # builds started together: (name, first case) each; one name = one build key
    "same inputs": [("a", 1), ("a", 1)],
    "different inputs": [("a", 1), ("b", 10)],
    "three, different": [("a", 1), ("b", 10), ("c", 20)],
    "three, two the same": [("a", 1), ("a", 1), ("b", 10)],
}


def run_trial(root: Path, builds: list[tuple[str, int]], with_seed: bool) -> dict:
    if with_seed:
        seed(root)
    go = root.parent / f"{root.name}.go"
    workers = [start(build_worker, spec(root, name, first, go=str(go))) for name, first in builds]
    go.touch()
    results = [w.finish() for w in workers]
    for rc, out in results:
        assert rc == 0 and out and "snapshot_id" in out, (rc, out)
    ids = check_root(root)
    expected = {case_id(first + i) for _, first in builds for i in range(2)} | (
        {case_id(100), case_id(101)} if with_seed else set())
    assert cases_of(read_snapshot(root, ids[-1])) == expected, "lost update"
    names = {name for name, _ in builds}
    assert len(ids) == len(names) + with_seed, "one snapshot per distinct build, no duplicates"
    outcomes = sorted(out["outcome"] for _, out in results)
    assert outcomes.count("published") == len(names) and outcomes.count("identical") == len(builds) - len(names)
    attempts = [read_snapshot(root, sid).manifest["attempts"] for sid in ids[with_seed:]]
    return {"outcomes": outcomes, "rebased": sum(a > 1 for a in attempts)}


def trials(tmp_path: Path, name: str, n: int) -> list[dict]:
    return [run_trial(tmp_path / f"t{i}", SCENARIOS[name], with_seed=i % 2 == 1) for i in range(n)]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_builds_at_once_lose_nothing_and_publish_only_whole_snapshots(tmp_path, name):
    trials(tmp_path, name, 2 if len(SCENARIOS[name]) == 2 else 1)


@pytest.mark.long
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_builds_at_once_long(tmp_path, name):
    results = trials(tmp_path, name, 12)
    print(f"\n{name}: {len(results)} trials, rebased claims {sum(r['rebased'] for r in results)}, "
          f"outcomes {sorted({tuple(r['outcomes']) for r in results})}")


def test_a_build_that_loses_the_claim_rebases_on_the_winner(tmp_path, monkeypatch):
    seed(tmp_path)
    real, calls = commit.claim, []

    def rival_first(root, base_id, folder, sid):  # another build publishes between staging and claim
        calls.append(sid)
        if len(calls) == 1:
            build(CubeSource("b", first=10), root, runner="local", progress=False)
        return real(root, base_id, folder, sid)

    monkeypatch.setattr(commit, "claim", rival_first)
    s = build(CubeSource("a", first=1), tmp_path, runner="local", progress=False)
    ids = check_root(tmp_path)
    assert len(ids) == 3 and s.snapshot_id == ids[-1] and s.outcome == "published"
    m = open_snapshot(tmp_path).manifest
    assert m["base_snapshot"] == ids[1] and m["attempts"] == 2
    assert cases_of(open_snapshot(tmp_path)) == {case_id(i) for i in (1, 2, 10, 11, 100, 101)}


def test_a_build_that_never_wins_fails_in_one_line_and_stays_resumable(tmp_path, monkeypatch):
    seed(tmp_path)
    with monkeypatch.context() as m:
        m.setattr(commit, "claim", lambda *a: False)
        with pytest.raises(CommitConflictError) as e:
            build(CubeSource("a", first=1), tmp_path, runner="local", progress=False)
    assert e.value.exit_code == 1 and "\n" not in str(e.value) and "run the same command again" in str(e.value)
    assert isinstance(e.value, WarehouseError) and [b.cases for b in list_staged(tmp_path)] == [2]
    s = build(CubeSource("a", first=1), tmp_path, runner="local", progress=False)
    assert s.skipped == 2 and s.outcome == "published" and len(check_root(tmp_path)) == 2


def test_one_process_cannot_open_the_same_build_twice(tmp_path):
    w = SnapshotWriter(tmp_path, "k")
    with pytest.raises(WarehouseError, match="already building"):
        SnapshotWriter(tmp_path, "k")
    w.close()
    SnapshotWriter(tmp_path, "k").discard()
    assert not (tmp_path / "staging").exists()


# -- (b) kill -9 at any point, then the same command again -------------------------------------
@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[int, Path]:
    """Roots built without interruption: the seed, then the cube source of 3 (and of 6) cases."""
    out = {}
    for n in (3, 6):
        root = tmp_path_factory.mktemp(f"uninterrupted{n}")
        seed(root)
        build(CubeSource("cube", first=1, n=n), root, runner="local", progress=False)
        out[n] = root
    return out


def assert_same_as_uninterrupted(root: Path, reference: Path) -> None:
    ids = check_root(root)
    a, b = open_snapshot(root), open_snapshot(reference)
    assert ids == list_snapshots(reference), "no duplicate snapshot"
    assert table_bytes(a) == table_bytes(b) and array_bytes(a) == array_bytes(b)
    assert (a.path / "manifest.json").read_bytes() == (b.path / "manifest.json").read_bytes()


@pytest.mark.parametrize("step", ["tables", "assembled", "renamed", "views"])
def test_a_kill_at_each_publish_step_then_the_rerun(tmp_path, uninterrupted, step):
    root = tmp_path / "wh"
    seed(root)
    first = list_snapshots(root)
    rc, _ = start(build_worker, spec(root, "cube", 1, n=3), env={commit.KILL_ENV: step}).finish()
    assert rc == 137
    published = step in ("renamed", "views")
    assert len(list_snapshots(root)) == 1 + published and len(list_staged(root)) == 1
    if step == "renamed":  # warehouse.duckdb still shows the old snapshot; any command repairs it
        assert views_id(root) == first[0]
        assert Warehouse.open(root).snapshot_id == list_snapshots(root)[-1]
        assert views_id(root) == list_snapshots(root)[-1]
    s = build(CubeSource("cube", first=1, n=3), root, runner="local", progress=False)
    assert s.outcome == ("recovered" if published else "published") and s.skipped == 3
    assert_same_as_uninterrupted(root, uninterrupted[3])


def random_kills(tmp_path: Path, reference: Path, trials: int) -> list[str]:
    rng, seen = random.Random(14), []
    w = start(build_worker, spec(tmp_path / "timing" / "wh", "cube", 1, n=6))
    t = time.monotonic()
    assert w.finish()[0] == 0
    window = 1.2 * (time.monotonic() - t)  # a kill anywhere in the build, or just after it
    for i in range(trials):
        root = tmp_path / f"k{i}"
        seed(root)
        for _ in range(1 + i % 2):  # one or two kills before the run that finishes
            w = start(build_worker, spec(root, "cube", 1, n=6))
            time.sleep(rng.uniform(0, window))
            w.proc.kill()
            rc, _ = w.finish()
            seen.append("finished" if rc == 0 else "killed")
        s = build(CubeSource("cube", first=1, n=6), root, runner="local", progress=False)
        seen.append(s.outcome)
        assert_same_as_uninterrupted(root, reference)
    return seen


def test_kill_9_at_random_moments_then_the_rerun(tmp_path, uninterrupted):
    random_kills(tmp_path, uninterrupted[6], 2)


@pytest.mark.long
def test_kill_9_at_random_moments_long(tmp_path, uninterrupted):
    seen = random_kills(tmp_path, uninterrupted[6], 30)
    print(f"\nrandom kills: { {k: seen.count(k) for k in sorted(set(seen))} }")


# -- (c) readers during publishes --------------------------------------------------------------
def readers_during_publishes(tmp_path: Path, publishes: int) -> list[dict]:
    root = tmp_path / "wh"
    seed(root)
    stop = tmp_path / "stop"
    readers = [start(read_worker, {"root": str(root), "stop": str(stop)}) for _ in range(2)]
    try:
        for i in range(publishes):
            build(CubeSource(f"r{i}", first=10 * (i + 1)), root, runner="local", progress=False)
    finally:
        stop.write_text(list_snapshots(root)[-1])
    results = [w.finish() for w in readers]
    ids = check_root(root)
    counts = {sid: read_snapshot(root, sid).manifest["row_counts"]["cases"] for sid in ids}
    for rc, out in results:
        assert rc == 0 and out, rc
        assert out["bad"] == [] and out["reads"] > 0
        assert all(counts[sid] == n for sid, n in out["seen"].items()), (out["seen"], counts)
        assert ids[-1] in out["seen"]
    return [out for _, out in results]


def test_readers_never_see_a_partial_snapshot(tmp_path):
    readers_during_publishes(tmp_path, 3)


@pytest.mark.long
def test_readers_never_see_a_partial_snapshot_long(tmp_path):
    out = readers_during_publishes(tmp_path, 15)
    print(f"\nreaders: {[r['reads'] for r in out]} reads, {[len(r['seen']) for r in out]} snapshots seen")


# -- (d) identical rebuilds, (e) determinism ----------------------------------------------------
def test_an_identical_rebuild_publishes_nothing(tmp_path):
    first = build(CubeSource("a", first=1), tmp_path, runner="local", progress=False)
    again = build(CubeSource("a", first=1), tmp_path, runner="local", progress=False)
    assert again.outcome == "identical" and again.snapshot_id == first.snapshot_id
    assert f"identical to {first.snapshot_id}: nothing new published" in str(again)
    other = build(CubeSource("b", first=10), tmp_path, runner="local", progress=False)
    again = build(CubeSource("a", first=1), tmp_path, runner="local", progress=False)  # its rows are in b's
    assert again.outcome == "identical" and again.snapshot_id == other.snapshot_id
    assert check_root(tmp_path) == [first.snapshot_id, other.snapshot_id]


def test_two_builds_of_the_same_inputs_write_the_same_snapshot(tmp_path):
    a, b = (build(CubeSource("a", first=1, n=3), tmp_path / r, runner="local", progress=False) for r in "ab")
    sa, sb = open_snapshot(tmp_path / "a"), open_snapshot(tmp_path / "b")
    assert a.snapshot_id == b.snapshot_id
    assert (sa.path / "manifest.json").read_bytes() == (sb.path / "manifest.json").read_bytes()
    assert table_bytes(sa) == table_bytes(sb) and array_bytes(sa) == array_bytes(sb)
    assert "created" in sa.manifest and "created" not in json.loads((sa.path / "manifest.json").read_text())
    # tables.duckdb: the same rows, in the same order (DuckDB writes a random id into its file header)
    ca, cb = (duckdb.connect(str(s.database_path), read_only=True) for s in (sa, sb))
    try:
        for name in schema.TABLES:
            assert ca.execute(f"FROM {name}").fetchall() == cb.execute(f"FROM {name}").fetchall(), name
    finally:
        ca.close()
        cb.close()
