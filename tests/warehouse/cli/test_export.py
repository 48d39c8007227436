"""`radgenome export` on the demo warehouse: dry run, named queries, and a MONAI pipeline over the bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ingest.runner import build
from ingest.sources.demo import DemoSource
from tests.fixtures.cli import export_command
from warehouse import Warehouse
from warehouse.cli.export import split_regions
from warehouse.core import schema
from warehouse.core.errors import WarehouseError
from warehouse.exports.bundle import export_cohort


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    build(DemoSource(n=2, seed=1), root, runner="local", progress=False)
    return root


@pytest.fixture(scope="module")
def cli():
    return export_command()


def _count(out: str, what: str) -> int:
    return int(next(line.split(":")[1].split()[0] for line in out.splitlines() if line.startswith(what)))


def test_dry_run_prints_what_the_export_then_writes(cli, root, tmp_path):
    args = ["--warehouse", root, "--sql", "SELECT case_id FROM cases", "--images", "--masks",
            "left lung, right lung", "--crop", "lung", "--margin-mm", "5", tmp_path / "out"]
    dry = cli(*args, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert list(tmp_path.iterdir()) == []
    real = cli(*args)
    assert real.exit_code == 0, real.output
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    release = len(list((tmp_path / "out" / "radgenome").rglob("*.csv")))
    assert release > 0
    # manifest, README, croissant.json, every table x 2, datalist, reports; 2 images, 2 x 2 masks; released CSVs
    tables = 2 * len(schema.TABLES)
    assert _count(dry.output, "cases") == 2
    assert _count(dry.output, "files") == len(files) == 5 + tables + 2 + 4 + release
    assert _count(dry.output, "bytes") >= sum(p.stat().st_size for p in files)
    again = cli(*args)
    assert again.exit_code != 0 and "not empty" in str(again.exception)
    assert cli(*args, "--overwrite").exit_code == 0


def test_named_query_with_params(cli, root, tmp_path):
    res = cli("-w", root, "--query", "cases_region_volume", "--param", "region=heart", "--param", "min_ml=0.5",
              tmp_path / "q")
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "q" / "manifest.json").read_text())
    assert m["query"]["name"] == "cases_region_volume" and "region_stats" in m["query"]["sql"]
    assert m["query"]["params"]["region"] == "heart" and m["query"]["params"]["min_ml"] == 0.5
    assert m["cases"] == 2


def test_needs_exactly_one_cohort(cli, root, tmp_path):
    res = cli("-w", root, tmp_path / "x")
    assert res.exit_code == 2 and "exactly one of --sql or --query" in res.output
    res = cli("-w", root, "--sql", "SELECT case_id FROM cases", "--masks", "left lng", tmp_path / "x")
    assert isinstance(res.exception, WarehouseError) and "left lung" in str(res.exception)  # near matches
    assert split_regions(" heart ,, left lung ") == ["heart", "left lung"]


def test_a_monai_pipeline_reads_the_bundle(root, tmp_path):
    from monai.data import Dataset, load_decathlon_datalist
    from monai.transforms import Compose, CropForegroundd, EnsureChannelFirstd, LoadImaged

    wh = Warehouse.open(root)
    assert export_cohort(wh, tmp_path / "b", sql="SELECT case_id FROM cases", images=True, masks=["heart"]).cases == 2
    items = load_decathlon_datalist(tmp_path / "b" / "datalist.json")
    pipeline = Compose([LoadImaged(["image", "label"]), EnsureChannelFirstd(["image", "label"]),
                        CropForegroundd(["image", "label"], source_key="label", margin=0)])
    for item, sample in zip(items, Dataset(items, pipeline), strict=True):
        _, mask, _ = wh.region_crop(item["case_id"], "heart", margin_mm=0)
        assert tuple(sample["label"].shape[1:]) == mask.shape
        assert np.array_equal(sample["label"][0].numpy() > 0, mask)
        assert item["text"].startswith(item["findings"])  # no crop region: the whole report
