"""The named query library: its files, answers on a hand-made warehouse, its checks, portable SQL.

Header parsing is tested in tests/queries/test_header.py, parameter types and binding in test_params.py,
`radgenome query` in tests/warehouse/cli/test_queries.py.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from queries import (
    DIALECTS,
    ParameterError,
    QueryHeaderError,
    UnknownQueryError,
    check_columns,
    check_library_sql,
    get_query,
    list_queries,
    render,
    transpile,
)
from queries.portable import UNSAFE, catalog, snapshot_path, snapshot_text
from tests import ROOT
from tests.fixtures import query_fixture as fx
from warehouse import Warehouse

QUERIES = [q.name for q in list_queries()]


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    yield from fx.opened(tmp_path_factory)


def rows(df) -> list[tuple]:
    return [tuple(r) for r in df.iter_rows()]


# -- the library's files ------------------------------------------------------------------------
def test_library_has_the_questions():
    assert len(QUERIES) >= 12
    for must in ("sentences_mentioning", "findings_by_status", "cases_with_without", "sentences_normal_abnormal",
                 "top_abnormalities", "top_disorders", "vqa_by_type_region", "finding_size_distribution",
                 "cases_region_volume", "finding_cooccurrence", "label_prevalence_by_sex_age",
                 "patients_in_two_splits"):
        assert must in QUERIES


@pytest.mark.parametrize("name", QUERIES)
def test_header_is_complete(name):
    q = get_query(name)
    assert q.path.stem == name and len(q.description) > 30
    assert q.returns, "every query documents its columns"
    for p in q.params:
        assert p.description, f"{name}: parameter {p.name} has no description"
        if not p.required and p.default is None:  # optional: the SQL must handle the NULL
            assert f"${p.name} IS NULL" in q.sql, f"{name}: optional {p.name} is never tested for NULL"
    assert all(p.name in q.example for p in q.params if p.required), "required parameters need an example"
    check_library_sql(q.sql, name)
    check_columns(q.sql)  # every column exists in warehouse.core.schema


@pytest.mark.parametrize("name", QUERIES)
def test_every_query_runs_and_returns_its_documented_columns(wh, name):
    q = get_query(name)
    df = wh.query(name, **q.example)
    assert df.columns == list(q.returns)


# -- answers worked out by hand from tests/fixtures/query_fixture.py -------------------------------------
def test_sentences_under_a_region_mentioning_a_term(wh):
    df = wh.query("sentences_mentioning", region="lung", term="nodule")
    assert rows(df.select("case_id", "ordinal")) == [(fx.P7A, 0), (fx.T1, 1), (fx.T1, 2), (fx.T2, 1), (fx.V1, 0)]
    # the DAG: the lower lobe is under `left lung` and under `lung lower lobe`
    for region in ("left lung", "lung lower lobe", "LLL"):
        assert rows(wh.query("sentences_mentioning", region=region, term="NODULE").select("case_id")) == \
            [(fx.T1,), (fx.V1,)]
    assert wh.query("sentences_mentioning", term="nodule", limit=2).height == 2


def test_term_is_literal_data_not_sql_or_pattern(wh):
    q = "sentences_mentioning"
    assert wh.query(q, region="aorta", term="%").height == 1  # the one text with a % sign
    assert wh.query(q, region="aorta", term="5_%").height == 0  # _ is not a wildcard
    assert wh.query(q, region="lung", term="' OR 1=1 --").height == 0
    for pattern in (".*", "nod.le", "(", "\\E.*", "\\Q.*\\E"):  # regular-expression syntax is text too
        assert wh.query(q, region="lung", term=pattern).height == 0, pattern
    assert wh.query(q, region="aorta", term="' OR 1=1 --").height == 1  # found as text, nothing more
    with pytest.raises(ParameterError, match="unknown finding term"):  # a term is checked, then bound
        wh.query("cases_with_without", with_term="x' OR '1'='1", without_term="pleural effusion")
    sql, params = render(q, region="lung", term="'; DROP VIEW cases; --")
    assert "DROP" not in sql and params["term"] == "'; DROP VIEW cases; --"


def test_findings_by_status(wh):
    assert rows(wh.query("findings_by_status", region="lung")) == [
        ("left lung lower lobe", "present", 2, 2), ("lung", "absent", 2, 2), ("lung", "present", 1, 1),
        ("right lung upper lobe", "present", 2, 1)]


def test_cases_with_and_without(wh):
    df = wh.query("cases_with_without", with_term="Pleural Effusion", without_term="pericardial effusion")
    assert rows(df) == [(fx.T2, "train_2", "train")]
    df = wh.query("cases_with_without", with_term="nodule", without_term="pleural effusion")
    assert [r[0] for r in rows(df)] == [fx.T1, fx.V1]  # V1's effusion is only uncertain


def test_abnormality_frequency_by_region(wh):
    df = wh.query("abnormality_frequency_by_region", top=1)
    assert rows(df) == [("abdomen", "atherosclerosis", 1, 1), ("heart", "pericardial effusion", 2, 1),
                        ("lung", "pulmonary nodule", 3, 1), ("mediastinum", "atherosclerosis", 1, 1),
                        ("pleura", "pleural effusion", 2, 1)]


def test_normal_and_abnormal_sentences_per_region_and_split(wh):
    got = {(r[0], r[1]): r[2:] for r in rows(wh.query("sentences_normal_abnormal"))}
    assert got == {("train", "abdomen"): (1, 0, 1, 0), ("train", "heart"): (1, 1, 0, 0),
                   ("train", "lung"): (5, 2, 3, 0), ("train", "mediastinum"): (1, 0, 1, 0),
                   ("train", "pleura"): (1, 0, 1, 0), ("validation", "abdomen"): (1, 0, 0, 1),
                   ("validation", "heart"): (1, 0, 1, 0), ("validation", "lung"): (1, 0, 1, 0),
                   ("validation", "mediastinum"): (1, 0, 0, 1)}


def test_commonest_abnormalities_and_disorders(wh):
    # findings data: T1, T2, V1, P7A (findings, flagged sentences) and P7B (findings only); T1B has none
    df = wh.query("top_abnormalities")
    assert rows(df.select("term", "cases")) == [("pulmonary nodule", 3), ("pericardial effusion", 2),
                                                ("pleural effusion", 2), ("atherosclerosis", 1),
                                                ("ground-glass opacity", 1)]
    assert set(df["cases_with_data"]) == {5} and df["share"][0] == pytest.approx(3 / 5)
    val = wh.query("top_abnormalities", split="validation", top=2)
    assert rows(val) == [("pericardial effusion", 2, 2, 1.0), ("pleural effusion", 1, 2, 0.5)]  # V1, P7B
    train = wh.query("top_abnormalities", split="train", top=1)
    assert rows(train) == [("pulmonary nodule", 2, 3, pytest.approx(2 / 3))]  # T1, T2 of T1, T2, P7A
    # disorder data: T1 (a disorders pair and labels), T2, V1, P7A ('no findings', no disorder) and P7B (read
    # for findings, no disorder label); T1B has none
    dis = wh.query("top_disorders")
    assert rows(dis)[0] == ("pulmonary nodule", 2, 5, 0.4)
    assert "no findings" not in dis["disorder"].to_list()
    assert rows(wh.query("top_disorders", split="validation")) == [("pericardial effusion", 1, 2, 0.5)]
    assert rows(wh.query("top_disorders", split="train", top=1)) == [("pulmonary nodule", 2, 3, pytest.approx(2 / 3))]


@pytest.fixture(scope="module")
def wh_variant(tmp_path_factory):
    """The hand-made warehouse without findings and without disorders (no label rows, no disorders pairs)."""
    from warehouse.core.anatomy import anatomy
    from warehouse.store.snapshot import SnapshotWriter

    tables = fx.rows()
    tables["findings"] = []
    tables["case_labels"] = [r for r in tables["case_labels"] if r["kind"] != "disorder"]
    tables["vqa"] = [r for r in tables["vqa"] if r["type"] != "disorders"]
    root = tmp_path_factory.mktemp("qwh_variant")
    writer = SnapshotWriter(root, "query-fixture-variant")
    writer.save_part("fixture", tables)
    writer.publish(replaced_cases=[c["case_id"] for c in fx.CASES], source="fixture", tables=anatomy().tables())
    with Warehouse.open(root) as w:
        yield w


def test_shares_without_the_data_say_so(wh_variant):
    from queries.errors import QueryNotApplicableError

    for split in (None, "train", "validation"):
        with pytest.raises(QueryNotApplicableError, match="no findings"):  # the findings table is empty
            wh_variant.query("top_abnormalities", split=split)
        df = wh_variant.query("top_disorders", split=split)  # CT-RATE labels, no disorder label: no rows
        assert df.height == 0 and df.columns == list(get_query("top_disorders").returns)


def test_label_prevalence_is_over_the_cases_with_labels(wh):
    # T1, T1B, T2, V1, P7A have CT-RATE labels; P7B has none and is in no denominator
    df = wh.query("label_prevalence_by_sex_age", label="Lung nodule", band_years=200)
    assert rows(df.select("sex", "cases", "positives")) == [("F", 2, 2), ("M", 3, 2)]


def test_unknown_sentences_are_counted_not_dropped(wh):
    df = wh.query("sentences_normal_abnormal")
    assert all(r["sentences"] == r["normal"] + r["abnormal"] + r["unknown"] for r in df.iter_rows(named=True))
    assert df["unknown"].sum() == 2  # V1's aorta sentence: under abdomen and mediastinum


# -- shares on the warehouse built from the real released files (../shared/data) -------------------
def _released_disorders(shared_data: Path) -> tuple[pd.DataFrame, int]:
    """RadGenome's train_case_disorders.csv read with pandas: (case, disorder) pairs and the number of cases."""
    di = pd.read_csv(shared_data / "radgenome" / "train_case_disorders.csv", keep_default_na=False)
    pairs = di.assign(disorder=di["Disorders"].str.split(",")).explode("disorder")
    pairs["disorder"] = pairs["disorder"].str.strip()
    pairs = pairs[(pairs["disorder"] != "") & (pairs["disorder"].str.lower() != "no findings")]
    return pairs[["Volumename", "disorder"]].drop_duplicates(), di["Volumename"].nunique()


