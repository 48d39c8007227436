"""`warehouse.store.arrays.store` on a bucket (``s3://``, moto's server): the same case reads back
as from a local folder through both readers, a region crop fetches only the chunks it overlaps,
repeated reads come from the cache, forked children read through the library that still works,
and errors are one line naming the URL."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import numpy as np
import pytest

from tests.fixtures.arrays_data import AFFINE, CASE, box_mask
from tests.fixtures.s3 import ENV, env_for
from tests.fixtures.s3_counting import CountingS3Server
from warehouse.core.errors import ArrayNotFoundError, WarehouseError
from warehouse.core.ids import case_key
from warehouse.store.arrays import ArrayStore
from warehouse.store.arrays import io as array_io
from warehouse.store.objects import ObjectStoreError

pytest.importorskip("tensorstore")
BACKENDS = ["tensorstore", "zarr"]


@pytest.fixture(scope="module")
def counting() -> Iterator[CountingS3Server]:
    server = CountingS3Server.start()
    yield server
    server.stop()


@pytest.fixture
def reader_backend(request, monkeypatch) -> str:
    monkeypatch.setenv(array_io.ENV, "" if request.param == "tensorstore" else "zarr")
    return request.param


def _masks(shape) -> dict:
    rng = np.random.default_rng(3)
    return {"lung": rng.random(shape) < 0.4, "trachea": box_mask(shape, (2, 2, 2), (9, 7, 5)),
            "heart": box_mask(shape, (10, 5, 3), (20, 18, 11)), "left lung": box_mask(shape, (0, 0, 0), (3, 3, 3))}


def _everything(store: ArrayStore) -> dict:
    out: dict = {"cases": store.cases(), "image": store.image(CASE), "grid": tuple(store.grid(CASE)),
                 "structures": store.structures(CASE), "has_image": store.has_image(CASE)}
    for s in store.structures(CASE):
        out[s["name"], "bbox"] = store.region_bbox(CASE, s["region"])
        out[s["name"], "mask"] = store.region_mask(CASE, s["region"], crop=True)
        out[s["name"], "crop"] = store.region_crop(CASE, s["region"], 3.0)
    return out


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray | np.generic):
        return np.array_equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("reader_backend", BACKENDS, indirect=True)
def test_a_case_in_a_bucket_reads_back_like_a_local_one(bucket, tmp_path, ct, reader_backend):
    url = f"{bucket}/arrays.zarr"
    stores = {"local": ArrayStore(tmp_path / "arrays.zarr", mode="a"), "bucket": ArrayStore(url, mode="a")}
    assert stores["bucket"].path == url and repr(stores["bucket"]) == f"ArrayStore({url!r}, mode='a')"
    stats = {}
    for where, store in stores.items():
        store.write_image(CASE, ct, AFFINE)
        stats[where] = store.write_masks(CASE, _masks(ct.shape), AFFINE)
        labels = np.zeros(ct.shape, np.uint8)
        labels[12:16, 4:9, 2:6] = 1
        stats[where] += store.write_label_map(CASE, labels, {1: "aorta"}, AFFINE, mask_source="ts")
        store.write_image("other", ct[:8, :8, :8], np.eye(4))
        store.delete_case("other")
    assert _same(stats["local"], stats["bucket"])
    local, remote = _everything(ArrayStore(tmp_path / "arrays.zarr", mode="r")), _everything(ArrayStore(url, mode="r"))
    assert local.keys() == remote.keys() and remote["cases"] == [CASE] and np.array_equal(remote["image"][0], ct)
    for key, value in local.items():
        assert _same(value, remote[key]), key
    assert _same(remote, _everything(stores["bucket"]))  # the writer reads what it wrote


# -- what a read fetches -----------------------------------------------------------------------
def _shard_chunk_bytes(s3, bucket: str, key: str, chunk_grid: tuple[int, ...], chunks: list[tuple[int, ...]]) -> int:
    """Stored bytes of `chunks` of the one-shard array at `key`, from the shard's index (at its end:
    (offset, nbytes) uint64 pairs in C order, then a crc32c)."""
    body = s3.get_object(Bucket=bucket, Key=f"{key}/c/0/0/0")["Body"].read()
    n = int(np.prod(chunk_grid))
    index = struct.unpack(f"<{2 * n}Q", body[-(16 * n + 4):-4])
    return sum(index[2 * int(np.ravel_multi_index(c, chunk_grid)) + 1] for c in chunks)


@pytest.fixture(scope="module")
def big_case(s3_server) -> Iterator[tuple[str, str, np.ndarray]]:
    """A 200^3 case with a CT-like image (smooth plus noise) in a bucket: (bucket, store URL, image)."""
    name = s3_server.make_bucket()
    url = f"s3://{name}/wh/arrays.zarr"
    shape = (200, 200, 200)
    rng = np.random.default_rng(5)
    hu = (np.indices(shape).sum(0) % 300 - 1000 + rng.integers(0, 40, shape)).astype(np.int16)
    with pytest.MonkeyPatch.context() as patch:
        for k, v in {**ENV, "AWS_ENDPOINT_URL": s3_server.endpoint}.items():
            patch.setenv(k, v)
        store = ArrayStore(url, mode="a")
        store.write_image(CASE, hu, np.eye(4))
        store.write_masks(CASE, {"heart": box_mask(shape, (70, 70, 70), (90, 90, 90)),
                                 "lung": box_mask(shape, (0, 0, 0), (200, 100, 200))}, np.eye(4))
    yield name, url, hu


@pytest.mark.parametrize("reader_backend", BACKENDS, indirect=True)
def test_a_region_crop_fetches_the_shard_index_and_only_the_chunks_it_overlaps(
        big_case, s3_env, counting, monkeypatch, reader_backend):
    name, url, hu = big_case
    monkeypatch.setenv("AWS_ENDPOINT_URL", counting.endpoint)
    counting.log.clear()
    store = ArrayStore(url, mode="r")
    image, mask, _ = store.region_crop(CASE, "heart", margin_mm=0)
    assert np.array_equal(image, hu[70:90, 70:90, 70:90]) and mask.all()
    prefix = f"/{name}/wh/arrays.zarr/{case_key(CASE)}/"
    fetched, requests = counting.log.bytes(prefix), counting.log.select(prefix)

    s3 = s3_env.client()
    case = f"wh/arrays.zarr/{case_key(CASE)}"
    layer = next(s["layer"] for s in store.structures(CASE) if s["name"] == "heart")
    overlapped = (_shard_chunk_bytes(s3, name, f"{case}/image", (4, 4, 4), [(1, 1, 1)])
                  + _shard_chunk_bytes(s3, name, f"{case}/labels/{layer}/0", (4, 4, 4), [(1, 1, 1)]))
    stored = sum(o["Size"] for o in s3.list_objects_v2(Bucket=name, Prefix=case + "/")["Contents"])
    shards = [r for r in requests if "/c/" in r.path]
    assert all(r.range for r in shards), shards  # range requests only: never a whole shard
    assert fetched <= 2 * overlapped and fetched <= 0.15 * stored, (fetched, overlapped, stored, requests)
    print(f"\n{reader_backend}: crop fetched {fetched} B in {len(requests)} requests; "
          f"overlapped chunks {overlapped} B; case stored {stored} B")


@pytest.mark.parametrize("reader_backend", BACKENDS, indirect=True)
def test_a_repeated_crop_is_served_from_the_cache_and_cache_0_turns_it_off(
        big_case, s3_env, counting, monkeypatch, reader_backend):
    name, url, hu = big_case
    monkeypatch.setenv("AWS_ENDPOINT_URL", counting.endpoint)
    prefix = f"/{name}/wh/arrays.zarr/"
    for cache_mb, most in (("64", 0), ("0", None)):
        monkeypatch.setenv(array_io.CACHE_ENV, cache_mb)
        store = ArrayStore(url, mode="r")
        counting.log.clear()
        first = store.region_crop(CASE, "heart", margin_mm=2)
        counting.log.clear()
        again = store.region_crop(CASE, "heart", margin_mm=2)
        assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
        chunk_requests = [r for r in counting.log.select(prefix) if "/c/" in r.path]
        if most is not None:
            assert len(chunk_requests) <= most, chunk_requests
        else:
            assert counting.log.bytes(prefix) > 50_000  # no cache: the chunks come again


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("reader_backend", BACKENDS, indirect=True)
def test_errors_are_one_line_naming_the_url(bucket, s3_env, counting, monkeypatch, ct, reader_backend):
    url = f"{bucket}/arrays.zarr"
    ArrayStore(url, mode="a").write_image(CASE, ct, AFFINE)
    store = ArrayStore(url, mode="r")
    with pytest.raises(ArrayNotFoundError, match=f"no case 'nope' in the array store at {url}"):
        store.region_crop("nope", "heart")
    with pytest.raises(ArrayNotFoundError, match=f"no array store at {bucket}/missing.zarr"):
        ArrayStore(f"{bucket}/missing.zarr", mode="r")
    with pytest.raises(ObjectStoreError, match="bucket 'no-such-bucket-here' does not exist") as e:
        ArrayStore("s3://no-such-bucket-here/wh/arrays.zarr", mode="r")
    assert "\n" not in str(e.value)

    monkeypatch.setenv("AWS_ENDPOINT_URL", counting.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "wrong-key")
    counting.refuse("wrong-key")
    for attempt in (lambda: ArrayStore(url, mode="r"), lambda: ArrayStore(url, mode="a").write_image("x", ct, AFFINE)):
        with pytest.raises(WarehouseError, match=f"{url}.*credentials were refused") as e:
            attempt()
        assert "\n" not in str(e.value) and "Traceback" not in str(e.value)


@pytest.mark.parametrize("reader_backend", BACKENDS, indirect=True)
def test_a_voxel_read_that_fails_is_one_line(bucket, s3_env, ct, monkeypatch, reader_backend):
    """A shard broken in the bucket: the reader's error names the URL, in one line."""
    monkeypatch.setenv(array_io.CACHE_ENV, "0")
    url = f"{bucket}/arrays.zarr"
    ArrayStore(url, mode="a").write_image(CASE, ct, AFFINE)
    s3, (name, prefix) = s3_env.client(), bucket.removeprefix("s3://").split("/", 1)
    s3.put_object(Bucket=name, Key=f"{prefix}/arrays.zarr/{case_key(CASE)}/image/c/0/0/0", Body=b"\0" * 100)
    with pytest.raises(WarehouseError, match=f"cannot read {url}/{case_key(CASE)}/image") as e:
        ArrayStore(url, mode="r").image(CASE)
    assert "\n" not in str(e.value)


