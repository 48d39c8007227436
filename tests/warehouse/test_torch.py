"""`warehouse.torch`: region crops from the Zarr store as tensors, worker-safe, cacheable, MONAI-composable."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.data import MetaTensor, PersistentDataset
from monai.data.utils import pickle_hashing
from monai.transforms import Compose, ScaleIntensityRanged

from ingest.runner import build
from ingest.sources.demo import DemoSource
from warehouse import Warehouse
from warehouse.core.grid import shift_affine
from warehouse.torch import CropReader, LoadRegionCropd, RegionDataset, cohort_items, fit

ALL = "SELECT case_id FROM cases"
SIZE = (48, 40, 24)


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Warehouse:
    root = tmp_path_factory.mktemp("demo")
    build(DemoSource(n=3, seed=0), root, runner="local", progress=False)
    return Warehouse.open(root)


def test_samples_are_the_warehouse_crops(wh):
    ds = RegionDataset(wh, "left lung", sql=ALL, margin_mm=8)
    assert len(ds) == 3 and ds.notes == []
    for i, item in enumerate(ds.items):
        s = ds[i]
        hu, mask, affine = wh.region_crop(item["case_id"], "left lung", margin_mm=8)
        assert s["image"].dtype == torch.float32 and s["image"].shape == (1, *hu.shape)
        assert np.array_equal(s["image"][0].numpy(), hu) and np.array_equal(s["mask"][0].numpy(), mask)
        assert np.array_equal(s["affine"].numpy(), affine)
        assert s["case_id"] == item["case_id"] and s["region"] == "left lung"
        assert s["text"] == item["text"]
        torch.testing.assert_close(ds[i]["image"], s["image"])  # deterministic


def test_text_is_the_regions_grounded_sentences(wh):
    items, _ = cohort_items(wh, "lung", sql=ALL)
    sentences = wh.sql("""SELECT s.case_id, s.text FROM sentences s
                          JOIN anatomy_closure c ON c.descendant_id = s.region_id
                          JOIN anatomy a ON a.region_id = c.ancestor_id WHERE a.name = 'lung'""")
    for item in items:
        mine = sentences.filter(sentences["case_id"] == item["case_id"])["text"].to_list()
        assert mine and all(t in item["text"] for t in mine)


def _world_to_voxel(affine: np.ndarray, world: np.ndarray) -> np.ndarray:
    return np.linalg.solve(affine, np.append(world, 1.0))[:3]


def test_pad_keeps_world_coordinates(wh):
    ds = RegionDataset(wh, "heart", sql=ALL, size=SIZE, resize="pad")
    rng = np.random.default_rng(0)
    for i, item in enumerate(ds.items):
        s = ds[i]
        hu, mask, affine = wh.region_crop(item["case_id"], "heart", margin_mm=10)
        assert s["image"].shape == (1, *SIZE) and s["mask"].shape == (1, *SIZE)
        assert int(s["mask"].sum()) == int(mask[tuple(_inside(mask.shape, SIZE))].sum())
        for v in rng.integers(0, SIZE, size=(50, 3)):
            src = np.rint(_world_to_voxel(affine, (s["affine"].numpy() @ np.append(v, 1.0))[:3])).astype(int)
            inside = all(0 <= a < n for a, n in zip(src, hu.shape, strict=True))
            assert float(s["image"][0][tuple(v)]) == (float(hu[tuple(src)]) if inside else -1024.0)


def _inside(shape: tuple[int, ...], size: tuple[int, ...]) -> list[slice]:
    """The part of a crop a centred pad-or-crop to `size` keeps."""
    return [slice(max((n - t) // 2, 0), max((n - t) // 2, 0) + min(n, t)) for n, t in zip(shape, size, strict=True)]


def test_resample_fills_the_same_extent():
    hu = np.arange(10 * 8 * 6, dtype=np.int16).reshape(10, 8, 6)
    mask = np.zeros(hu.shape, bool)
    mask[2:6, 2:5, 1:4] = True
    affine = np.diag([-0.8, -0.9, 2.5, 1.0])
    affine[:3, 3] = (10, 20, -30)
    img, msk, aff = fit(hu, mask, affine, (20, 4, 6), "resample")
    assert img.shape == msk.shape == (1, 20, 4, 6) and set(msk.unique().tolist()) == {0, 1}
    corners_in = [affine @ np.array([x, y, z, 1.0]) for x, y, z in [(-0.5, -0.5, -0.5), (9.5, 7.5, 5.5)]]
    corners_out = [aff.numpy() @ np.array([x, y, z, 1.0]) for x, y, z in [(-0.5, -0.5, -0.5), (19.5, 3.5, 5.5)]]
    np.testing.assert_allclose(corners_in, corners_out, atol=1e-9)
    with pytest.raises(ValueError, match="resize mode"):
        fit(hu, mask, affine, (4, 4, 4), "stretch")


def test_resample_is_the_hand_written_interpolation_bit_for_bit():
    """MONAI's `scale_affine` replaced the hand-written affine step (issue #15): the outputs stayed identical.
    (MONAI's `Resize` gives the same arrays too, but slower: see `warehouse.torch.fit`.)"""
    rng = np.random.default_rng(3)
    hu = rng.integers(-1024, 1500, size=(10, 8, 6)).astype(np.int16)
    mask = rng.random(hu.shape) > 0.6
    affine = np.array([[0, 0, 2.5, -10], [-0.8, 0, 0, 5], [0, 0.9, 0, 30], [0, 0, 0, 1]])
    for size in [(20, 4, 6), (7, 9, 5), (10, 8, 6), (3, 3, 13)]:
        img, msk, aff = fit(hu, mask, affine, size, "resample")
        old_img = F.interpolate(torch.from_numpy(hu.astype(np.float32))[None, None], size=size, mode="trilinear",
                                align_corners=False)[0]
        old_msk = F.interpolate(torch.from_numpy(mask.astype(np.uint8))[None, None].float(), size=size,
                                mode="nearest")[0].to(torch.uint8)
        scale = np.array(hu.shape, float) / np.array(size, float)
        step = np.eye(4)
        step[:3, :3], step[:3, 3] = np.diag(scale), (scale - 1.0) / 2.0  # new voxel centres in old voxel coordinates
        assert img.dtype == torch.float32 and msk.dtype == torch.uint8 and aff.dtype == torch.float64
        assert torch.equal(img, old_img) and torch.equal(msk, old_msk)
        np.testing.assert_allclose(aff.numpy(), affine @ step, rtol=0, atol=1e-12)


def test_pad_centres_odd_differences_with_the_extra_voxel_before():
    """The pad-or-crop convention, start = (n - size) // 2 per axis: odd pads put the extra air voxel
    before, odd crops drop the extra voxel after. (MONAI's `ResizeWithPadOrCrop` does the reverse,
    one reason `fit` keeps its own; see `warehouse.torch._pad_or_crop`.)"""
    hu = np.arange(4 * 6 * 5, dtype=np.int16).reshape(4, 6, 5) - 1000
    mask = np.ones(hu.shape, bool)
    affine = np.diag([-0.8, -0.9, 2.5, 1.0])
    img, msk, aff = fit(hu, mask, affine, (7, 3, 5), "pad")  # x: pad 3 (2 before, 1 after); y: crop 3 (1 before)
    assert img.shape == msk.shape == (1, 7, 3, 5)
    assert bool((img[0, :2] == -1024).all()) and bool((img[0, 6] == -1024).all())
    assert np.array_equal(img[0, 2:6].numpy(), hu[:, 1:4]) and int(msk.sum()) == 4 * 3 * 5
    assert bool((msk[0, :2] == 0).all()) and bool((msk[0, 6] == 0).all())
    np.testing.assert_array_equal(aff.numpy(), shift_affine(affine, (-2, 1, 0)))


def _collect(loader) -> list[dict]:
    return [b for b in loader]


def test_two_workers_yield_the_same_samples_as_none(wh):
    ds = RegionDataset(wh, "lung", sql=ALL, size=SIZE, resize="resample")
    serial = _collect(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=0))
    parallel = _collect(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2))
    assert len(serial) == len(parallel) == 2
    for a, b in zip(serial, parallel, strict=True):
        assert a["case_id"] == b["case_id"] and a["text"] == b["text"]
        for key in ("image", "mask", "affine"):
            assert torch.equal(a[key], b[key])