@pytest.fixture(scope="module")
def real_wh(real_warehouse):
    with Warehouse.open(real_warehouse) as w:
        yield w


def test_real_disorder_shares_are_over_the_released_cases(real_wh, shared_data):
    pairs, n = _released_disorders(shared_data)
    expected = (pairs.groupby("disorder")["Volumename"].nunique().rename("cases").reset_index()
                .sort_values(["cases", "disorder"], ascending=[False, True]).head(20))
    got = real_wh.query("top_disorders", split="train")
    assert rows(got.select("disorder", "cases")) == list(expected.itertuples(index=False, name=None))
    assert set(got["cases_with_data"]) == {n} == {2000}
    assert got["share"].to_list() == pytest.approx((expected["cases"] / n).to_list())
    nodules = got.row(by_predicate=pl.col("disorder") == "pulmonary nodules", named=True)
    assert nodules["share"] == pytest.approx(pairs["disorder"].eq("pulmonary nodules").sum() / n)
    assert 0.11 < nodules["share"] < 0.13  # 244 of 2,000, not of the 5,039 cases the warehouse holds
    # validation: disorders read from the region reports, over every volume with one ('no findings' included);
    # CT-RATE volumes with neither a released disorder list nor a region report are in no denominator
    volumes = _region_report_volumes(shared_data)
    val = real_wh.query("top_disorders", split="validation")
    assert set(val["cases_with_data"]) == {len(volumes)}
    every = real_wh.query("top_disorders", top=5)
    assert set(every["cases_with_data"]) == {n + len(volumes)} and n + len(volumes) < real_wh.sql(
        "SELECT COUNT(*) FROM cases").item()


