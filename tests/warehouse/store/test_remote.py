"""The commit contract on an object store (a real S3 server on localhost: tests/fixtures/s3.py).

A bucket root gives the same snapshots as a local root; a snapshot is visible only once its commit
object is claimed (a conditional put), so two builds never publish the same id, a build killed
mid-upload leaves only garbage that `collect_garbage` removes, and a damaged snapshot is refused in
one line while the others stay readable.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import timedelta

import pyarrow.parquet as pq
import pytest

from ingest.runner import build
from tests import ROOT
from tests.fixtures.build_workers import CubeSource, case_id
from tests.fixtures.s3 import env_for
from warehouse import Warehouse
from warehouse.core import schema
from warehouse.core.errors import NotAWarehouseError, SnapshotNotFoundError, WarehouseError
from warehouse.store import commit, remote
from warehouse.store.objects import ObjectRoot, ObjectStoreError
from warehouse.store.remote import CorruptSnapshotError, RemoteTarget
from warehouse.store.snapshot import (
    collect_garbage,
    describe_snapshots,
    list_snapshots,
    list_staged,
    open_snapshot,
)


def rows(snap) -> dict[str, list]:
    return {name: pq.read_table(snap.table_path(name)).to_pylist() for name in schema.TABLES}


def cube(name: str, first: int, n: int = 2) -> CubeSource:
    return CubeSource(name, first=first, n=n, arrays=False)


def test_a_bucket_root_holds_the_same_snapshots_as_a_local_root(bucket, tmp_path):
    for root in (bucket, tmp_path / "local"):
        build(cube("a", 1), root, runner="local", progress=False)
        build(cube("b", 10), root, runner="local", progress=False)
    ids = list_snapshots(bucket)
    assert ids == list_snapshots(tmp_path / "local") and len(ids) == 2
    remote_snap, local_snap = open_snapshot(bucket), open_snapshot(tmp_path / "local")
    assert rows(remote_snap) == rows(local_snap)
    assert remote_snap.manifest["base_snapshot"] == ids[0] and remote_snap.root == bucket
    with Warehouse.open(bucket) as wh, Warehouse.open(tmp_path / "local") as wl:
        q = "SELECT case_id, count(*) AS n FROM sentences GROUP BY ALL ORDER BY ALL"
        assert wh.sql(q).equals(wl.sql(q))
        assert wh.snapshots() == ids and wh.info()["row_counts"]["cases"] == 4
    assert [d["snapshot_id"] for d in describe_snapshots(bucket)] == ids
    assert Warehouse.open(bucket, ids[0]).sql("SELECT count(*) AS n FROM cases")["n"][0] == 2


def test_readers_list_only_commits(bucket, s3_env):
    root = ObjectRoot(bucket)
    build(cube("a", 1), bucket, runner="local", progress=False)
    root.put("snapshots/00002-deadbeef/manifest.json", b"{}")  # an upload no commit names
    assert list_snapshots(bucket) == [remote.read_commits(root)[0]["snapshot_id"]]
    keys = s3_env.keys(root.bucket)
    assert "wh/commits/00001.json" in keys and not any("/staging/" in k for k in keys)


def test_a_build_that_loses_the_claim_rebases_on_the_winner(bucket, s3_env, monkeypatch):
    build(cube("seed", 100), bucket, runner="local", progress=False)
    real, tried = RemoteTarget.claim, []

    def rival_first(self, base_id, folder, sid):  # another build publishes between staging and claim
        tried.append(sid)
        if len(tried) == 1:
            with monkeypatch.context() as m:
                m.setattr(RemoteTarget, "claim", real)
                build(cube("rival", 10), bucket, runner="local", progress=False)
            with monkeypatch.context() as m:  # the claim's early check passes: only the conditional put refuses
                m.setattr(RemoteTarget, "latest_id", lambda self: base_id)
                return real(self, base_id, folder, sid)
        return real(self, base_id, folder, sid)

    monkeypatch.setattr(RemoteTarget, "claim", rival_first)
    s = build(cube("a", 1), bucket, runner="local", progress=False)
    ids = list_snapshots(bucket)
    assert [int(x[:5]) for x in ids] == [1, 2, 3] and s.snapshot_id == ids[2] and tried[0].startswith("00002-")
    m = open_snapshot(bucket).manifest
    assert m["base_snapshot"] == ids[1] and m["attempts"] == 2
    cases = {r["case_id"] for r in rows(open_snapshot(bucket))["cases"]}
    assert cases == {case_id(i) for i in (1, 2, 10, 11, 100, 101)}
    uploaded = {k.split("/")[2] for k in s3_env.keys(ObjectRoot(bucket).bucket, "wh/snapshots/")}
    assert uploaded == set(ids) | {tried[0]}  # the losing upload: garbage no reader lists (gc removes it)


def test_a_claim_is_a_conditional_put(bucket, tmp_path):
    target = RemoteTarget(ObjectRoot(bucket))
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps({"who": name}))
    assert target.claim(None, tmp_path / "a", "00001-aaaaaaaa")
    assert not target.claim(None, tmp_path / "b", "00001-bbbbbbbb")  # same number: refused
    assert target.latest_id() == "00001-aaaaaaaa" and target.is_published("00001-aaaaaaaa")
    assert not target.is_published("00001-bbbbbbbb")


def test_an_identical_rebuild_publishes_nothing(bucket):
    first = build(cube("a", 1), bucket, runner="local", progress=False)
    again = build(cube("a", 1), bucket, runner="local", progress=False)
    assert again.outcome == "identical" and again.snapshot_id == first.snapshot_id
    assert len(list_snapshots(bucket)) == 1


BUILD = """
import sys
from ingest.runner import build
from tests.fixtures.build_workers import CubeSource
s = build(CubeSource(sys.argv[2], first=int(sys.argv[3]), n=2, arrays=False), sys.argv[1], runner="local",
          progress=False)
