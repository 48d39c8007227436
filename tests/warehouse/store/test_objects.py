"""Roots as URLs, and the object-store requests behind them (a real S3 server: tests/fixtures/s3.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from warehouse.core.errors import WarehouseError
from warehouse.store.objects import ObjectNotFoundError, ObjectRoot, ObjectStoreError, is_url, root_location, translate


@pytest.mark.parametrize("text, remote", [("s3://b/p", True), ("gs://b", True), ("az://c/p", True),
                                          ("build/demo", False), ("/abs/path", False), ("file:///tmp/x", False)])
def test_which_roots_are_urls(text, remote):
    assert is_url(text) is remote
    assert isinstance(root_location(text), ObjectRoot if remote else Path)


def test_file_urls_are_local_paths_and_other_schemes_are_refused(tmp_path):
    assert root_location(f"file://{tmp_path}") == tmp_path.resolve()
    with pytest.raises(WarehouseError, match="unsupported warehouse URL"):
        root_location("ftp://host/wh")
    with pytest.raises(WarehouseError, match="names no bucket"):
        ObjectRoot("s3:///wh")


def test_a_root_url_is_normalised_and_has_its_own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("RADGENOME_CACHE", str(tmp_path))
    a, b = ObjectRoot("s3://bkt/some/prefix/"), ObjectRoot("s3://bkt/other")
    assert a.url == "s3://bkt/some/prefix" and a / "commits/00001.json" == "s3://bkt/some/prefix/commits/00001.json"
    assert a.cache.parent == tmp_path and a.cache != b.cache and a == ObjectRoot("s3://bkt/some/prefix")


def test_requests_against_a_real_server(bucket, s3_env):
    root = ObjectRoot(bucket)
    assert root.put("a/b.json", b"one")
    assert not root.put("a/b.json", b"two", create=True)  # a conditional put never overwrites
    assert root.get("a/b.json") == b"one" and root.exists("a/b.json") and not root.exists("a/c.json")
    assert root.copy_many([("a/b.json", "c/d.json"), ("a/b.json", "c/e.json")]) == 2
    assert root.list_dirs("") == ["a", "c"] and [m["path"] for m in root.list("c")] == ["c/d.json", "c/e.json"]
    root.delete(["c/d.json", "c/e.json"])
    assert root.list("c") == [] and s3_env.keys(root.bucket) == ["wh/a/b.json"]
    with pytest.raises(ObjectNotFoundError) as e:
        root.get("a/missing.json")
    assert str(e.value).startswith(f"cannot read {bucket}/a/missing.json")


def test_a_big_file_is_uploaded_and_downloaded_whole(bucket, tmp_path):
    root, src = ObjectRoot(bucket), tmp_path / "big.bin"
    src.write_bytes(bytes(range(256)) * 50_000)  # 12.8 MB: several parts
    root.put("big.bin", src)
    root.download("big.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()


def test_a_tensorstore_spec_names_the_endpoint(s3_env):
    spec = ObjectRoot("s3://bkt/wh").tensorstore_kvstore("snapshots/x/arrays.zarr")
    assert spec["driver"] == "s3" and spec["bucket"] == "bkt" and spec["path"] == "wh/snapshots/x/arrays.zarr/"
    assert spec["endpoint"] == s3_env.endpoint and ObjectRoot("gs://bkt/wh").tensorstore_kvstore("x") is None


@pytest.mark.parametrize("text, says", [
    ("<Code>NoSuchBucket</Code>", "does not exist"),
    ("<Code>InvalidAccessKeyId</Code>", "credentials were refused"),
    ("403 Forbidden <Code>AccessDenied</Code>", "access denied"),
    ("error sending request: Connection refused", "did not answer"),
    ("Error performing GET http://h/b/k in 404.2µs - Server returned non-2xx status code: 403 Forbidden: "
     "<Code>InvalidAccessKeyId</Code>", "credentials were refused"),  # a timing is not a status
    ("Error performing GET http://h/wh-4040/k in 1ms - Server returned non-2xx status code: 404 Not Found",
     "no such object"),
])
def test_errors_become_one_line(text, says):
    e = translate(RuntimeError(text + "\n<more lines>"), "read", "s3://bkt/wh/x")
    assert isinstance(e, ObjectStoreError) and says in str(e) and "\n" not in str(e) and "s3://bkt/wh/x" in str(e)
