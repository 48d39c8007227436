"""Synthetic chest CT volumes and their region masks, on a small grid so the demo is fast.

Arrays are in NIfTI voxel order (x, y, z) with an LPS affine like CT-RATE's volumes:
x runs to the patient's left, y to posterior, z to superior. Geometry is written in mm
from the grid centre in those directions. Masks are named as the anatomy DAG names
regions and overlap where RadGenome's do (a lobe, its lung, and the coarse `lung`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

SHAPE = (96, 96, 64)
Point = tuple[float, float, float]


def morph(mask: np.ndarray, iterations: int = 1, *, dilate: bool = False) -> np.ndarray:
    """Binary erosion (or dilation) computed only in the mask's bounding box, grown by `iterations`."""
    out = np.zeros_like(mask)
    found = ndimage.find_objects(mask.view(np.uint8))
    if not found or found[0] is None:
        return out
    sl = tuple(slice(max(s.start - iterations, 0), min(s.stop + iterations, n))
               for s, n in zip(found[0], mask.shape, strict=True))
    op = ndimage.binary_dilation if dilate else ndimage.binary_erosion
    out[sl] = op(mask[sl], iterations=iterations)
    return out


class Grid:
    """Voxel centres in mm from the grid centre (x left, y posterior, z superior), and shape builders."""

    def __init__(self, shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> None:
        self.shape, self.spacing = shape, np.asarray(spacing, dtype=float)
        axes = [((np.arange(n) - (n - 1) / 2) * s).astype(np.float32) for n, s in zip(shape, spacing, strict=True)]
        self.x, self.y, self.z = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]

    def affine(self, z_origin_mm: float) -> np.ndarray:
        """LPS affine (RAS world, as nibabel reads it): voxel (0, 0, 0) at the patient's right-anterior-inferior."""
        sx, sy, sz = self.spacing
        nx, ny, _ = self.shape
        return np.array([[-sx, 0, 0, sx * (nx - 1) / 2], [0, -sy, 0, sy * (ny - 1) / 2],
                         [0, 0, sz, z_origin_mm], [0, 0, 0, 1]], dtype=float)

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, ...] | None:
        """Index slices of the voxels whose centres lie within [lo, hi] mm; None when outside the grid."""
        half = (np.asarray(self.shape) - 1) / 2
        a = np.maximum(np.ceil(np.asarray(lo) / self.spacing + half), 0).astype(int)
        b = np.minimum(np.floor(np.asarray(hi) / self.spacing + half), np.asarray(self.shape) - 1).astype(int)
        return None if np.any(b < a) else tuple(slice(i, j + 1) for i, j in zip(a, b, strict=True))

    def ellipsoid(self, c: Point, r: Point, out: np.ndarray | None = None) -> np.ndarray:
        """Voxels inside an axis-aligned ellipsoid (or'ed into `out`)."""
        out = np.zeros(self.shape, bool) if out is None else out
        c_, r_ = np.asarray(c, float), np.asarray(r, float)
        sl = self.box(c_ - r_, c_ + r_)
        if sl is not None:
            d = (((self.x[sl[0]] - c_[0]) / r_[0]) ** 2 + ((self.y[:, sl[1]] - c_[1]) / r_[1]) ** 2
                 + ((self.z[:, :, sl[2]] - c_[2]) / r_[2]) ** 2)
            out[sl] |= d <= 1
        return out

    def tube(self, points: list[Point], radius: float, out: np.ndarray | None = None) -> np.ndarray:
        """Voxels within `radius` mm of a polyline (a union of capsules, each computed in its box)."""
        out = np.zeros(self.shape, bool) if out is None else out
        pts = np.asarray(points, float)
        for p0, p1 in zip(pts[:-1], pts[1:], strict=True):
            sl = self.box(np.minimum(p0, p1) - radius, np.maximum(p0, p1) + radius)
            if sl is None:
                continue
            v = p1 - p0
            px, py, pz = self.x[sl[0]] - p0[0], self.y[:, sl[1]] - p0[1], self.z[:, :, sl[2]] - p0[2]
            t = np.clip((px * v[0] + py * v[1] + pz * v[2]) / max(float(v @ v), 1e-9), 0, 1)
            out[sl] |= (px - t * v[0]) ** 2 + (py - t * v[1]) ** 2 + (pz - t * v[2]) ** 2 <= radius ** 2
        return out

    def random_voxel(self, mask: np.ndarray, rng: np.random.Generator, margin_mm: float = 0.0) -> Point | None:
        """The mm position of a random voxel at least `margin_mm` inside `mask` (None if there is none)."""
        inner = mask
        if margin_mm > 0:
            inner = morph(mask, max(1, int(np.ceil(margin_mm / self.spacing.min()))))
        idx = np.flatnonzero(inner if inner.any() else mask)
        if idx.size == 0:
            return None
        i, j, k = np.unravel_index(int(idx[int(rng.integers(idx.size))]), self.shape)
        return float(self.x[i, 0, 0]), float(self.y[0, j, 0]), float(self.z[0, 0, k])


