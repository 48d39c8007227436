"""NIfTI files for exports: the warehouse's arrays with their exact affines, and crop geometry.

Arrays are stored in L, P, S voxel order with a nibabel (RAS+) affine (see `ingest.images`);
they are written unchanged, with the affine as both sform and qform (code 1, scanner), so
nibabel, MONAI's `LoadImage` and ITK-based readers see the same grid the warehouse holds.
Images stay int16 HU with no scaling; masks are uint8 0/1.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np

from warehouse.core.boxes import Box
from warehouse.core.errors import ArrayNotFoundError
from warehouse.core.grid import margin_box, shift_affine

if TYPE_CHECKING:
    from warehouse.api import Warehouse

HEADER_BYTES = 352  # NIfTI-1 single file: header plus the 4-byte extension flag


def nifti_image(array: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """A NIfTI-1 image of `array` on `affine`, both qform and sform set (code 1)."""
    if array.dtype == bool:
        array = array.astype(np.uint8)
    affine = np.asarray(affine, dtype=np.float64)
    img = nib.Nifti1Image(np.asarray(array), affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    return img


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    """Write `array` as `.nii.gz` through a temp file, so a reader never sees half a file."""
    tmp = path.with_name(f".partial-{path.name}")  # keeps the suffix: nibabel compresses by name
    nib.save(nifti_image(array, affine), str(tmp))
    os.replace(tmp, path)


def nifti_bytes_bound(shape: tuple[int, ...], dtype: np.dtype | type) -> int:
    """Upper bound of a `.nii.gz` file's size: the uncompressed size plus gzip's worst-case overhead."""
    raw = HEADER_BYTES + int(np.prod(shape)) * np.dtype(dtype).itemsize
    return raw + raw // 16000 * 5 + 64  # deflate stored blocks: 5 bytes per 16 KiB block, plus the gzip frame


def voxel_offset(outer: np.ndarray, inner: np.ndarray) -> tuple[int, int, int]:
    """Integer voxel position of `inner`'s origin on the grid of `outer` (same spacing and axes)."""
    pos = np.linalg.solve(np.asarray(outer, float), np.asarray(inner, float)[:, 3])[:3]
    rounded = np.rint(pos)
    if not np.allclose(pos, rounded, atol=1e-3):
        raise ValueError(f"grids are not aligned: offset {pos.tolist()} is not whole voxels")
    return tuple(int(v) for v in rounded)  # type: ignore[return-value]


def paste(src: np.ndarray, src_lo: tuple[int, ...], box: Box, fill: int | bool = 0) -> np.ndarray:
    """`src` (whose [0,0,0] is voxel `src_lo`) placed into a new array covering `box`; outside is `fill`."""
    shape = tuple(hi - lo for lo, hi in zip(*box, strict=True))
    out = np.full(shape, fill, dtype=src.dtype)
    dst_sl, src_sl = [], []
    for a in range(3):
        lo = max(box[0][a], src_lo[a])
        hi = min(box[1][a], src_lo[a] + src.shape[a])
        if hi <= lo:
            return out
        dst_sl.append(slice(lo - box[0][a], hi - box[0][a]))
        src_sl.append(slice(lo - src_lo[a], hi - src_lo[a]))
    out[tuple(dst_sl)] = src[tuple(src_sl)]
    return out


# -- planning and writing a case's NIfTI files ---------------------------------------------------
@dataclass(frozen=True)
class ArrayFile:
    """One NIfTI file of an export: what it holds and the voxel box of the case grid it covers."""

    rel: str  # path inside the bundle
    case_id: str
    kind: str  # image or mask
    region: str | None  # the mask's region (DAG name)
    box: Box  # the whole grid, or the crop region's box grown by the margin
    crop: str | None = None  # the crop region, when cropped
    margin_mm: float = 0.0

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(hi - lo for lo, hi in zip(*self.box, strict=True))  # type: ignore[return-value]

    @property
    def bytes_bound(self) -> int:
        return nifti_bytes_bound(self.shape, np.int16 if self.kind == "image" else np.uint8)


def plan_case(wh: Warehouse, case_id: str, key: str, mask_name: Callable[[str], str], *, image: bool,
              masks: Sequence[str], crop: str | None, margin_mm: float) -> tuple[list[ArrayFile], list[str]]:
    """The NIfTI files one case contributes, and notes on what it cannot give (no image, no such mask)."""
    store = wh.arrays
    try:
        shape, affine = store.grid(case_id)
    except ArrayNotFoundError:
        return [], [f"{case_id}: no arrays in the store"]
    box: Box = ((0, 0, 0), shape)
    if crop is not None:
        try:
            bbox = store.region_bbox(case_id, crop)
        except ArrayNotFoundError:
            bbox = None
        if bbox is None:
            return [], [f"{case_id}: no voxel of the crop region {crop!r}: its arrays are left out"]
        box = margin_box(bbox, shape, affine, margin_mm)
    files, notes = [], []
    if image:
        if store.has_image(case_id):
            files.append(ArrayFile(f"images/{key}.nii.gz", case_id, "image", None, box, crop, margin_mm))
        else:
            notes.append(f"{case_id}: no CT image in the store")
    for region in masks:
        try:
            store.region_bbox(case_id, region)
        except ArrayNotFoundError:
            notes.append(f"{case_id}: no mask for region {region!r}")
            continue
        files.append(ArrayFile(f"masks/{key}/{mask_name(region)}.nii.gz", case_id, "mask", region, box, crop,
                               margin_mm))
    return files, notes


def write_case(wh: Warehouse, files: Sequence[ArrayFile], folder: Path) -> int:
    """Read one case's arrays (crops straight from the store) and write its NIfTI files; returns bytes."""
    if not files:
        return 0
    store = wh.arrays
    case_id, box, crop = files[0].case_id, files[0].box, files[0].crop
    _, affine = store.grid(case_id)
    out_affine = shift_affine(affine, box[0])
    written = 0
    for f in files:
        if f.kind == "image":
            data = store.image_box(case_id, box)  # the planned box: the whole grid, or the crop
        elif crop is None:
            data = store.region_mask(case_id, f.region)[0]
        else:
            part, part_affine = store.region_mask(case_id, f.region, crop=True)
            data = paste(part, voxel_offset(affine, part_affine), box, fill=False) if part.size else \
                np.zeros(f.shape, bool)
        path = folder / f.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_nifti(path, data, out_affine)
        written += path.stat().st_size
    return written
