"""Benchmark: RadGenome's per-structure NIfTI masks against the array store (prints, asserts nothing).

Generates one RadGenome-like case: a 480x480x240 grid (``--quick``: 240x240x120), the 210
anatomy mask names of the release, most of them small or empty, some large (lobes, bone,
skin, muscle), nested as in the release (left lung lower lobe, left lung, lung lower lobe
and lung are all present; a parent's mask covers its children's). It writes the masks
the RadGenome way (one uint8 ``.nii.gz`` per structure, nibabel's defaults) and into an
`ArrayStore`, then prints bytes on disk and, side by side in one run, the median time
over the case's non-empty structures to read one region's mask (nibabel loading its
file vs `region_mask`) and its crop with a 10 mm margin (nibabel loading its file and
the CT, then cropping, vs `region_crop`).

    .venv/bin/python -m benchmarks.masks [--quick] [--crop-sample N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from warehouse.core.anatomy import anatomy
from warehouse.core.boxes import bounding_box, slices
from warehouse.store.arrays import ArrayStore

ROOT = Path(__file__).resolve().parents[1]  # the repository

NAMES_FILE = ROOT.parent / "shared/data/vocab/radgenome_anatomy_mask_names.txt"
FULL = (480, 480, 240)
INF = 1e6

# Leaf structures on the 480x480x240 grid (x right->left, y anterior->posterior, z feet->head):
# kind, centre, radii, options (clip ranges per axis; t = thickness of a ring or shell).
# Names not listed here and not parents of listed ones are empty (outside the chest FOV).
SPEC: dict[str, tuple] = {
    "left lung upper lobe": ("ell", (318, 252, 140), (68, 100, 85), {"z": (135, 240)}),
    "left lung lower lobe": ("ell", (318, 252, 140), (68, 100, 85), {"z": (0, 135)}),
    "right lung upper lobe": ("ell", (164, 252, 140), (72, 100, 85), {"z": (160, 240)}),
    "right lung middle lobe": ("ell", (164, 252, 140), (72, 100, 85), {"z": (130, 160)}),
    "right lung lower lobe": ("ell", (164, 252, 140), (72, 100, 85), {"z": (0, 130)}),
    "lung nodule": ("ell", (330, 290, 100), (5, 5, 4), {}),
    "lung effusion": ("ell", (150, 345, 70), (40, 12, 10), {}),
    "trachea": ("ell", (240, 230, 0), (10, 10, INF), {"z": (150, 240)}),
    "bronchie": ("ell", (240, 240, 140), (40, 6, 6), {}),
    "esophagus": ("ell", (250, 290, 0), (7, 7, INF), {"z": (40, 225)}),
    "cervical esophagus": ("ell", (250, 285, 0), (7, 7, INF), {"z": (225, 240)}),
    "heart": ("ell", (255, 200, 100), (70, 60, 50), {}),
    "left heart ventricle": ("ell", (280, 190, 90), (30, 28, 30), {}),
    "right heart ventricle": ("ell", (230, 170, 95), (30, 24, 30), {}),
    "left heart atrium": ("ell", (270, 235, 120), (25, 20, 18), {}),
    "right heart atrium": ("ell", (215, 215, 110), (24, 22, 22), {}),
    "left auricle of heart": ("ell", (300, 205, 125), (8, 8, 8), {}),
    "myocardium": ("shell", (280, 190, 90), (38, 36, 38), {"t": 8}),
    "heart ascending aorta": ("ell", (245, 220, 0), (14, 14, INF), {"z": (110, 175)}),
    "aorta": ("ell", (270, 300, 0), (12, 12, INF), {"z": (20, 170)}),
    "pulmonary artery": ("ell", (250, 205, 140), (32, 14, 12), {}),
    "pulmonary vein": ("ell", (262, 245, 118), (34, 7, 7), {}),
    "superior vena cava": ("ell", (212, 232, 0), (9, 9, INF), {"z": (130, 200)}),
    "inferior vena cava": ("ell", (232, 272, 0), (11, 11, INF), {"z": (0, 75)}),
    "brachiocephalic trunk": ("ell", (238, 225, 190), (7, 7, 16), {}),
    "left brachiocephalic vein": ("ell", (260, 205, 200), (35, 6, 6), {}),
    "right brachiocephalic vein": ("ell", (215, 210, 205), (15, 6, 12), {}),
    "left subclavian artery": ("ell", (300, 245, 205), (50, 6, 6), {}),
    "right subclavian artery": ("ell", (180, 245, 205), (50, 6, 6), {}),
    "left common carotid artery": ("ell", (262, 232, 0), (5, 5, INF), {"z": (195, 240)}),
    "right common carotid artery": ("ell", (218, 232, 0), (5, 5, INF), {"z": (195, 240)}),
    "left internal jugular vein": ("ell", (275, 240, 0), (7, 7, INF), {"z": (190, 240)}),
    "right internal jugular vein": ("ell", (205, 240, 0), (7, 7, INF), {"z": (190, 240)}),
    "thymus": ("ell", (245, 165, 170), (22, 10, 22), {}),
    "mediastinal tissue": ("ell", (245, 205, 150), (45, 45, 55), {}),
    "left thyroid": ("ell", (258, 215, 228), (9, 11, 13), {}),
    "right thyroid": ("ell", (222, 215, 228), (9, 11, 13), {}),
    "left breast": ("ell", (335, 105, 130), (60, 30, 50), {}),
    "right breast": ("ell", (145, 105, 130), (60, 30, 50), {}),
    "skin": ("ring", (240, 252, 0), (208, 150, INF), {"t": 3}),
    "muscle": ("ring", (240, 252, 0), (199, 141, INF), {"t": 10}),
    "thoracic cavity": ("ell", (240, 255, 140), (165, 115, 100), {}),
    "abdominal tissue": ("ell", (240, 250, 15), (185, 128, 55), {"z": (0, 70)}),
    "spinal canal": ("ell", (240, 358, 0), (10, 10, INF), {}),
    "spinal cord": ("ell", (240, 358, 0), (5, 5, INF), {}),
    "lumbar vertebrae 1 (l1)": ("ell", (240, 330, 0), (20, 20, INF), {"z": (25, 38)}),
    "lumbar vertebrae 2 (l2)": ("ell", (240, 330, 0), (20, 20, INF), {"z": (8, 21)}),
    "cervical vertebrae 7 (c7)": ("ell", (240, 330, 0), (17, 17, INF), {"z": (226, 238)}),
    "costal cartilage": ("ring", (240, 260, 0), (150, 110, INF), {"t": 6, "z": (90, 160), "y": (100, 170)}),
    "rib cartilage": ("ring", (240, 260, 0), (150, 110, INF), {"t": 6, "z": (60, 90), "y": (100, 170)}),
    "sternum": ("ell", (240, 120, 125), (12, 6, 45), {}),
    "manubrium of sternum": ("ell", (240, 125, 185), (18, 7, 14), {}),
    "left clavicle": ("ell", (300, 175, 218), (55, 8, 7), {}),
    "right clavicle": ("ell", (180, 175, 218), (55, 8, 7), {}),
    "left scapula": ("ell", (390, 360, 175), (40, 10, 50), {}),
    "right scapula": ("ell", (90, 360, 175), (40, 10, 50), {}),
    "left humerus": ("ell", (465, 280, 205), (25, 25, 30), {}),
    "right humerus": ("ell", (15, 280, 205), (25, 25, 30), {}),
    "liver vessel": ("ell", (180, 240, 0), (4, 4, INF), {"z": (0, 60)}),
    "gallbladder": ("ell", (150, 170, 10), (15, 15, 20), {}),
    "stomach": ("ell", (320, 210, 45), (50, 40, 30), {}),
    "spleen": ("ell", (360, 320, 40), (30, 45, 35), {}),
    "left adrenal gland": ("ell", (300, 320, 30), (6, 12, 12), {}),
    "right adrenal gland": ("ell", (185, 320, 35), (6, 12, 12), {}),
    "left kidney": ("ell", (330, 340, 5), (30, 35, 35), {}),
    "right kidney": ("ell", (150, 340, 0), (30, 35, 35), {}),
    "left kidney cyst": ("ell", (340, 345, 20), (6, 6, 6), {}),
    "pancreas": ("ell", (290, 270, 15), (45, 10, 10), {}),
    "duodenum": ("ell", (230, 250, 5), (20, 12, 10), {}),
    "colon": ("ell", (330, 160, 8), (30, 15, 10), {}),
    "portal vein and splenic vein": ("ell", (250, 270, 25), (40, 5, 5), {}),
    "celiac trunk": ("ell", (270, 290, 30), (3, 10, 3), {}),
}
# Leaves cut away from others, so neighbours touch instead of overlapping (lungs wrap the heart).
SUBTRACT = {"mediastinal tissue": ("heart",), "thoracic cavity": ("muscle",),
            **{f"{s} lung {lobe} lobe": ("heart", "mediastinal tissue", "heart ascending aorta", "aorta",
                                         "right posterior superior segment of liver",
                                         "right anterior superior segment of liver", "stomach",
                                         "left lateral superior segment of liver")
               for s, lobe in (("left", "upper"), ("left", "lower"), ("right", "upper"), ("right", "middle"),
                               ("right", "lower"))}}
LIVER = ((175, 235, 30), (100, 88, 50))
for _name, _clip in {
    "right posterior inferior segment of liver": {"x": (0, 150), "y": (235, 480), "z": (0, 30)},
    "right posterior superior segment of liver": {"x": (0, 150), "y": (235, 480), "z": (30, 240)},
    "right anterior inferior segment of liver": {"x": (0, 150), "y": (0, 235), "z": (0, 30)},
    "right anterior superior segment of liver": {"x": (0, 150), "y": (0, 235), "z": (30, 240)},
    "left medial segment of liver": {"x": (150, 215), "y": (0, 235)},
    "caudate lobe": {"x": (150, 215), "y": (235, 480)},
    "left lateral superior segment of liver": {"x": (215, 480), "z": (30, 240)},
    "left lateral inferior segment of liver": {"x": (215, 480), "z": (0, 30)},
}.items():
    SPEC[_name] = ("ell", *LIVER, _clip)
for _k in range(1, 13):
    _z, _rx = 215 - 14 * _k, 176 + min(_k, 6)
    SPEC[f"thoracic vertebrae {_k} (t{_k})"] = ("ell", (240, 330, 0), (20, 20, INF),
                                                {"z": (222 - 15 * _k, 235 - 15 * _k)})
    for _side, _xr in (("left", (250, 480)), ("right", (0, 230))):
        SPEC[f"{_side} rib {_k}"] = ("ring", (240, 257, 0), (_rx, 126, INF), {"t": 8, "z": (_z - 3, _z + 3), "x": _xr,
                                                                             "y": (150, 400)})


def leaf(kind: str, c: tuple, r: tuple, opt: dict, scale: float, shape: tuple, rng) -> tuple | None:
    """(box, boolean crop) of one generated structure, or None if it falls outside the grid."""
    c, r = np.array(c) * scale, np.array(r) * scale
    lo = np.maximum(np.floor(c - r - 2), 0)
    hi = np.minimum(np.ceil(c + r + 2), shape)
    for i, a in enumerate("xyz"):
        if a in opt:
            lo[i], hi[i] = max(lo[i], opt[a][0] * scale), min(hi[i], opt[a][1] * scale)
    lo, hi = lo.astype(int), hi.astype(int)
    if (hi <= lo).any():
        return None
    grid = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
    noise = ndimage.zoom(rng.uniform(-1, 1, (5, 5, 5)).astype(np.float32),
                         [(b - a) / 5 for a, b in zip(lo, hi, strict=True)], order=1)
    d = sum(((g.astype(np.float32) + 0.5 - float(ci)) / float(ri)) ** 2 for g, ci, ri in zip(grid, c, r, strict=True))
    if kind == "ell":
        mask = d < 1 + 0.2 * noise
    else:  # ring (ellipse in x, y) or ellipsoid shell, `t` voxels thick
        mask = np.abs(np.sqrt(d) - 1) * float(np.mean(r[:2] if kind == "ring" else r)) < opt["t"] * scale / 2 * (
            1 + 0.3 * noise)
    box = bounding_box(mask)
    if box is None:
        return None
    return tuple(tuple(int(lo[i] + box[k][i]) for i in range(3)) for k in (0, 1)), mask[slices(box)]


def generate(names: list[str], shape: tuple, seed: int = 0) -> tuple[np.ndarray, dict[str, tuple | None]]:
    """The CT (int16 HU) and each structure as (box, crop) or None when empty."""
    rng, dag, scale = np.random.default_rng(seed), anatomy(), shape[0] / FULL[0]
    region = {n: dag.resolve(n).name for n in names}
    parts = {n: leaf(*SPEC[n], scale, shape, rng) if n in SPEC else None for n in names}
    for n, others in SUBTRACT.items():
        (lo, hi), m = parts[n]
        for o in others:
            (olo, ohi), om = parts[o]
            a, b = np.maximum(lo, olo), np.minimum(hi, ohi)
            if (b > a).all():
                m[tuple(slice(x - y, z - y) for x, z, y in zip(a, b, lo, strict=True))] &= \
                    ~om[tuple(slice(x - y, z - y) for x, z, y in zip(a, b, olo, strict=True))]
    for n in sorted(names, key=lambda n: -dag.level(region[n])):  # deepest first: parents = union
        below = [m for m in names if m != n and region[m] in dag.descendants(region[n])]
        pieces = [p for p in [parts[n], *(parts[m] for m in below)] if p is not None]
        if len(pieces) > 1:
            lo = tuple(min(p[0][0][i] for p in pieces) for i in range(3))
            hi = tuple(max(p[0][1][i] for p in pieces) for i in range(3))
            m = np.zeros(tuple(b - a for a, b in zip(lo, hi, strict=True)), bool)
            for (plo, phi), crop in pieces:
                m[tuple(slice(a - o, b - o) for a, b, o in zip(plo, phi, lo, strict=True))] |= crop
            parts[n] = ((lo, hi), m)
    ct = np.full(shape, -1000, np.int16, order="F")
    xs, ys = np.ogrid[:shape[0], :shape[1]]
    body = ((xs - 240 * scale) / (209 * scale)) ** 2 + ((ys - 252 * scale) / (151 * scale)) ** 2 < 1
    ct[body] = 40
    for names_hu in (("lung", -850), ("heart", 45), ("aorta", 250), ("liver", 60), ("bone", 700)):
        p = parts.get(names_hu[0])
        if p is not None:
            ct[slices(p[0])][p[1]] = names_hu[1]
    ct += (rng.standard_normal(shape, dtype=np.float32) * 18).astype(np.int16)
    return ct, parts


def full(part: tuple | None, shape: tuple) -> np.ndarray:
    """A structure as a whole uint8 volume, in NIfTI's (Fortran) memory order as nibabel loads it."""
    out = np.zeros(shape, np.uint8, order="F")
    if part is not None:
        out[slices(part[0])] = part[1]
    return out


