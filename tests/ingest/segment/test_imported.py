"""The `import:DIR` provider: TotalSegmentator and RadGenome mask folders, integer label maps."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from ingest.images import read_ct, to_lps
from ingest.segment import make_segmenter
from ingest.segment.base import region_for_name
from ingest.segment.imported import ImportedMasks, totalsegmentator_classes
from tests.fixtures.folder_data import ct_path
from warehouse.core.anatomy import anatomy
from warehouse.core.errors import GridMismatchError, IngestError


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))


@pytest.fixture(scope="module")
def abdomen(shared_data):
    return read_ct(ct_path(shared_data, "abdomen_small"))


def test_packaged_class_map_is_totalsegmentator_v2(shared_data):
    shipped = totalsegmentator_classes()
    vocab = json.loads((shared_data / "vocab/totalsegmentator_v2_total_classes.json").read_text())
    assert shipped == {int(k): v for k, v in vocab.items()} and len(shipped) == 117
    assert {region_for_name(v) for v in shipped.values()} <= set(anatomy().regions)  # all 117 map onto the DAG


def test_totalsegmentator_folder(shared_data, tmp_path, abdomen):
    (tmp_path / "abdomen_small").symlink_to(shared_data / "ct/abdomen_small/masks", target_is_directory=True)
    seg = make_segmenter(f"import:{tmp_path}").segment("abdomen_small.nii.gz", abdomen)
    assert seg.mask_source == "totalsegmentator" and len(seg.masks) == 117 and not seg.problems
    src = nib.load(shared_data / "ct/abdomen_small/masks/lung_lower_lobe_left.nii.gz")
    np.testing.assert_array_equal(seg.masks["lung_lower_lobe_left"],
                                  to_lps(np.asanyarray(src.dataobj) > 0, src.affine)[0])
    assert seg.masks["lung_middle_lobe_right"].shape == abdomen.hu.shape  # empty masks are kept
    assert "left lung lower lobe" in seg.regions()


def test_label_map_uses_totalsegmentator_ids(shared_data, tmp_path, abdomen):
    (tmp_path / "abdomen_small.nii.gz").symlink_to(shared_data / "ct/abdomen_small/labelmap_totalsegmentator_v2.nii.gz")
    seg = ImportedMasks(tmp_path).segment("abdomen_small.nii.gz", abdomen)
    assert seg.mask_source == "totalsegmentator" and seg.label_map.shape == abdomen.hu.shape
    assert seg.classes[10] == "lung_upper_lobe_left" and len(seg.classes) == 117
    checked = 0
    for value, name in seg.classes.items():  # the ids agree with the per-structure masks TotalSegmentator wrote
        f = nib.load(shared_data / f"ct/abdomen_small/masks/{name}.nii.gz")
        mask = to_lps(np.asanyarray(f.dataobj) > 0, f.affine)[0]
        if mask.sum() >= 500:
            assert dice(seg.label_map == value, mask) > 0.75, name  # two separate runs: close, not equal
            checked += 1
    assert checked >= 15


def test_store_builds_parents_as_unions(shared_data, tmp_path, abdomen):
    from warehouse.store.arrays import ArrayStore

    (tmp_path / "m" / "abdomen_small").mkdir(parents=True)
    for f in (shared_data / "ct/abdomen_small/masks").glob("lung_*"):
        (tmp_path / "m" / "abdomen_small" / f.name).symlink_to(f)
    seg = ImportedMasks(tmp_path / "m").segment("abdomen_small.nii.gz", abdomen)
    store = ArrayStore(tmp_path / "arrays.zarr")
    store.write_image("abdomen_small.nii.gz", abdomen.hu, abdomen.affine)
    rows = store.write_masks("abdomen_small.nii.gz", seg.masks, abdomen.affine, mask_source=seg.mask_source,
                             resolve=lambda n: anatomy().get(region_for_name(n)))
    by = {anatomy().get(r["region_id"]).name: r for r in rows}
    lobes = sum(int(m.sum()) for m in seg.masks.values())
    assert by["lung"]["voxels"] == lobes and by["lung"]["volume_ml"] == pytest.approx(lobes * 0.027)
    left = int((seg.masks["lung_upper_lobe_left"] | seg.masks["lung_lower_lobe_left"]).sum())
    assert by["left lung"]["voxels"] == left and by["lung lower lobe"]["voxels"] > 0
    assert -900 < by["lung"]["hu_mean"] < -600


def test_radgenome_folder_names_and_unknown_names(tmp_path, abdomen):
    folder = tmp_path / "seg_abdomen_small"
    folder.mkdir()
    ones = np.zeros(abdomen.original_shape, np.uint8)
    ones[10:20, 10:20, 5:9] = 1
    for name in ("left lung", "trachea and bronchie", "not a structure"):
        nib.save(nib.Nifti1Image(ones, abdomen.original_affine), folder / f"{name}.nii.gz")
    seg = ImportedMasks(tmp_path).segment("abdomen_small.nii.gz", abdomen)
    assert seg.mask_source == "radgenome" and set(seg.masks) == {"left lung", "trachea and bronchie"}
    assert seg.masks["left lung"].sum() == 400
    [problem] = seg.problems
    assert "not a structure" in problem["error"] and problem["file"].endswith("not a structure.nii.gz")


def test_own_class_map_and_unknown_values(tmp_path, abdomen):
    labels = np.zeros(abdomen.original_shape, np.int16)
    labels[:5], labels[5:8], labels[8:9] = 1, 2, 9
    nib.save(nib.Nifti1Image(labels, abdomen.original_affine), tmp_path / "abdomen_small.nii.gz")
    (tmp_path / "abdomen_small.json").write_text(json.dumps({"labels": {"1": "heart", "2": "left lung"}}))
    seg = ImportedMasks(tmp_path).segment("abdomen_small.nii.gz", abdomen)
    assert seg.mask_source == "imported" and seg.classes == {1: "heart", 2: "left lung"}
    assert set(np.unique(seg.label_map)) == {0, 1, 2}
    assert "[9]" in seg.problems[0]["error"]


def test_absent_cases_and_grid_mismatch(shared_data, tmp_path):
    (tmp_path / "chest_crop").symlink_to(shared_data / "ct/chest_cta/masks", target_is_directory=True)
    provider = ImportedMasks(tmp_path)
    assert not provider.applies("lung1.nii.gz") and provider.applies("chest_crop.nii.gz")
    with pytest.raises(GridMismatchError) as e:  # the full scan's heart on the crop: a real mismatch
        provider.segment("chest_crop.nii.gz", read_ct(ct_path(shared_data, "chest_crop")))
    assert e.value.file.endswith("heart.nii.gz")
    with pytest.raises(IngestError, match="does not exist"):
        ImportedMasks(tmp_path / "missing")
