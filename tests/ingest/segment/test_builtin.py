"""The built-in CPU segmenter: a synthetic chest with known truth, and the real CTs."""

from __future__ import annotations

import glob
import time

import nibabel as nib
import numpy as np
import pytest

from ingest.images import CTImage, read_ct, to_lps
from ingest.segment import make_segmenter
from ingest.segment.builtin import BuiltinSegmenter
from tests.fixtures.folder_data import ct_path


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(1, int(a.sum() + b.sum()))


def _tube(shape, spacing, start_mm, end_mm, radius_mm) -> np.ndarray:
    """Voxels within `radius_mm` of the segment start -> end (mm coordinates of voxel indices)."""
    grid = np.stack(np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij"), -1)
    a, b = np.asarray(start_mm, float), np.asarray(end_mm, float)
    t = np.clip(((grid - a) @ (b - a)) / float((b - a) @ (b - a)), 0, 1)
    return np.linalg.norm(grid - (a + t[..., None] * (b - a)), axis=-1) <= radius_mm


def synthetic_chest(seed: int = 0) -> tuple[CTImage, dict[str, np.ndarray]]:
    """A 2 mm chest on an L, P, S grid: body, two lungs with vessels, trachea, carina, bronchi, bowel gas."""
    rng = np.random.default_rng(seed)
    shape, sp = (110, 80, 90), (2.0, 2.0, 2.0)
    x, y, z = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, sp, strict=True)], indexing="ij")
    body = ((x - 110) / 100) ** 2 + ((y - 80) / 70) ** 2 <= 1
    right = ((x - 70) / 38) ** 2 + ((y - 75) / 45) ** 2 + ((z - 95) / 70) ** 2 <= 1  # low x: patient's right
    left = ((x - 150) / 36) ** 2 + ((y - 75) / 45) ** 2 + ((z - 95) / 70) ** 2 <= 1
    right &= z >= 40
    left &= z >= 40
    trachea = _tube(shape, sp, (110, 60, 178), (110, 60, 130), 8)
    bronchi = _tube(shape, sp, (110, 60, 130), (80, 65, 110), 5) | _tube(shape, sp, (110, 60, 130), (140, 65, 110), 5)
    gas = ((x - 120) / 15) ** 2 + ((y - 60) / 12) ** 2 + ((z - 20) / 10) ** 2 <= 1
    hu = np.where(body, 40, -1000).astype(np.float64)
    hu[right | left] = -850
    vessels = (rng.random(shape) < 0.004) & (right | left)
    hu[vessels] = 40
    hu[trachea | bronchi | gas] = -1000
    hu += rng.normal(0, 15, shape)
    hu = np.clip(np.rint(hu), -1024, 3000).astype(np.int16)
    affine = np.diag([-sp[0], -sp[1], sp[2], 1.0])
    img = CTImage(hu=hu, affine=affine, original_axcodes=("L", "P", "S"), original_shape=shape,
                  original_affine=affine, path="synthetic", format="nifti")
    truth = {"body": body, "left lung": left & ~bronchi, "right lung": right & ~bronchi, "trachea": trachea,
             "bronchie": bronchi & ~trachea, "gas": gas}
    return img, truth


def test_synthetic_chest_has_every_structure_in_place():
    img, truth = synthetic_chest()
    seg = BuiltinSegmenter().segment("synthetic", img)
    assert seg.mask_source == "builtin" and set(seg.masks) == {"body", "left lung", "right lung", "trachea",
                                                                "bronchie"}
    assert dice(seg.masks["body"], truth["body"]) > 0.98
    assert dice(seg.masks["left lung"], truth["left lung"]) > 0.93
    assert dice(seg.masks["right lung"], truth["right lung"]) > 0.93
    assert not (seg.masks["left lung"] | seg.masks["right lung"])[truth["gas"]].any()  # bowel gas is not lung
    assert dice(seg.masks["trachea"], truth["trachea"]) > 0.7
    bronchi = seg.masks["bronchie"]
    assert bronchi.sum() > 0 and (bronchi & truth["bronchie"]).sum() / bronchi.sum() > 0.7
    assert seg.regions() == ["body", "bronchie", "left lung", "right lung", "trachea"]


def test_no_airway_is_invented_without_a_carina():
    img, truth = synthetic_chest()
    img.hu[truth["trachea"] | truth["bronchie"]] = 40  # no airway at all (the lungs stay apart)
    seg = BuiltinSegmenter().segment("x", img)
    assert not seg.masks["trachea"].any() and not seg.masks["bronchie"].any()
    assert dice(seg.masks["left lung"], truth["left lung"]) > 0.9


@pytest.fixture(scope="module")
def real(shared_data):
    out = {}
    for name in ("abdomen_small", "chest_cta", "lung1"):
        img = read_ct(ct_path(shared_data, name))
        t0 = time.process_time()
        seg = make_segmenter("builtin").segment(name, img)
        out[name] = (img, seg.masks, time.process_time() - t0)
    return out


def test_lungs_match_totalsegmentator_on_abdomen_small(real, shared_data):
    img, masks, _ = real["abdomen_small"]
    ts = nib.load(ct_path(shared_data, "abdomen_small"))

    def union(pattern: str) -> np.ndarray:
        files = glob.glob(str(shared_data / "ct/abdomen_small/masks" / pattern))
        return to_lps(sum(np.asanyarray(nib.load(f).dataobj) > 0 for f in files) > 0, ts.affine)[0]

    both = dice(masks["left lung"] | masks["right lung"], union("lung_*"))
    assert both >= 0.90, f"Dice {both:.3f}"
    assert dice(masks["left lung"], union("lung_*_left.nii.gz")) >= 0.88
    assert dice(masks["right lung"], union("lung_*_right.nii.gz")) >= 0.88
    assert not masks["trachea"].any()  # the lung bases: no trachea in the scan


@pytest.mark.parametrize("name", ["chest_cta", "lung1"])
def test_both_lungs_and_the_trachea_on_chest_scans(real, name):
    img, masks, cpu_s = real[name]
    ml = float(np.prod(img.spacing)) / 1000
    left, right = masks["left lung"].sum() * ml, masks["right lung"].sum() * ml
    assert 700 < left < 3500 and 700 < right < 3500, (left, right)
    assert 1.0 < right / left < 1.8  # the right lung is the larger (three lobes)
    cx = {s: (img.affine @ np.r_[np.argwhere(masks[f"{s} lung"]).mean(0), 1])[0] for s in ("left", "right")}
    assert cx["left"] < cx["right"]  # RAS world: the patient's left is -x
    assert not (masks["left lung"] & masks["right lung"]).any()
    trachea = masks["trachea"].sum() * ml
    assert 5 < trachea < 60, trachea
    zs = np.argwhere(masks["trachea"])[:, 2]
    lungs_z = np.argwhere(masks["left lung"])[:, 2]
    assert zs.min() > np.percentile(lungs_z, 50)  # above the middle of the lungs
    assert masks["bronchie"].any()
    assert cpu_s < 15, f"{cpu_s:.1f} s CPU"
