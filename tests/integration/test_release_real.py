"""The real released files in ../shared/data: exact import, and an export equal to the input."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ingest.runner import build
from ingest.sources.radgenome import RadGenomeSource
from tests import ROOT
from warehouse import Warehouse
from warehouse.core.anatomy import anatomy
from warehouse.exports import export_release
from warehouse.store.snapshot import open_snapshot

RADGENOME_ROWS = {"vqa_abnormality": 40_241, "vqa_location": 24_516, "vqa_presence": 45_962, "vqa_size": 1_232,
                  "case_disorders": 2_000}


def _rows(path: Path) -> Counter:
    with open(path, newline="", encoding="utf-8") as f:
        return Counter(map(tuple, csv.reader(f)))


@pytest.fixture(scope="module")
def real(shared_data, tmp_path_factory):
    """The real files laid out as the releases are (links, not copies), built once."""
    root = tmp_path_factory.mktemp("real")
    links = {root / "release/dataset/radgenome_files": sorted((shared_data / "radgenome").glob("train_*.csv")),
             root / "release/radgenome_validation_regions": sorted(
                 (shared_data / "radgenome_validation_regions").glob("*.csv")),
             root / "ct_rate/dataset/metadata": [shared_data / "ct_rate/validation_metadata.csv"]}
    for folder, files in links.items():
        folder.mkdir(parents=True)
        for f in files:
            (folder / f.name).symlink_to(f)
    summary = build(RadGenomeSource(root / "release", root / "ct_rate"), root / "wh", runner="local",
                    progress=False)
    snap = open_snapshot(root / "wh")
    return root, summary, snap, links


def _table(snap, name: str, columns: list[str] | None = None) -> list[dict]:
    return pq.read_table(snap.table_path(name), columns=columns).to_pylist()


def test_the_five_csvs_import_with_exact_row_counts(real):
    _, summary, snap, _ = real
    counts = Counter(r["type"] for r in _table(snap, "vqa", ["type"]))
    assert {f"vqa_{t}" if t != "disorders" else "case_disorders": n for t, n in counts.items()} == RADGENOME_ROWS
    assert _table(snap, "ingest_errors") == [] and summary.errors_by_stage == {}


def test_every_anatomy_path_resolves(real, shared_data):
    _, _, snap, _ = real
    vqa = _table(snap, "vqa", ["type", "anatomy_path", "region_id"])
    paths = {r["anatomy_path"] for r in vqa if r["type"] != "disorders"}
    released = {p.strip() for p in (shared_data / "vocab/radgenome_anatomy_paths.txt").read_text().splitlines()
                if p.strip() and not p.startswith("#")}
    assert paths == released and len(paths) == 174
    dag = anatomy()
    assert all(r["region_id"] == dag.resolve(r["anatomy_path"]).region_id for r in vqa if r["type"] != "disorders")
    disorders = _table(snap, "case_labels", ["kind", "label"])
    assert sum(r["kind"] == "disorder" for r in disorders) > 2000 and "no findings" not in {r["label"] for r in
                                                                                           disorders}


def test_the_export_equals_the_input_as_multisets_of_rows(real):
    root, _, snap, links = real
    with Warehouse.open(root / "wh") as wh:
        written = export_release(wh, root / "out")
    inputs = {f"dataset/radgenome_files/{f.name}": f for f in links[root / "release/dataset/radgenome_files"]}
    inputs |= {f"radgenome_validation_regions/{f.name}": f
               for f in links[root / "release/radgenome_validation_regions"]}
    inputs["ct_rate/dataset/metadata/validation_metadata.csv"] = links[root / "ct_rate/dataset/metadata"][0]
    assert set(written) == set(inputs)
    for rel, source in inputs.items():
        assert _rows(root / "out" / rel) == _rows(source), rel
    assert sum(written[f"dataset/radgenome_files/train_{k}.csv"] for k in RADGENOME_ROWS) == sum(
        RADGENOME_ROWS.values())


def test_validation_region_files_load(real):
    root, _, snap, links = real
    sentences = [s for s in _table(snap, "sentences") if s["extractor"] == "radgenome-validation-regions"]
    per_top = Counter(s["anatomy_path"] for s in sentences)
    for f in links[root / "release/radgenome_validation_regions"]:
        assert per_top[f.stem] == sum(_rows(f).values()) - 1, f.name
    dag = anatomy()
    assert all(s["region_id"] == dag.get(s["anatomy_path"]).region_id and s["text"] for s in sentences)
    assert len({s["sentence_id"] for s in sentences}) == len(sentences)


def test_ct_rate_metadata_loads_with_both_intercepts(real):
    _, _, snap, _ = real
    cases = {c["case_id"]: c for c in _table(snap, "cases")}
    meta = {k: json.loads(c["metadata_json"]) for k, c in cases.items() if c["metadata_json"]}
    assert len(meta) == 3_039
    assert all(len(m) == 44 for m in meta.values())
    assert Counter(m["RescaleIntercept"] for m in meta.values()) == {"-1024": 2_189, "-8192": 850}
    first = cases["valid_1_a_1.nii.gz"]
    assert (first["age"], first["sex"], first["manufacturer"]) == (36, "M", "Philips")
    assert (first["spacing_x"], first["spacing_y"], first["spacing_z"]) == (0.341796875, 0.341796875, 1.5)
    assert (first["shape_x"], first["shape_y"], first["shape_z"]) == (1024, 1024, 251)
    assert (first["patient_id"], first["scan"], first["reconstruction"], first["split"]) == (
        "valid_1", "a", 1, "validation")
    assert sum(c["age"] is None for c in cases.values() if c["metadata_json"]) == 2, "two rows have no PatientAge"
    assert cases["train_1_a_1.nii.gz"]["source"] == "radgenome" and first["source"] in ("radgenome", "ct_rate")


def _doc_queries() -> dict[str, str]:
    text = (ROOT / "docs" / "release_queries.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", text, re.S)
    return {re.match(r"-- name: (\w+)", b)[1]: b for b in blocks}


def test_the_documented_questions_run_on_the_imported_release(real):
    from warehouse.api import Warehouse

    root, _, _, _ = real
    queries = _doc_queries()
    assert set(queries) == {"effusion_at_least", "commonest_under", "nodules_by_lobe"}
    with Warehouse.open(root / "wh") as wh:
        big = wh.sql(queries["effusion_at_least"], {"split": "train", "min_mm": "20"})
        assert big.height > 0 and big["size_mm"].min() >= 20
        assert all("effusion" in t for t in big["term"]) and big.height == 64  # 13 of them written 'effusion'
        assert wh.sql(queries["effusion_at_least"], {"split": "train", "min_mm": "200"}).height == 0
        top = wh.sql(queries["commonest_under"], {"region": "lung"})
        assert top.height == 10 and top["cases"].to_list() == sorted(top["cases"].to_list(), reverse=True)
        assert wh.sql(queries["commonest_under"], {"region": "lung"}).equals(top), "deterministic"
        lobes = wh.sql(queries["nodules_by_lobe"])
        dag = anatomy()
        assert lobes.height > 0 and all("lung" in dag.ancestors(n) and n.endswith("lobe") for n in lobes["lobe"])
        assert all("nodul" in q.lower() for q in lobes["example"])
