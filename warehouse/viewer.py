"""A picture of one case: axial, coronal and sagittal slices, masks overlaid, the region's sentences beside.

    from warehouse import Warehouse
    from warehouse.viewer import render_case
    render_case(Warehouse.open("wh"), "train_1_a_1.nii.gz", region="left lung", out="case.png")

Slices are shown in the radiological convention whatever the stored orientation: the
patient's right on the image's left, anterior up in axial views, head up in coronal and
sagittal views, with the voxel spacing as the aspect ratio. With a region, the slices
cross its centroid and only the masks under it are drawn; without one, the slices cross
the volume's centre and every stored mask is drawn. Each region keeps its OME-Zarr
colour (`warehouse.store.arrays.ome.region_rgba`), so a picture matches what an OME-Zarr viewer shows.
Rendering uses matplotlib's Agg canvas directly (no pyplot state, safe in workers).
Everything is read through the `Warehouse`: voxels from `wh.arrays`, sentences with SQL.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from warehouse.api import Warehouse
from warehouse.core.anatomy import Region, anatomy
from warehouse.core.errors import ArrayNotFoundError
from warehouse.core.grid import Grid, to_lps
from warehouse.store.arrays.ome import region_rgba

WINDOW = (-1000.0, 400.0)  # HU shown black .. white: lungs and soft tissue both readable
MAX_LEGEND, MAX_MASKS = 16, 60
OUTLINE_ONLY = 0.25  # masks filling more of the volume than this are drawn as outlines only


@dataclass
class Overlay:
    """One region's mask on the display grid."""

    region: Region
    mask: np.ndarray
    rgba: tuple[float, float, float, float]


def region_colour(region_id: int) -> tuple[float, float, float, float]:
    """The region's OME-Zarr colour as 0..1 floats."""
    return tuple(v / 255.0 for v in region_rgba(region_id))  # type: ignore[return-value]


