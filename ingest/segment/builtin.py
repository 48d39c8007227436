"""The built-in CPU segmenter: body, left and right lung, trachea and main bronchi, with no weights.

Steps, all in millimetres so that they hold for any spacing:

1. **body**: above -500 HU, opened in-plane with a 4 mm disk (the table comes off), the
   largest connected component, holes filled slice by slice.
2. **airways**: a seed in the upper slices (an air region of 0.5-8 cm2 near the body's
   midline), grown in 3-D below -950 HU (lowered while the growth leaks into the lungs).
   Going down from the seed, the first slice where the airway splits into two branches
   that each lead on to at least 1 ml is the carina: above it lies the **trachea**;
   airway within 45 mm (geodesic) below it is the **main bronchi** (`bronchie`). A tube
   that never branches (oesophageal or bowel gas) is not taken for the trachea.
3. **lungs**: air inside the body (below -500 HU) minus the airways, in components whose
   median is above -950 HU (lung parenchyma; bowel gas is darker and is dropped). A
   component holding both lungs is split by erosion; each part is left or right by its
   world position against the body's midline. Vessels are filled in slice by slice and
   the surface closed with a 3 mm ball.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage as ndi

from ingest.images import CTImage
from ingest.segment.base import Segmentation, Segmenter

# thresholds, not the HU of air itself (that is `warehouse.core.grid.AIR_HU`, -1024)
BODY_ABOVE_HU, AIR_BELOW_HU, LUMEN_HU, GAS_MEDIAN_HU = -500, -500, -950, -950
MIN_LUNG_ML, MIN_LUNG_FRACTION, BRONCHI_MM, CLOSE_MM = 2.0, 0.1, 45.0, 3.0


def _largest(mask: np.ndarray) -> np.ndarray:
    lab, n = ndi.label(mask)
    if n <= 1:
        return mask.astype(bool)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def _fill_slices(mask: np.ndarray) -> np.ndarray:
    out = np.empty_like(mask, dtype=bool)
    for k in range(mask.shape[2]):
        out[:, :, k] = ndi.binary_fill_holes(mask[:, :, k])
    return out


def _ball(radius_mm: float, spacing: tuple[float, ...]) -> np.ndarray:
    r = [max(0, int(round(radius_mm / s))) for s in spacing]
    grids = np.ogrid[tuple(slice(-v, v + 1) for v in r)]
    return sum((g / max(v, 1)) ** 2 for g, v in zip(grids, r, strict=True)) <= 1.0


def body_mask(hu: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """The patient: largest component above -500 HU after a 4 mm in-plane opening (drops the table), filled."""
    disk = _ball(4.0, (*spacing[:2], np.inf))
    return _fill_slices(_largest(ndi.binary_opening(hu > BODY_ABOVE_HU, disk)))


def _trachea_seed(hu: np.ndarray, body: np.ndarray, spacing: tuple[float, ...]) -> tuple[int, int, int] | None:
    """A voxel inside the trachea: in the highest slice that has one, the air region of 0.5-8 cm2
    nearest the body's left-right midline (within 30 mm)."""
    px_cm2 = spacing[0] * spacing[1] / 100.0
    mid_x = float(np.nonzero(body.any(axis=(1, 2)))[0].mean())
    best, best_score = None, np.inf
    top = hu.shape[2] - 1
    for k in range(top, max(-1, top - int(120 / spacing[2])), -1):
        air = (hu[:, :, k] < LUMEN_HU + 50) & body[:, :, k]
        lab, n = ndi.label(air)
        if n == 0:
            continue
        idx = np.arange(1, n + 1)
        areas = ndi.sum_labels(air, lab, idx) * px_cm2
        for i, (cx, _) in zip(idx, ndi.center_of_mass(air, lab, idx), strict=True):
            dx_mm = abs(cx - mid_x) * spacing[0]
            if 0.5 <= areas[i - 1] <= 8.0 and dx_mm < min(30.0, best_score):
                voxels = np.argwhere(lab == i)
                best, best_score = (*(int(v) for v in voxels[len(voxels) // 2]), k), dx_mm
        if best is not None:
            return best  # type: ignore[return-value]
    return None


def airways(hu: np.ndarray, body: np.ndarray, spacing: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(trachea, main bronchi) masks; empty when the scan shows no trachea."""
    empty = np.zeros(hu.shape, bool)
    seed = _trachea_seed(hu, body, spacing)
    if seed is None:
        return empty, empty
    vox_ml = float(np.prod(spacing)) / 1000.0
    tree = empty
    for thr in (LUMEN_HU, LUMEN_HU - 20, LUMEN_HU - 35, LUMEN_HU - 45):
        lab, _ = ndi.label(hu < thr)
        tree = lab == lab[seed]
        if tree.sum() * vox_ml < 250:  # trachea and bronchi: tens of ml; lungs: litres
            break
    else:
        return empty, empty
    carina = _carina(tree, seed, spacing)
    if carina is None:  # a tube that never branches is not the trachea (oesophageal or bowel gas)
        return empty, empty
    trachea = tree.copy()
    trachea[:, :, :carina] = False
    lab, _ = ndi.label(trachea)
    trachea = lab == lab[seed]
    box = _pad_box(tree, 1)
    trachea[box] = _fill_slices(trachea[box])  # noise voxels above the lumen threshold leave holes
    bronchi = _within_geodesic(tree & ~trachea, trachea, spacing, BRONCHI_MM)
    bronchi[box] = _fill_slices(bronchi[box]) & ~trachea[box]
    return trachea, bronchi


def _carina(tree: np.ndarray, seed: tuple[int, int, int], spacing: tuple[float, ...]) -> int | None:
    """The highest slice where the airway that comes down from the seed splits into two branches
    that each lead on to a bronchial tree of at least 1 ml (blind pouches of the larynx do not)."""
    min_vox = 1000.0 / float(np.prod(spacing))
    box = ndi.find_objects(tree.astype(np.uint8))[0]
    sub, (sx, sy, sz) = tree[box], (seed[0] - box[0].start, seed[1] - box[1].start, seed[2] - box[2].start)
    for k in range(sz, -1, -1):
        lab, _ = ndi.label(sub[:, :, k:])
        cross = lab[:, :, 0] == lab[sx, sy, sz - k]
        if not cross.any():
            return None
        below, _ = ndi.label(sub[:, :, : k + 1])
        branches = np.unique(below[:, :, k][cross])
        sizes = np.bincount(below.ravel())
        if sum(sizes[b] >= min_vox for b in branches if b) >= 2:
            return k + box[2].start
    return None


def _within_geodesic(region: np.ndarray, start: np.ndarray, spacing: tuple[float, ...], mm: float) -> np.ndarray:
    """Voxels of `region` reachable from `start` through `region` within `mm` millimetres (26-neighbour paths)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    if not region.any() or not start.any():
        return np.zeros_like(region)
    box = _pad_box(region | start, 0)
    sub = region[box] | start[box]
    index = np.full(sub.shape, -1, np.int64)
    points = np.argwhere(sub)
    index[tuple(points.T)] = np.arange(len(points))
    rows, cols, weights = [], [], []
    for off in itertools.product((-1, 0, 1), repeat=3):
        if off <= (0, 0, 0):  # each neighbour pair once
            continue
        a = index[tuple(slice(max(0, -o), n - max(0, o)) for o, n in zip(off, sub.shape, strict=True))]
        b = index[tuple(slice(max(0, o), n - max(0, -o)) for o, n in zip(off, sub.shape, strict=True))]
        both = (a >= 0) & (b >= 0)
        rows.append(a[both])
        cols.append(b[both])
        weights.append(np.full(int(both.sum()), float(np.linalg.norm(np.multiply(off, spacing)))))
    graph = coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(len(points), len(points))).tocsr()
    dist = dijkstra(graph, directed=False, indices=index[start[box]], min_only=True, limit=mm + 1e-6)
    out = np.zeros_like(region)
    near = points[np.isfinite(dist) & (dist <= mm)]
    out[tuple((near + [s.start for s in box]).T)] = True
    return out & region


def _split_two(comp: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Labels 1, 2 for a component holding both lungs (erode until it splits), else labels 1 only."""
    eroded = comp
    for _ in range(int(30 / min(spacing)) + 1):
        eroded = ndi.binary_erosion(eroded)
        lab, n = ndi.label(eroded)
        if n == 0:
            break
        if n >= 2:
            sizes = np.bincount(lab.ravel())[1:]
            a, b = np.argsort(-sizes)[:2] + 1
            if sizes[b - 1] >= 0.15 * sizes[a - 1]:
                seeds = np.where(lab == a, 1, 0) + np.where(lab == b, 2, 0)
                idx = ndi.distance_transform_edt(seeds == 0, sampling=spacing, return_distances=False,
                                                 return_indices=True)
                return np.where(comp, seeds[tuple(idx)], 0)
    return comp.astype(np.int64)


def _lung_components(hu: np.ndarray, body: np.ndarray, airway: np.ndarray,
                     spacing: tuple[float, ...]) -> tuple[np.ndarray, list[int]]:
    """Labelled air inside the body (airways cut out) and the labels that are lung, largest first."""
    air = (hu < AIR_BELOW_HU) & body
    if airway.any():
        box = _pad_box(airway, 4)
        air[box] &= ~ndi.binary_dilation(airway[box], _ball(2.0, spacing))
    lab, _ = ndi.label(air)
    sizes = np.bincount(lab.ravel()) * (float(np.prod(spacing)) / 1000.0)
    sizes[0] = 0
    big = [int(i) for i in np.argsort(-sizes, kind="stable") if sizes[i] >= MIN_LUNG_ML]
    return lab, [i for i in big if sizes[i] >= MIN_LUNG_FRACTION * sizes[big[0]]
                 and float(np.median(hu[lab == i])) > GAS_MEDIAN_HU]


def _sides(lab: np.ndarray, keep: list[int], body: np.ndarray, affine: np.ndarray,
           spacing: tuple[float, ...]) -> np.ndarray:
    """1 (left) or 2 (right) for every voxel, decided on a grid of about 3 mm and repeated back."""
    f = tuple(max(1, int(round(3.0 / s))) for s in spacing)
    coarse_spacing = tuple(s * k for s, k in zip(spacing, f, strict=True))
    coarse = lab[:: f[0], :: f[1], :: f[2]]
    parts = np.zeros(coarse.shape, np.int64)
    for n, i in enumerate(keep):  # the largest may hold both lungs: split it
        comp = coarse == i
        parts = np.where(comp, (_split_two(comp, coarse_spacing) if n == 0 else comp) + 10 * (n + 1), parts)
    mid_x = (affine @ np.r_[ndi.center_of_mass(body), 1.0])[0]  # RAS world: +x is the patient's right
    side = np.zeros(parts.shape, np.uint8)
    for p in np.unique(parts[parts > 0]):
        centre = np.asarray(ndi.center_of_mass(parts == p)) * f
        side[parts == p] = 2 if (affine @ np.r_[centre, 1.0])[0] > mid_x else 1
    if not side.any():
        return np.zeros(lab.shape, np.uint8)
    idx = ndi.distance_transform_edt(side == 0, sampling=coarse_spacing, return_distances=False,
                                     return_indices=True)
    side = side[tuple(idx)]
    for axis, k in enumerate(f):
        side = np.repeat(side, k, axis=axis)
    return side[: lab.shape[0], : lab.shape[1], : lab.shape[2]]


def lungs(hu: np.ndarray, body: np.ndarray, airway: np.ndarray, affine: np.ndarray,
          spacing: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(left lung, right lung) masks."""
    lab, keep = _lung_components(hu, body, airway, spacing)
    if not keep:
        empty = np.zeros(hu.shape, bool)
        return empty, empty
    side = _sides(lab, keep, body, affine, spacing)
    cand = np.isin(lab, keep)
    left = _smooth(cand & (side == 1), body, spacing)
    return left, _smooth(cand & (side == 2), body, spacing) & ~left


def _pad_box(mask: np.ndarray, pad: int) -> tuple[slice, ...]:
    box = ndi.find_objects(mask.astype(np.uint8))[0]
    return tuple(slice(max(0, s.start - pad), min(n, s.stop + pad)) for s, n in zip(box, mask.shape, strict=True))


def _smooth(lung: np.ndarray, body: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    if not lung.any():
        return lung
    box = _pad_box(lung, 4)
    sub = ndi.binary_closing(lung[box], _ball(CLOSE_MM, spacing), border_value=0)
    out = np.zeros_like(lung)
    out[box] = _fill_slices(sub | lung[box]) & body[box]
    return out


class BuiltinSegmenter(Segmenter):
    """Body, lungs and airways from HU thresholds, components and morphology (CPU, no weights)."""

    mask_source = "builtin"

    def applies(self, case_id: str) -> bool:
        return True

    def segment(self, case_id: str, image: CTImage) -> Segmentation:
        hu, spacing = image.hu, image.spacing
        body = body_mask(hu, spacing)
        trachea, bronchi = airways(hu, body, spacing)
        left, right = lungs(hu, body, trachea | bronchi, image.affine, spacing)
        masks = {"body": body, "left lung": left, "right lung": right, "trachea": trachea, "bronchie": bronchi}
        return Segmentation(self.mask_source, masks=masks)