def _region_report_volumes(shared_data: Path) -> set[str]:
    """The validation volumes with a grounded region report in the sample (read with pandas)."""
    files = sorted((shared_data / "radgenome_validation_regions").glob("*.csv"))
    return set().union(*(set(pd.read_csv(f, keep_default_na=False)["Volumename"]) for f in files))


def test_real_abnormality_and_sentence_denominators(real_wh, shared_data):
    files = sorted((shared_data / "radgenome_validation_regions").glob("*.csv"))
    regions = {f.stem: pd.read_csv(f, keep_default_na=False) for f in files}
    volumes = _region_report_volumes(shared_data)
    got = real_wh.query("top_abnormalities", split="validation", top=1000)
    # findings are read from the region reports: shares over every volume with one, a finding or not
    assert got.height > 0 and set(got["cases_with_data"]) == {len(volumes)} == {932}
    assert got["share"].to_list() == pytest.approx((got["cases"] / len(volumes)).to_list())
    by_region = real_wh.query("sentences_normal_abnormal").filter(pl.col("split") == "validation")
    assert dict(by_region.select("region", "sentences").iter_rows()) == {k: len(v) for k, v in regions.items()}
    assert (by_region["normal"] + by_region["abnormal"] + by_region["unknown"] == by_region["sentences"]).all()
    unknown = real_wh.sql("SELECT COUNT(*) FROM sentences WHERE region_id IS NOT NULL AND is_abnormal IS NULL").item()
    assert by_region["unknown"].sum() >= unknown  # a sentence counts under each top-level region it lies under


