"""`warehouse.exports.bundle_tables`: the text files of a cohort export, each function on its own.

A demo warehouse (two cases) for the tables, reports and region texts, whose rows are checked against
pandas / pyarrow reading the snapshot's Parquet files directly; a small cohort warehouse
(`tests.fixtures.cohort_source`: both splits, a case without a CT) for the MONAI datalist.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

from ingest.runner import build
from ingest.sources.demo import DemoSource
from tests.fixtures.cohort_source import CohortSource
from warehouse import Warehouse
from warehouse.core import schema
from warehouse.core.anatomy import anatomy
from warehouse.core.release_format import CT_RATE_FILES, LICENCES, NOT_GIVEN
from warehouse.exports.bundle_tables import (
    REPORT_COLUMNS,
    build_datalist,
    case_keys,
    region_texts,
    safe_name,
    write_readme,
    write_reports_csv,
    write_tables,
    write_text_files,
)
from warehouse.exports.nifti import plan_case


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Warehouse:
    root = tmp_path_factory.mktemp("bundle_tables") / "wh"
    build(DemoSource(n=2), root, runner="local", progress=False)
    with Warehouse.open(root) as w:
        yield w


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Warehouse:
    """Cases train_1, valid_2, train_3, valid_4 (valid_4 without a CT)."""
    root = tmp_path_factory.mktemp("bundle_tables_cohort") / "wh"
    build(CohortSource(n=4, without_image=(3,)), root, runner="local", progress=False)
    with Warehouse.open(root) as w:
        yield w


def parquet(wh: Warehouse, table: str) -> pd.DataFrame:
    """A table read straight from the snapshot's Parquet file."""
    return pd.read_parquet(wh.path / "tables" / f"{table}.parquet")


def ids(wh: Warehouse) -> list[str]:
    return sorted(parquet(wh, "cases")["case_id"])


def same_rows(got: pd.DataFrame, want: pd.DataFrame, table: str) -> None:
    """Equal as rows in the schema's sort order (lists compared as lists)."""
    key = schema.sort_key(table)
    got, want = (d.sort_values(key, kind="stable").reset_index(drop=True) for d in (got, want))
    assert list(got.columns) == list(want.columns) == schema.TABLES[table].names
    pd.testing.assert_frame_equal(got.map(_plain), want.map(_plain), check_dtype=False)


def _plain(v):
    return v.tolist() if hasattr(v, "tolist") else v


# -- names ----------------------------------------------------------------------------------------------
def test_case_keys_are_the_stores_and_injective():
    assert case_keys(["train_1_a_1.nii.gz", "valid_22_b_3.nii.gz"]) == {
        "train_1_a_1.nii.gz": "train_1_a_1", "valid_22_b_3.nii.gz": "valid_22_b_3"}
    tricky = ["a/b.nii.gz", "a_b.nii.gz", "a\\b.nii.gz", "../x", ".x", "x", "X", "a b", "a_b", "", "__init__",
              "train_1_a_1.nii", "train_1_a_1.nii.gz"]
    keys = case_keys(tricky)
    assert list(keys) == tricky and len(set(keys.values())) == len(tricky)
    for key in keys.values():
        assert key and "/" not in key and "\\" not in key and not key.startswith(".") and ".." not in key


@pytest.mark.parametrize(("name", "stem"), [
    ("left lung", "left lung"), ("trachea and bronchie", "trachea and bronchie"),
    ("thoracic vertebrae 1 (t1)", "thoracic vertebrae 1 (t1)"),
    ("a/b\\c", "a_b_c"), ("x\x00y\ty\nz", "x_y_y_z"), ("../up", "_up"), ("..", "region"), ("", "region"),
    ("  ", "region"), (".hidden", "hidden"),
])
def test_safe_name(name, stem):
    assert safe_name(name) == stem


def test_every_region_name_is_its_own_safe_name():
    names = anatomy().tables()["anatomy"].column("name").to_pylist()
    assert len(names) > 100 and [n for n in names if safe_name(n) != n] == []


# -- tables ---------------------------------------------------------------------------------------------
def test_tables_hold_the_cohorts_rows_and_reference_tables_whole(wh, tmp_path):
    one = ids(wh)[:1]
    counts = write_tables(wh, tmp_path / "tables", one)
    assert list(counts) == list(schema.TABLES)
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == sorted(
        f"{n}.{ext}" for n in schema.TABLES for ext in ("parquet", "csv"))
    for name in schema.TABLES:
        want = parquet(wh, name)
        if name not in schema.REFERENCE_TABLES:
            want = want[want["case_id"].isin(one)]
        got = pq.read_table(tmp_path / "tables" / f"{name}.parquet")
        assert got.schema.names == schema.TABLES[name].names and counts[name] == got.num_rows == len(want), name
        same_rows(got.to_pandas(), want, name)
        assert pl.read_csv(tmp_path / "tables" / f"{name}.csv", infer_schema=False).height == len(want), name
    assert counts["cases"] == 1 and counts["sentences"] > 0 and counts["vqa"] > 0
    assert counts["anatomy"] == len(parquet(wh, "anatomy")) > 0


