"""Deterministic Parquet: a table written whole, streamed in slices, or sorted out of core by DuckDB
from unsorted parts and a base file gives the same bytes as pyarrow writing the sorted table at once."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from warehouse.core import schema
from warehouse.core.errors import WarehouseError
from warehouse.store.parquet import ROW_GROUP, ParquetRows, sort_table, write_parquet, write_sorted


def region_stats(n: int, seed: int = 0) -> pa.Table:
    """`n` rows with distinct keys (a case has one row per region and mask source), in random order."""
    rng = np.random.default_rng(seed)
    i = rng.permutation(n) + seed * n
    return schema.to_table("region_stats", pa.table({
        "case_id": [f"train_{k // 600}_a_1.nii.gz" for k in i.tolist()],
        "region_id": pa.array((i // 3) % 200, pa.int32()),
        "mask_source": pa.array([("ts", "radgenome", None)[k % 3] for k in i.tolist()], pa.string()),
        "voxels": pa.array(rng.integers(0, 10**6, n), pa.int64())}))


def pyarrow_bytes(t: pa.Table, path) -> bytes:
    pq.write_table(t, path, compression="zstd", row_group_size=ROW_GROUP, write_statistics=True,
                   use_dictionary=True, store_schema=True)
    return path.read_bytes()


def save_parts(t: pa.Table, folder, pieces: int) -> list:
    shuffled = t.take(np.random.default_rng(1).permutation(t.num_rows))
    out = []
    for i, chunk in enumerate(np.array_split(np.arange(t.num_rows), pieces)):
        path = folder / f"p{i}.arrow"
        with ipc.new_file(path, t.schema, options=ipc.IpcWriteOptions(compression="zstd")) as w:
            w.write_table(shuffled.take(chunk))
        out.append(path)
    return out


@pytest.mark.parametrize("n", [0, 7, ROW_GROUP * 2 + 123])
def test_whole_streamed_and_sorted_out_of_core_give_pyarrows_bytes(tmp_path, n):
    t = sort_table("region_stats", region_stats(n))
    expected = pyarrow_bytes(t, tmp_path / "pyarrow.parquet")
    write_parquet(t, tmp_path / "whole.parquet")
    with ParquetRows(tmp_path / "slices.parquet", t.schema) as out:
        for start in range(0, n, 100_003):
            out.write(t.slice(start, 100_003))
    rows = write_sorted("region_stats", tmp_path / "sorted.parquet", save_parts(t, tmp_path, 3), None, None, {},
                        tmp_path / "spill")
    assert rows == n
    for name in ("whole", "slices", "sorted"):
        assert (tmp_path / f"{name}.parquet").read_bytes() == expected, name


def test_base_rows_are_kept_by_the_condition_and_merged_with_the_parts(tmp_path):
    base = sort_table("region_stats", region_stats(5_000, seed=2))
    write_parquet(base, tmp_path / "base.parquet")
    case = base["case_id"][0].as_py()
    rebuilt = base.filter(pa.compute.equal(base["case_id"], case))  # one case rebuilt, one case new
    rebuilt = rebuilt.set_column(rebuilt.schema.get_field_index("voxels"), "voxels",
                                 pa.compute.add(rebuilt["voxels"], 1))
    new = pa.concat_tables([rebuilt, region_stats(300, seed=3)])
    replaced = sorted(set(new["case_id"].to_pylist()))
    assert len(replaced) == 2
    rows = write_sorted("region_stats", tmp_path / "out.parquet", save_parts(new, tmp_path, 2),
                        tmp_path / "base.parquet", "case_id NOT IN (SELECT unnest($replaced))",
                        {"replaced": replaced}, tmp_path / "spill")
    kept = base.filter(pa.compute.invert(pa.compute.is_in(base["case_id"], pa.array(replaced))))
    expected = sort_table("region_stats", pa.concat_tables([kept, new]))
    assert rows == expected.num_rows and pq.read_table(tmp_path / "out.parquet").equals(expected)


def test_a_bad_memory_limit_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("RADGENOME_BUILD_MEMORY", "lots")
    with pytest.raises(WarehouseError, match="RADGENOME_BUILD_MEMORY='lots'") as e:
        write_sorted("region_stats", tmp_path / "x.parquet", [], None, None, {}, tmp_path / "spill")
    assert "\n" not in str(e.value) and not (tmp_path / "x.parquet").exists()
