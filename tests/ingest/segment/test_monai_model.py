"""The `monai:PATH` provider's plumbing, with small networks the tests write (no weights can be downloaded)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ingest.images import read_ct
from ingest.segment import make_segmenter
from ingest.segment.monai_model import MonaiSegmenter
from tests.fixtures.folder_data import ct_path, torchscript_model
from warehouse.core.errors import IngestError

pytest.importorskip("torch")
pytest.importorskip("monai")

FAST = {"orientation": "RAS", "spacing": [3.0, 3.0, 3.0], "roi_size": [32, 32, 32], "sw_batch_size": 2}


@pytest.fixture(scope="module")
def crop(shared_data):
    return read_ct(ct_path(shared_data, "chest_crop"))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))


def test_random_unet_labels_land_on_the_ct_grid(tmp_path, crop):
    from warehouse.store.arrays import ArrayStore

    model = torchscript_model(tmp_path / "unet.ts", **FAST)
    seg = make_segmenter(f"monai:{model}").segment("chest_crop.nii.gz", crop)
    assert seg.mask_source == "monai" and seg.classes == {1: "left lung", 2: "lung_upper_lobe_right"}
    assert seg.label_map.shape == crop.hu.shape
    assert set(np.unique(seg.label_map)) <= {0, 1, 2} and len(np.unique(seg.label_map)) >= 2
    store = ArrayStore(tmp_path / "arrays.zarr")
    store.write_image("c", crop.hu, crop.affine)
    rows = store.write_label_map("c", seg.label_map, seg.classes, crop.affine, mask_source="monai")
    assert {r["mask_source"] for r in rows} == {"monai"}
    mask, affine = store.region_mask("c", "left lung")
    np.testing.assert_array_equal(mask, seg.label_map == 1)
    np.testing.assert_allclose(affine, crop.affine)


def test_geometry_is_exact_when_only_the_orientation_changes(tmp_path, crop):
    model = torchscript_model(tmp_path / "air.ts", kind="air", orientation="RAS", roi_size=[48, 48, 48])
    seg = MonaiSegmenter(model).segment("c", crop)  # LPS stored -> RAS for the model -> back
    np.testing.assert_array_equal(seg.label_map == 1, crop.hu < -500)
    assert seg.classes == {1: "lung"}


def test_resampled_prediction_comes_back_onto_the_grid(tmp_path, crop):
    model = torchscript_model(tmp_path / "air.ts", kind="air", **FAST)
    seg = MonaiSegmenter(model).segment("c", crop)  # 1.5 mm -> 3 mm -> 1.5 mm
    assert seg.label_map.shape == crop.hu.shape
    assert dice(seg.label_map == 1, crop.hu < -500) > 0.9


def test_bundle_folder(tmp_path, crop):
    import torch
    from monai.networks.nets import UNet

    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "models").mkdir()
    (bundle / "configs" / "metadata.json").write_text(json.dumps({"network_data_format": {"outputs": {"pred": {
        "channel_def": {"0": "background", "1": "heart", "2": "trachea"}}}}}))
    net = {"_target_": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 3, "channels": [4, 8],
           "strides": [2], "num_res_units": 0}
    (bundle / "configs" / "inference.json").write_text(json.dumps({
        "pixdim": [3.0, 3.0, 3.0],
        "network_def": net,
        "preprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "LoadImaged", "keys": "image"},
            {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
            {"_target_": "Spacingd", "keys": "image", "pixdim": "@pixdim", "mode": "bilinear"},
            {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": -57, "a_max": 164, "b_min": 0.0,
             "b_max": 1.0, "clip": True}]},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [32, 32, 32], "sw_batch_size": 1,
                    "overlap": 0.5},
    }))
    torch.manual_seed(1)
    weights = UNet(spatial_dims=3, in_channels=1, out_channels=3, channels=(4, 8), strides=(2,), num_res_units=0)
    torch.save(weights.state_dict(), bundle / "models" / "model.pt")
    provider = MonaiSegmenter(bundle)
    cfg = provider.config
    assert cfg.labels == {1: "heart", 2: "trachea"} and cfg.spacing == (3.0, 3.0, 3.0)
    assert cfg.roi_size == (32, 32, 32) and cfg.overlap == 0.5 and cfg.intensity["a_min"] == -57
    seg = provider.segment("c", crop)
    assert seg.label_map.shape == crop.hu.shape and set(np.unique(seg.label_map)) <= {0, 1, 2}


def test_bad_models_are_named(tmp_path):
    (tmp_path / "m.ts").write_bytes(b"")
    with pytest.raises(IngestError, match="label-map JSON"):
        MonaiSegmenter(tmp_path / "m.ts")
    with pytest.raises(IngestError, match="not a MONAI bundle"):
        MonaiSegmenter(tmp_path)
    with pytest.raises(IngestError, match="does not exist"):
        MonaiSegmenter(tmp_path / "nothing.ts")


def test_unknown_label_is_a_problem_not_a_failure(tmp_path, crop):
    model = torchscript_model(tmp_path / "u.ts", labels={"1": "left lung", "2": "flux capacitor"}, **FAST)
    seg = MonaiSegmenter(model).segment("c", crop)
    assert seg.classes == {1: "left lung"} and 2 not in np.unique(seg.label_map)
    assert "flux capacitor" in seg.problems[0]["error"]


def test_torch_is_imported_lazily():
    code = ("import sys, ingest.segment.monai_model, ingest.segment; "
            "ingest.segment.make_segmenter('builtin'); "
            "print('torch' in sys.modules, 'monai' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
