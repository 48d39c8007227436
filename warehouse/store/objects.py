"""Warehouse roots in object storage: ``s3://``, ``gs://`` and ``az://`` URLs, through obstore.

A root given as such a URL (``s3://bucket/prefix``) is an `ObjectRoot`: every read and write of
the store goes through obstore (no S3 written here), configured the standard way by the
environment: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` and
``AWS_ENDPOINT_URL`` (an S3-compatible server; plain ``http://`` is allowed for it), and
``GOOGLE_*`` / ``AZURE_*`` for the others. ``file://PATH`` is a local root (`root_location`).

Errors come back as one-line `ObjectStoreError`s naming the URL and what to do.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError

from warehouse.core.errors import WarehouseError

SCHEMES = ("s3", "gs", "az", "abfs", "abfss")
CACHE_ENV = "RADGENOME_CACHE"  # where remote roots keep their local copies (default ~/.cache/radgenome-warehouse)
COPY_CONCURRENCY = 32  # server-side copies in flight at once
# What a worker on another machine needs to reach the same bucket (Ray jobs get these from the driver).
OBJECT_STORE_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION",
                    "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ALLOW_HTTP",
                    "GOOGLE_SERVICE_ACCOUNT", "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_STORAGE_ACCOUNT_NAME",
                    "AZURE_STORAGE_ACCOUNT_KEY", "RADGENOME_ARRAY_READER")


class ObjectStoreError(WarehouseError):
    """An object store refused or failed a request."""

    exit_code = 1


class ObjectNotFoundError(ObjectStoreError):
    """A key the warehouse needs is not in the bucket."""


def is_url(root: object) -> bool:
    """Whether `root` names an object store (``s3://...``, ``gs://...``, ``az://...``)."""
    return isinstance(root, str) and root.split("://", 1)[0].lower() in SCHEMES and "://" in root


def root_location(root: Path | str) -> Path | ObjectRoot:
    """A root as given by a user: an `ObjectRoot` for a bucket URL, else a resolved local path
    (``file://PATH`` included)."""
    if isinstance(root, ObjectRoot):
        return root
    if is_url(root):
        return ObjectRoot(str(root))
    text = str(root)
    if text.startswith("file://"):
        text = urlsplit(text).path
    elif re.match(r"^[a-z][a-z0-9+.-]*://", text, re.I):
        raise WarehouseError(f"unsupported warehouse URL {text!r}",
                             hint="use a local path, file://PATH, s3://BUCKET/PREFIX, gs://... or az://...")
    return Path(text).expanduser().resolve()


def cache_root() -> Path:
    """The folder remote roots keep their local copies in (``RADGENOME_CACHE``)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "radgenome-warehouse").expanduser()


class ObjectRoot:
    """A warehouse root in an object store: keys relative to ``scheme://bucket/prefix``."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.scheme, self.bucket = parts.scheme.lower(), parts.netloc
        self.prefix = parts.path.strip("/")
        if not self.bucket:
            raise WarehouseError(f"{url!r} names no bucket", hint="write s3://BUCKET/PREFIX")
        self.url = f"{self.scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")

    @functools.cached_property
    def store(self) -> Any:
        """The obstore store of the root (made on first use: naming a root needs no credentials)."""
        return self.sub_store("")

    def __repr__(self) -> str:
        return f"ObjectRoot({self.url!r})"

    def __str__(self) -> str:
        return self.url

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectRoot) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __truediv__(self, key: str) -> str:
        """The URL of `key` under this root."""
        return f"{self.url}/{key.strip('/')}"

    def sub_store(self, key: str) -> Any:
        """An obstore store rooted at `key` under this root (what zarr's ObjectStore wraps)."""
        url = self / key if key else self.url
        try:
            return obstore.store.from_url(url, client_options=_client_options())
        except BaseError as e:  # e.g. an Azure URL with no account configured
            raise translate(e, "open", url) from None

    @property
    def cache(self) -> Path:
        """This root's local folder: snapshots' tables fetched for reading, builds' staging."""
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", self.url.split("://", 1)[1])[:80]
        return cache_root() / f"{name}-{hashlib.sha256(self.url.encode()).hexdigest()[:12]}"

    # -- requests ----------------------------------------------------------------------------
    @contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except (BaseError, OSError) as e:
            raise translate(e, action, self / key) from None

    def get(self, key: str) -> bytes:
        with self._errors("read", key):
            return bytes(obstore.get(self.store, key).bytes())

    def exists(self, key: str) -> bool:
        try:
            with self._errors("check", key):
                obstore.head(self.store, key)
        except ObjectNotFoundError:
            return False
        return True

    def put(self, key: str, data: bytes | Path, *, create: bool = False) -> bool:
        """Write `data` (bytes, or a local file: uploaded in parts when large) at `key`. With
        `create`, only if no object is there (a conditional put): False when one is."""
        with self._errors("write", key):
            try:
                obstore.put(self.store, key, data, mode="create" if create else "overwrite")
            except AlreadyExistsError:
                if create:
                    return False
                raise
        return True

    def download(self, key: str, dest: Path) -> None:
        """Stream `key` into the local file `dest` (written to a temp file, then renamed)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".partial")
        with self._errors("read", key):
            result = obstore.get(self.store, key)
            with open(tmp, "wb") as f:
                for chunk in result.stream(min_chunk_size=8 << 20):
                    f.write(chunk)
        os.replace(tmp, dest)

    def list(self, prefix: str) -> list[dict]:
        """Every object under `prefix` (``path`` relative to the root, ``size``, ``last_modified``)."""
        prefix = prefix.strip("/") + "/"
        with self._errors("list", prefix):
            return [m for batch in obstore.list(self.store, prefix=prefix) for m in batch]

    def list_dirs(self, prefix: str) -> list[str]:
        """The names of the 'folders' directly under `prefix`."""
        prefix = prefix.strip("/") + "/"
        with self._errors("list", prefix):
            found = obstore.list_with_delimiter(self.store, prefix)
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in found["common_prefixes"]]

    def delete(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        for i in range(0, len(keys), 1000):  # S3's DeleteObjects takes at most 1,000 keys
            with self._errors("delete", keys[i]):
                obstore.delete(self.store, keys[i:i + 1000])

    def copy_many(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Server-side copies (source key, target key), many in flight; returns how many."""
        pairs = list(pairs)
        if pairs:
            asyncio.run(self._copy_all(pairs))
        return len(pairs)

    async def _copy_all(self, pairs: list[tuple[str, str]]) -> None:
        gate = asyncio.Semaphore(COPY_CONCURRENCY)

        async def one(src: str, dst: str) -> None:
            async with gate:
                with self._errors("copy", src):
                    await obstore.copy_async(self.store, src, dst)

        await asyncio.gather(*(one(s, d) for s, d in pairs))

    def check_access(self) -> None:
        """One listing, so a wrong endpoint, bucket or credentials fail first with a clear line."""
        self.list_dirs("")

    # -- other libraries ------------------------------------------------------------------------
    def tensorstore_kvstore(self, key: str) -> dict | None:
        """TensorStore's kvstore spec for `key` (S3 only; None for other stores)."""
        if self.scheme != "s3":
            return None
        spec: dict[str, Any] = {"driver": "s3", "bucket": self.bucket,
                                "path": "/".join(p for p in (self.prefix, key.strip("/")) if p) + "/"}
        if endpoint := _endpoint():
            spec["endpoint"] = endpoint
        if region := os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"):
            spec["aws_region"] = region
        return spec