def test_vqa_of_a_type_under_a_region(wh):
    assert [r[0] for r in rows(wh.query("vqa_by_type_region", type="abnormality", region="lung"))] == \
        [fx.T1, fx.T2, fx.V1]
    df = wh.query("vqa_by_type_region", type="presence", region="pleura")
    assert rows(df.select("case_id", "answer", "term")) == [(fx.T2, "Yes.", "pleural effusion")]
    assert wh.query("vqa_by_type_region", type="SIZE", region="lung lower lobe")["answer"].to_list() == ["4 mm"]


def test_size_distribution(wh):
    assert rows(wh.query("finding_size_distribution", term="nodule", bin_mm=5)) == [
        (0.0, 5.0, 1, 1), (5.0, 10.0, 2, 1), (10.0, 15.0, 1, 1)]
    assert rows(wh.query("finding_size_distribution", term="nodule", bin_mm="20")) == [(0.0, 20.0, 4, 3)]


def test_cases_by_region_volume(wh):
    df = wh.query("cases_region_volume", region="heart", min_ml=700)
    assert rows(df.select("case_id", "mask_source", "volume_ml")) == [
        (fx.V1, "radgenome", 900.0), (fx.V1, "totalsegmentator", 880.0), (fx.T2, "radgenome", 800.0),
        (fx.P7A, "totalsegmentator", 720.0)]
    df = wh.query("cases_region_volume", region="cardiac", min_ml="700", max_ml="850")  # a synonym of heart
    assert df["volume_ml"].to_list() == [800.0, 720.0]


def test_cooccurrence(wh):
    df = wh.query("finding_cooccurrence", term="pleural effusion")
    assert rows(df.select("term", "cases_both", "cases_term")) == [
        ("ground-glass opacity", 1, 1), ("pericardial effusion", 1, 2), ("pulmonary nodule", 1, 3)]
    assert df["lift"].to_list() == pytest.approx([3.0, 1.5, 1.0])
    assert wh.query("finding_cooccurrence", term="pleural effusion", min_cases=2).height == 0


