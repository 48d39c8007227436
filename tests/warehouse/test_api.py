"""`warehouse.api.Warehouse`: opening a root (latest or pinned snapshot, and the errors), identity and
manifest, SQL and Arrow with parameters, named queries and their limit, arrays, closing.

One demo warehouse per module with two snapshots (one case, then two); answers are checked against
pandas and pyarrow reading the snapshot's Parquet files directly, not through the engine.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ingest.runner import build
from ingest.sources.demo import DemoSource
from warehouse import Warehouse
from warehouse.core import schema
from warehouse.core.anatomy import anatomy
from warehouse.core.errors import (
    ArrayNotFoundError,
    NotAWarehouseError,
    QueryLimitWarning,
    QueryRefusedError,
    SnapshotNotFoundError,
    UnknownRegionError,
)
from warehouse.store.arrays import ArrayStore
from warehouse.store.snapshot import SnapshotWriter


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """A warehouse root with two snapshots: the demo's first case, then its first two."""
    root = tmp_path_factory.mktemp("api") / "wh"
    first = build(DemoSource(n=1), root, runner="local", progress=False)
    second = build(DemoSource(n=2), root, runner="local", progress=False)
    return {"root": root, "first": first.snapshot_id, "second": second.snapshot_id}


@pytest.fixture(scope="module")
def wh(built) -> Warehouse:
    with Warehouse.open(built["root"]) as w:
        yield w


def parquet(wh: Warehouse, table: str) -> pd.DataFrame:
    """A table read straight from the snapshot's Parquet file."""
    return pd.read_parquet(wh.path / "tables" / f"{table}.parquet")


def case_ids(wh: Warehouse) -> list[str]:
    return sorted(parquet(wh, "cases")["case_id"])


# -- opening -------------------------------------------------------------------------------------
def test_open_gives_the_latest_snapshot_and_a_pinned_older_one(built, wh):
    root = built["root"]
    assert built["first"] != built["second"]
    assert wh.snapshot_id == built["second"] and wh.snapshots() == [built["first"], built["second"]]
    assert wh.root == root.resolve() and wh.path == root.resolve() / "snapshots" / built["second"]
    assert (wh.path / "manifest.json").is_file()
    with Warehouse.open(str(root), snapshot=built["first"]) as old:  # a str root works too
        assert old.snapshot_id == built["first"] and old.path.name == built["first"]
        assert old.snapshots() == wh.snapshots()  # every snapshot of the root, whichever is open
        assert old.sql("SELECT count(*) AS n FROM cases")["n"][0] == 1
        assert old.sql("SELECT case_id FROM cases")["case_id"].to_list() == [case_ids(wh)[0]]
        assert old.manifest["row_counts"]["cases"] == 1 and old.manifest.get("base_snapshot") is None
    assert wh.sql("SELECT count(*) AS n FROM cases")["n"][0] == 2
    assert wh.manifest["base_snapshot"] == built["first"]
    with Warehouse.open(root, built["second"]) as latest:  # pinning the latest is the latest
        assert latest.snapshot_id == wh.snapshot_id


def test_open_a_missing_or_empty_root_is_not_a_warehouse(tmp_path):
    with pytest.raises(NotAWarehouseError, match="does not exist") as e:
        Warehouse.open(tmp_path / "missing")
    assert str(tmp_path / "missing") in str(e.value) and e.value.hint
    assert not (tmp_path / "missing").exists()  # opening creates nothing
    with pytest.raises(NotAWarehouseError, match="not a warehouse") as e:
        Warehouse.open(tmp_path)
    assert isinstance(e.value, FileNotFoundError) and e.value.hint  # says how to build one
    assert e.value.exit_code == 2


def test_open_a_root_with_only_a_staged_build_says_so(tmp_path):
    writer = SnapshotWriter(tmp_path, "demo-0123456789ab")
    writer.save_part("train_1_a_1.nii.gz", {"cases": [{"case_id": "train_1_a_1.nii.gz"}]})
    writer.close()  # as a killed build leaves it: parts saved, nothing published
    with pytest.raises(NotAWarehouseError, match="no published snapshot yet") as e:
        Warehouse.open(tmp_path)
    assert "re-run" in str(e.value)


def test_open_an_unknown_snapshot_names_the_known_ones(built):
    with pytest.raises(SnapshotNotFoundError, match="00009-deadbeef") as e:
        Warehouse.open(built["root"], "00009-deadbeef")
    assert built["first"] in e.value.hint and built["second"] in e.value.hint
    assert isinstance(e.value, FileNotFoundError)


