"""An exported cohort, re-ingested with the folder source, gives the same cases, masks and sentences."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ingest.runner import build
from tests.fixtures.cohort_source import SENTENCES, affine_of, volumes
from warehouse import Warehouse
from warehouse.exports.bundle import export_cohort

if importlib.util.find_spec("ingest.sources.folder") is None:
    pytest.skip("ingest.sources.folder (`radgenome ingest folder`) is not in this tree", allow_module_level=True)

from ingest.sources.folder import FolderSource  # noqa: E402

N = 3
STRUCTURES = ("right lung", "left lung upper lobe", "left lung lower lobe", "heart", "trachea and bronchie")
REGIONS = STRUCTURES + ("lung", "left lung")  # parents: unions through the DAG


def _write_inputs(folder: Path) -> tuple[Path, Path, Path]:
    """CTs, per-structure mask folders and a CT-RATE reports CSV, as a hospital would hand them over."""
    images, masks, reports = folder / "images", folder / "masks", folder / "reports.csv"
    images.mkdir(parents=True)
    with open(reports, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["VolumeName", "Findings_EN", "Impressions_EN"])
        for i in range(N):
            stem = f"valid_{i + 1}_a_1"
            hu, structures = volumes(i)
            nib.save(nib.Nifti1Image(hu, affine_of(i)), images / f"{stem}.nii.gz")
            (masks / stem).mkdir(parents=True)
            for name, m in structures.items():
                nib.save(nib.Nifti1Image(m.astype(np.uint8), affine_of(i)), masks / stem / f"{name}.nii.gz")
            w.writerow([f"{stem}.nii.gz", " ".join(t.format(n=4 + i) for _, t in SENTENCES), "Small nodule."])
    return images, masks, reports


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory) -> tuple[Warehouse, Warehouse, Path]:
    tmp = tmp_path_factory.mktemp("reingest")
    images, masks, reports = _write_inputs(tmp / "input")
    build(FolderSource(images, reports, [f"import:{masks}"]), tmp / "w1", runner="local", progress=False)
    w1 = Warehouse.open(tmp / "w1")
    out = tmp / "bundle"
    export_cohort(w1, out, sql="SELECT case_id FROM cases", images=True, masks=STRUCTURES)
    build(FolderSource(out / "images", out / "reports.csv", [f"import:{out / 'masks'}"]), tmp / "w2",
          runner="local", progress=False)
    return w1, Warehouse.open(tmp / "w2"), out


def test_same_cases_and_grids(warehouses):
    w1, w2, _ = warehouses
    cols = "case_id, split, shape_x, shape_y, shape_z, spacing_x, spacing_y, spacing_z, orientation, has_masks"
    first, second = (w.sql(f"SELECT {cols} FROM cases ORDER BY case_id") for w in (w1, w2))
    assert first.height == N and first.equals(second)
    assert w2.sql("SELECT count(*) FROM ingest_errors").item() == 0
    for case_id in first["case_id"]:
        (hu1, a1), (hu2, a2) = w1.image(case_id), w2.image(case_id)
        assert np.array_equal(hu1, hu2)
        np.testing.assert_allclose(a1, a2, atol=1e-4)


def test_masks_are_bit_exact(warehouses):
    w1, w2, _ = warehouses
    for case_id in w1.sql("SELECT case_id FROM cases")["case_id"]:
        for region in REGIONS:
            m1, m2 = w1.region_mask(case_id, region)[0], w2.region_mask(case_id, region)[0]
            assert m1.shape == m2.shape and np.array_equal(m1, m2), (case_id, region)
    stats = "case_id, region_id, voxels, bbox_min_x, bbox_max_x, bbox_min_z, bbox_max_z, hu_mean"
    q = f"SELECT {stats} FROM region_stats ORDER BY case_id, region_id"
    assert w1.sql(q).height > 0 and w1.sql(q).equals(w2.sql(q))


def test_same_sentences(warehouses):
    w1, w2, _ = warehouses
    q = "SELECT case_id, region_id, anatomy_path, ordinal, text, is_abnormal FROM sentences ORDER BY ALL"
    first, second = w1.sql(q), w2.sql(q)
    if first.height == 0:
        pytest.skip("report structuring (ingest.structure) produced no sentences in this tree")
    assert first.equals(second)
    assert first.filter(first["text"].str.contains("nodule")).height >= N
