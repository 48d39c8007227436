"""The paper-scale benchmark's machinery at a tiny scale: the warehouse and pandas (on the released
CSVs) give the same answer for every named query, so the benchmark compares like with like."""

from __future__ import annotations

import pytest

from tests import SHARED_DATA

DATA = SHARED_DATA
pytestmark = pytest.mark.skipif(not (DATA / "radgenome").is_dir(),
                                reason=f"the real released files are needed as seeds ({DATA} is absent)")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    from benchmarks import paper_scale
    from benchmarks._paper.generate import generate, load_seeds, write_csvs

    work = tmp_path_factory.mktemp("paper")
    release = generate(load_seeds(DATA), scale=0.004, seed=3)
    write_csvs(release, work / "csv")
    wh, _, rows = paper_scale.build(release, work / "wh")
    yield paper_scale, release, wh, work / "csv", rows
    wh.close()


def test_warehouse_and_pandas_agree_on_every_query(bench):
    paper_scale, release, wh, csv, rows = bench
    counts = wh.manifest["row_counts"]
    assert counts["cases"] == release.n_cases and counts["sentences"] == len(release.region_report)
    assert rows == sum(counts[t] for t in ("cases", "sentences", "findings", "case_labels", "vqa", "region_stats"))
    wq = paper_scale.run_warehouse(wh, repeats=1)
    pq = paper_scale.run_pandas(csv, wq, repeats=1)
    assert set(pq) == set(wq)
    assert {name: p["diff"] for name, p in pq.items() if p["diff"]} == {}
    assert sum(w["rows"] for w in wq.values()) > 100


def test_compare_reports_a_different_answer(bench):
    paper_scale, _, wh, csv, _ = bench
    from benchmarks._paper.pandas_answers import top_abnormalities

    duck = wh.query("top_abnormalities")
    answer = top_abnormalities(csv, top=20, split=None)
    assert paper_scale.compare(duck, answer) is None
    answer.loc[0, "cases"] += 1
    assert "row 0" in paper_scale.compare(duck, answer)
    assert "rows" in paper_scale.compare(duck, answer.head(3))


@pytest.mark.parametrize(("text", "mm"), [("50 mm", 50.0), ("2 cm", 20.0), ("6x4 mm", 6.0), ("3-5 mm", 5.0),
                                          ("4.5 mm", 4.5), ("few mm", None), ("", None)])
def test_size_text_to_mm(text, mm):
    from benchmarks._paper.tables import size_mm

    assert size_mm(text) == mm
