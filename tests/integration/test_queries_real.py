"""Every named query on a warehouse built from the real files in ../shared/data, each answer checked
against pandas reading the raw CSVs.

The pandas side reads the released files itself and gets findings by running the findings
extractor (`ingest.structure.released.read_released`) on the raw region paragraphs, case by case:
it shares the extractor with the warehouse, and nothing else (no ingest source, snapshot, SQL or
engine), so each test checks the import, the tables and the query against a second computation.
"""

from __future__ import annotations

import math
from functools import cache

import pandas as pd
import pytest

from ingest.structure.released import read_released
from queries import get_query, list_queries
from queries.errors import QueryNotApplicableError
from warehouse import Warehouse
from warehouse.core.anatomy import COARSE_REGIONS, anatomy

EXTRACTOR = "rules-0.1"


@pytest.fixture(scope="module")
def wh(real_warehouse):
    with Warehouse.open(real_warehouse) as w:
        yield w


@pytest.fixture(scope="module")
def raw(shared_data) -> dict[str, pd.DataFrame]:
    """The raw CSVs as pandas reads them, and findings from the raw region paragraphs."""
    files = sorted((shared_data / "radgenome_validation_regions").glob("*.csv"))
    regions = pd.concat([pd.read_csv(f, keep_default_na=False) for f in files], ignore_index=True)
    regions["ordinal"] = regions.groupby("Volumename", sort=False).cumcount()
    rows = [{"case_id": r.Volumename, "anatomy_path": r.Anatomy, "text": r.Sentence, "ordinal": r.ordinal,
             "region_id": anatomy().resolve(r.Anatomy).region_id, "sentence_id": f"{r.Volumename}:{r.ordinal}"}
            for r in regions.itertuples()]
    by_case: dict[str, list[dict]] = {}
    for r in rows:
        by_case.setdefault(r["case_id"], []).append(r)
    findings, labels = [], []
    for case, case_rows in by_case.items():
        res = read_released(case, case_rows, EXTRACTOR)
        findings += res.findings
        labels += res.ct_rate_label_rows()
    regions["is_abnormal"] = [r["is_abnormal"] for r in rows]
    meta = pd.read_csv(shared_data / "ct_rate/validation_metadata.csv", keep_default_na=False)
    meta["age"] = pd.to_numeric(meta["PatientAge"].str.extract(r"(\d+)")[0], errors="coerce")
    f = pd.DataFrame(findings)
    f["region"] = f["region_id"].map(lambda i: anatomy().get(int(i)).name)
    return {"regions": regions, "findings": f, "labels": pd.DataFrame(labels), "meta": meta,
            "abnormality": pd.read_csv(shared_data / "radgenome/train_vqa_abnormality.csv", keep_default_na=False),
            "disorders": pd.read_csv(shared_data / "radgenome/train_case_disorders.csv", keep_default_na=False)}


@cache
def _under(region: str) -> set[str]:
    return set(anatomy().descendants(region))


def _all_cases(raw) -> pd.Series:
    names = pd.concat([raw["regions"]["Volumename"], raw["meta"]["VolumeName"], raw["abnormality"]["Volumename"],
                       raw["disorders"]["Volumename"]])
    return pd.Series(sorted(set(names)))


def _records(df) -> list[tuple]:
    return [tuple(None if isinstance(v, float) and math.isnan(v) else v for v in row)
            for row in (df.to_pandas() if hasattr(df, "to_pandas") else df).itertuples(index=False)]


@pytest.mark.parametrize("name", [q.name for q in list_queries()])
def test_every_query_answers_its_example_on_the_real_sample(wh, name):
    """Rows, or a message saying why the query cannot apply; never an empty table without a word."""
    q = get_query(name)
    if name == "cases_region_volume":  # the sample has no masks
        with pytest.raises(QueryNotApplicableError, match="no region masks"):
            wh.query(name, **q.example)
        return
    df = wh.query(name, **q.example)
    assert df.columns == list(q.returns)
    if name != "patients_in_two_splits":  # a clean release has no leakage: no rows is its answer
        assert df.height > 0, f"{name} returned no rows on the real sample"


def test_patients_in_two_splits(wh, raw):
    names = _all_cases(raw)
    split = names.str.split("_").str[0]
    patient = names.str.rsplit("_", n=2).str[0]
    leaking = pd.DataFrame({"p": patient, "s": split}).groupby("p")["s"].nunique()
    assert wh.query("patients_in_two_splits").height == int((leaking > 1).sum()) == 0
    assert wh.sql("SELECT count(*) AS n FROM cases")["n"][0] == len(names)


def test_case_sentences(wh, raw):
    case = get_query("case_sentences").example["case_id"]
    want = raw["regions"][raw["regions"]["Volumename"] == case]
    got = wh.query("case_sentences", case_id=case)
    assert _records(got.select("ordinal", "anatomy_path", "text", "is_abnormal")) == \
        _records(want[["ordinal", "Anatomy", "Sentence", "is_abnormal"]])


