"""`radgenome serve`'s HTTP API on a real server: pages, the console's JSON, downloads, exports and errors,
answers checked against the warehouse read directly (and pandas)."""

from __future__ import annotations

import io
import json
import urllib.parse

import pandas as pd
import pyarrow.parquet as pq
import pytest

from queries import list_queries
from tests.fixtures.web import get_json, request, served
from warehouse.core import schema
from warehouse.core.anatomy import anatomy
from warehouse.core.ids import case_key


@pytest.fixture(scope="module")
def server(demo_wh, tmp_path_factory):
    exports = tmp_path_factory.mktemp("exports")
    with served(demo_wh, exports) as url:
        yield url, exports


def test_pages_are_served_and_unknown_ones_are_404_pages(server, demo_wh):
    url, _ = server
    status, body, headers = request(url + "/")
    assert status == 200 and b"radgenome-warehouse" in body and headers["content-type"].startswith("text/html")
    case_id = demo_wh.sql("SELECT min(case_id) AS c FROM cases")["c"][0]
    status, body, _ = request(f"{url}/case/{case_key(case_id)}")
    assert status == 200 and b"case.js" in body
    status, _, headers = request(f"{url}/open?case_id={urllib.parse.quote(case_id)}")  # followed to the page
    assert status == 200 and headers["content-type"].startswith("text/html")
    for path in ("/case/nope", "/open?case_id=nope", "/no/such/page", "/static/../pyproject.toml"):
        status, body, headers = request(url + path)
        assert status == 404 and headers["content-type"].startswith("text/html"), path
        assert b"Traceback" not in body and b"Back to the console" in body
    status, body, _ = request(url + "/static/vendor/LICENSES.txt")
    assert status in (200, 404)  # present where `make web` vendored the viewer
    if status == 200:
        assert b"@niivue/niivue" in body and b"BSD 2-Clause" in body


def test_schema_and_queries_describe_themselves(server):
    url, _ = server
    _, tables = get_json(url + "/api/schema")
    assert [t["table"] for t in tables] == list(schema.TABLES)
    cases = next(t for t in tables if t["table"] == "cases")
    assert cases["columns"][0] == {"name": "case_id", "type": "string",
                                   "description": schema.description(schema.TABLES["cases"].field("case_id"))}
    _, queries = get_json(url + "/api/queries")
    assert [q["name"] for q in queries] == [q.name for q in list_queries()]
    mentioning = next(q for q in queries if q["name"] == "sentences_mentioning")
    region = next(p for p in mentioning["params"] if p["name"] == "region")
    assert region["type"] == "region" and region["default"] == "lung" and not region["required"]
    assert any(p["choices"] for q in queries for p in q["params"])  # enums become selects


def test_regions_autocomplete_over_names_and_synonyms(server):
    url, _ = server
    _, hits = get_json(url + "/api/regions?q=left%20lung")
    assert hits[0]["name"] == "left lung" and all("left lung" in h["matched"].lower() for h in hits)
    assert hits[0]["region_id"] == anatomy().get("left lung").region_id
    _, hits = get_json(url + "/api/regions?q=lungs")  # a synonym
    assert "lung" in [h["name"] for h in hits]


def test_sql_pages_equal_pandas(server, demo_wh):
    url, _ = server
    sql = "SELECT case_id, region_id, text FROM sentences ORDER BY case_id, ordinal, sentence_id"
    every = pd.read_parquet(demo_wh.path / "tables" / "sentences.parquet").sort_values(
        ["case_id", "ordinal", "sentence_id"])[["case_id", "region_id", "text"]]
    rows, page = [], 0
    while True:
        status, data = get_json(url + "/api/sql", {"sql": sql, "page": page, "page_size": 7})
        assert status == 200 and data["columns"] == ["case_id", "region_id", "text"]
        rows += data["rows"]
        if not data["more"]:
            break
        page += 1
    assert page > 2
    want = [[c, None if pd.isna(r) else int(r), t] for c, r, t in every.itertuples(index=False)]
    assert rows == want


def test_a_named_query_runs_from_its_form(server, demo_wh):
    url, _ = server
    status, data = get_json(url + "/api/query/sentences_mentioning", {"params": {"term": "bronch", "region": ""}})
    want = demo_wh.query("sentences_mentioning", term="bronch")
    assert status == 200 and data["columns"] == want.columns and len(data["rows"]) == want.height > 0


@pytest.mark.parametrize(("path", "body", "status", "text"), [
    ("/api/sql", {"sql": "DROP TABLE cases"}, 400, "read-only"),
    ("/api/sql", {"sql": "SELEC 1"}, 400, "does not parse"),
    ("/api/sql", {"sql": "SELECT $x"}, 400, "$x"),
    ("/api/sql", {"sql": "SELECT * FROM read_csv('/etc/passwd')"}, 400, ""),
    ("/api/sql", {}, 400, "'sql'"),
    ("/api/query/sentences_mentioning", {"params": {"term": "x", "region": "lunk"}}, 400, "did you mean"),
    ("/api/query/no_such_query", {}, 400, "no_such_query"),
    ("/api/case/nope", None, 404, "no case"),
    ("/api/case/x/mask/1.nii.gz", None, 404, "no case"),
    ("/api/nothing", None, 404, "no such page"),
    ("/api/export", {"sql": "SELECT case_id FROM cases", "margin_mm": "wide"}, 400, "'margin_mm'"),
    ("/api/download?sql=SELECT%201&params=%7Bnope", None, 400, "'params'"),
])
def test_errors_are_one_line(server, path, body, status, text):
    url, _ = server
    got, data = get_json(url + path, body)
    assert got == status and text in data["error"] and "\n" not in data["error"]
    assert "Traceback" not in data["error"]


