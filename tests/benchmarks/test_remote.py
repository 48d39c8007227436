"""benchmarks/remote.py's measure of the chunks a box overlaps, read from a shard's index."""

from __future__ import annotations

import json

import numpy as np

from benchmarks.remote import shard_chunk_bytes
from warehouse.store.arrays import ArrayStore


def test_the_chunks_of_a_box_come_from_the_shard_index(tmp_path):
    store = ArrayStore(tmp_path / "a.zarr")
    rng = np.random.default_rng(0)
    store.write_image("c.nii.gz", rng.integers(-1000, 1000, (130, 70, 64)).astype(np.int16), np.eye(4))
    array = next(p for p in (tmp_path / "a.zarr").iterdir() if p.is_dir()) / "image"
    meta, shard = json.loads((array / "zarr.json").read_text()), array / "c" / "0" / "0" / "0"
    chunks = 3 * 2 * 1  # 64^3 chunks over a 130x70x64 grid
    everything = shard_chunk_bytes(shard, meta, ((0, 0, 0), (130, 70, 64)))
    assert everything == shard.stat().st_size - (16 * chunks + 4)  # all chunk bytes: the file less its index
    one = shard_chunk_bytes(shard, meta, ((1, 1, 1), (10, 10, 10)))
    corner = shard_chunk_bytes(shard, meta, ((60, 60, 0), (70, 70, 64)))  # 4 chunks meet there
    assert 0 < one < corner < everything and corner == shard_chunk_bytes(shard, meta, ((0, 0, 0), (128, 128, 64)))