def test_sentences_mentioning(wh, raw):
    r = raw["regions"]
    hit = r[r["Anatomy"].map(lambda p: anatomy().resolve(p).name in _under("lung"))
            & r["Sentence"].str.contains("nodule", case=False, regex=False)]
    hit = hit.sort_values(["Volumename", "ordinal"]).head(1000)
    got = wh.query("sentences_mentioning", region="lung", term="nodule")
    assert _records(got.select("case_id", "ordinal", "text")) == _records(hit[["Volumename", "ordinal", "Sentence"]])


def test_vqa_by_type_region(wh, raw):
    ab = raw["abnormality"].copy()
    ab["ordinal"] = ab.groupby("Volumename", sort=False).cumcount()
    ab = ab[ab["Anatomy"].map(lambda p: anatomy().resolve(p).name in _under("lung"))]
    ab = ab.sort_values(["Volumename", "ordinal"]).head(1000)
    got = wh.query("vqa_by_type_region", type="abnormality", region="lung")
    assert _records(got.select("case_id", "anatomy_path", "answer")) == \
        _records(ab[["Volumename", "Anatomy", "Abnormality"]])


def test_abnormality_frequency_by_region(wh, raw):
    f = raw["findings"]
    f = f[f["status"] == "present"]
    parts = []
    for top in COARSE_REGIONS:
        under = f[f["region"].isin(_under(top))]
        counts = under.groupby("term")["case_id"].nunique().rename("cases").reset_index()
        counts = counts.sort_values(["cases", "term"], ascending=[False, True]).head(10)
        parts.append(counts.assign(region=top, term_rank=range(1, len(counts) + 1)))
    want = pd.concat(parts).sort_values(["region", "term_rank"])
    got = wh.query("abnormality_frequency_by_region", top=10)
    assert _records(got) == _records(want[["region", "term", "cases", "term_rank"]])


def test_findings_by_status(wh, raw):
    f = raw["findings"]
    f = f[f["region"].isin(_under("lung"))]
    want = (f.groupby(["region", "status"]).agg(mentions=("case_id", "size"), cases=("case_id", "nunique"))
            .reset_index().sort_values(["region", "status"]))
    assert _records(wh.query("findings_by_status", region="lung")) == _records(want)


def _present_cases(raw, term: str) -> set[str]:
    f = raw["findings"]
    return set(f.loc[(f["term"] == term) & (f["status"] == "present"), "case_id"])


def test_cases_with_without(wh, raw):
    want = sorted(_present_cases(raw, "pleural effusion") - _present_cases(raw, "pericardial effusion"))
    got = wh.query("cases_with_without", with_term="pleural effusions", without_term="pericardial effusion")
    assert got["case_id"].to_list() == want and len(want) > 50


def test_finding_cooccurrence(wh, raw):
    f = raw["findings"]
    present = f.loc[f["status"] == "present", ["case_id", "term"]].drop_duplicates()
    anchor = _present_cases(raw, "pleural effusion")
    both = present[present["case_id"].isin(anchor) & (present["term"] != "pleural effusion")]
    together = both.groupby("term")["case_id"].nunique().rename("cases_both")
    term_cases = present.groupby("term")["case_id"].nunique().rename("cases_term")
    want = pd.concat([together, term_cases], axis=1, join="inner").reset_index()
    n_cases = len(_all_cases(raw))
    want["share"] = want["cases_both"] / len(anchor)
    want["lift"] = want["share"] / (want["cases_term"] / n_cases)
    want = want.sort_values(["cases_both", "term"], ascending=[False, True]).head(50)
    got = wh.query("finding_cooccurrence", term="pleural effusion")
    assert got["term"].to_list() == want["term"].to_list()
    assert got["cases_both"].to_list() == want["cases_both"].to_list()
    assert got["lift"].to_list() == pytest.approx(want["lift"].to_list())


