"""Benchmark: region crops from the warehouse (`RegionDataset`) against MONAI reading exported NIfTI.

One run, side by side, the same crops: the heart of a real chest CT with a 10 mm margin.

* warehouse: ``RegionDataset(wh, "heart", margin_mm=10)`` — reads only the chunks of the
  region's box from the Zarr store;
* MONAI: ``LoadImaged(image, label)`` + ``EnsureChannelFirstd`` + ``CropForegroundd``
  (``source_key="label"``, the same margin in voxels) over the files ``export_cohort``
  wrote (whole ``images/<case>.nii.gz`` and ``masks/<case>/heart.nii.gz``).

Cases: copies of ``../shared/data/ct/chest_cta`` (233x167x191 at 1.5 mm, its heart mask
imported with ``radgenome ingest folder``-style ``import:``), on its own grid and upsampled
to RadGenome's grid size (480x480x240; ``--quick`` skips it). Without the shared data the
synthetic demo (96x96x64) is used. Both pipelines are checked to give identical crops,
read once to warm the page cache, then timed; prints samples/s and the ratio (goal >= 5x).
With ``--size X Y Z`` both pipelines also bring every crop to that size (``--resize pad``:
``RegionDataset(size=..., resize="pad")`` against MONAI's ``ResizeWithPadOrCropd``; ``resample``:
against ``Resized``), so the timing includes that step; the crops are checked before it.

    .venv/bin/python -m benchmarks.loader [--quick] [--cases N] [--workers W] [--passes P]
                                          [--size X Y Z [--resize pad|resample]]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from ingest.runner import build
from warehouse import Warehouse
from warehouse.exports.bundle import export_cohort

ROOT = Path(__file__).resolve().parents[1]  # the repository

CHEST = ROOT.parent / "shared/data/ct/chest_cta"
RADGENOME_GRID = (480, 480, 240)
REGION, MARGIN_MM = "heart", 10.0


def write_inputs(folder: Path, n: int, grid: tuple[int, ...] | None) -> tuple[Path, Path]:
    """`n` cases (hard links of one CT and its heart mask), resampled to `grid` when given."""
    from scipy import ndimage

    ct, heart = nib.load(CHEST / "ct.nii.gz"), nib.load(CHEST / "masks/heart.nii.gz")
    folder.mkdir(parents=True)
    src_img, src_mask = folder / "src_ct.nii.gz", folder / "src_heart.nii.gz"
    if grid is None:
        shutil.copy(CHEST / "ct.nii.gz", src_img)
        shutil.copy(CHEST / "masks/heart.nii.gz", src_mask)
    else:
        zoom = np.array(grid) / np.array(ct.shape)
        affine = ct.affine @ np.diag([*(1 / zoom), 1.0])
        hu = ndimage.zoom(np.asanyarray(ct.dataobj).astype(np.float32), zoom, order=1)
        mask = ndimage.zoom(np.asanyarray(heart.dataobj).astype(np.uint8), zoom, order=0)
        nib.save(nib.Nifti1Image(np.rint(hu).astype(np.int16), affine), src_img)
        nib.save(nib.Nifti1Image(mask, affine), src_mask)
    images, masks = folder / "images", folder / "masks"
    images.mkdir()
    for i in range(n):
        stem = f"train_{i + 1}_a_1"
        os.link(src_img, images / f"{stem}.nii.gz")
        (masks / stem).mkdir(parents=True)
        os.link(src_mask, masks / stem / f"{REGION}.nii.gz")
    return images, masks


def make_warehouse(tmp: Path, n: int, grid: tuple[int, ...] | None) -> Warehouse:
    if CHEST.is_dir():
        from ingest.sources.folder import FolderSource

        images, masks = write_inputs(tmp / "input", n, grid)
        source = FolderSource(images, None, [f"import:{masks}"])
    else:
        from ingest.sources.demo import DemoSource

        source = DemoSource(n=n, seed=0)
    build(source, tmp / "wh", runner="local", progress=False)
    return Warehouse.open(tmp / "wh")


def monai_dataset(bundle: Path, spacing: np.ndarray, size: tuple[int, ...] | None = None, resize: str = "pad"):
    from monai.data import Dataset, load_decathlon_datalist
    from monai.transforms import (
        Compose,
        CropForegroundd,
        EnsureChannelFirstd,
        LoadImaged,
        Resized,
        ResizeWithPadOrCropd,
    )

    from warehouse.core.grid import AIR_HU

    margin = [math.ceil(MARGIN_MM / s - 1e-9) for s in spacing]  # the warehouse's margin, in voxels
    items = load_decathlon_datalist(bundle / "datalist.json")
    steps = [LoadImaged(["image", "label"]), EnsureChannelFirstd(["image", "label"]),
             CropForegroundd(["image", "label"], source_key="label", margin=margin, allow_smaller=True)]
    if size is not None and resize == "pad":  # the same work as RegionDataset(size=..., resize="pad")
        steps += [ResizeWithPadOrCropd("image", size, value=AIR_HU), ResizeWithPadOrCropd("label", size)]
    elif size is not None:
        steps.append(Resized(["image", "label"], size, mode=("trilinear", "nearest")))
    return Dataset(items, Compose(steps))


def rate(dataset, passes: int, workers: int) -> float:
    """Samples per second through a DataLoader (batch 1), after one warm-up pass."""
    from torch.utils.data import DataLoader

    def one_pass() -> int:
        loader = DataLoader(dataset, batch_size=1, num_workers=workers, collate_fn=lambda b: b[0])
        return sum(1 for _ in loader)

    one_pass()
    t0 = time.perf_counter()
    n = sum(one_pass() for _ in range(passes))
    return n / (time.perf_counter() - t0)


def run(label: str, n: int, grid: tuple[int, ...] | None, passes: int, workers: int,
        size: tuple[int, ...] | None = None, resize: str = "pad") -> float:
    from warehouse.torch import RegionDataset

    with tempfile.TemporaryDirectory(prefix="bench-loader-") as tmp:
        t0 = time.perf_counter()
        wh = make_warehouse(Path(tmp), n, grid)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        export_cohort(wh, Path(tmp) / "bundle", sql="SELECT case_id FROM cases", images=True, masks=[REGION])
        t_export = time.perf_counter() - t0
        ours = RegionDataset(wh, REGION, sql="SELECT case_id FROM cases", margin_mm=MARGIN_MM)
        case0 = ours.items[0]["case_id"]
        spacing = np.linalg.norm(wh.image(case0)[1][:3, :3], axis=0)
        theirs = monai_dataset(Path(tmp) / "bundle", spacing)
        a, b = ours[0], theirs[0]
        same = a["image"].shape == b["image"].shape and bool((a["image"] == b["image"].as_tensor()).all()) \
            and bool((a["mask"] == b["label"].as_tensor()).all())
        if not same:
            raise SystemExit(f"the pipelines disagree: {tuple(a['image'].shape)} vs {tuple(b['image'].shape)}")
        if size is not None:  # checked on the crops; timed with the resize step
            ours = RegionDataset(wh, REGION, sql="SELECT case_id FROM cases", margin_mm=MARGIN_MM, size=size,
                                 resize=resize)
            theirs = monai_dataset(Path(tmp) / "bundle", spacing, size, resize)
        r_ours, r_monai = rate(ours, passes, workers), rate(theirs, passes, workers)
        shape = tuple(wh.image(case0)[0].shape)
        crop = tuple(ours[0]["image"].shape[1:])
        print(f"{label:<22} {str(shape):<16} {str(crop):<16} {len(ours):>5} "
              f"{r_ours:>11.1f} {r_monai:>9.2f} {r_ours / r_monai:>7.1f}x   (build {t_build:.0f} s, "
              f"export {t_export:.0f} s)")
        return r_ours / r_monai


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="only the CT's own grid")
    ap.add_argument("--cases", type=int, default=6, help="cases per grid")
    ap.add_argument("--passes", type=int, default=2, help="timed passes over the cases")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers (both pipelines)")
    ap.add_argument("--size", type=int, nargs=3, default=None, metavar=("X", "Y", "Z"),
                    help="bring every crop to this size (both pipelines)")
    ap.add_argument("--resize", choices=("pad", "resample"), default="pad", help="how, with --size")
    args = ap.parse_args(argv)
    size = tuple(args.size) if args.size else None
    real = CHEST.is_dir()
    print(f"region {REGION!r}, margin {MARGIN_MM:g} mm, DataLoader workers {args.workers}, "
          f"size {'as cropped' if size is None else f'{size} by {args.resize}'}; "
          f"{'real chest CTA (shared data)' if real else 'synthetic demo (shared data absent)'}")
    print(f"{'grid':<22} {'volume':<16} {'crop':<16} {'cases':>5} {'warehouse/s':>11} {'MONAI/s':>9} {'ratio':>8}")
    ratios = [run("native" if real else "demo", args.cases, None, args.passes, args.workers, size, args.resize)]
    if real and not args.quick:
        ratios.append(run("RadGenome-size", max(2, args.cases // 2), RADGENOME_GRID, args.passes, args.workers,
                          size, args.resize))
    print(f"goal: >= 5x samples per second; smallest ratio {min(ratios):.1f}x -> "
          f"{'met' if min(ratios) >= 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
