"""`-o FILE` writes the whole result in the format its extension names (or -f names), read back equal
to the warehouse's own answer; the screen table is the only thing ever cut short."""

from __future__ import annotations

import io

import polars as pl
import pyarrow.ipc as ipc
import pytest

from ingest.runner import build
from ingest.sources.demo import DemoSource
from tests.fixtures.cli import run
from warehouse import Warehouse
from warehouse.cli._output import SCREEN_ROWS

FLAT = """SELECT v.vqa_id, v.case_id, v.type, v.question, v.answer, v.region_id, c.age, c.spacing_z,
                 v.region_id IS NULL AS no_region
          FROM vqa v JOIN cases c USING (case_id) ORDER BY v.vqa_id"""
NESTED = "SELECT region_id, name, paths, parent_ids FROM anatomy ORDER BY region_id"

READERS = {
    ".csv": lambda p, schema: pl.read_csv(p, schema=schema),
    ".json": lambda p, schema: pl.read_json(p, schema=schema),
    ".jsonl": lambda p, schema: pl.read_ndjson(p).cast(schema),  # (polars panics reading Int16 by schema)
    ".parquet": lambda p, schema: pl.read_parquet(p),
    ".arrow": lambda p, schema: pl.from_arrow(ipc.open_file(p).read_all()),
}


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Warehouse:
    root = tmp_path_factory.mktemp("outputs") / "wh"
    build(DemoSource(n=3), root, runner="local", progress=False)
    with Warehouse.open(root) as w:
        yield w


@pytest.mark.parametrize("ext", list(READERS))
def test_the_extension_names_the_format_and_the_whole_result_is_written(capsys, wh, tmp_path, ext):
    want = wh.sql(FLAT)
    assert want.height > SCREEN_ROWS, "longer than the screen table"
    out = tmp_path / f"result{ext}"
    code, stdout, err = run(capsys, "sql", "-w", wh.root, FLAT, "-o", out)
    assert (code, stdout) == (0, "") and f"wrote {want.height:,} rows to {out}" in err
    got = READERS[ext](out, want.schema)
    assert got.equals(want), ext
    assert not list(tmp_path.glob(".*partial")), "written aside, then renamed into place"


@pytest.mark.parametrize("ext", [".json", ".jsonl", ".parquet", ".arrow"])
def test_nested_columns_survive_the_formats_that_hold_them(capsys, wh, tmp_path, ext):
    want = wh.sql(NESTED)
    out = tmp_path / f"anatomy{ext}"
    assert run(capsys, "sql", "-w", wh.root, NESTED, "-o", out)[0] == 0
    assert READERS[ext](out, want.schema).equals(want)


def test_format_given_with_a_matching_or_no_extension(capsys, wh, tmp_path):
    want = wh.sql(FLAT)
    assert run(capsys, "sql", "-w", wh.root, FLAT, "-f", "parquet", "-o", tmp_path / "a.parquet")[0] == 0
    assert pl.read_parquet(tmp_path / "a.parquet").equals(want)
    assert run(capsys, "sql", "-w", wh.root, FLAT, "-f", "csv", "-o", tmp_path / "noext")[0] == 0
    assert pl.read_csv(tmp_path / "noext", schema=want.schema).equals(want)
    assert run(capsys, "sql", "-w", wh.root, FLAT, "--format", "jsonl", "-o", tmp_path / "b.ndjson")[0] == 0
    assert READERS[".jsonl"](tmp_path / "b.ndjson", want.schema).equals(want)


def test_a_text_table_file_holds_every_row(capsys, wh, tmp_path):
    want = wh.sql(FLAT)
    assert run(capsys, "sql", "-w", wh.root, FLAT, "-o", tmp_path / "t.txt")[0] == 0
    text = (tmp_path / "t.txt").read_text()
    assert all(vqa_id in text for vqa_id in want["vqa_id"]) and "…" not in text


def test_the_screen_table_says_it_is_cut_short(capsys, wh):
    code, out, err = run(capsys, "sql", "-w", wh.root, FLAT)
    height = wh.sql(FLAT).height
    assert code == 0 and f"shape: ({height}, 9)" in out
    assert f"showing {SCREEN_ROWS} of {height:,} rows" in err and "-o FILE.csv" in err
    code, out, err = run(capsys, "sql", "-w", wh.root, "SELECT 1 AS x")
    assert code == 0 and err == ""


def test_screen_formats_print_the_whole_result(capsys, wh):
    want = wh.sql(FLAT)
    for fmt, ext in (("csv", ".csv"), ("jsonl", ".jsonl"), ("json", ".json")):
        code, out, _ = run(capsys, "sql", "-w", wh.root, FLAT, "-f", fmt)
        assert code == 0
        assert READERS[ext](io.BytesIO(out.encode()), want.schema).equals(want), fmt


def test_named_queries_write_files_the_same_way(capsys, wh, tmp_path):
    want = wh.query("label_prevalence_by_sex_age", band_years=5)
    for ext in (".parquet", ".arrow", ".csv", ".jsonl"):
        out = tmp_path / f"q{ext}"
        code, _, err = run(capsys, "query", "label_prevalence_by_sex_age", "-p", "band_years=5", "-w", wh.root,
                           "-o", out)
        assert code == 0 and f"wrote {want.height:,} rows" in err
        assert READERS[ext](out, want.schema).equals(want), ext
    code, _, err = run(capsys, "query", "vqa_by_type_region", "-w", wh.root, "-o", tmp_path / "q.xlsx")
    assert code == 2 and "cannot tell a format from 'q.xlsx'" in err
    code, _, err = run(capsys, "query", "vqa_by_type_region", "-w", wh.root, "-f", "json", "-o", tmp_path / "q.csv")
    assert code == 2 and "--format json conflicts with 'q.csv'" in err
    assert not (tmp_path / "q.xlsx").exists()
