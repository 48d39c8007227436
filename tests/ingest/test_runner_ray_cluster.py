"""`--runner ray --address` on a multi-node Ray cluster, building into a bucket: the jobs run on the
worker node (the head has no CPUs for tasks) and write their arrays straight to the bucket, the
driver commits, and the snapshot equals the local process-pool build row for row and voxel for voxel."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from ingest.runner import build
from tests import ROOT
from tests.fixtures.build_workers import CubeSource
from warehouse import Warehouse
from warehouse.core import schema
from warehouse.store.arrays import ArrayStore
from warehouse.store.snapshot import open_snapshot

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(s3_env, monkeypatch):
    """A head node with no CPUs for tasks and one worker node with two (ray.cluster_utils.Cluster)."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the worker node's processes import tests.fixtures
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                       "object_store_memory": 80 << 20})
    c.add_node(num_cpus=2, resources={"worker_node": 1}, object_store_memory=80 << 20)
    c.wait_for_nodes()
    yield c
    ray.shutdown()
    c.shutdown()


def test_a_ray_cluster_build_into_a_bucket_equals_the_local_pool_build(bucket, cluster, tmp_path):
    import ray

    source = CubeSource("cube", first=1, n=4)
    summary = build(source, bucket, runner="ray", ray_address=cluster.address, progress=False)
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("worker_node")}
    assert summary.built == 4 and summary.outcome == "published" and len(nodes) == 1
    pool = build(CubeSource("cube", first=1, n=4), tmp_path / "local", runner="pool", workers=2, progress=False)
    assert pool.snapshot_id == summary.snapshot_id  # the same content hash, the same sequence number

    remote_snap, local_snap = open_snapshot(bucket), open_snapshot(tmp_path / "local")
    for name in schema.TABLES:
        assert pq.read_table(remote_snap.table_path(name)).equals(pq.read_table(local_snap.table_path(name))), name
    remote_arrays, local_arrays = remote_snap.open_arrays(), ArrayStore(local_snap.arrays_path)
    assert sorted(remote_arrays.cases()) == sorted(local_arrays.cases()) and len(local_arrays.cases()) == 4
    for case in local_arrays.cases():
        for a, b in zip(remote_arrays.image(case), local_arrays.image(case), strict=True):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(remote_arrays.region_mask(case, "heart")[0],
                                      local_arrays.region_mask(case, "heart")[0])
    with Warehouse.open(bucket) as wh:
        assert wh.sql("SELECT count(*) AS n FROM region_stats")["n"][0] == 4
