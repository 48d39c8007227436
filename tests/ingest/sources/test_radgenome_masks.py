"""Real CTs and masks from ../shared/data through the release's extracted-folder mask reader."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pyarrow.parquet as pq
import pytest

from ingest.images import to_lps
from ingest.runner import build
from ingest.sources.radgenome import RadGenomeSource
from ingest.sources.volume_names import parse
from warehouse.core.anatomy import anatomy
from warehouse.store.snapshot import open_snapshot

ABDOMEN, CROP = "valid_1_a_1.nii.gz", "valid_2_a_1.nii.gz"


def _link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


@pytest.fixture(scope="module")
def built(shared_data, tmp_path_factory):
    """abdomen_small (117 TotalSegmentator masks) and chest_crop (with chest_cta's heart: wrong grid)."""
    root = tmp_path_factory.mktemp("masks")
    data = root / "release" / "dataset"
    ct = shared_data / "ct"
    cases = ((ABDOMEN, ct / "abdomen_small/ct.nii.gz", sorted((ct / "abdomen_small/masks").glob("*"))),
             (CROP, ct / "chest_crop/ct.nii.gz", [ct / "chest_crop/masks/pulmonary_artery.nii.gz",
                                                  ct / "chest_cta/masks/heart.nii.gz"]))
    for case, image, masks in cases:
        vol = parse(case)
        _link(data / vol.radgenome_image_path(), image)
        for m in masks:
            _link(data / vol.mask_folder("anatomy") / m.name, m)
    summary = build(RadGenomeSource(root / "release"), root / "wh", runner="local", progress=False)
    return summary, open_snapshot(root / "wh"), ct


def test_117_totalsegmentator_masks_ingest_as_one_case_and_read_back_bit_exact(built):
    from warehouse.store.arrays import ArrayStore

    _, snap, ct = built
    store = ArrayStore(snap.arrays_path, mode="r")
    structures = [s for s in store.structures(ABDOMEN) if s["mask_source"] == "radgenome"]
    files = sorted((ct / "abdomen_small/masks").glob("*.nii.gz"))
    assert len(files) == 117 and len(structures) == 117
    assert {s["name"] for s in structures} == {f.name[:-7] for f in files}
    image = nib.load(ct / "abdomen_small/ct.nii.gz")
    dag, nonempty = anatomy(), 0
    by_name = {s["name"]: s for s in structures}
    for f in files:
        img = nib.load(f)
        assert np.allclose(img.affine, image.affine) and img.shape == image.shape
        expected = to_lps(np.asanyarray(img.dataobj) != 0, img.affine)[0]
        s = by_name[f.name[:-7]]
        assert s["voxels"] == int(expected.sum()), f.name
        if s["voxels"]:
            nonempty += 1
            got, _ = store.region_mask(ABDOMEN, dag.resolve(f.name[:-7]).name, mask_source="radgenome")
            assert np.array_equal(got, expected), f.name
    assert 0 < nonempty < 117, "the sample has empty structures too: recorded with 0 voxels"
    stats = pq.read_table(snap.table_path("region_stats")).to_pylist()
    own = {r["region_id"] for r in stats if r["case_id"] == ABDOMEN}
    assert {dag.resolve(f.name[:-7]).region_id for f in files} <= own
    case = next(c for c in pq.read_table(snap.table_path("cases")).to_pylist() if c["case_id"] == ABDOMEN)
    hu, affine = store.image(ABDOMEN)
    assert case["has_image"] and case["has_masks"] and case["orientation"] == "LPS"
    assert (case["shape_x"], case["shape_y"], case["shape_z"]) == hu.shape
    assert hu.shape == to_lps(np.zeros(image.shape), image.affine)[0].shape
    assert case["spacing_z"] == pytest.approx(3.0, abs=0.01)


def test_a_mask_on_another_grid_is_a_grid_mismatch_row_and_the_rest_is_kept(built):
    from warehouse.store.arrays import ArrayStore

    summary, snap, ct = built
    errors = pq.read_table(snap.table_path("ingest_errors")).to_pylist()
    assert len(errors) == 1, errors
    err = errors[0]
    assert (err["case_id"], err["stage"]) == (CROP, "masks")
    assert err["file"].endswith("seg_valid_2_a_1/heart.nii.gz") and "does not match the image grid" in err["error"]
    assert summary.errors_by_stage == {"masks": 1}
    names = {s["name"] for s in ArrayStore(snap.arrays_path, mode="r").structures(CROP)}
    assert names == {"pulmonary_artery"}
