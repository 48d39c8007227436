"""`warehouse.store.arrays.io`: TensorStore and zarr-python read and write the same bytes, and a
forked child falls back to zarr-python."""

from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest
import zarr

from tests.fixtures.arrays_data import AFFINE, CASE, box_mask
from warehouse.store.arrays import ArrayStore
from warehouse.store.arrays import io as array_io


def _read_everything(path: Path) -> dict:
    reader = ArrayStore(path, mode="r")
    out = {"image": reader.image(CASE)[0]}
    for s in reader.structures(CASE):
        out[s["name"]] = reader.region_mask(CASE, s["region"])[0]
        out[s["name"], "crop"] = reader.region_crop(CASE, s["region"], 3.0)[:2]
    return out


def test_tensorstore_and_zarr_python_write_and_read_the_same_bytes(tmp_path, ct, monkeypatch):
    pytest.importorskip("tensorstore")
    shape = ct.shape
    rng = np.random.default_rng(7)
    masks = {"lung": rng.random(shape) < 0.5, "trachea": box_mask(shape, (2, 2, 2), (9, 7, 5)),
             "heart": box_mask(shape, (10, 5, 3), (20, 18, 11))}
    reads = {}
    for writer in ("tensorstore", "zarr"):
        monkeypatch.setenv(array_io.ENV, "" if writer == "tensorstore" else "zarr")
        assert array_io.backend() == writer
        store = ArrayStore(tmp_path / f"{writer}.zarr", mode="a")
        store.write_image(CASE, ct, AFFINE)
        store.write_masks(CASE, masks, AFFINE)
        for reader in ("tensorstore", "zarr"):
            monkeypatch.setenv(array_io.ENV, "" if reader == "tensorstore" else "zarr")
            reads[writer, reader] = _read_everything(store.path)
    first = reads["tensorstore", "tensorstore"]
    assert np.array_equal(first["image"], ct) and np.array_equal(first["lung"], masks["lung"])
    for got in reads.values():
        assert got.keys() == first.keys()
        for key, value in first.items():
            pairs = zip(value, got[key], strict=True) if isinstance(value, tuple) else [(value, got[key])]
            assert all(np.array_equal(a, b) for a, b in pairs), key


def _child_reads(path: str) -> tuple[str, int]:
    return array_io.backend(), int(ArrayStore(path, mode="r").region_mask(CASE, "trachea")[0].sum())


def test_a_forked_child_reads_after_its_parent_used_tensorstore(store):
    pytest.importorskip("tensorstore")  # TensorStore aborts a forked child that uses it: zarr-python reads there
    store.write_masks(CASE, {"trachea": box_mask((20, 20, 20), (2, 2, 2), (5, 5, 5))}, np.eye(4))
    assert _child_reads(str(store.path)) == ("tensorstore", 27)
    with mp.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_child_reads, (str(store.path),)).get(timeout=60) == ("zarr", 27)


# -- choosing the backend, and one array -------------------------------------------------------
def test_backend_follows_the_environment_and_the_process(monkeypatch):
    monkeypatch.setenv(array_io.ENV, "ZARR")  # any case
    assert array_io.backend() == "zarr"
    monkeypatch.delenv(array_io.ENV)
    try:
        import tensorstore  # noqa: F401
    except ImportError:
        assert array_io.backend() == "zarr"
        return
    monkeypatch.setattr(array_io, "_owner_pid", None)
    assert array_io.backend() == "tensorstore"
    monkeypatch.setattr(array_io, "_owner_pid", os.getpid() + 1)  # TensorStore started in a parent process
    assert array_io.backend() == "zarr"


@pytest.mark.parametrize("backend", ["tensorstore", "zarr"])
def test_write_array_and_open_array_round_trip(tmp_path, monkeypatch, backend):
    if backend == "tensorstore":
        pytest.importorskip("tensorstore")
    monkeypatch.setenv(array_io.ENV, "" if backend == "tensorstore" else "zarr")
    root = tmp_path / "a.zarr"
    store = zarr.storage.LocalStore(root)
    zarr.open_group(store, mode="a")
    data = np.random.default_rng(2).integers(0, 200, (70, 9, 5)).astype(np.uint8)  # not a multiple of the chunks
    array_io.write_array(root, "case/labels/0", store, data, chunks=(64, 9, 5), shards=(128, 9, 5), fill_value=0)
    got = array_io.open_array(root, "case/labels/0", zarr.storage.LocalStore(root, read_only=True))
    assert tuple(got.shape) == data.shape
    assert np.array_equal(got[...], data) and np.array_equal(got[60:70, 2:4, 1:2], data[60:70, 2:4, 1:2])
    assert np.array_equal(zarr.open_array(store, path="case/labels/0", mode="r")[...], data)  # plain zarr reads it
