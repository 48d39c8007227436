"""Hounsfield units for the demo's anatomy, and its planned findings drawn into the volume.

Tissues get plausible CT numbers (air -1000, lung about -850 with vessels, fat -100,
soft tissue 40, contrast-filled heart and aorta about 250, bone 300-900); a finding
placed in a region is drawn there at its stated size (a 7 mm nodule is a 7 mm ball in
that lobe), so what a report says can be checked against the image and its masks.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ingest.sources.demo_report import PlannedFinding
from ingest.sources.demo_volume import VERTEBRAE, Body, Grid, morph, rib_path, vertebra_z

LUNG_FAMILY = ("lung", "left lung", "right lung", "right lung upper lobe", "right lung middle lobe",
               "right lung lower lobe", "left lung upper lobe", "left lung lower lobe")
UNIONS = {"lung upper lobe": ("right lung upper lobe", "left lung upper lobe"),
          "lung lower lobe": ("right lung lower lobe", "left lung lower lobe")}


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-smoothed noise scaled to unit standard deviation."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma)
    return f / max(float(f.std()), 1e-6)


def _shell(mask: np.ndarray) -> np.ndarray:
    return mask & ~morph(mask)


def paint_tissues(g: Grid, m: dict[str, np.ndarray], shapes: dict, rng: np.random.Generator, *,
                  contrast: bool, steatosis: bool, female: bool) -> np.ndarray:
    """Float HU of the healthy anatomy (before findings, blur and noise)."""
    hu = np.full(g.shape, -1000.0, np.float32)
    hu[shapes["body"]] = -100
    hu[shapes["muscle_wall"]] = 45
    hu[shapes["cavity"]] = -80
    hu[m["abdomen"]] = 30
    hu[m["liver"]] = -15 if steatosis else (105 if contrast else 58)
    hu[m["spleen"]] = 115 if contrast else 48
    vessels = _smooth_noise(rng, g.shape, 1.0) > 1.8
    hu[m["lung"]] = -860
    hu[m["lung"] & vessels] = 150 if contrast else 35
    for name, plain, enhanced in (("heart", 42, 260), ("aorta", 42, 280), ("superior vena cava", 40, 200),
                                  ("esophagus", 35, 45), ("thyroid gland", 95, 140)):
        hu[m[name]] = enhanced if contrast else plain
    if contrast:
        hu[_shell(m["heart"])] = 45
    airway = m["trachea and bronchie"]
    hu[airway] = 30
    hu[morph(airway)] = -1000
    hu[m["spinal canal"]] = 15
    axial = np.logical_or.reduce([m[name] for name in [*VERTEBRAE.values(), "sternum"]])
    hu[axial] = 300
    hu[_shell(axial)] = 900
    for name in m:
        if " rib " in name:
            hu[m[name]] = 700
    if female:
        hu[morph(m["breast"], 2)] = 25
    return hu


def draw_findings(g: Grid, m: dict[str, np.ndarray], hu: np.ndarray, plan: list[PlannedFinding], body: Body,
                  rng: np.random.Generator) -> None:
    """Draw each planned finding into `hu` and update the masks it changes (in place)."""
    m["lung nodule"] = np.zeros(g.shape, bool)
    m["lung effusion"] = np.zeros(g.shape, bool)
    removed = np.zeros(g.shape, bool)  # voxels no longer aerated lung
    for p in plan:
        region = m[p.region] if p.region in m else np.logical_or.reduce([m[r] for r in UNIONS.get(p.region, ())])
        key = p.key
        if key == "nodule":
            sizes = [p.size_mm] if p.size_mm else list(rng.uniform(3, 5, size=3))
            for d in sizes:
                c = g.random_voxel(region, rng, margin_mm=d / 2 + 4)
                if c is not None:
                    ball = g.ellipsoid(c, (max(d / 2, 1.0),) * 3)
                    hu[ball] = 35
                    m["lung nodule"] |= ball
        elif key in ("ground_glass", "consolidation"):
            r = p.size_mm / 2 if p.size_mm else float(rng.uniform(14, 26))
            c = g.random_voxel(region, rng, margin_mm=6)
            if c is not None:
                hu[g.ellipsoid(c, (r, r * 0.8, r)) & region] = -600 if key == "ground_glass" else 25
        elif key == "emphysema":
            hu[region & (_smooth_noise(rng, g.shape, 1.2) > 0.9)] = -975
        elif key == "mosaic":
            f = _smooth_noise(rng, g.shape, 4.0)
            hu[region & (f > 0) & (hu < -700)] -= 80
        elif key == "atelectasis":
            c = g.random_voxel(region, rng, margin_mm=4)
            if c is not None:
                band = region & (np.abs(g.z - c[2]) <= 4) & ((g.x - c[0]) ** 2 + (g.y - c[1]) ** 2 <= 40 ** 2)
                hu[band] = 5
        elif key == "fibrotic":
            top = float(g.z[0, 0, np.flatnonzero(region.any(axis=(0, 1)))].max()) if region.any() else 0
            hu[region & (g.z > top - 35) & (_smooth_noise(rng, g.shape, 0.8) > 1.0)] = -250
        elif key == "pleural_effusion":
            sides = {"right": ("right lung",), "left": ("left lung",)}.get(p.laterality or "",
                                                                           ("right lung", "left lung"))
            for side in sides:
                fluid = _dependent_layer(g, m[side], p.size_mm or 12.0) & (g.z < 40)
                hu[fluid] = 12
                m["lung effusion"] |= fluid
                removed |= fluid
        elif key == "pericardial_effusion":
            t = p.size_mm or 6.0
            shell = morph(m["heart"], max(1, round(t / g.spacing[0])), dilate=True) & ~m["heart"]
            shell &= ~m["bone"] & ~m["aorta"]
            hu[shell] = 10
            removed |= shell
        elif key == "aortic_calcification":
            _spots(g, hu, _shell(m["aorta"]) & (g.z > -100), rng, 5, 3.0, 900)
        elif key == "coronary_calcification":
            heart = m["heart"]
            cy = float(np.mean(np.nonzero(heart.any(axis=(0, 2)))[0]))
            front = _shell(heart) & (np.arange(g.shape[1])[None, :, None] < cy)
            _spots(g, hu, front, rng, 4, 3.0, 700)
        elif key == "hiatal_hernia":
            sac = g.ellipsoid((30, 20, -58), (20, 18, 16))
            hu[sac] = 25
            hu[sac & (g.z > -56)] = -800
            removed |= sac
        elif key == "lymphadenopathy":
            d = p.size_mm or 12.0
            hu[g.ellipsoid((-12 - d / 2, 2, 62), (d / 2,) * 3)] = 40
        elif key == "catheter":
            hu[g.tube([(-35, body.y0 - 20, 170), (-24, body.y0 - 18, 110), (-22, body.y0 - 16, -5)], 2.5)] = 2000
        elif key == "thyroid_nodule":
            d = p.size_mm or 8.0
            hu[g.ellipsoid((17 if p.region.startswith("left") else -17, -18, 135), (d / 2,) * 3)] = 25
        elif key == "osteophytes":
            for k in sorted(rng.choice(np.arange(4, 12), size=3, replace=False)):
                spur = g.ellipsoid((19 * float(rng.choice([-1, 1])), body.y0 + 48, vertebra_z(int(k))[0]), (5, 5, 5))
                hu[spur] = 750
                m[VERTEBRAE[int(k)]] |= spur
                m["bone"] |= spur
        elif key == "rib_fracture":
            side, _, n = p.region.split(" ")
            c = rib_path(int(n), -1 if side == "right" else 1, body)[4]
            callus = g.ellipsoid(c, (7, 7, 7))
            hu[callus] = 850
            m[p.region] |= callus
            m["bone"] |= callus
        elif key == "gynecomastia":
            hu[m["breast"]] = 25
        # bronchiectasis, peribronchial and septal thickening are reported only (not drawn at 4 mm)
    for name in LUNG_FAMILY:
        m[name] &= ~removed
    m["pleura"] |= m["lung effusion"]


def _dependent_layer(g: Grid, lung: np.ndarray, thickness_mm: float) -> np.ndarray:
    """The posterior (dependent) layer of a lung, `thickness_mm` deep along y, following its wall."""
    j = np.arange(g.shape[1])[None, :, None]
    back = np.where(lung, j, -1).max(axis=1, keepdims=True)
    return lung & (j > back - thickness_mm / g.spacing[1])


def _spots(g: Grid, hu: np.ndarray, where: np.ndarray, rng: np.random.Generator, n: int, r: float,
           value: float) -> None:
    for _ in range(n):
        c = g.random_voxel(where, rng)
        if c is not None:
            hu[g.ellipsoid(c, (r, r, r))] = value


def finish(hu: np.ndarray, rng: np.random.Generator, noise_sd: float) -> np.ndarray:
    """Partial-volume blur, scanner noise, and int16 HU clipped to the CT range."""
    out = ndimage.gaussian_filter(hu, 0.5)
    out += rng.normal(0.0, noise_sd, size=hu.shape).astype(np.float32)
    return np.clip(np.rint(out), -1024, 3071).astype(np.int16)