def _endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def _client_options() -> dict:
    endpoint = _endpoint() or ""
    return {"allow_http": True} if endpoint.startswith("http://") else {}


# Matched on S3's error codes and whole status lines, never a bare number: the messages also hold
# URLs, request ids and timings ("in 404.2µs") that a bare "404" would match.
_CREDENTIALS = re.compile(r"InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|InvalidToken|UNAUTHENTICATED|"
                          r"Unauthenticated|missing credentials|\b401 Unauthorized")
_DENIED = re.compile(r"AccessDenied|PERMISSION_DENIED|PermissionDenied|\b403 Forbidden")
_MISSING = re.compile(r"NoSuchKey|\b404 Not Found|^NOT_FOUND")
_UNREACHABLE = re.compile(r"connection|connect|dns|timed out|timeout|broken pipe", re.I)


def translate(e: BaseException, action: str, url: str) -> ObjectStoreError:
    """One line for an object store's error: what failed, where, and what to do."""
    text = str(e)
    if "NoSuchBucket" in text:
        bucket = urlsplit(url).netloc
        return ObjectStoreError(f"cannot {action} {url}: bucket {bucket!r} does not exist",
                                hint="create it, or check the URL and AWS_ENDPOINT_URL")
    if _CREDENTIALS.search(text):
        return ObjectStoreError(f"cannot {action} {url}: the credentials were refused",
                                hint="check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or your profile)")
    if _DENIED.search(text) or "PermissionDenied" in type(e).__name__:
        return ObjectStoreError(f"cannot {action} {url}: access denied",
                                hint="these credentials may not do this here (a read-only prefix?): "
                                     "ask for write access or use another prefix")
    if isinstance(e, FileNotFoundError) or _MISSING.search(text):
        return ObjectNotFoundError(f"cannot {action} {url}: no such object",
                                   hint="the snapshot may be incomplete or deleted: open another with --snapshot")
    if _UNREACHABLE.search(text):
        return ObjectStoreError(f"cannot {action} {url}: the object store did not answer",
                                hint="check AWS_ENDPOINT_URL and the network, then run the same command again")
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(e).__name__)
    return ObjectStoreError(f"cannot {action} {url}: {first[:300]}")
