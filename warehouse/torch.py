"""PyTorch and MONAI access to a cohort: region crops read straight from the Zarr store.

>>> ds = RegionDataset("build/demo", "left lung", sql="SELECT case_id FROM cases", size=(96, 96, 64))
>>> loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
>>> batch = next(iter(loader))      # image (4, 1, 96, 96, 64) float32 HU, mask uint8, affine, text ...

A sample is a dict ``{image, mask, affine, text, case_id, region}``: the CT crop (HU,
float32, channel first), the region's mask (uint8 0/1) and the crop's 4x4 affine as
tensors, and the region's grounded sentences as text. Items (`RegionDataset.items`, from
`cohort_items`) are plain dicts of strings and numbers naming their snapshot, so they
hash stably for MONAI's `PersistentDataset`; `LoadRegionCropd` turns such an item into
MetaTensors inside a `monai.transforms.Compose`. The store is opened lazily, once per
process, so datasets and transforms pickle and work with `DataLoader(num_workers=N)`.
Workers forked from a process that has read arrays read with zarr-python, not TensorStore
(`warehouse.store.arrays.io`); ``multiprocessing_context="forkserver"`` keeps the fast reader.
A warehouse in a bucket (``s3://...``) streams crops the same way: the dataset finds its snapshot's
array store before workers fork, and forked workers read through TensorStore (obstore hangs after
a fork); a parent that has itself read voxels from the bucket needs ``forkserver`` (or ``spawn``).
This is the only module of the package that imports torch and MONAI.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import MapTransform
from monai.transforms.utils import scale_affine

from warehouse.api import Warehouse
from warehouse.core.anatomy import anatomy
from warehouse.core.errors import ArrayNotFoundError
from warehouse.core.grid import AIR_HU, shift_affine  # AIR_HU: padding is air, -1024 HU
from warehouse.exports.bundle_tables import region_texts
from warehouse.exports.cohort import resolve_cohort
from warehouse.store.arrays.io import obstore_usable
from warehouse.store.arrays.mapped import MappedArrays, open_arrays
from warehouse.store.objects import ObjectStoreError, is_url, root_location
from warehouse.store.snapshot import open_snapshot

RESIZE_MODES = ("pad", "resample")


def cohort_items(wh: Warehouse, region: str, sql: str | None = None, query: str | None = None,
                 params: Mapping[str, Any] | None = None, margin_mm: float = 10.0) -> tuple[list[dict], list[str]]:
    """Items of a cohort's cases that have a CT and a non-empty `region`, and notes on the others.

    An item is ``{case_id, region, margin_mm, snapshot_id, text}``: plain values, so its hash
    (MONAI's `pickle_hashing`) is the same in every process and run, and changes with the snapshot.
    """
    region = anatomy().resolve(region).name
    _, _, case_ids = resolve_cohort(wh, sql, query, params)
    texts = region_texts(wh, case_ids, region)
    store, items, notes = wh.arrays, [], []
    for c in case_ids:
        try:
            ok = store.has_image(c) and store.region_bbox(c, region) is not None
        except ArrayNotFoundError:
            ok = False
        if not ok:
            notes.append(f"{c}: no CT or no voxel of {region!r}")
            continue
        items.append({"case_id": c, "region": region, "margin_mm": float(margin_mm), "snapshot_id": wh.snapshot_id,
                      "text": texts.get(c, "")})
    return items, notes


class CropReader:
    """Region crops of one warehouse root (a folder or a bucket URL); each process opens the
    snapshots' stores on first use.

    `arrays`: snapshot id -> its array store's location, where the caller knows it. A remote
    root's snapshots should be known (`remember`) before DataLoader workers fork: finding one
    reads the bucket through obstore, which hangs in a forked child (`warehouse.store.arrays.io`).
    """

    def __init__(self, root: str | Path, arrays: Mapping[str | None, str | Path] | None = None) -> None:
        self.root = str(root_location(root))  # a resolved local path, or the URL
        self._arrays: dict[str | None, str | Path] = dict(arrays or {})
        self._stores: dict[str | None, Any] = {}
        self._pid = os.getpid()

    def __getstate__(self) -> dict:
        return {"root": self.root, "arrays": self._arrays}  # open stores stay behind: a worker opens its own

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["root"], state.get("arrays"))

    def remember(self, snapshot_id: str | None = None) -> str | Path:
        """Find a snapshot's array store now (None: the latest), so workers forked later need not."""
        if snapshot_id not in self._arrays:
            if is_url(self.root) and not obstore_usable():
                raise ObjectStoreError(
                    f"cannot open snapshot {snapshot_id or 'latest'} of {self.root} in a forked DataLoader worker",
                    hint="make the reader in the parent with this snapshot known (RegionDataset does), or use "
                         "DataLoader(..., multiprocessing_context='forkserver')")
            snap = open_snapshot(self.root, snapshot_id)
            self._arrays[snapshot_id] = self._arrays[snap.snapshot_id] = snap.arrays_location()
        return self._arrays[snapshot_id]

    def store(self, snapshot_id: str | None):
        if self._pid != os.getpid():  # a forked worker: never share the parent's handles
            self._stores, self._pid = {}, os.getpid()
        if snapshot_id not in self._stores:
            # The array store itself, not a Warehouse: a DataLoader worker forked from a process running
            # DuckDB must not start DuckDB (a Warehouse's engine segfaulted there), and needs no SQL.
            self._stores[snapshot_id] = open_arrays(self.remember(snapshot_id))
        return self._stores[snapshot_id]

    def crop(self, case_id: str, region: str, margin_mm: float, snapshot_id: str | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """HU crop (int16), mask crop (bool) and affine of a region grown by `margin_mm`."""
        return self.store(snapshot_id).region_crop(case_id, region, margin_mm=margin_mm)


def fit(image: np.ndarray, mask: np.ndarray, affine: np.ndarray, size: Sequence[int] | None,
        mode: str = "pad") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Image (1, x, y, z) float32, mask (1, x, y, z) uint8 and affine float64, brought to `size`.

    ``pad``: centred crop or pad with air (-1024 HU) and background, no interpolation;
    ``resample``: trilinear image, nearest-neighbour mask, spacing scaled to fill `size`.
    The affine follows, so world coordinates of every voxel stay right.
    """
    img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    msk = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.uint8))[None]
    aff = np.asarray(affine, dtype=np.float64)
    if size is not None:
        size = tuple(int(n) for n in size)
        if len(size) != 3 or min(size) < 1:
            raise ValueError(f"size must be three positive ints, got {size}")
        # Plain torch, not MONAI's ResizeWithPadOrCrop / Resize: MONAI was clearly slower (issue #15;
        # benchmarks/loader.py --quick --cases 2 --passes 20 --size 96 96 64, OMP_NUM_THREADS=1, best of 3
        # alternating runs on a shared 2-core machine): pad 119 samples/s here against 93, resample 84
        # against 72. Its transforms cost ~0.6 ms a call in MetaTensor bookkeeping, two calls a sample;
        # the step alone took 0.9 against 2.8 ms (pad) and 4.2 against 5.3 ms (resample) on the
        # benchmark's 110x90x100 heart crop, 0.05 against 1.24 and 0.36 against 1.09 ms on a 30x20x15
        # crop to 48x40x24. MONAI's Resize gives these exact outputs; its pad-or-crop does not (_pad_or_crop).
        if mode == "pad":
            img, msk, aff = _pad_or_crop(img, msk, aff, size)
        elif mode == "resample":
            # MONAI's scale_affine: new voxel centres in old voxel coordinates (scale, (scale - 1) / 2)
            aff = aff @ scale_affine(img.shape[1:], size)
            img = F.interpolate(img[None], size=size, mode="trilinear", align_corners=False)[0]
            msk = F.interpolate(msk[None].float(), size=size, mode="nearest")[0].to(torch.uint8)
        else:
            raise ValueError(f"resize mode must be one of {RESIZE_MODES}, not {mode!r}")
    return img, msk, torch.from_numpy(aff)


def _pad_or_crop(img: torch.Tensor, msk: torch.Tensor, aff: np.ndarray, size: tuple[int, ...]
                 ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Centred crop or pad to `size`, start (n - size) // 2 per axis, the image padded with air.

    MONAI's `ResizeWithPadOrCrop` (besides its speed, see `fit`) centres odd differences the other
    way: it pads the extra voxel after, and crops it before when the crop is even and `size` odd.
    Swapping it in would shift samples by a voxel against earlier runs: of 131 crop/size pairs
    tried, the 99 with an odd difference on some axis differed (world coordinates stayed right).
    """
    start = [(n - t) // 2 for n, t in zip(img.shape[1:], size, strict=True)]  # < 0: pad before
    src = tuple(slice(max(s, 0), max(s, 0) + min(n, t)) for s, n, t in zip(start, img.shape[1:], size, strict=True))
    dst = tuple(slice(max(-s, 0), max(-s, 0) + min(n, t)) for s, n, t in zip(start, img.shape[1:], size, strict=True))
    out_img = torch.full((1, *size), AIR_HU, dtype=img.dtype)
    out_msk = torch.zeros((1, *size), dtype=msk.dtype)
    out_img[(slice(None), *dst)] = img[(slice(None), *src)]
    out_msk[(slice(None), *dst)] = msk[(slice(None), *src)]
    return out_img, out_msk, shift_affine(aff, start)


class RegionDataset(torch.utils.data.Dataset):
    """A cohort's region crops as deterministic sample dicts (see the module docstring)."""

    def __init__(self, warehouse: Warehouse | str | Path, region: str, sql: str | None = None,
                 query: str | None = None, params: Mapping[str, Any] | None = None, margin_mm: float = 10.0,
                 size: Sequence[int] | None = None, resize: str = "pad", transform: Any = None) -> None:
        wh = warehouse if isinstance(warehouse, Warehouse) else Warehouse.open(warehouse)
        self.items, self.notes = cohort_items(wh, region, sql, query, params, margin_mm)
        arrays = wh.arrays  # a bucket's snapshot: its map of stores (picklable), else the store's path
        self.reader = CropReader(wh.root, {wh.snapshot_id: arrays if isinstance(arrays, MappedArrays) else arrays.path})
        self.size, self.resize, self.transform = (tuple(size) if size else None), resize, transform
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, not {resize!r}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        hu, mask, affine = self.reader.crop(item["case_id"], item["region"], item["margin_mm"], item["snapshot_id"])
        image, msk, aff = fit(hu, mask, affine, self.size, self.resize)
        sample = {"image": image, "mask": msk, "affine": aff, "text": item["text"], "case_id": item["case_id"],
                  "region": item["region"]}
        return self.transform(sample) if self.transform is not None else sample


class LoadRegionCropd(MapTransform):
    """Load a region crop from the warehouse by ``case_id``: ``keys`` = (image key[, mask key]).

    The item gives ``case_id`` and, optionally, ``region``, ``margin_mm`` and ``snapshot_id``
    (as `cohort_items` makes them); the transform's own values fill what it lacks. Outputs
    are MetaTensors (channel first) carrying the crop's affine, so MONAI's spatial transforms
    that follow keep world coordinates right.
    """

    def __init__(self, warehouse: str | Path, keys: Sequence[Hashable] = ("image", "mask"), region: str | None = None,
                 margin_mm: float = 10.0, size: Sequence[int] | None = None, resize: str = "pad",
                 case_key: str = "case_id", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if not 1 <= len(self.keys) <= 2:
            raise ValueError("keys: the image key, and optionally the mask key")
        self.reader = CropReader(warehouse)
        if is_url(self.reader.root):
            self.reader.remember()  # the latest snapshot, found before any worker forks
        self.region = anatomy().resolve(region).name if region else None
        self.margin_mm, self.size, self.resize, self.case_key = margin_mm, size, resize, case_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict:
        d = dict(data)
        region = d.get("region") or self.region
        if region is None:
            raise ValueError("LoadRegionCropd needs a region: in the item or as region=")
        hu, mask, affine = self.reader.crop(d[self.case_key], region, float(d.get("margin_mm", self.margin_mm)),
                                            d.get("snapshot_id"))
        image, msk, aff = fit(hu, mask, affine, self.size, self.resize)
        meta = {"case_id": d[self.case_key], "region": region, "filename_or_obj": f"{d[self.case_key]}#{region}"}
        for key, value in zip(self.keys, (image, msk), strict=False):
            d[key] = MetaTensor(value, affine=aff.clone(), meta=dict(meta))
        return d