print(s.snapshot_id, s.outcome)
"""


def build_process(root: str, s3_env, cache, kill_at: str | None = None, name: str = "a",
                  first: int = 1) -> subprocess.Popen:
    """A build of two cases in another process (its own cache: another machine)."""
    env = {**env_for(s3_env), "RADGENOME_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    if kill_at:
        env[commit.KILL_ENV] = kill_at
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(BUILD), root, name, str(first)], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)


def run_build_process(root: str, s3_env, cache, kill_at: str | None = None) -> int:
    return build_process(root, s3_env, cache, kill_at).wait(timeout=120)


def test_builds_from_two_machines_at_once_each_publish_once(bucket, s3_env, tmp_path):
    build(cube("seed", 100), bucket, runner="local", progress=False)
    procs = [build_process(bucket, s3_env, tmp_path / f"machine{i}", name=f"m{i}", first=10 * (i + 1))
             for i in range(2)]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    ids = list_snapshots(bucket)
    assert [int(x[:5]) for x in ids] == [1, 2, 3] and sorted(o[0] for o in outs) == ids[1:]
    assert {o[1] for o in outs} == {"published"}
    cases = {r["case_id"] for r in rows(open_snapshot(bucket))["cases"]}
    assert cases == {case_id(i) for i in (10, 11, 20, 21, 100, 101)}  # neither lost the other's rows


@pytest.mark.parametrize("step", ["assembled", "uploaded", "renamed"])
def test_a_build_killed_while_publishing_then_the_rerun(bucket, s3_env, tmp_path, step):
    build(cube("seed", 100), bucket, runner="local", progress=False)
    before = list_snapshots(bucket)
    assert run_build_process(bucket, s3_env, tmp_path / "cache", step) == 137
    published = step == "renamed"
    assert len(list_snapshots(bucket)) == 1 + published
    assert Warehouse.open(bucket).snapshot_id == list_snapshots(bucket)[-1]  # the last good one reads
    assert run_build_process(bucket, s3_env, tmp_path / "cache") == 0
    ids = list_snapshots(bucket)
    assert ids[:1] == before and len(ids) == 2
    assert {r["case_id"] for r in rows(open_snapshot(bucket))["cases"]} == {case_id(i) for i in (1, 2, 100, 101)}
    assert not any("/staging/" in k or "/arrays.zarr/" in k for k in s3_env.keys(ObjectRoot(bucket).bucket))


def test_gc_deletes_old_snapshots_and_unpublished_uploads(bucket, s3_env):
    root = ObjectRoot(bucket)
    for first in (1, 10, 20):
        build(cube(f"c{first}", first), bucket, runner="local", progress=False)
    ids = list_snapshots(bucket)
    root.put("snapshots/00009-0badc0de/tables/cases.parquet", b"half an upload")
    kept = collect_garbage(bucket, keep=1, grace=timedelta(hours=1))
    assert kept.deleted_snapshots == [] and kept.garbage_prefixes == []  # all within the grace period
    dry = collect_garbage(bucket, keep=1, grace=timedelta(0), dry_run=True)
    assert dry.deleted_snapshots == ids[:2] and list_snapshots(bucket) == ids
    done = collect_garbage(bucket, keep=1, grace=timedelta(0))
    assert done.deleted_snapshots == ids[:2] and done.garbage_prefixes == ["snapshots/00009-0badc0de"]
    assert list_snapshots(bucket) == ids[2:]
    left = {k.split("/")[2] for k in s3_env.keys(root.bucket, "wh/snapshots/")}
    assert left == {ids[2]}
    with pytest.raises(SnapshotNotFoundError):
        Warehouse.open(bucket, ids[0])
    s = build(cube("d", 30), bucket, runner="local", progress=False)
    assert s.snapshot_id.startswith("00004-")  # a deleted snapshot's number is never claimed again
    assert Warehouse.open(bucket).sql("SELECT count(*) AS n FROM cases")["n"][0] == 8
    with pytest.raises(WarehouseError, match="always kept"):
        collect_garbage(bucket, keep=0)


def test_snapshots_reference_their_cases_arrays_and_gc_frees_what_only_old_ones_used(bucket, s3_env):
    root = ObjectRoot(bucket)
    build(CubeSource("a", first=1), bucket, runner="local", progress=False)
    build(CubeSource("b", first=10), bucket, runner="local", progress=False)
    keys = s3_env.keys(root.bucket)
    stores = {k.split("/")[2] for k in keys if k.startswith("wh/arrays/")}
    assert len(stores) == 2 and not any("/arrays.zarr/" in k for k in keys)  # one store per build, no copies
    snap = open_snapshot(bucket)
    arrays = snap.open_arrays()
    everyone = sorted(case_id(i) for i in (1, 2, 10, 11))
    assert arrays.cases() == everyone and arrays.region_mask(case_id(1), "heart")[0].any()
    build(CubeSource("c", first=1), bucket, runner="local", progress=False)  # rebuilds cases 1 and 2
    after = {k for k in s3_env.keys(root.bucket) if k.startswith("wh/arrays/")}
    assert len({k.split("/")[2] for k in after}) == 3
    done = collect_garbage(bucket, keep=1, grace=timedelta(0))
    assert len(done.deleted_snapshots) == 2
    left = {k for k in s3_env.keys(root.bucket) if k.startswith("wh/arrays/")}
    b_store = next(s for s in stores if any(k.startswith(f"wh/arrays/{s}/train_10") for k in after))
    assert any(k.startswith(f"wh/arrays/{b_store}/train_10") for k in left)  # still used by the latest
    gone = after - left
    assert gone and all("train_1_" in k or "train_2_" in k for k in gone)  # only the rebuilt cases' old groups
    fresh = open_snapshot(bucket).open_arrays()
    assert fresh.cases() == everyone
    for c in fresh.cases():
        assert fresh.region_mask(c, "heart")[0].any()


def test_a_rerun_of_the_same_inputs_never_rewrites_published_arrays(bucket, s3_env):
    root = ObjectRoot(bucket)
    build(CubeSource("a", first=1), bucket, runner="local", progress=False)
    before = {k: root.get(k.removeprefix("wh/")) for k in s3_env.keys(root.bucket, "wh/arrays/")}
    again = build(CubeSource("a", first=1), bucket, runner="local", progress=False)
    assert again.outcome == "identical"
    after = {k: root.get(k.removeprefix("wh/")) for k in s3_env.keys(root.bucket, "wh/arrays/")}
    assert after == before  # the rerun wrote a store of its own, and removed it: nothing references it


def test_gc_on_a_local_root(tmp_path):
    for first in (1, 10):
        build(cube(f"c{first}", first), tmp_path, runner="local", progress=False)
    ids = list_snapshots(tmp_path)
    assert collect_garbage(tmp_path, keep=1, grace=timedelta(hours=1)).deleted_snapshots == []
    assert collect_garbage(tmp_path, keep=1, grace=timedelta(0)).deleted_snapshots == ids[:1]
    assert list_snapshots(tmp_path) == ids[1:] and not (tmp_path / "snapshots" / ids[0]).exists()
    assert Warehouse.open(tmp_path).sql("SELECT count(*) AS n FROM cases")["n"][0] == 4


# -- bad input and faults ---------------------------------------------------------------------------
def one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text and isinstance(e.value, WarehouseError), text
    return text


def test_a_missing_bucket_says_so(s3_env):
    with pytest.raises(ObjectStoreError) as e:
        Warehouse.open("s3://no-such-bucket-here/wh")
    assert "s3://no-such-bucket-here/wh" in one_line(e) and "does not exist" in str(e.value)
    with pytest.raises(ObjectStoreError, match="does not exist"):
        build(cube("a", 1), "s3://no-such-bucket-here/wh", runner="local", progress=False)


def test_an_empty_prefix_is_not_a_warehouse(bucket):
    with pytest.raises(NotAWarehouseError) as e:
        Warehouse.open(bucket)
    assert bucket in one_line(e)


def test_an_unreachable_endpoint_says_so(s3_env, monkeypatch):
    from tests.fixtures.s3 import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(ObjectStoreError) as e:
        Warehouse.open("s3://some-bucket/wh")
    assert "did not answer" in one_line(e) and "AWS_ENDPOINT_URL" in e.value.hint


def test_a_commit_naming_a_missing_or_changed_file_is_refused_and_the_last_good_stays(bucket, s3_env, tmp_path,
                                                                                     monkeypatch):
    root = ObjectRoot(bucket)
    build(cube("a", 1), bucket, runner="local", progress=False)
    good = list_snapshots(bucket)[0]
    build(cube("b", 10), bucket, runner="local", progress=False)
    bad = list_snapshots(bucket)[1]
    monkeypatch.setenv("RADGENOME_CACHE", str(tmp_path / "reader"))  # another machine: nothing cached
    root.delete([f"snapshots/{bad}/tables.duckdb"])
    with pytest.raises(CorruptSnapshotError) as e:
        Warehouse.open(bucket)
    assert bad in one_line(e) and "tables.duckdb" in str(e.value) and "--snapshot" in e.value.hint
    assert Warehouse.open(bucket, good).sql("SELECT count(*) AS n FROM cases")["n"][0] == 2
    root.put(f"snapshots/{bad}/tables.duckdb", b"not the published bytes")
    with pytest.raises(CorruptSnapshotError, match="sha256"):
        Warehouse.open(bucket)


def test_a_network_error_mid_publish_leaves_the_last_good_snapshot(bucket, s3_env, monkeypatch):
    build(cube("a", 1), bucket, runner="local", progress=False)
    good = list_snapshots(bucket)
    real_put, calls = ObjectRoot.put, []

    def failing_put(self, key, data, *, create=False):
        calls.append(key)
        if len(calls) == 3:  # the third upload of the next snapshot never arrives
            raise ObjectStoreError(f"cannot write {self / key}: the object store did not answer")
        return real_put(self, key, data, create=create)

    with monkeypatch.context() as m:
        m.setattr(ObjectRoot, "put", failing_put)
        with pytest.raises(ObjectStoreError, match="did not answer"):
            build(cube("b", 10), bucket, runner="local", progress=False)
    assert list_snapshots(bucket) == good and Warehouse.open(bucket).snapshot_id == good[0]
    assert [b.cases for b in list_staged(bucket)] == [2]  # staged: the same command resumes
    s = build(cube("b", 10), bucket, runner="local", progress=False)
    assert s.skipped == 2 and list_snapshots(bucket)[:1] == good and len(list_snapshots(bucket)) == 2


def test_wrong_credentials_and_a_read_only_prefix_say_so(bucket, counting_s3_server, monkeypatch, tmp_path):
    build(cube("a", 1), bucket, runner="local", progress=False)
    good = list_snapshots(bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL", counting_s3_server.endpoint)  # the same buckets, checked
    monkeypatch.setenv("RADGENOME_CACHE", str(tmp_path / "another-machine"))
    counting_s3_server.refuse("wrong-key")
    with monkeypatch.context() as m:
        m.setenv("AWS_ACCESS_KEY_ID", "wrong-key")
        with pytest.raises(ObjectStoreError) as e:
            Warehouse.open(bucket)
    assert "credentials were refused" in one_line(e) and "AWS_ACCESS_KEY_ID" in e.value.hint
    counting_s3_server.make_read_only("/" + bucket.removeprefix("s3://"))
    with pytest.raises(ObjectStoreError) as e:
        build(cube("b", 10), bucket, runner="local", progress=False)
    assert "access denied" in one_line(e) and bucket in str(e.value)
    assert list_snapshots(bucket) == good  # nothing published; the last good snapshot reads
    assert Warehouse.open(bucket).sql("SELECT count(*) AS n FROM cases")["n"][0] == 2
