"""Warehouses the web tests serve: the synthetic demo (CTs, masks, grounded reports) and real CTs."""

from __future__ import annotations

import pytest

from ingest.runner import build
from ingest.sources.demo import DemoSource
from ingest.sources.folder import FolderSource
from tests.fixtures.folder_data import image_folder, mask_folder, reports_csv
from warehouse import Warehouse


@pytest.fixture(scope="package")
def demo_wh(tmp_path_factory):
    root = tmp_path_factory.mktemp("web") / "wh"
    build(DemoSource(n=3), root, runner="local", progress=False)
    with Warehouse.open(root) as wh:
        yield wh


@pytest.fixture(scope="package")
def real_ct_wh(shared_data, tmp_path_factory):
    """abdomen_small (a real CT with TotalSegmentator's masks) and lung1 (a real CT and a lesion), with real
    report texts, built the way `radgenome ingest folder --masks import:DIR` builds them."""
    tmp = tmp_path_factory.mktemp("web_real")
    names = ("abdomen_small", "lung1")
    images, masks = image_folder(shared_data, tmp, names=names), mask_folder(shared_data, tmp)
    reports = reports_csv(shared_data, tmp / "reports.csv", [f"{n}.nii.gz" for n in names])
    build(FolderSource(images, reports, [f"import:{masks}"]), tmp / "wh", runner="local", progress=False)
    with Warehouse.open(tmp / "wh") as wh:
        yield wh
