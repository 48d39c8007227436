"""Croissant metadata: mlcroissant validates it and reads every record set back with the warehouse's rows."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import mlcroissant as mlc
import numpy as np
import pytest

import tests.fixtures.query_fixture as fx
from ingest.runner import build
from ingest.sources.demo import DemoSource
from tests.fixtures.cli import run
from warehouse import Warehouse
from warehouse.core import schema
from warehouse.exports.bundle import export_cohort
from warehouse.exports.croissant import NOT_STATED, CroissantError, croissant_metadata, export_croissant
from warehouse.store.objects import ObjectRoot
from warehouse.store.remote import read_commit

# mlcroissant's own dependencies' deprecations (rdflib, pandas), nothing of this project
pytestmark = [pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated"),
              pytest.mark.filterwarnings("ignore:The inplace keyword")]
RAI_KEYS = ("rai:dataCollection", "rai:personalSensitiveInformation", "rai:dataBiases", "rai:dataLimitations",
            "rai:dataUseCases", "rai:annotatorDemographics", "rai:dataReleaseMaintenancePlan")


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "wh"
    build(DemoSource(n=3), root, runner="local", progress=False)
    return root


@pytest.fixture(scope="module")
def fixture_wh(tmp_path_factory):
    yield from fx.opened(tmp_path_factory)


def _norm(v):
    """mlcroissant's values (bytes for text, numpy scalars, lists) as the warehouse's Python values."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list | tuple | np.ndarray):
        return tuple(_norm(x) for x in v)
    return v


def _load(path: Path) -> mlc.Dataset:
    dataset = mlc.Dataset(jsonld=path)  # raises mlc.ValidationError on errors
    issues = dataset.metadata.ctx.issues
    assert not issues.errors and not issues.warnings, issues.report()
    return dataset


def _check(path: Path, wh: Warehouse, case_ids: list[str] | None = None, skip: tuple[str, ...] = ()) -> dict:
    """croissant.json at `path` validates, its sha256s are the files', every record set holds the rows of
    `wh.table` (the cohort's rows for case tables when `case_ids` is given). Returns the JSON-LD."""
    dataset = _load(path)
    jsonld = json.loads(path.read_text())
    files = {f["@id"]: f for f in jsonld["distribution"]}
    assert set(files) == {f"tables/{t}.parquet" for t in schema.TABLES}
    for f in files.values():
        assert f["encodingFormat"] == "application/x-parquet"
        assert f["sha256"] == hashlib.sha256((path.parent / f["contentUrl"]).read_bytes()).hexdigest()
    assert [rs.id for rs in dataset.metadata.record_sets] == list(schema.TABLES)
    for name in schema.TABLES:
        if name in skip:
            continue
        expected = wh.table(name, None if case_ids is None or name in schema.REFERENCE_TABLES else case_ids)
        want = Counter(tuple(_norm(r[c]) for c in expected.column_names) for r in expected.to_pylist())
        got = Counter(tuple(_norm(r[f"{name}/{c}"]) for c in expected.column_names)
                      for r in dataset.records(record_set=name))
        assert got == want, name
    return jsonld