def test_datasets_and_transforms_pickle_without_open_handles(wh):
    ds = RegionDataset(wh, "heart", sql=ALL)
    ds[0]  # opens the store in this process
    copy = pickle.loads(pickle.dumps(ds))
    assert copy.reader._stores == {} and torch.equal(copy[0]["image"], ds[0]["image"])
    reader = pickle.loads(pickle.dumps(CropReader(wh.root)))
    assert reader.root == str(wh.root)


def test_items_hash_stably_and_persistent_dataset_caches(wh, tmp_path):
    first, _ = cohort_items(wh, "heart", sql=ALL)
    again, _ = cohort_items(Warehouse.open(wh.root), "heart", sql=ALL + " ORDER BY case_id DESC")
    assert [pickle_hashing(x) for x in first] == [pickle_hashing(x) for x in again]
    assert len({pickle_hashing(x) for x in first}) == len(first)
    load = LoadRegionCropd(wh.root, size=SIZE)
    cached = PersistentDataset(first, transform=load, cache_dir=tmp_path)
    out = [cached[i] for i in range(len(cached))]
    assert len(list(tmp_path.glob("*.pt"))) == len(first)

    class Unreachable(LoadRegionCropd):
        def __call__(self, data):
            raise AssertionError("a cached item was loaded again")

    reread = PersistentDataset(again, transform=Unreachable(wh.root, size=SIZE), cache_dir=tmp_path)
    for i in range(len(reread)):
        assert torch.equal(torch.as_tensor(reread[i]["image"]), torch.as_tensor(out[i]["image"]))


def test_load_region_cropd_composes_with_monai(wh):
    items, _ = cohort_items(wh, "heart", sql=ALL, margin_mm=5)
    tf = Compose([LoadRegionCropd(wh.root), ScaleIntensityRanged("image", -1000, 400, 0.0, 1.0, clip=True)])
    out = tf(items[0])
    hu, mask, affine = wh.region_crop(items[0]["case_id"], "heart", margin_mm=5)
    assert isinstance(out["image"], MetaTensor) and out["image"].shape == (1, *hu.shape)
    assert 0.0 <= float(out["image"].min()) and float(out["image"].max()) <= 1.0
    np.testing.assert_allclose(out["image"].affine.numpy(), affine)
    assert np.array_equal(out["mask"][0].numpy(), mask) and out["text"] == items[0]["text"]
    by_id = LoadRegionCropd(wh.root, keys=("ct",), region="heart", margin_mm=5)({"case_id": items[0]["case_id"]})
    assert torch.equal(by_id["ct"].as_tensor(), torch.from_numpy(hu.astype(np.float32))[None])
    with pytest.raises(ValueError, match="needs a region"):
        LoadRegionCropd(wh.root)({"case_id": items[0]["case_id"]})


def test_cases_without_the_region_are_left_out_with_a_note(wh):
    items, notes = cohort_items(wh, "left kidney", sql=ALL)
    assert items == [] and len(notes) == 3 and "no CT or no voxel" in notes[0]