def test_downloads_are_the_whole_result(server, demo_wh):
    url, _ = server
    sql = "SELECT case_id, age, sex FROM cases ORDER BY case_id"
    q = urllib.parse.urlencode({"sql": sql, "params": "{}"})
    status, body, headers = request(f"{url}/api/download?{q}&format=csv")
    assert status == 200 and "attachment" in headers["content-disposition"]
    want = demo_wh.sql(sql).to_pandas()
    pd.testing.assert_frame_equal(pd.read_csv(io.BytesIO(body)), want, check_dtype=False)
    status, body, _ = request(f"{url}/api/download?{q}&format=parquet")
    assert pq.read_table(io.BytesIO(body)).to_pandas().equals(want)
    q = urllib.parse.urlencode({"query": "sentences_mentioning", "params": json.dumps({"term": "bronch"})})
    status, body, _ = request(f"{url}/api/download?{q}&format=csv")
    assert len(pd.read_csv(io.BytesIO(body))) == demo_wh.query("sentences_mentioning", term="bronch").height


def test_cohort_export_counts_then_writes_inside_the_exports_folder(server, demo_wh):
    url, exports = server
    body = {"sql": "SELECT case_id FROM cases", "name": "../../outside", "images": True, "masks": "heart",
            "dry_run": True}
    status, dry = get_json(url + "/api/export", body)
    assert status == 200 and dry["dry_run"] and dry["cases"] == 3 and not any(exports.iterdir())
    status, real = get_json(url + "/api/export", {**body, "dry_run": False})
    assert status == 200 and (real["cases"], real["files"]) == (dry["cases"], dry["files"])
    written = [p for p in exports.iterdir()]
    assert len(written) == 1 and written[0].parent == exports and (written[0] / "manifest.json").is_file()
    status, again = get_json(url + "/api/export", {**body, "dry_run": False})
    assert status == 400 and "not empty" in again["error"]
    status, bad = get_json(url + "/api/export", {**body, "format": "tiff"})
    assert status == 400 and "unknown export format" in bad["error"]


def test_the_real_release_serves_its_tables(real_warehouse, tmp_path):
    from warehouse import Warehouse

    with Warehouse.open(real_warehouse) as wh, served(wh, tmp_path) as url:
        status, data = get_json(url + "/api/query/top_abnormalities", {"params": {}})
        want = wh.query("top_abnormalities")
        assert status == 200 and len(data["rows"]) == min(want.height, 100) and data["columns"] == want.columns
        case_id = wh.sql("SELECT min(case_id) AS c FROM sentences")["c"][0]
        status, info = get_json(f"{url}/api/case/{case_key(case_id)}")
        assert status == 200 and len(info["sentences"]) == wh.sql(
            "SELECT count(*) AS n FROM sentences WHERE case_id = $c", {"c": case_id})["n"][0]


def test_a_bucket_root_serves_its_cases(bucket, capsys, tmp_path):
    from tests.fixtures.cli import run
    from warehouse import Warehouse

    code, _, err = run(capsys, "demo", bucket, "--cases", "2", "--workers", "1")
    assert code == 0, err
    with Warehouse.open(bucket) as wh, served(wh, tmp_path) as url:
        case_id = wh.sql("SELECT min(case_id) AS c FROM cases")["c"][0]
        status, info = get_json(f"{url}/api/case/{case_key(case_id)}")
        assert status == 200 and info["has_image"] and info["regions"]
        region = info["regions"][0]["region_id"]
        status, body, _ = request(f"{url}/api/case/{case_key(case_id)}/mask/{region}.nii.gz")
        assert status == 200 and body[:2] == b"\x1f\x8b"  # gzip
        status, body, _ = request(f"{url}/api/case/{case_key(case_id)}/slice/axial/3.png")
        assert status == 200 and body[:4] == b"\x89PNG"


def test_terms_and_labels_are_offered_in_the_forms(server, demo_wh):
    url, _ = server
    _, hits = get_json(url + "/api/terms?q=nodul")
    terms = demo_wh.sql("SELECT term, synonyms FROM finding_terms").rows()
    want = {t for t, syn in terms if "nodul" in t or any("nodul" in x.lower() for x in syn or [])}
    assert set(hits) <= want and len(hits) == min(20, len(want))
    named = sum("nodul" in t for t in hits)
    assert named >= 2 and all("nodul" in t for t in hits[:named])  # terms named so first, then by synonym
    _, queries = get_json(url + "/api/queries")
    label = next(p for q in queries if q["name"] == "cohort_by_label" for p in q["params"] if p["name"] == "label")
    assert label["type"] == "ct_rate_label" and label["choices"] == list(schema.CT_RATE_LABELS)