def _save(args: tuple) -> None:
    path, part, shape = args
    nib.save(nib.Nifti1Image(full(part, shape), np.eye(4)), path)


def du(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def timed(fn, *args, **kw) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def nib_crop(mask_file: Path, ct_file: Path, margin_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """What a user of the release does: load the structure's file and the CT, crop both."""
    mimg, cimg = nib.load(mask_file), nib.load(ct_file)
    mask, ct = np.asanyarray(mimg.dataobj) != 0, np.asanyarray(cimg.dataobj)
    lo, hi = bounding_box(mask)
    g = np.ceil(margin_mm / np.linalg.norm(mimg.affine[:3, :3], axis=0)).astype(int)
    sl = tuple(slice(max(0, a - k), min(n, b + k)) for a, b, k, n in zip(lo, hi, g, mask.shape, strict=True))
    return ct[sl], mask[sl]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="240x240x120 grid instead of 480x480x240")
    ap.add_argument("--crop-sample", type=int, default=16,
                    help="nibabel crops timed on this many structures spread over all (0 = all); "
                         "each reloads the CT, so timing all of them takes minutes")
    ap.add_argument("--keep", type=Path, help="write into this folder and keep it")
    args = ap.parse_args(argv)
    shape = tuple(n // 2 for n in FULL) if args.quick else FULL
    names = [ln.strip() for ln in NAMES_FILE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="masks-bench-"))
    try:
        t, (ct, parts) = timed(generate, names, shape)
        nonempty = [n for n in names if parts[n] is not None]
        print(f"grid {shape}, {len(names)} structures: {len(nonempty)} non-empty, "
              f"{len(names) - len(nonempty)} empty; largest {max(int(parts[n][1].sum()) for n in nonempty):,} "
              f"voxels (generated in {t:.1f} s)")

        # RadGenome way: seg_<volume>/<structure>.nii.gz, uint8, nibabel defaults (gzip level 1).
        mdir, ct_file = tmp / "seg_train_1_a_1", tmp / "train_1_a_1.nii.gz"
        mdir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        nib.save(nib.Nifti1Image(ct, np.eye(4)), ct_file)
        empty_file = mdir / f"{names[[parts[n] for n in names].index(None)]}.nii.gz"
        _save((empty_file, None, shape))
        for n in names:  # every empty file is byte-identical to the first: copy instead of re-compressing
            if parts[n] is None and mdir / f"{n}.nii.gz" != empty_file:
                shutil.copyfile(empty_file, mdir / f"{n}.nii.gz")
        with ProcessPoolExecutor(2) as pool:
            list(pool.map(_save, [(mdir / f"{n}.nii.gz", parts[n], shape) for n in nonempty]))
        t_nii = time.perf_counter() - t0

        store = ArrayStore(tmp / "arrays.zarr", mode="a")
        t0 = time.perf_counter()
        store.write_image("train_1_a_1.nii.gz", ct, np.eye(4))
        t_img = time.perf_counter() - t0
        lazy = {n: _Lazy(parts[n], shape) for n in names}
        t, rows = timed(store.write_masks, "train_1_a_1.nii.gz", lazy, np.eye(4))
        layers = {s["layer"] for s in store.structures("train_1_a_1.nii.gz") if s["layer"]}
        print(f"written: NIfTI {t_nii:.1f} s (2 processes); store image {t_img:.1f} s, masks {t:.1f} s "
              f"({len(layers)} label layers, {len(rows)} region_stats rows)")

        nii_bytes = sum(p.stat().st_size for p in mdir.iterdir())
        key = store._case("train_1_a_1.nii.gz").key  # noqa: SLF001 - benchmark looks at the layout
        lab_bytes, img_bytes = du(tmp / "arrays.zarr" / key / "labels"), du(tmp / "arrays.zarr" / key / "image")
        print(f"\nbytes on disk      masks: NIfTI {nii_bytes / 1e6:8.2f} MB   store {lab_bytes / 1e6:6.2f} MB   "
              f"ratio {nii_bytes / lab_bytes:6.1f}x   (goal >= 20x)")
        print(f"                   CT:    NIfTI {ct_file.stat().st_size / 1e6:8.2f} MB   "
              f"store {img_bytes / 1e6:6.2f} MB   ratio {ct_file.stat().st_size / img_bytes:6.1f}x")

        reader = ArrayStore(tmp / "arrays.zarr", mode="r")
        reader.structures("train_1_a_1.nii.gz")  # open the case once, as a data loader does
        step = max(1, len(nonempty) // args.crop_sample) if args.crop_sample else 1
        crop_names = set(sorted(nonempty, key=lambda n: parts[n][1].sum())[::step])
        wall: dict[str, list[float]] = {k: [] for k in ("nib_mask", "mask", "nib_crop", "crop", "cold_mask")}
        cpu: dict[str, list[float]] = {k: [] for k in wall}

        def measure(key: str, fn, *a):  # wall time, and CPU time of all threads (robust to a busy machine)
            t, c = time.perf_counter(), time.process_time()
            out = fn(*a)
            wall[key].append(time.perf_counter() - t)
            cpu[key].append(time.process_time() - c)
            return out

        # One pass per reader (each in its steady state, as a loader reading many regions is), over
        # the same structures; results are compared, outside the timings, through digests.
        def digest(*arrays: np.ndarray) -> bytes:
            return b"".join(hashlib.sha1(np.packbits(x != 0) if x.dtype == bool or x.dtype == np.uint8
                                         else x.tobytes()).digest() + repr(x.shape).encode() for x in arrays)

        want, got = {}, {}
        for n in nonempty:
            want[n] = digest(measure("nib_mask", lambda f: np.asanyarray(nib.load(f).dataobj), mdir / f"{n}.nii.gz"))
        for n in nonempty:
            got[n] = digest(measure("mask", reader.region_mask, "train_1_a_1.nii.gz", n)[0])
        for n in nonempty:
            got[n, "crop"] = digest(*measure("crop", reader.region_crop, "train_1_a_1.nii.gz", n, 10.0)[:2])
        for n in sorted(crop_names):
            measure("cold_mask", lambda name: ArrayStore(tmp / "arrays.zarr", "r").region_mask(
                "train_1_a_1.nii.gz", name), n)
        for n in sorted(crop_names):
            want[n, "crop"] = digest(*measure("nib_crop", nib_crop, mdir / f"{n}.nii.gz", ct_file, 10.0))
        mismatches = sum(want[k] != got[k] for k in want)
        if args.quick:
            print("\n(--quick: a grid of 1/8 the voxels; the goals are set for RadGenome's 480x480x240 grid)")
        for label, times in (("wall", wall), ("CPU", cpu)):
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"\nmedian {label} time over {len(nonempty)} non-empty structures (bit-exact mismatches: "
                  f"{mismatches})")
            print(f"  mask:  nibabel {med['nib_mask'] * 1e3:8.1f} ms   store {med['mask'] * 1e3:7.1f} ms   "
                  f"ratio {med['nib_mask'] / med['mask']:6.1f}x   (goal >= 10x)")
            print(f"         store opened afresh for each read {med['cold_mask'] * 1e3:7.1f} ms   "
                  f"ratio {med['nib_mask'] / med['cold_mask']:6.1f}x   (on the crop sample)")
            print(f"  crop:  nibabel {med['nib_crop'] * 1e3:8.1f} ms   store {med['crop'] * 1e3:7.1f} ms   "
                  f"ratio {med['nib_crop'] / med['crop']:6.1f}x   (goal >= 10x; nibabel timed on "
                  f"{len(wall['nib_crop'])} structures spread over sizes)")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


class _Lazy:
    """A mask materialised only when `write_masks` reads it (keeps one full mask in memory)."""

    def __init__(self, part: tuple | None, shape: tuple) -> None:
        self.part, self.shape = part, shape

    @property
    def dataobj(self) -> np.ndarray:
        return full(self.part, self.shape)

    affine = np.eye(4)


if __name__ == "__main__":
    main()