def test_open_accepts_a_path_with_a_tilde(built, monkeypatch):
    monkeypatch.setenv("HOME", str(built["root"].parent))
    with Warehouse.open(Path("~") / built["root"].name) as w:
        assert w.root == built["root"].resolve() and w.snapshot_id == built["second"]


# -- identity and manifest ---------------------------------------------------------------------
def test_manifest_row_counts_are_the_parquet_rows(wh):
    counts = wh.manifest["row_counts"]
    assert set(counts) == set(schema.TABLES)
    for table in schema.TABLES:
        assert counts[table] == pq.ParquetFile(wh.path / "tables" / f"{table}.parquet").metadata.num_rows, table
    assert wh.manifest["snapshot_id"] == wh.snapshot_id


def test_a_page_is_a_slice_of_the_whole_result(wh):
    sql = "SELECT sentence_id, text FROM sentences WHERE case_id <> $skip ORDER BY case_id, ordinal, sentence_id"
    whole = wh.sql(sql, {"skip": "none"})
    assert whole.height > 7
    for offset in (0, 3, whole.height - 2, whole.height + 5):
        assert wh.page(sql, {"skip": "none"}, limit=4, offset=offset).equals(whole.slice(offset, 4))
    with pytest.raises(QueryRefusedError, match="read-only"):
        wh.page("DELETE FROM cases", limit=1)


def test_table_file_is_the_snapshots_parquet(wh):
    assert wh.table_file("cases") == wh.path / "tables" / "cases.parquet"
    assert pq.read_table(wh.table_file("cases")).num_rows == wh.manifest["row_counts"]["cases"]
    with pytest.raises(QueryRefusedError, match="unknown table 'case'"):
        wh.table_file("case")


def test_info_summarises_the_snapshot(wh, built):
    info = wh.info()
    assert info["snapshot_id"] == wh.snapshot_id and info["path"] == str(wh.path)
    assert info["row_counts"] == wh.manifest["row_counts"] and info["created"] == wh.manifest["created"]
    assert info["sources"] == parquet(wh, "cases").groupby("source").size().to_dict() == {"demo": 2}
    assert info["inputs"] == len(wh.manifest["inputs"]) and info["base_snapshot"] == built["first"]


def test_repr_names_root_and_snapshot(wh):
    assert repr(wh) == f"Warehouse({str(wh.root)!r}, snapshot={wh.snapshot_id!r})"
    assert wh.snapshot_id in repr(wh) and str(wh.root) in repr(wh)


# -- SQL and Arrow -------------------------------------------------------------------------------
def test_sql_binds_parameters_and_matches_pandas(wh):
    first = case_ids(wh)[0]
    got = wh.sql("SELECT ordinal, text FROM sentences WHERE case_id = $case AND is_abnormal = $abnormal "
                 "ORDER BY ordinal", {"case": first, "abnormal": True})
    s = parquet(wh, "sentences")
    want = s[(s.case_id == first) & s.is_abnormal].sort_values("ordinal")
    assert isinstance(got, pl.DataFrame) and got.columns == ["ordinal", "text"]
    assert got["ordinal"].to_list() == want["ordinal"].tolist() and got["text"].to_list() == want["text"].tolist()
    assert 0 < got.height < len(s[s.case_id == first])  # the filter did something
    none = wh.sql("SELECT * FROM sentences WHERE case_id = $case", {"case": "no such case"})
    assert none.height == 0 and none.columns == list(s.columns)


def test_sql_aggregates_match_pandas(wh):
    got = wh.sql("SELECT case_id, count(*) AS n, sum(voxels) AS voxels FROM region_stats "
                 "WHERE voxels > $min GROUP BY case_id ORDER BY case_id", {"min": 0})
    rs = parquet(wh, "region_stats")
    want = rs[rs.voxels > 0].groupby("case_id").agg(n=("voxels", "size"), voxels=("voxels", "sum"))
    assert got["case_id"].to_list() == want.index.tolist()
    assert got["n"].to_list() == want["n"].tolist() and got["voxels"].to_list() == want["voxels"].tolist()


def test_arrow_returns_the_parquet_rows_and_types(wh):
    case = case_ids(wh)[1]
    got = wh.arrow("SELECT * FROM region_stats WHERE case_id = $case ORDER BY region_id, mask_source",
                   {"case": case})
    assert isinstance(got, pa.Table)
    want = pq.read_table(wh.path / "tables" / "region_stats.parquet")
    want = want.filter(pc.equal(want["case_id"], case)).sort_by([("region_id", "ascending"),
                                                                 ("mask_source", "ascending")])
    assert got.num_rows == want.num_rows > 0 and got.column_names == want.column_names
    for name in want.column_names:
        assert got[name].to_pylist() == want[name].to_pylist(), name
        assert got.schema.field(name).type == want.schema.field(name).type, name
    assert got.to_pydict() == wh.sql("SELECT * FROM region_stats WHERE case_id = $case ORDER BY region_id, "
                                     "mask_source", {"case": case}).to_arrow().to_pydict()


