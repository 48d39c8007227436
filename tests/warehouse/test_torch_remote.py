"""`warehouse.torch` on a warehouse in a bucket (moto's S3 server): crops stream from the bucket in
DataLoader workers forked the default way, and a reader keeps its root a URL."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from ingest.runner import build
from ingest.sources.demo import DemoSource
from tests.fixtures.s3 import ENV, env_for
from warehouse import Warehouse
from warehouse.torch import CropReader, LoadRegionCropd, RegionDataset

ALL = "SELECT case_id FROM cases"

LOADER = """
import sys
import numpy as np
import torch
from warehouse import Warehouse
from warehouse.store.arrays import io as array_io
from warehouse.torch import RegionDataset

url = sys.argv[1]
ds = RegionDataset(url, "left lung", sql="SELECT case_id FROM cases", margin_mm=8, size=(48, 40, 24))
assert ds.reader.root == url, ds.reader.root

def backend(_):  # what this worker reads the snapshot's first store with
    arrays = ds.reader.remember(ds.items[0]["snapshot_id"])  # a bucket's snapshot: its map of stores
    return array_io.backend(array_io.node(next(iter(arrays.stores.values()))))

loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2,  # fork: Linux's default start method
                                     worker_init_fn=lambda i: print("worker", i, backend(i), flush=True))
batches = list(loader)
wh = Warehouse.open(url)
got = {c: b["image"][i, 0].numpy() for b in batches for i, c in enumerate(b["case_id"])}
for item in ds.items:
    want = ds[ds.items.index(item)]["image"][0].numpy()  # the parent reads after its workers are gone
    assert np.array_equal(got[item["case_id"]], want), item["case_id"]
print("samples", len(got))
"""


@pytest.fixture(scope="module")
def remote_wh(s3_server, tmp_path_factory) -> str:
    """A 3-case demo warehouse built into a fresh bucket, once for the module."""
    url = f"s3://{s3_server.make_bucket()}/wh"
    with pytest.MonkeyPatch.context() as patch:
        for k, v in {**ENV, "AWS_ENDPOINT_URL": s3_server.endpoint,
                     "RADGENOME_CACHE": str(tmp_path_factory.mktemp("build-cache"))}.items():
            patch.setenv(k, v)
        build(DemoSource(n=3, seed=0), url, runner="local", progress=False)
    return url


def test_a_dataloader_with_forked_workers_streams_crops_from_the_bucket(remote_wh, s3_env):
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(LOADER), remote_wh], env=env_for(s3_env),
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.splitlines()
    assert "samples 3" in lines
    # the parent read only metadata (obstore): its forked workers read voxels through TensorStore
    assert sorted(line for line in lines if line.startswith("worker")) == ["worker 0 tensorstore",
                                                                          "worker 1 tensorstore"]


def test_a_reader_of_a_bucket_keeps_the_url_and_its_snapshots_across_pickling(remote_wh, s3_env):
    wh = Warehouse.open(remote_wh)
    ds = RegionDataset(wh, "left lung", sql=ALL, margin_mm=8)
    assert ds.reader.root == remote_wh
    again = pickle.loads(pickle.dumps(ds.reader))
    assert again.root == remote_wh and again.remember(wh.snapshot_id).stores == wh.arrays.stores  # the map
    item = ds.items[0]
    hu, mask, affine = again.crop(item["case_id"], "left lung", 8.0, item["snapshot_id"])
    want = wh.region_crop(item["case_id"], "left lung", margin_mm=8)
    assert all(np.array_equal(a, b) for a, b in zip((hu, mask, affine), want, strict=True))
    assert CropReader(remote_wh + "/").root == remote_wh


def test_the_monai_transform_loads_crops_from_the_bucket(remote_wh, s3_env):
    wh = Warehouse.open(remote_wh)
    case = RegionDataset(wh, "heart", sql=ALL).items[0]["case_id"]
    out = LoadRegionCropd(remote_wh, region="heart", margin_mm=5)({"case_id": case})
    hu, mask, _ = wh.region_crop(case, "heart", margin_mm=5)
    assert np.array_equal(out["image"][0].numpy(), hu) and np.array_equal(out["mask"][0].numpy(), mask)
