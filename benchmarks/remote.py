"""Benchmark #16: a warehouse in a bucket beside the same warehouse on local disk, in one run.

The bucket is a local S3 server (moto behind a request-counting WSGI wrapper,
tests/fixtures/s3_counting.py) in this process: it adds Python's per-request cost that a real
S3 does not have, and no network latency. Three parts, each printed beside its goal:

1. a heart crop of a RadGenome-size case (480x480x240, the release's 210 structures; ``--quick``:
   240x240x120): bytes and requests fetched from the bucket against the compressed bytes of the
   chunks the crop's box overlaps (goal <= 2x) and the case's stored bytes (goal <= 15 %), and the
   wall time beside the local read;
2. a paper-scale snapshot (``--scale`` x RadGenome's 25,692 cases, text tables) published into the
   bucket: open + first named query on a machine with nothing cached, then the median of every named
   query after it, beside the same on the local root (goal: repeated queries within 1.5x of local);
3. `RegionDataset` crops per second through ``DataLoader(num_workers=2)`` from the bucket, without
   and with the array cache, beside the local root (goals >= 0.5x and >= 0.9x).

``python -m benchmarks.paper_scale --scale 10`` is the fourth measurement of the issue.

    python -m benchmarks.remote [--quick] [--scale 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from tests.fixtures.s3 import ENV
from tests.fixtures.s3_counting import CountingS3Server

GOALS = {"crop_vs_chunks": 2.0, "crop_vs_case": 0.15, "queries_vs_local": 1.5, "loader": 0.5, "loader_cached": 0.9}


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        times.append(timed(fn)[1])
    return 1000 * statistics.median(times)


# -- 1. a heart crop ------------------------------------------------------------------------------
def shard_chunk_bytes(shard: Path, meta: dict, box: tuple) -> int:
    """Compressed bytes of the chunks of one sharded array (one shard) that `box` overlaps.

    Read from the shard's index (zarr v3 sharding, index at the end: offset and size per chunk,
    uint64, C order, then a crc32c): zarr-python has no public call that reports stored chunk sizes.
    """
    codec = next(c for c in meta["codecs"] if c["name"] == "sharding_indexed")
    chunk = codec["configuration"]["chunk_shape"]
    shard_shape = meta["chunk_grid"]["configuration"]["chunk_shape"]
    grid = [s // c for s, c in zip(shard_shape, chunk, strict=True)]
    raw = shard.read_bytes()
    index = np.frombuffer(raw[-(16 * int(np.prod(grid)) + 4):-4], "<u8").reshape(*grid, 2)
    lo = [a // c for a, c in zip(box[0], chunk, strict=True)]
    hi = [-(-b // c) for b, c in zip(box[1], chunk, strict=True)]
    sizes = index[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2], 1]
    return int(sizes[sizes != np.iinfo(np.uint64).max].sum())


def crop_part(tmp: Path, server: CountingS3Server, bucket: str, quick: bool) -> dict:
    from benchmarks.masks import FULL, NAMES_FILE, _Lazy, generate
    from warehouse.core.grid import margin_box
    from warehouse.store.arrays import ArrayStore
    from warehouse.store.objects import ObjectRoot

    shape = tuple(n // 2 for n in FULL) if quick else FULL
    names = [ln.strip() for ln in NAMES_FILE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    ct, parts = generate(names, shape)
    case = "train_1_a_1.nii.gz"
    local = ArrayStore(tmp / "arrays.zarr", mode="a")
    local.write_image(case, ct, np.eye(4))
    local.write_masks(case, {n: _Lazy(parts[n], shape) for n in names}, np.eye(4))
    url = f"s3://{bucket}/crop/arrays.zarr"
    root = ObjectRoot(url)
    for p in sorted((tmp / "arrays.zarr").rglob("*")):  # the same bytes in the bucket
        if p.is_file():
            root.put(p.relative_to(tmp / "arrays.zarr").as_posix(), p)
    key = local._case(case).key  # noqa: SLF001 - the benchmark looks at the layout
    case_bytes = sum(p.stat().st_size for p in (tmp / "arrays.zarr" / key).rglob("*") if p.is_file())

    reader = ArrayStore(tmp / "arrays.zarr", mode="r")
    reader.region_crop(case, "heart")  # open the case, as a loader does
    local_ms = median_ms(lambda: ArrayStore(tmp / "arrays.zarr", mode="r").region_crop(case, "heart"), 5)

    os.environ["RADGENOME_ARRAY_CACHE_MB"] = "0"  # every read from the bucket
    server.log.clear()
    remote = ArrayStore(url, mode="r")
    (hu, mask, _), remote_s = timed(remote.region_crop, case, "heart")
    hu0, mask0, _ = reader.region_crop(case, "heart")
    assert np.array_equal(hu, hu0) and np.array_equal(mask, mask0), "the bucket's crop differs from the local one"
    requests = server.log.select(f"/{bucket}/crop/", method=None)
    fetched = server.log.bytes(f"/{bucket}/crop/")
    remote_ms = median_ms(lambda: ArrayStore(url, mode="r").region_crop(case, "heart"), 5)
    os.environ.pop("RADGENOME_ARRAY_CACHE_MB")

    box = margin_box(reader.region_bbox(case, "heart"), shape, np.eye(4), 10.0)
    touched = {r.path.split("/crop/arrays.zarr/", 1)[1].rsplit("/c", 1)[0] for r in requests
               if r.method == "GET" and not r.path.endswith("zarr.json")}
    chunk_bytes = 0
    for array in touched:
        meta = json.loads((tmp / "arrays.zarr" / array / "zarr.json").read_text())
        chunk_bytes += shard_chunk_bytes(tmp / "arrays.zarr" / array / "c" / "0" / "0" / "0", meta, box)
    return {"shape": shape, "case_mb": case_bytes / 1e6, "fetched_mb": fetched / 1e6, "requests": len(requests),
            "overlapped_chunk_mb": chunk_bytes / 1e6, "arrays_read": sorted(touched),
            "vs_chunks": fetched / chunk_bytes, "vs_case": fetched / case_bytes,
            "local_ms": local_ms, "remote_first_ms": 1000 * remote_s, "remote_ms": remote_ms}


# -- 2. a paper-scale snapshot ----------------------------------------------------------------------
def queries_part(tmp: Path, bucket: str, scale: float, repeats: int) -> dict:
    from benchmarks._paper.generate import generate, load_seeds
    from benchmarks.paper_scale import DATA, build, params_for
    from queries import list_queries
    from warehouse import Warehouse
    from warehouse.core.errors import QueryLimitWarning
    from warehouse.store.objects import ObjectRoot
    from warehouse.store.remote import RemoteTarget
    from warehouse.store.snapshot import open_snapshot

    release = generate(load_seeds(DATA), scale, 0)
    _, build_s, rows = build(release, tmp / "paper")
    snap = open_snapshot(tmp / "paper")
    url = f"s3://{bucket}/paper"
    copy = tmp / "upload"
    shutil.copytree(snap.path, copy)  # `claim` moves the folder it publishes into the cache
    _, upload_s = timed(RemoteTarget(ObjectRoot(url)).claim, None, copy, snap.snapshot_id)
    names = [q.name for q in list_queries()]
    first = names[0]

    def first_query(root) -> tuple[float, float]:
        (wh, open_s) = timed(Warehouse.open, root)
        _, q_s = timed(wh.query, first, **params_for(first))
        wh.close()
        return open_s, q_s

    out = {"cases": release.n_cases, "rows": rows, "build_s": build_s, "upload_s": upload_s,
           "database_mb": snap.database_path.stat().st_size / 1e6, "first_query": first}
    out["local_open_s"], out["local_first_s"] = first_query(tmp / "paper")
    os.environ["RADGENOME_CACHE"] = str(tmp / "cold-cache")  # another machine: nothing cached
    out["bucket_open_s"], out["bucket_first_s"] = first_query(url)
    out["bucket_warm_open_s"], _ = first_query(url)  # the same machine again: verified copy reused
    medians = {}
    with Warehouse.open(tmp / "paper") as local, Warehouse.open(url) as remote, warnings.catch_warnings():
        warnings.simplefilter("ignore", QueryLimitWarning)
        for name in names:
            params = params_for(name)
            medians[name] = (median_ms(lambda n=name, p=params: local.query(n, **p), repeats),
                             median_ms(lambda n=name, p=params: remote.query(n, **p), repeats))
    out["medians_ms"] = medians
    out["median_local_ms"] = statistics.median(m[0] for m in medians.values())
    out["median_bucket_ms"] = statistics.median(m[1] for m in medians.values())
    return out


# -- 3. RegionDataset ----------------------------------------------------------------------------
def loader_part(tmp: Path, server: CountingS3Server, bucket: str, cases: int, passes: int) -> dict:
    from torch.utils.data import DataLoader

    from ingest.runner import build
    from ingest.sources.demo import DemoSource
    from warehouse.torch import RegionDataset

    url = f"s3://{bucket}/demo"
    build(DemoSource(n=cases, seed=0), tmp / "demo", runner="local", progress=False)
    build(DemoSource(n=cases, seed=0), url, runner="local", progress=False)

    requests: dict[str, float] = {}

    def rate(root, cache_mb: str) -> float:
        os.environ["RADGENOME_ARRAY_CACHE_MB"] = cache_mb
        data = RegionDataset(root, region="lung", sql="SELECT case_id FROM cases")
        # spawn: this process has used obstore and TensorStore (building, part 1), and neither works in a
        # child forked after that (warehouse/store/arrays/io.py; a fresh process forked by a user is fine);
        # and unlike forkserver's, spawned workers see this run's RADGENOME_ARRAY_CACHE_MB.
        loader = DataLoader(data, batch_size=1, num_workers=2, persistent_workers=True, collate_fn=_first,
                            multiprocessing_context="spawn")
        sum(1 for _ in loader)  # warm-up: workers started, cases opened (and, with a cache, chunks kept)
        server.log.clear()
        t = time.perf_counter()
        n = sum(1 for _ in range(passes) for _ in loader)
        seconds = time.perf_counter() - t
        requests[f"{root}-{cache_mb}"] = len(server.log.select(f"/{bucket}/", method=None)) / n
        return n / seconds

    out = {"cases": cases, "local": rate(tmp / "demo", "0"), "bucket": rate(url, "0"),
           "bucket_cached": rate(url, "512")}
    out["requests_per_crop"], out["requests_per_crop_cached"] = requests[f"{url}-0"], requests[f"{url}-512"]
    os.environ.pop("RADGENOME_ARRAY_CACHE_MB")
    out["vs_local"], out["cached_vs_local"] = out["bucket"] / out["local"], out["bucket_cached"] / out["local"]
    return out


def _first(batch: list) -> dict:
    return batch[0]


def mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a half-size case, scale 0.05, fewer repeats")
    ap.add_argument("--scale", type=float, default=1.0, help="paper-scale snapshot size (x 25,692 cases)")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    a = ap.parse_args(argv)
    scale = 0.05 if a.quick and a.scale == 1.0 else a.scale
    repeats, passes, cases = (3, 2, 4) if a.quick else (7, 3, 8)

    server = CountingS3Server.start()
    os.environ.update({**ENV, "AWS_ENDPOINT_URL": server.endpoint})
    import boto3

    bucket = "bench"
    boto3.client("s3", endpoint_url=server.endpoint, region_name=ENV["AWS_REGION"]).create_bucket(Bucket=bucket)
    tmp = Path(tempfile.mkdtemp(prefix="remote-bench-"))
    os.environ["RADGENOME_CACHE"] = str(tmp / "cache")
    try:
        crop = crop_part(tmp / "crop", server, bucket, a.quick)
        print(f"1. heart crop of a {'x'.join(map(str, crop['shape']))} case ({crop['case_mb']:.1f} MB stored), "
              f"arrays read: {', '.join(crop['arrays_read'])}")
        print(f"   fetched {crop['fetched_mb']:.2f} MB in {crop['requests']} requests; the chunks its box overlaps: "
              f"{crop['overlapped_chunk_mb']:.2f} MB")
        print(f"   fetched / overlapped chunks {crop['vs_chunks']:.2f}x (goal <= 2x: {mark(crop['vs_chunks'] <= 2)}); "
              f"fetched / case {100 * crop['vs_case']:.1f} % (goal <= 15 %: {mark(crop['vs_case'] <= 0.15)})")
        print(f"   wall: local {crop['local_ms']:.1f} ms, bucket {crop['remote_ms']:.1f} ms (first "
              f"{crop['remote_first_ms']:.1f} ms)")

        q = queries_part(tmp / "queries", bucket, scale, repeats)
        ratio = q["median_bucket_ms"] / q["median_local_ms"]
        print(f"\n2. paper-scale snapshot, scale {scale:g}: {q['cases']:,} cases, {q['rows']:,} rows, "
              f"tables.duckdb {q['database_mb']:.1f} MB (built in {q['build_s']:.1f} s, uploaded in "
              f"{q['upload_s']:.1f} s)")
        print(f"   open + first query ({q['first_query']}): local {1000 * q['local_open_s']:.0f} + "
              f"{1000 * q['local_first_s']:.0f} ms; bucket, nothing cached {1000 * q['bucket_open_s']:.0f} + "
              f"{1000 * q['bucket_first_s']:.0f} ms; bucket again (verified cache) "
              f"{1000 * q['bucket_warm_open_s']:.0f} ms")
        print(f"   {'query':<32} {'local ms':>9} {'bucket ms':>10} {'ratio':>6}")
        for name, (lm, bm) in q["medians_ms"].items():
            print(f"   {name:<32} {lm:>9.1f} {bm:>10.1f} {bm / lm:>6.2f}")
        print(f"   median of the named queries: local {q['median_local_ms']:.1f} ms, bucket "
              f"{q['median_bucket_ms']:.1f} ms: {ratio:.2f}x (goal <= 1.5x: {mark(ratio <= 1.5)})")

        ld = loader_part(tmp / "loader", server, bucket, cases, passes)
        print(f"\n3. RegionDataset (lung crops of {ld['cases']} demo cases), DataLoader(num_workers=2): "
              f"local {ld['local']:.1f}/s, bucket {ld['bucket']:.1f}/s ({ld['vs_local']:.2f}x, goal >= 0.5x: "
              f"{mark(ld['vs_local'] >= 0.5)}), bucket with the array cache {ld['bucket_cached']:.1f}/s "
              f"({ld['cached_vs_local']:.2f}x, goal >= 0.9x: {mark(ld['cached_vs_local'] >= 0.9)})")
        print(f"   requests per crop: {ld['requests_per_crop']:.1f} without the cache, "
              f"{ld['requests_per_crop_cached']:.1f} with it; the local S3 server (moto, Python, in this process) "
              f"answered {ld['bucket'] * ld['requests_per_crop']:.0f} requests/s")
        if a.json:
            a.json.write_text(json.dumps({"crop": crop, "queries": q, "loader": ld, "goals": GOALS}, indent=1,
                                         default=str))
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