# -- forked children ---------------------------------------------------------------------------
FORKED = """
import multiprocessing as mp, sys
import numpy as np
from warehouse.store.arrays import ArrayStore
from warehouse.store.arrays import io as array_io

url, case = sys.argv[1], sys.argv[2]

def child(_):
    try:
        crop = ArrayStore(url, mode="r").region_crop(case, "heart", 2.0)
        return array_io.backend(array_io.node(url)), int(crop[0].astype(np.int64).sum()), int(crop[1].sum())
    except Exception as e:
        return type(e).__name__, str(e), 0

store = ArrayStore(url, mode="r")  # the parent reads metadata through obstore: its runtime is running now
store.structures(case)
ctx = mp.get_context("fork")
with ctx.Pool(1) as pool:
    print(pool.apply_async(child, (0,)).get(timeout=60))
crop = store.region_crop(case, "heart", 2.0)  # ... and now TensorStore too
print(("parent", int(crop[0].astype(np.int64).sum()), int(crop[1].sum())))
with ctx.Pool(1) as pool:
    print(pool.apply_async(child, (0,)).get(timeout=60))
"""


def test_a_forked_child_reads_through_tensorstore_and_says_when_nothing_can(bucket, s3_env, ct):
    url = f"{bucket}/arrays.zarr"
    store = ArrayStore(url, mode="a")
    store.write_image(CASE, ct, AFFINE)
    store.write_masks(CASE, {"heart": box_mask(ct.shape, (10, 5, 3), (20, 18, 11))}, AFFINE)
    env = {**env_for(s3_env), array_io.ENV: ""}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(FORKED), url, CASE], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    first, parent, second = (eval(line) for line in done.stdout.strip().splitlines())  # noqa: S307 - our own prints
    assert first[0] == "tensorstore" and first[1:] == parent[1:]  # obstore hangs after a fork: TensorStore reads
    assert second[0] == "ObjectStoreError" and "forked" in second[1]  # not a hang