@dataclass(frozen=True)
class Body:
    """A patient's build: sizes in mm and scale factors, drawn once per patient."""

    scale: float        # overall chest size
    fat: float          # subcutaneous fat thickness
    heart: float        # heart size factor
    y0: float           # body centre, posterior of the grid centre
    female: bool

    @classmethod
    def draw(cls, rng: np.random.Generator, sex: str) -> Body:
        return cls(scale=float(rng.uniform(0.9, 1.06)), fat=float(rng.uniform(6, 20)),
                   heart=float(rng.uniform(0.9, 1.05)), y0=float(rng.uniform(5, 12)), female=sex == "F")


def vertebra_z(k: int) -> tuple[float, float]:
    """(bottom, top) z in mm of vertebra k (1 = T1 ... 12 = T12, 13 = L1)."""
    top = 140.0 - 23.0 * (k - 1)
    return top - 18.0, top


VERTEBRAE = {**{k: f"thoracic vertebrae {k} (t{k})" for k in range(1, 13)}, 13: "lumbar vertebrae 1 (l1)"}


def rib_path(n: int, side: int, body: Body) -> list[Point]:
    """Rib n (1-12) of one side (-1 right, +1 left) from its vertebra around the chest wall, descending."""
    z0 = float(np.mean(vertebra_z(n)))
    a_in, b_in = float(half_width(body, z0)) - body.fat - 12, 112 * body.scale - body.fat - 12
    w = 0.55 + 0.45 * min(1.0, (n - 1) / 4)
    end = np.radians({11: 5, 12: 20}.get(n, -70 if n <= 7 else -40))
    phis = np.linspace(np.radians(70), end, 9)
    pts = [(side * 22.0, body.y0 + 55.0, z0)]
    for t, phi in zip(np.linspace(0.1, 1, len(phis)), phis, strict=True):
        pts.append((side * a_in * w * float(np.cos(phi)), body.y0 + b_in * float(np.sin(phi)),
                    z0 - (30 + 3 * n) * float(t) ** 1.2))
    return pts


def half_width(body: Body, z: np.ndarray | float) -> np.ndarray:
    """Left-right half width of the body at height z (narrower towards the neck)."""
    return 150 * body.scale * (1 - 0.22 * np.clip((np.asarray(z) - 100) / 57, 0, 1))