def to_display(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The volume flipped/permuted to L, P, S axis order (the stored order, `warehouse.core.grid.to_lps`)."""
    return to_lps(volume, affine)[0]


def display_spacing(affine: np.ndarray) -> np.ndarray:
    """Voxel spacing along the display (L, P, S) axes."""
    return np.array(Grid((1, 1, 1), affine).to_lps().spacing)  # the spacing does not depend on the shape


def views(volume: np.ndarray, centre: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Axial, coronal and sagittal slices of an L, P, S volume through `centre`, as display rows x columns."""
    i, j, k = centre
    return {"axial": volume[:, :, k].T, "coronal": volume[:, j, ::-1].T, "sagittal": volume[i, :, ::-1].T}


def _overlays(wh: Warehouse, case_id: str, affine: np.ndarray, region: Region | None,
              mask_source: str | None) -> list[Overlay]:
    dag, store = anatomy(), wh.arrays
    structures = [s for s in store.structures(case_id) if mask_source in (None, s["mask_source"])]
    wanted = set(dag.descendants(region.name)) if region else None
    names = sorted({s["region"] for s in structures if s["voxels"] and (wanted is None or s["region"] in wanted)},
                   key=lambda n: -sum(s["voxels"] for s in structures if s["region"] == n))[:MAX_MASKS]
    out = []
    for name in names:
        mask, _ = store.region_mask(case_id, name, mask_source=mask_source)
        reg = dag.get(name)
        out.append(Overlay(reg, to_display(mask, affine), region_colour(reg.region_id)))
    return out


def _sentences(wh: Warehouse, case_id: str, region: Region | None) -> list[str]:
    """The case's sentences about `region` and everything under it (without one: the top-level paragraphs,
    else every row), in report order, each once, prefixed with its anatomy path."""
    where, params = "", {"case_id": case_id}
    if region is not None:
        where = "AND region_id IN (SELECT descendant_id FROM anatomy_closure WHERE ancestor_id = $rid)"
        params["rid"] = region.region_id
    rows = wh.sql(f"""SELECT anatomy_path, text FROM sentences WHERE case_id = $case_id {where}
                      ORDER BY coalesce(ordinal, 0), ordinal NULLS FIRST, sentence_id""", params).rows()
    if region is None:  # the top-level paragraphs, else whatever there is
        rows = [r for r in rows if r[0] and "/" not in r[0]] or rows
    return list(dict.fromkeys(f"[{path or 'report'}] {text}" for path, text in rows))


def render_case(wh: Warehouse, case_id: str, *, region: str | None = None, out: Path | str = "case.png",
                mask_source: str | None = None, width: int = 1800, height: int = 640, dpi: int = 100) -> Path:
    """Render the case to a PNG of exactly `width` x `height` pixels; returns its path.

    `mask_source` draws only one provider's masks (builtin, totalsegmentator, monai, ...).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    out = Path(out)
    store = wh.arrays
    reg = anatomy().resolve(region) if region else None
    if store.has_image(case_id):
        hu, affine = store.image(case_id)
    else:  # masks only: draw them on black
        structures = store.structures(case_id)
        if not structures:
            raise ArrayNotFoundError(f"case {case_id!r} has neither a CT image nor masks", case_id=case_id)
        mask, affine = store.region_mask(case_id, structures[0]["region"])
        hu = np.full(mask.shape, WINDOW[0], np.int16)
    volume = to_display(hu, affine)
    overlays = _overlays(wh, case_id, affine, reg, mask_source)
    if reg is not None and not overlays:
        raise ArrayNotFoundError(f"case {case_id!r} has no mask under region {reg.name!r}"
                                 + (f" from {mask_source!r}" if mask_source else ""), case_id=case_id)
    focus = np.logical_or.reduce([o.mask for o in overlays]) if reg is not None else None
    centre = tuple(int(round(c)) for c in (np.argwhere(focus).mean(axis=0) if focus is not None
                                            else (np.array(volume.shape) - 1) / 2))
    sp = display_spacing(affine)
    aspects = {"axial": sp[1] / sp[0], "coronal": sp[2] / sp[0], "sagittal": sp[2] / sp[1]}

    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="black")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1, 4, width_ratios=[1, 1, 1, 1.25], left=0.01, right=0.99, top=0.9, bottom=0.08,
                            wspace=0.04)
    image_views = views(volume, centre)
    mask_views = [(o, views(o.mask, centre)) for o in overlays]
    for n, name in enumerate(("axial", "coronal", "sagittal")):
        ax = fig.add_subplot(grid[0, n])
        ax.imshow(image_views[name], cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], aspect=aspects[name],
                  interpolation="nearest")
        for o, mv in mask_views:
            if not mv[name].any():
                continue
            if o.mask.mean() < OUTLINE_ONLY:  # a container as big as the body would hide the rest
                rgba = np.zeros((*mv[name].shape, 4))
                rgba[mv[name]] = (*o.rgba[:3], 0.4)
                ax.imshow(rgba, aspect=aspects[name], interpolation="nearest")
            ax.contour(mv[name].astype(np.float32), levels=[0.5], colors=[o.rgba], linewidths=0.8)
        ax.set_title(f"{name} {centre[{'axial': 2, 'coronal': 1, 'sagittal': 0}[name]]}", color="white", fontsize=9)
        ax.set_axis_off()
    fig.suptitle(f"{case_id}" + (f" — {reg.name}" if reg else "") + (f" [{mask_source}]" if mask_source else "")
                 + f"   (snapshot {wh.snapshot_id})",
                 color="white", fontsize=11)
    fig.legend(handles=[Patch(color=o.rgba, label=o.region.name) for o in overlays[:MAX_LEGEND]],
               loc="lower left", ncol=min(8, max(1, len(overlays))), fontsize=7, frameon=False, labelcolor="white")
    text_ax = fig.add_subplot(grid[0, 3])
    text_ax.set_axis_off()
    _write_text(text_ax, _sentences(wh, case_id, reg), width * 0.24 / dpi, height * 0.8 / dpi)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, facecolor="black")
    return out


def _write_text(ax, sentences: list[str], width_in: float, height_in: float, fontsize: float = 8.0) -> None:
    """Wrapped sentences filling the panel, cut with an ellipsis where they do not fit."""
    chars = max(20, int(width_in * 72 / (fontsize * 0.55)))
    rows = max(3, int(height_in * 72 / (fontsize * 1.35)))
    lines: list[str] = []
    for s in sentences or ["(no grounded sentences for this case)"]:
        lines.extend(textwrap.wrap(s, chars) + [""])
    if len(lines) > rows:
        lines = lines[: rows - 1] + ["…"]
    ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", color="white", fontsize=fontsize,
            family="monospace", transform=ax.transAxes)