@pytest.mark.parametrize("query", ["DROP TABLE cases", "CREATE TABLE x AS SELECT 1",
                                   "COPY cases TO '/tmp/x.csv'", "INSTALL httpfs"])
def test_sql_and_arrow_refuse_writes(wh, query):
    with pytest.raises(QueryRefusedError):
        wh.sql(query)
    with pytest.raises(QueryRefusedError):
        wh.arrow(query)
    assert wh.sql("SELECT count(*) AS n FROM cases")["n"][0] == 2  # nothing changed


# -- named queries -------------------------------------------------------------------------------
def _mentioning(wh: Warehouse, region: str, term: str) -> pd.DataFrame:
    """sentences_mentioning the pandas way: sentences of any region under `region` whose text holds `term`."""
    closure, s = parquet(wh, "anatomy_closure"), parquet(wh, "sentences")
    under = set(closure[closure.ancestor_id == anatomy().get(region).region_id]["descendant_id"])
    hit = s[s.region_id.isin(under) & s.text.str.lower().str.contains(term.lower(), regex=False)]
    return hit.sort_values(["case_id", "ordinal", "sentence_id"])


def test_named_query_matches_pandas_and_warns_at_its_limit(wh):
    want = _mentioning(wh, "lung", "LOBE")
    assert len(want) >= 3, "the demo's reports should mention a lobe under the lung more than twice"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning below the limit
        full = wh.query("sentences_mentioning", region="lung", term="LOBE")
    assert full["case_id"].to_list() == want["case_id"].tolist()
    assert full["ordinal"].to_list() == want["ordinal"].tolist() and full["text"].to_list() == want["text"].tolist()
    with pytest.warns(QueryLimitWarning, match="sentences_mentioning: 2 rows, its limit"):
        cut = wh.query("sentences_mentioning", region="lung", term="LOBE", limit=2)
    assert cut.height == 2 and cut.to_dicts() == full.head(2).to_dicts()
    assert wh.query_total("sentences_mentioning", region="lung", term="LOBE", limit=2) == len(want)
    assert wh.query_total("sentences_mentioning", region="lung", term="LOBE") == len(want)
    assert wh.query_total("sentences_mentioning", region="heart", term="lobe") == len(_mentioning(wh, "heart", "lobe"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one row fewer than the limit: no warning
        assert wh.query("sentences_mentioning", region="lung", term="lobe", limit=len(want) + 1).height == len(want)


def test_query_total_of_a_query_without_a_limit(wh):
    case = case_ids(wh)[0]
    rows = wh.query("case_sentences", case_id=case)
    s = parquet(wh, "sentences")
    assert rows.height == wh.query_total("case_sentences", case_id=case) == int((s.case_id == case).sum()) > 0
    assert rows["ordinal"].to_list() == sorted(s[s.case_id == case]["ordinal"])


def test_named_query_parameters_are_checked(wh):
    from queries.errors import ParameterError, UnknownQueryError

    with pytest.raises(UnknownQueryError):
        wh.query("sentences_mentionin", term="x")
    with pytest.raises(ParameterError):
        wh.query("sentences_mentioning")  # term has no default
    with pytest.raises(ParameterError):
        wh.query("sentences_mentioning", term="x", colour="red")
    with pytest.raises(UnknownQueryError):
        wh.query_total("no_such_query")


# -- arrays --------------------------------------------------------------------------------------
def test_arrays_is_the_snapshots_read_only_store(wh):
    store = wh.arrays
    assert isinstance(store, ArrayStore) and store.mode == "r" and wh.arrays is store  # opened once
    assert store.path == wh.path / "arrays.zarr"
    assert store.cases() == case_ids(wh)


def test_image_matches_the_cases_table(wh):
    cases = parquet(wh, "cases").set_index("case_id")
    for case in case_ids(wh):
        hu, affine = wh.image(case)
        row = cases.loc[case]
        assert hu.dtype == np.int16 and hu.shape == (row.shape_x, row.shape_y, row.shape_z)
        assert np.allclose(np.linalg.norm(affine[:3, :3], axis=0), [row.spacing_x, row.spacing_y, row.spacing_z])
        assert np.array_equal(affine, wh.arrays.grid(case).affine)


def _stats(wh: Warehouse, case: str, region: str) -> pd.Series:
    rs = parquet(wh, "region_stats")
    [row] = rs[(rs.case_id == case) & (rs.region_id == anatomy().get(region).region_id)].to_dict("records")
    return pd.Series(row)


@pytest.mark.parametrize("region", ["heart", "lung", "lung lower lobe"])  # own mask, stored as parts, no mask
def test_region_mask_agrees_with_region_stats(wh, region):
    case = case_ids(wh)[1]
    row = _stats(wh, case, region)
    hu, affine = wh.image(case)
    mask, mask_affine = wh.region_mask(case, region)
    assert mask.dtype == bool and mask.shape == hu.shape and np.array_equal(mask_affine, affine)
    assert mask.sum() == row.voxels > 0
    idx = np.argwhere(mask)
    assert idx.min(0).tolist() == [row.bbox_min_x, row.bbox_min_y, row.bbox_min_z]
    assert (idx.max(0) + 1).tolist() == [row.bbox_max_x, row.bbox_max_y, row.bbox_max_z]
    assert hu[mask].mean() == pytest.approx(row.hu_mean)
    crop, crop_affine = wh.region_mask(case, anatomy().get(region).region_id, crop=True)  # by region id
    lo = [int(row[f"bbox_min_{a}"]) for a in "xyz"]
    hi = [int(row[f"bbox_max_{a}"]) for a in "xyz"]
    assert np.array_equal(crop, mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])
    assert np.allclose(crop_affine @ [0, 0, 0, 1], affine @ [*lo, 1])


@pytest.mark.parametrize("margin", [0.0, 5.0])
def test_region_crop_is_the_image_and_mask_around_the_region(wh, margin):
    case = case_ids(wh)[0]
    hu, affine = wh.image(case)
    full, _ = wh.region_mask(case, "heart")
    crop_hu, crop_mask, crop_affine = wh.region_crop(case, "heart", margin_mm=margin)
    assert crop_hu.shape == crop_mask.shape and crop_hu.dtype == np.int16
    # where the crop starts: its affine's origin, as a voxel of the case
    lo = np.rint(np.linalg.solve(affine, crop_affine @ [0, 0, 0, 1])[:3]).astype(int)
    assert np.allclose(crop_affine[:3, :3], affine[:3, :3])
    sl = tuple(slice(a, a + n) for a, n in zip(lo, crop_hu.shape, strict=True))
    assert np.array_equal(crop_hu, hu[sl]) and np.array_equal(crop_mask, full[sl])
    assert crop_mask.sum() == full.sum()  # the whole region is inside
    idx = np.argwhere(full)
    tight = tuple((idx.max(0) + 1 - idx.min(0)).tolist())
    if margin == 0:
        assert crop_hu.shape == tight and lo.tolist() == idx.min(0).tolist()
    else:
        assert all(c > t for c, t in zip(crop_hu.shape, tight, strict=True))  # grown on every axis


def test_array_reads_of_unknown_cases_and_regions(wh):
    case = case_ids(wh)[0]
    with pytest.raises(ArrayNotFoundError):
        wh.image("no_such_case.nii.gz")
    with pytest.raises(ArrayNotFoundError):
        wh.region_mask("no_such_case.nii.gz", "heart")
    with pytest.raises(UnknownRegionError, match="heart"):
        wh.region_mask(case, "hearts")
    empty = [s["region"] for s in wh.arrays.structures(case) if s["voxels"] == 0]
    assert empty, "the demo records some structures with no voxel"
    with pytest.raises(ArrayNotFoundError, match="empty"):
        wh.region_crop(case, empty[0])
    assert not wh.region_mask(case, empty[0])[0].any()


# -- closing -------------------------------------------------------------------------------------
def test_close_and_the_context_manager(built):
    with Warehouse.open(built["root"]) as w:
        assert w.sql("SELECT 1 AS one")["one"][0] == 1
    with pytest.raises(duckdb.Error):  # closed on leaving the block
        w.sql("SELECT 1 AS one")
    w.close()  # closing again is harmless
    other = Warehouse.open(built["root"])
    other.close()
    with pytest.raises(duckdb.Error):
        other.arrow("SELECT 1 AS one")
    assert other.snapshot_id == built["second"]  # identity outlives the connection


def test_a_closed_warehouse_leaves_others_open(built, wh):
    Warehouse.open(built["root"]).close()
    assert wh.sql("SELECT count(*) AS n FROM cases")["n"][0] == 2