def anatomy_masks(g: Grid, body: Body, cardiomegaly: bool = False) -> tuple[dict[str, np.ndarray], dict]:
    """The healthy anatomy: masks by DAG region name, and the shapes lesions are placed against."""
    s, y0 = body.scale, body.y0
    a, b = half_width(body, g.z), 112 * s
    a_in, b_in = a - body.fat - 19, b - body.fat - 19
    m: dict[str, np.ndarray] = {}
    ell = lambda ax, by: (g.x / ax) ** 2 + ((g.y - y0) / by) ** 2 <= 1  # noqa: E731
    body_m, cavity = ell(a, b), ell(a_in, b_in)
    diaphragm = -50 - 0.004 * (np.abs(g.x) - 70) ** 2 - 0.003 * (g.y - y0) ** 2 - 8 * (g.x > 0)
    below = g.z < diaphragm
    # airways, vessels, esophagus, thyroid
    m["trachea"] = g.tube([(0, -12, 160), (0, -2, 90), (0, 8, 45)], 10)
    m["bronchie"] = g.tube([(0, 8, 45), (-38, 18, 22), (-60, 25, 0)], 6.5)
    for path in ([(-38, 18, 22), (-55, -5, 30)], [(0, 8, 45), (40, 22, 15), (62, 30, -10)],
                 [(40, 22, 15), (55, 0, 25)]):
        g.tube(path, 5.5, m["bronchie"])
    hf = body.heart * (1.22 if cardiomegaly else 1.0)
    m["heart"] = g.ellipsoid((18, y0 - 32, -52), (58 * hf, 46 * hf, 44 * hf))
    m["aorta"] = g.tube([(5, y0 - 25, -20), (0, y0 - 25, 50), (15, y0 - 15, 72)], 13 * s)
    g.tube([(15, y0 - 15, 72), (28, y0 + 10, 70), (28, y0 + 38, 50), (28, y0 + 38, -160)], 11 * s, m["aorta"])
    m["superior vena cava"] = g.tube([(-24, y0 - 18, 110), (-22, y0 - 16, 0)], 9)
    m["esophagus"] = g.tube([(4, 28, 160), (6, 30, 90), (12, 33, 40), (20, 28, -40), (32, 18, -85)], 8)
    m["right thyroid"] = g.ellipsoid((-17, -18, 135), (8, 10, 18))
    m["left thyroid"] = g.ellipsoid((17, -18, 135), (8, 10, 18))
    m["thyroid gland"] = g.ellipsoid((0, -24, 128), (14, 5, 6)) | m["right thyroid"] | m["left thyroid"]
    m["thyroid"] = m["thyroid gland"].copy()
    # skeleton
    canal = g.tube([(0, y0 + 82, 170), (0, y0 + 82, -170)], 8)
    for k, name in VERTEBRAE.items():
        lo, hi = vertebra_z(k)
        level = (g.z >= lo) & (g.z <= hi)
        vb = ((g.x / 18) ** 2 + ((g.y - y0 - 58) / 15) ** 2 <= 1) & level
        arch = ((g.x ** 2 + (g.y - y0 - 82) ** 2 <= 13 ** 2) | ((np.abs(g.x) <= 4) & (g.y > y0 + 82)
                                                                & (g.y < y0 + 100))) & level & ~canal
        m[name] = vb | arch
    for n in range(1, 13):
        for side, name in ((-1, "right"), (1, "left")):
            m[f"{name} rib {n}"] = g.tube(rib_path(n, side, body), 5)
    front = y0 - b_in
    m["sternum"] = (np.abs(g.x) <= 14) & (g.y >= front + 2) & (g.y <= front + 14) & (g.z >= -75) & (g.z <= 95)
    m["manubrium of sternum"] = m["sternum"] & (g.z >= 60)
    m["spinal canal"] = canal & (g.z <= 150)
    bones = [k for k in m if " rib " in k or "vertebrae" in k or k == "sternum"]
    m["bone"] = np.logical_or.reduce([m[k] for k in bones])
    # abdomen
    heart_zone = g.ellipsoid((18, y0 - 32, -52), (58 * hf + 8, 46 * hf + 8, 44 * hf + 8))
    m["liver"] = g.ellipsoid((-40, y0 + 5, -130), (100 * s, 85 * s, 70)) & below & cavity & ~heart_zone
    m["spleen"] = g.ellipsoid((80 * s, y0 + 45, -115), (28, 38, 45)) & below & cavity
    m["abdomen"] = below & cavity & ~heart_zone & ~m["bone"] & ~m["aorta"]
    # lungs: two ellipsoids in the chest cavity minus the mediastinum and everything in it
    occupied = heart_zone | m["aorta"] | m["superior vena cava"] | m["esophagus"] | m["trachea"] | m["bone"]
    occupied |= ndimage.binary_dilation(occupied, iterations=1) | ((np.abs(g.x) < 22) & (g.y < y0 + 45))
    occupied |= (np.abs(g.x) < 34) & (g.y > y0 + 38)  # the spine's gutter
    chest = cavity & ~below & ~occupied & (g.z < 150)
    right = g.ellipsoid((-68 * s, y0 + 2, 10), (66 * s, 110 * s, 132)) & chest & (g.x < 0)
    left = g.ellipsoid((68 * s, y0 + 2, 5), (66 * s, 110 * s, 130)) & chest & (g.x > 0)
    lower = g.z < 0.75 * (g.y - y0) + 5
    m["right lung lower lobe"] = right & lower
    m["right lung middle lobe"] = right & ~lower & (g.z < 5) & (g.y < y0 + 30)
    m["right lung upper lobe"] = right & ~m["right lung lower lobe"] & ~m["right lung middle lobe"]
    m["left lung lower lobe"] = left & lower
    m["left lung upper lobe"] = left & ~lower
    m["right lung"], m["left lung"] = right, left
    m["lung"] = right | left
    m["mediastinum"] = cavity & ~m["lung"] & ~m["bone"] & ~below & (np.abs(g.x) < 60) & (g.y < y0 + 45) & (g.z < 125)
    m["mediastinum"] |= m["heart"]
    m["trachea and bronchie"] = m["trachea"] | m["bronchie"]
    m["pleura"] = morph(m["lung"], dilate=True) & ~m["lung"] & cavity & ~m["bone"]
    breast_c = ((-65, y0 - b - (12 if body.female else 0), -30), (65, y0 - b - (12 if body.female else 0), -30))
    radii = (45, 30, 42) if body.female else (32, 9, 30)
    m["right breast"], m["left breast"] = (g.ellipsoid(c, radii) & ~ell(a - body.fat, b - body.fat) for c in breast_c)
    m["breast"] = m["right breast"] | m["left breast"]
    shapes = {"body": body_m | m["breast"], "muscle_wall": ell(a - body.fat, b - body.fat), "cavity": cavity,
              "heart_zone": heart_zone, "a_in": a_in}
    return m, shapes