def _check_descriptions_and_terms(jsonld: dict) -> None:
    for rs in jsonld["recordSet"]:
        table = schema.TABLES[rs["@id"]]
        assert rs["description"] == schema.description(table)
        assert [f["name"] for f in rs["field"]] == table.names
        for f in rs["field"]:
            assert f["description"] == schema.description(table.field(f["name"])) != ""
    assert {x["name"] for x in jsonld["license"]} == {"RadGenome-ChestCT: CC-BY-4.0", "CT-RATE: CC-BY-NC-SA-4.0"}
    assert "RadGenome-Chest CT" in jsonld["citeAs"] and "2404.16754" in jsonld["citeAs"]
    assert jsonld["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    for key in RAI_KEYS:
        assert jsonld[key], key
    assert NOT_STATED in json.dumps(jsonld["rai:annotatorDemographics"])


def test_a_snapshot_exports_with_metadata_mlcroissant_reads_back(demo_root, tmp_path):
    with Warehouse.open(demo_root) as wh:
        path = export_croissant(wh, tmp_path / "pub")
        jsonld = _check(path, wh)
        snapshot_file = wh.path / "tables" / "cases.parquet"
    assert path == tmp_path / "pub" / "croissant.json"
    assert (tmp_path / "pub" / "tables" / "cases.parquet").read_bytes() == snapshot_file.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["pub"]  # no stage left
    _check_descriptions_and_terms(jsonld)
    types = {f["@id"]: f["dataType"] for rs in jsonld["recordSet"] for f in rs["field"]}
    assert types["cases/age"] == "cr:Int16" and types["cases/case_id"] == "sc:Text"
    assert types["cases/has_image"] == "sc:Boolean" and types["region_stats/volume_ml"] == "cr:Float64"
    repeated = {f["@id"] for rs in jsonld["recordSet"] for f in rs["field"] if f.get("repeated")}
    assert repeated == {f"{t}/{f.name}" for t, s in schema.TABLES.items() for f in s if "list" in str(f.type)}


def test_hand_made_rows_with_nulls_and_lists_read_back(fixture_wh, tmp_path):
    _check(export_croissant(fixture_wh, tmp_path / "pub"), fixture_wh)


def test_every_cohort_bundle_carries_croissant_for_its_tables(demo_root, tmp_path):
    with Warehouse.open(demo_root) as wh:
        case_ids = wh.sql("SELECT case_id FROM cases ORDER BY case_id LIMIT 2")["case_id"].to_list()
        export_cohort(wh, tmp_path / "cohort", sql="SELECT case_id FROM cases ORDER BY case_id LIMIT 2")
        jsonld = _check(tmp_path / "cohort" / "croissant.json", wh, case_ids)
    assert "Cohort export of 2 cases" in jsonld["description"]
    manifest = json.loads((tmp_path / "cohort" / "manifest.json").read_text())
    assert "croissant.json" in manifest["files"]


def test_export_croissant_command(demo_root, tmp_path, capsys):
    code, out, err = run(capsys, "export-croissant", "-w", demo_root, tmp_path / "pub")
    assert code == 0, err
    assert str(tmp_path / "pub" / "croissant.json") in out
    _load(tmp_path / "pub" / "croissant.json")
    code, _, err = run(capsys, "export-croissant", "-w", demo_root, tmp_path / "pub")  # not empty: refused
    assert code != 0 and len(err.strip().splitlines()) == 1 and "not an empty folder" in err
    code, _, err = run(capsys, "export-croissant", "-w", tmp_path / "nowhere", tmp_path / "other")
    assert code != 0 and len(err.strip().splitlines()) == 1 and not (tmp_path / "other").exists()


def test_a_bucket_root_publishes_its_own_verified_files(bucket, capsys, tmp_path):
    code, _, err = run(capsys, "demo", bucket, "--cases", "2", "--workers", "1")
    assert code == 0, err
    with Warehouse.open(bucket) as wh:
        path = export_croissant(wh, tmp_path / "pub")
        _check(path, wh)
        committed = read_commit(ObjectRoot(bucket), wh.snapshot_id)["files"]
    for table in schema.TABLES:  # the snapshot's own bytes, as its commit records them, not a rewrite
        digest = hashlib.sha256((tmp_path / "pub" / "tables" / f"{table}.parquet").read_bytes()).hexdigest()
        assert digest == committed[f"tables/{table}.parquet"]["sha256"], table


def test_a_folder_without_tables_is_refused(demo_root, tmp_path):
    with Warehouse.open(demo_root) as wh, pytest.raises(CroissantError, match="holds no table"):
        croissant_metadata(wh, tmp_path)


@pytest.mark.slow
def test_real_release(real_warehouse, tmp_path):
    """The real sample: a cohort bundle read back whole, and the whole snapshot's metadata (its 114K VQA rows,
    20 s of mlcroissant's reading, left to the cohort)."""
    with Warehouse.open(real_warehouse) as wh:
        sql = "SELECT case_id FROM cases WHERE case_id IN (SELECT case_id FROM vqa) ORDER BY case_id LIMIT 100"
        case_ids = wh.sql(sql)["case_id"].to_list()
        export_cohort(wh, tmp_path / "cohort", sql=sql)
        _check(tmp_path / "cohort" / "croissant.json", wh, case_ids)
        jsonld = _check(export_croissant(wh, tmp_path / "pub"), wh, skip=("vqa",))
    _check_descriptions_and_terms(jsonld)