def test_finding_size_distribution(wh, raw):
    f = raw["findings"]
    f = f[(f["term"] == "pulmonary nodule") & (f["status"] == "present") & f["size_mm"].notna()]
    f = f.assign(bin=(f["size_mm"] // 5.0) * 5.0)
    want = f.groupby("bin").agg(findings=("case_id", "size"), cases=("case_id", "nunique")).reset_index()
    got = wh.query("finding_size_distribution", term="nodules")  # a plural resolves to its term
    assert got["bin_start_mm"].to_list() == want["bin"].to_list()
    assert got["findings"].to_list() == want["findings"].to_list() and got["cases"].to_list() == want["cases"].to_list()


def test_cohort_by_label(wh, raw):
    labels = raw["labels"]
    positive = set(labels.loc[(labels["label"] == "Lung nodule") & (labels["value"] == 1), "case_id"])
    meta = raw["meta"].set_index("VolumeName")
    aged = {c for c in positive if c in meta.index and pd.notna(meta.loc[c, "age"])}
    got = wh.query("cohort_by_label", label="lung nodule")
    assert sorted(got["case_id"].to_list()) == sorted(aged) and len(aged) > 100


def test_label_evidence_is_the_present_findings_of_the_class(wh, raw):
    case = get_query("label_evidence").example["case_id"]
    f = raw["findings"]
    want = f[(f["case_id"] == case) & (f["ct_rate_label"] == "Lung nodule")]
    got = wh.query("label_evidence", case_id=case, label="Lung nodule")
    assert sorted(_records(got.select("status", "term", "raw_text"))) == \
        sorted(_records(want[["status", "term", "raw_text"]]))
    assert set(got["value"].to_list()) == {1} and set(got["label_source"].to_list()) == {EXTRACTOR}


def test_every_derived_positive_label_has_a_present_finding_as_evidence(wh):
    orphans = wh.sql("""
        SELECT l.case_id, l.label FROM case_labels AS l
        WHERE l.kind = 'ct_rate' AND l.value = 1 AND l.source <> 'ct_rate_predicted'
          AND NOT EXISTS (SELECT 1 FROM findings AS f WHERE f.case_id = l.case_id
                          AND f.ct_rate_label = l.label AND f.status = 'present')""")
    assert orphans.height == 0
    assert wh.sql("SELECT count(*) AS n FROM case_labels WHERE kind = 'ct_rate' AND value = 1")["n"][0] > 1000


def test_imported_sentences_are_flagged_and_released_rows_stay_apart(wh):
    flags = wh.sql("SELECT is_abnormal, count(*) AS n FROM sentences GROUP BY 1")
    by_flag = dict(zip(flags["is_abnormal"].to_list(), flags["n"].to_list(), strict=True))
    assert by_flag.get(None, 0) < 0.02 * sum(by_flag.values()) and by_flag[True] > 1000
    sources = set(wh.sql("SELECT DISTINCT extractor FROM sentences")["extractor"])
    assert sources == {"radgenome-validation-regions"}  # released rows keep their extractor
    assert set(wh.sql("SELECT DISTINCT extractor FROM findings")["extractor"]) == {EXTRACTOR}


def test_pleural_effusion_in_validation_by_findings(wh, raw):
    """The README's question: validation cases with a present pleural effusion under pleura or lung."""
    got = wh.sql("""
        SELECT count(DISTINCT f.case_id) AS n
        FROM findings AS f
        JOIN cases AS c ON c.case_id = f.case_id
        JOIN anatomy_closure AS ac ON ac.descendant_id = f.region_id
        JOIN anatomy AS a ON a.region_id = ac.ancestor_id
        WHERE f.term = 'pleural effusion' AND f.status = 'present' AND c.split = 'validation'
          AND a.name IN ('pleura', 'lung')""")["n"][0]
    f = raw["findings"]
    want = f[(f["term"] == "pleural effusion") & (f["status"] == "present")
             & f["region"].isin(_under("pleura") | _under("lung")) & f["case_id"].str.startswith("valid_")]
    assert got == want["case_id"].nunique() and 50 < got < 300


def test_vqa_terms_are_normalised_and_the_raw_text_kept(wh):
    df = wh.sql("""SELECT answer, terms FROM vqa WHERE type = 'abnormality'
                   AND answer IN ('nonspecific nodules', 'nodules', 'nodule')""")
    assert df.height > 0 and {tuple(t) for t in df["terms"].to_list()} == {("pulmonary nodule",)}
    covered = wh.sql("""SELECT avg(CASE WHEN len(terms) > 0 THEN 1.0 ELSE 0.0 END) AS share FROM vqa
                        WHERE type = 'abnormality' AND answer <> 'no findings'""")["share"][0]
    assert covered > 0.9


def test_a_result_cut_by_its_limit_says_so(wh, real_warehouse, capsys):
    from warehouse.cli import main
    from warehouse.core.errors import QueryLimitWarning

    with pytest.warns(QueryLimitWarning, match="its limit"):
        cut = wh.query("sentences_mentioning", term="nodule", limit=5)
    total = wh.query_total("sentences_mentioning", term="nodule", limit=5)
    assert cut.height == 5 and total == wh.query("sentences_mentioning", term="nodule", limit=10_000).height > 5
    with pytest.raises(SystemExit) as e:
        main(["query", "sentences_mentioning", "-p", "term=nodule", "-p", "limit=5", "-w", str(real_warehouse),
              "-f", "csv"])
    assert e.value.code == 0
    assert f"note: 5 of {total:,} rows (the query's limit); -p limit={total} gives them all" in capsys.readouterr().err


def test_a_query_that_cannot_apply_fails_with_one_line(real_warehouse, capsys):
    from warehouse.cli import main

    with pytest.raises(SystemExit) as e:
        main(["query", "cases_region_volume", "-w", str(real_warehouse)])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 1 and len(err) == 1 and "no region masks (region_stats is empty)" in err[0]