def test_csv_tables_hold_lists_as_json_and_nulls_as_empty(wh, tmp_path):
    write_tables(wh, tmp_path, ids(wh))
    vqa = pl.read_csv(tmp_path / "vqa.csv", infer_schema=False)
    want = parquet(wh, "vqa").sort_values(schema.sort_key("vqa"), kind="stable")
    assert vqa["vqa_id"].to_list() == want["vqa_id"].to_list()  # in the snapshot's order
    for text, terms in zip(vqa["terms"], want["terms"], strict=True):
        assert (None if text is None else json.loads(text)) == (None if terms is None else list(terms))
    anatomy_csv = pl.read_csv(tmp_path / "anatomy.csv", infer_schema=False)
    lll = anatomy_csv.filter(pl.col("name") == "left lung lower lobe").row(0, named=True)
    assert set(json.loads(lll["parent_ids"])) == {anatomy().get("left lung").region_id,
                                                  anatomy().get("lung lower lobe").region_id}
    sentences = pl.read_csv(tmp_path / "sentences.csv", infer_schema=False)
    assert sentences.height == len(parquet(wh, "sentences"))
    assert sentences["region_id"].null_count() == parquet(wh, "sentences")["region_id"].isna().sum()


def test_no_cases_gives_empty_case_tables(wh, tmp_path):
    counts = write_tables(wh, tmp_path, [])
    assert all(counts[n] == 0 for n in schema.TABLES if n not in schema.REFERENCE_TABLES)
    assert pq.read_table(tmp_path / "cases.parquet").schema.names == schema.TABLES["cases"].names