def test_label_prevalence_by_sex_and_age_band(wh):
    df = wh.query("label_prevalence_by_sex_age", label="pleural effusion")
    assert rows(df.select("sex", "age_band", "cases", "positives")) == [
        ("F", 30, 1, 0), ("F", 60, 1, 1), ("M", 40, 2, 0), ("M", 70, 1, 0)]
    everything = wh.query("label_prevalence_by_sex_age", band_years=50)
    assert everything["label"].to_list()[0] == "Lung nodule"  # CT-RATE's order: Lung nodule (9) first
    assert rows(everything.filter(everything["label"] == "Lung nodule").select("sex", "age_band", "cases")) == [
        ("F", 0, 1), ("F", 50, 1), ("M", 0, 2), ("M", 50, 1)]


def test_patients_in_two_splits(wh):
    assert rows(wh.query("patients_in_two_splits")) == [("P7", 2, "train", "validation", 2)]


def test_case_sentences_and_cohort(wh):
    df = wh.query("case_sentences", case_id=fx.T1)
    assert df["ordinal"].to_list() == [0, 1, 2, 3, 4] and df["region"][0] is None
    assert df["top_level"].to_list()[1:] == ["lung", "lung", "heart", "abdomen"]
    assert wh.query("cohort_by_label", label="lung nodule")["case_id"].to_list() == [fx.T1, fx.T1B, fx.T2, fx.V1]
    assert wh.query("cohort_by_label", label="Lung nodule", sex="f")["case_id"].to_list() == [fx.T2, fx.V1]
    assert wh.query("cohort_by_label", label="Lung nodule", min_age=40, split="train").height == 3


# -- the library's checks ---------------------------------------------------------------------------
def test_unknown_query_names_close_ones():
    with pytest.raises(UnknownQueryError, match="top_disorders"):
        get_query("top_disorder")


@pytest.mark.parametrize("sql", [
    "INSERT INTO cases (case_id) VALUES ('x')", "DELETE FROM cases", "UPDATE cases SET split = 'x'",
    "CREATE TABLE x AS SELECT 1", "DROP VIEW cases", "COPY cases TO '/tmp/x.csv'", "ATTACH 'x.db'",
    "SET threads = 1", "PRAGMA database_list", "INSTALL httpfs", "LOAD httpfs", "CREATE MACRO m(a) AS a + 1",
    "SELECT 1; SELECT 2", "WITH x AS (DELETE FROM cases RETURNING *) SELECT * FROM x",
])
def test_library_lint_refuses_writes(sql):
    with pytest.raises(QueryHeaderError):
        check_library_sql(sql)


def test_unknown_column_is_caught():
    with pytest.raises(QueryHeaderError, match="Unknown column"):
        check_columns("SELECT s.case_id, s.volume_ml FROM sentences AS s")


# -- portable SQL ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", QUERIES)
def test_library_transpiles_cleanly_and_matches_its_snapshot(name, dialect):
    res = transpile(get_query(name).sql, dialect)
    assert res.problems == (), [str(p) for p in res.problems]
    assert "$" not in res.sql
    assert set(res.parameters) == {p.name for p in get_query(name).params}
    path = snapshot_path(name, dialect)
    assert path.exists(), f"missing snapshot {path}: run `python -m queries snapshots`"
    assert path.read_text() == snapshot_text(name, dialect), \
        f"{path} is stale: run `python -m queries snapshots` and review the diff"


def test_no_stray_snapshots():
    for dialect in DIALECTS:
        stray = {p.stem for p in snapshot_path("x", dialect).parent.glob("*.sql")} - set(QUERIES)
        assert not stray, f"snapshots of queries that no longer exist: {stray}"


