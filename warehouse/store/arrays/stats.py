"""Region statistics from the stored layers: voxels, volume, bounding box, centroid and HU per
region, and one row per ancestor as the union of its descendants' structures."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from warehouse.core.anatomy import Anatomy
from warehouse.core.boxes import union_box
from warehouse.store.arrays.layers import ReadLayer, union_in_box
from warehouse.store.arrays.ome import Structure
from warehouse.store.arrays.parts import pieces


def mask_stats(mask: np.ndarray, lo: tuple[int, int, int], affine: np.ndarray,
               image: np.ndarray | None) -> dict:
    """`region_stats` measures of a boolean mask whose [0,0,0] is voxel `lo` of the grid."""
    # voxels per plane along each axis, in two passes over the bytes (three sums over the
    # boolean mask took 2.5x as long on a RadGenome case)
    ones = mask.view(np.uint8)
    columns = ones.sum(axis=2, dtype=np.int64)
    proj = [columns.sum(axis=1), columns.sum(axis=0), ones.sum(axis=(0, 1), dtype=np.int64)]
    voxels = int(proj[0].sum())
    row: dict = {"voxels": voxels, "volume_ml": voxels * abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0}
    if voxels == 0:
        return row
    nz = [np.flatnonzero(p) for p in proj]
    bmin = [int(lo[i] + nz[i][0]) for i in range(3)]
    bmax = [int(lo[i] + nz[i][-1] + 1) for i in range(3)]
    centroid = np.array([lo[i] + (np.arange(len(p)) * p).sum() / voxels for i, p in enumerate(proj)])
    corners = np.array([[x, y, z, 1.0] for x in (bmin[0], bmax[0] - 1) for y in (bmin[1], bmax[1] - 1)
                        for z in (bmin[2], bmax[2] - 1)]) @ np.asarray(affine, float).T
    world_c = affine[:3, :3] @ centroid + affine[:3, 3]
    for i, a in enumerate("xyz"):
        row[f"bbox_min_{a}"], row[f"bbox_max_{a}"] = bmin[i], bmax[i]
        row[f"bbox_min_mm_{a}"], row[f"bbox_max_mm_{a}"] = float(corners[:, i].min()), float(corners[:, i].max())
        row[f"centroid_mm_{a}"] = float(world_c[i])
    if image is not None:
        hu = image[tuple(slice(lo[i], lo[i] + mask.shape[i]) for i in range(3))][mask]
        row["hu_mean"], row["hu_std"] = float(hu.mean(dtype=np.float64)), float(hu.std(dtype=np.float64))
    return row


def region_stats(case_id: str, mask_source: str, structures: list[Structure], read: ReadLayer,
                 affine: np.ndarray, image: np.ndarray | None, dag: Anatomy,
                 measured: Mapping[str, dict] | None = None) -> list[dict]:
    """One row per region with its own structures, and one per ancestor without, as the union.

    `measured`: `mask_stats` of single structures by name, taken earlier; a region made of
    one of them is not read back from the layers.
    """
    measured = measured or {}
    own: dict[str, list[Structure]] = {}
    for s in structures:
        own.setdefault(s.region, []).append(s)
    ancestors = set().union(*(dag.ancestors(r, include_self=False) for r in own)) - set(own)
    groups = dict(own)
    for a in sorted(ancestors):
        below = dag.descendants(a)
        groups[a] = [s for s in structures if s.region in below]
    rows = []
    for region, group in groups.items():
        box = union_box(s.bbox for s in group)
        row = {"case_id": case_id, "region_id": dag.get(region).region_id, "mask_source": mask_source}
        if box is None:
            row.update(voxels=0, volume_ml=0.0)
        elif len(group) == 1 and group[0].name in measured:
            row.update(measured[group[0].name])
        else:
            row.update(mask_stats(union_in_box(read, pieces(group, structures), box), box[0], affine, image))
        rows.append(row)
    return sorted(rows, key=lambda r: r["region_id"])