# -- reports --------------------------------------------------------------------------------------------
def test_reports_csv_is_ct_rates_columns_with_not_given_for_null(wh, tmp_path):
    reports = wh.table("reports", ids(wh)).to_pylist()
    reports[0] = reports[0] | {"technique": None, "impressions": "Line one,\n\"quoted\" line two."}
    write_reports_csv(tmp_path / "reports.csv", reports)
    with open(tmp_path / "reports.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == CT_RATE_FILES["reports"].header == [c for c, _ in REPORT_COLUMNS]
    want = parquet(wh, "reports").set_index("case_id")
    assert [r[0] for r in rows[1:]] == ids(wh)
    for row in rows[1:]:
        for (_, column), value in zip(REPORT_COLUMNS[1:], row[1:], strict=True):
            given = reports[0][column] if row[0] == reports[0]["case_id"] else want.loc[row[0], column]
            assert value == (NOT_GIVEN if given is None or given != given else given), (row[0], column)
    assert rows[1][2] == NOT_GIVEN and rows[1][4] == "Line one,\n\"quoted\" line two."  # kept whole
    write_reports_csv(tmp_path / "none.csv", [])
    assert (tmp_path / "none.csv").read_text() == ",".join(CT_RATE_FILES["reports"].header) + "\n"


# -- region texts ---------------------------------------------------------------------------------------
def _subtree_sentences(wh: Warehouse, region: str) -> pd.DataFrame:
    """The sentences under `region` with their depth below it, read with pandas (not the engine)."""
    rid = anatomy().resolve(region).region_id
    closure = parquet(wh, "anatomy_closure")
    below = closure[closure["ancestor_id"] == rid][["descendant_id", "depth"]]
    s = parquet(wh, "sentences").merge(below, left_on="region_id", right_on="descendant_id")
    return s[s["text"].notna()].sort_values(["case_id", "depth", "ordinal", "sentence_id"])


@pytest.mark.parametrize("region", ["trachea and bronchie", "lung", "abdomen", "bone"])
def test_region_texts_hold_every_sentence_under_the_region_once(wh, region):
    texts = region_texts(wh, ids(wh), region)
    want = _subtree_sentences(wh, region)
    assert sorted(texts) == sorted(want["case_id"].unique())
    for case_id, group in want.groupby("case_id"):
        picked: list[str] = []
        for text in group["text"]:  # shallowest first, a text an earlier one holds left out
            if not any(text in t for t in picked):
                picked.append(text)
        assert texts[case_id] == " ".join(picked)
        assert all(t in texts[case_id] for t in group["text"])


def test_region_texts_dedupe_the_released_fragments(wh):
    want = _subtree_sentences(wh, "trachea and bronchie")
    assert want.duplicated(["case_id", "text"]).any(), "the demo repeats a sentence under sub-regions"
    for case_id, text in region_texts(wh, ids(wh), "trachea and bronchie").items():
        for sentence in want[want["case_id"] == case_id]["text"].unique():
            assert text.count(sentence) == 1


def test_region_texts_without_a_region_are_the_findings_and_impressions(wh):
    reports = parquet(wh, "reports").set_index("case_id")
    texts = region_texts(wh, ids(wh), None)
    assert texts == {c: " ".join(t for t in (reports.loc[c, "findings"], reports.loc[c, "impressions"]) if t)
                     for c in ids(wh)}
    assert region_texts(wh, ids(wh)[:1], None).keys() == {ids(wh)[0]}
    assert region_texts(wh, [], "lung") == {} and region_texts(wh, ["nope.nii.gz"], None) == {}
    assert region_texts(wh, ids(wh), "LLL") == region_texts(wh, ids(wh), "left lung lower lobe")  # synonyms


# -- datalist -------------------------------------------------------------------------------------------
def _plans(wh: Warehouse, masks: list[str], crop: str | None = None) -> dict:
    keys = case_keys(ids(wh))
    return {c: plan_case(wh, c, keys[c], safe_name, image=True, masks=masks, crop=crop, margin_mm=2)[0]
            for c in ids(wh)}


def test_datalist_splits_and_paths(cohort):
    cases = ids(cohort)
    reports = {r["case_id"]: r for r in cohort.table("reports", cases).to_pylist()}
    d = build_datalist(cohort, cases, _plans(cohort, ["left lung"]), None, ["left lung"], reports)
    splits = dict(zip(parquet(cohort, "cases")["case_id"], parquet(cohort, "cases")["split"], strict=True))
    assert [e["case_id"] for e in d["training"]] == [c for c in cases if splits[c] == "train"]
    assert [e["case_id"] for e in d["validation"]] == [c for c in cases if splits[c] == "validation"]
    assert (d["numTraining"], d["numValidation"]) == (2, 2)
    assert d["labels"] == {"0": "background", "1": "left lung"} and d["regions"] == ["left lung"]
    assert d["description"] == f"snapshot {cohort.snapshot_id}" and d["crop_region"] is None
    assert all(x["dataset"] in d["licence"] and x["licence"] in d["licence"] for x in LICENCES)
    entries = {e["case_id"]: e for e in d["training"] + d["validation"]}
    assert entries["train_1_a_1.nii.gz"]["image"] == "images/train_1_a_1.nii.gz"
    assert entries["train_1_a_1.nii.gz"]["label"] == "masks/train_1_a_1/left lung.nii.gz"
    assert "image" not in entries["valid_4_a_1.nii.gz"] and entries["valid_4_a_1.nii.gz"]["label"]
    for c, e in entries.items():
        assert e["split"] == splits[c] and e["findings"] == reports[c]["findings"]
        assert e["impressions"] == reports[c]["impressions"] and e["region"] is None
        assert e["text"] == " ".join(t for t in (reports[c]["findings"], reports[c]["impressions"]) if t)
    json.dumps(d)  # all plain JSON


def test_datalist_with_several_masks_a_crop_and_no_files(cohort):
    cases = ids(cohort)
    masks = ["heart", "left lung", "liver"]  # no liver mask: left out of each entry
    d = build_datalist(cohort, cases, _plans(cohort, masks, crop="left lung"), "left lung", masks, {})
    assert "labels" not in d and d["crop_region"] == "left lung"
    e = d["training"][0]
    assert e["label"] == ["masks/train_1_a_1/heart.nii.gz", "masks/train_1_a_1/left lung.nii.gz"]
    assert e["label_regions"] == ["heart", "left lung"] and e["region"] == "left lung"
    assert e["text"] == region_texts(cohort, cases, "left lung")[e["case_id"]]
    assert e["text"].count("A 3 mm nodule is seen in the left lower lobe.") == 1
    assert e["findings"] is None and e["impressions"] is None  # no reports given
    bare = build_datalist(cohort, cases, {}, None, [], {})
    assert all("image" not in e and "label" not in e for e in bare["training"] + bare["validation"])
    assert bare["numTraining"] + bare["numValidation"] == len(cases)
    assert build_datalist(cohort, ["nope.nii.gz"], {}, None, [], {})["training"] == [
        {"case_id": "nope.nii.gz", "split": None, "region": None, "text": "", "findings": None,
         "impressions": None}]


# -- readme and the whole set ------------------------------------------------------------------------------
def test_readme_names_snapshot_query_and_licences(tmp_path):
    query = "SELECT case_id FROM cases\nWHERE split = $split\n"
    write_readme(tmp_path / "README.md", "00002-abc", query, 7, LICENCES)
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert text.startswith("# Cohort export: 7 cases\n") and "snapshot `00002-abc`" in text
    assert "    SELECT case_id FROM cases\n    WHERE split = $split\n" in text
    for x in LICENCES:
        assert f"- {x['dataset']}: {x['licence']} ({x['url']})" in text


def test_write_text_files_writes_the_set(cohort, tmp_path):
    cases = ids(cohort)[:2]
    counts = write_text_files(cohort, tmp_path, cases, case_keys(cases), {}, None, ["heart"])
    assert counts["cases"] == 2 and counts["sentences"] == 8
    assert {p.name for p in tmp_path.iterdir()} == {"tables", "reports.csv", "datalist.json", "radgenome"}
    d = json.loads((tmp_path / "datalist.json").read_text())
    assert d["numTraining"] + d["numValidation"] == 2
    assert d["training"][0]["findings"] == parquet(cohort, "reports").set_index("case_id").loc[
        d["training"][0]["case_id"], "findings"]
    assert any(Path(p).name.endswith("_region_report.csv") for p in (tmp_path / "radgenome").rglob("*.csv"))