UNSAFE_SQL = [
    ("SELECT my_macro(a) FROM t", "unknown-function", DIALECTS),
    ("CREATE MACRO add_one(a) AS a + 1", "macro", DIALECTS),
    ("SELECT list_transform(l, x -> x + 1) FROM t", "lambda", DIALECTS),
    ("SELECT list_filter(l, x -> x > 1) FROM t", "lambda", DIALECTS),
    ("SELECT [x * 2 FOR x IN l] FROM t", "list-comprehension", DIALECTS),
    ("SELECT array_agg(x ORDER BY y) FROM t", "ordered-aggregate", DIALECTS),
    ("SELECT string_agg(x, ',' ORDER BY y) FROM t", "ordered-aggregate", DIALECTS),
    ("SELECT * EXCLUDE (a) FROM t", "star-modifier", DIALECTS),
    ("SELECT * REPLACE (a + 1 AS a) FROM t", "star-modifier", DIALECTS),
    ("SELECT COLUMNS('a.*') FROM t", "columns-expression", DIALECTS),
    ("SELECT #1 FROM t", "positional-column", DIALECTS),
    ("SELECT quantile_cont(x, 0.5) FROM t", "percentile", DIALECTS),
    ("SELECT contains(s, 'x') FROM t", "string-contains", ("trino",)),
    ("SELECT a, count(*) FROM t GROUP BY ALL", "group-by-all", ("trino",)),
    ("SELECT * FROM read_parquet('x.parquet')", "table-function", DIALECTS),
    # DuckDB-only functions sqlglot knows and emits unchanged: caught by the engine's function list
    ("SELECT jaro_winkler_similarity(a, b) FROM t", "not-builtin", DIALECTS),
    ("SELECT monthname(d) FROM t", "not-builtin", ("trino",)),
    ("SELECT to_days(1) FROM t", "not-builtin", ("spark",)),
    ("SELECT string_agg(s, ',') FROM t", "string-agg", ("trino",)),
    # emitted as an operator Trino does not have (&&): the generated SQL does not parse back
    ("SELECT list_has_any(l, m) FROM t", "reparse", ("trino",)),
]


@pytest.mark.parametrize(("sql", "rule", "dialects"), UNSAFE_SQL)
def test_lint_reports_constructs_that_would_not_survive(sql, rule, dialects):
    for dialect in dialects:
        res = transpile(sql, dialect)
        found = " ".join(str(p) for p in res.problems)
        assert rule in found, f"{dialect}: {sql} -> {res.sql}; problems: {found or 'none'}"


def test_every_unsafe_rule_is_exercised():
    tested = {r for _, r, _ in UNSAFE_SQL}
    assert {rule.name for rule in UNSAFE} <= tested


def test_portable_sql_is_left_alone():
    for dialect in DIALECTS:
        res = transpile("SELECT s.case_id, count(*) AS n FROM sentences AS s WHERE s.text ILIKE '%x%' "
                        "GROUP BY s.case_id ORDER BY n DESC LIMIT 5", dialect)
        assert res.ok, res.problems


def test_parameters_become_named_for_spark_and_positional_for_trino():
    sql = "SELECT a FROM t WHERE b = $x AND c = $y AND ($x IS NULL OR d = $x) LIMIT $n"
    spark, trino = transpile(sql, "spark"), transpile(sql, "trino")
    assert ":x" in spark.sql and spark.parameters == ("x", "y", "n")
    assert trino.sql.count("?") == 5 and trino.parameters == ("x", "y", "x", "x", "n")


def test_catalogs_have_headers_and_names():
    for dialect in DIALECTS:
        text = (ROOT / "queries" / "catalogs" / f"{dialect}_functions.txt").read_text()
        header = dict(line[2:].split(": ", 1) for line in text.splitlines()
                      if line.startswith("# ") and ": " in line and not line.startswith("#  "))
        assert header["catalog"] == dialect and header["source"] and header["description"]
        names = catalog(dialect)
        assert {"count", "lower", "floor", "row_number", "coalesce"} <= names and len(names) > 300


def test_markdown_listing_names_every_query():
    from queries.library import library_markdown as markdown

    table = markdown()
    assert all(f"| `{name}` |" in table for name in QUERIES)
    readme = (ROOT / "README.md").read_text()
    assert table in readme, "README's query table is stale: python -m queries list --markdown"
