"""What the case page shows: a case's grounded report, its regions' masks and its CT, read from the snapshot.

Everything a URL names is looked up, never joined into a path: a case by its key (the array
store's file-safe key, `warehouse.core.ids.case_key`) in the snapshot's ``cases`` table, a region by
its id in the anatomy DAG. Masks are served as their bounding-box crops (a NIfTI whose affine
places the crop on the case's grid, which NiiVue resamples onto the CT), slices as PNGs read
from the chunks they cross; only the CT itself is served whole, for the three views.
"""

from __future__ import annotations

import gzip
import io
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
from nibabel.orientations import axcodes2ornt, io_orientation, ornt_transform
from PIL import Image

from warehouse.core.anatomy import anatomy
from warehouse.core.errors import ArrayNotFoundError, UnknownRegionError, WarehouseError
from warehouse.core.grid import shift_affine, spacing
from warehouse.core.ids import case_key
from warehouse.exports.nifti import nifti_image
from warehouse.store.arrays.ome import region_rgba
from warehouse.viewer import to_display, views

if TYPE_CHECKING:
    from warehouse.api import Warehouse

# Window presets (level, width) in HU, as radiology viewers name them.
WINDOWS: dict[str, tuple[int, int]] = {"lung": (-600, 1500), "mediastinum": (50, 350), "bone": (400, 1800),
                                       "soft tissue": (40, 400), "abdomen": (60, 400)}
AXES = {"sagittal": 0, "coronal": 1, "axial": 2}  # the L, P, S axis a view's slices step along
GZIP_LEVEL = 1  # the CT: level 1 is a third of the raw bytes at a twentieth of level 9's time


class NotFound(WarehouseError):
    """A case, region or slice the snapshot does not have (the server answers 404)."""


class Cases:
    """The case pages' data for one opened warehouse (thread-safe: the server's threads share it)."""

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh
        self._keys: dict[str, str] | None = None
        self._lock = threading.Lock()

    def case_id(self, key: str) -> str:
        """The case a URL key names; `NotFound` for any other text."""
        with self._lock:
            if self._keys is None:
                ids = self.wh.sql("SELECT case_id FROM cases")["case_id"].to_list()
                self._keys = {case_key(c): c for c in ids}
        try:
            return self._keys[key]
        except KeyError:
            raise NotFound(f"no case with key {key!r} in snapshot {self.wh.snapshot_id}",
                           hint="open a case from a query result's case_id column") from None

    def region(self, region_id: str | int) -> Any:
        """A region of the DAG by its id; `NotFound` otherwise."""
        try:
            return anatomy().get(int(region_id))
        except (ValueError, UnknownRegionError):
            raise NotFound(f"no anatomy region with id {region_id!r}",
                           hint="regions are named by their region_id (SELECT * FROM anatomy)") from None

    def _arrays(self) -> Any:
        try:
            return self.wh.arrays
        except ArrayNotFoundError:
            return None

    def info(self, key: str) -> dict:
        """The case page's JSON: grid, regions with masks, report sentences, findings and VQA pairs."""
        case_id = self.case_id(key)
        params = {"c": case_id}
        case = self.wh.sql("SELECT * FROM cases WHERE case_id = $c", params).to_dicts()[0]
        sentences = self.wh.sql("""
            SELECT s.sentence_id, s.ordinal, s.text, s.region_id, a.name AS region, s.anatomy_path, s.is_abnormal
            FROM sentences AS s LEFT JOIN anatomy AS a USING (region_id)
            WHERE s.case_id = $c ORDER BY coalesce(s.ordinal, 0), s.sentence_id""", params).to_dicts()
        findings = self.wh.sql("""
            SELECT finding_id, sentence_id, region_id, term, status, size_mm, laterality, raw_text
            FROM findings WHERE case_id = $c ORDER BY region_id NULLS FIRST, term, finding_id""", params).to_dicts()
        vqa = self.wh.sql("""
            SELECT vqa_id, type, question, answer, region_id FROM vqa WHERE case_id = $c
            ORDER BY type, ordinal, vqa_id""", params).to_dicts()
        out = {"case_id": case_id, "key": key, "snapshot_id": self.wh.snapshot_id, "case": _jsonable(case),
               "has_image": False, "grid": None, "regions": [], "sentences": sentences, "findings": _jsonable(findings),
               "vqa": vqa, "windows": {k: {"level": lv, "width": w} for k, (lv, w) in WINDOWS.items()}}
        named = {r["region_id"] for rows in (sentences, findings, vqa) for r in rows if r["region_id"] is not None}
        store = self._arrays()
        try:
            shape, affine = store.grid(case_id) if store is not None else (None, None)
        except ArrayNotFoundError:
            shape = affine = None
        if shape is not None:
            out["has_image"] = store.has_image(case_id)
            out["grid"] = {"shape": list(shape), "affine": np.asarray(affine).tolist(),
                           "spacing": [float(s) for s in spacing(affine)]}
            named |= {s["region_id"] for s in store.structures(case_id) if s["voxels"]}
        entries = (self._region_entry(store if shape is not None else None, case_id, rid, affine) for rid in named)
        out["regions"] = sorted(entries, key=lambda r: r["name"])
        return out

    def _region_entry(self, store: Any, case_id: str, region_id: int, affine: np.ndarray | None) -> dict:
        """A region the case's report or masks name: its colour and subtree (region ids); where the case
        has a mask of it, ``has_mask`` with its box and centre (world mm)."""
        dag = anatomy()
        region = dag.get(int(region_id))
        out = {"region_id": region.region_id, "name": region.name, "rgba": region_rgba(region.region_id),
               "subtree": sorted(dag.get(n).region_id for n in dag.descendants(region.name)), "has_mask": False}
        try:
            box = store.region_bbox(case_id, region) if store is not None else None
        except ArrayNotFoundError:  # no structure of the region or under it
            box = None
        if box is None:  # none, or only empty ones
            return out
        centre = (np.asarray(box[0]) + np.asarray(box[1]) - 1) / 2
        return {**out, "has_mask": True, "bbox": [list(box[0]), list(box[1])],
                "centre_mm": (np.asarray(affine)[:3, :3] @ centre + np.asarray(affine)[:3, 3]).tolist()}

    def image_nifti(self, key: str) -> bytes:
        """The whole CT as a gzipped NIfTI-1 file (int16 HU, the warehouse's affine)."""
        case_id = self.case_id(key)
        store = self._arrays()
        if store is None or not store.has_image(case_id):
            raise NotFound(f"case {case_id} has no CT image in snapshot {self.wh.snapshot_id}")
        hu, affine = store.image(case_id)
        return gzip.compress(nifti_image(hu, affine).to_bytes(), compresslevel=GZIP_LEVEL)

    def mask_nifti(self, key: str, region_id: str) -> bytes:
        """A region's mask cropped to its bounding box, as a gzipped NIfTI-1 (uint8 0/1) on the case's grid."""
        case_id, region = self.case_id(key), self.region(region_id)
        store = self._arrays()
        try:
            mask, affine = store.region_mask(case_id, region, crop=True) if store is not None else (None, None)
        except ArrayNotFoundError:
            mask = None
        if mask is None or not mask.size:
            raise NotFound(f"case {case_id} has no mask of {region.name!r}")
        return gzip.compress(nifti_image(mask, affine).to_bytes(), compresslevel=GZIP_LEVEL)

    def slice_png(self, key: str, view: str, index: int, window: str = "lung") -> bytes:
        """Slice `index` (counted along L, P or S) of the CT as a grey PNG in the radiological convention
        (`warehouse.viewer`), read from the chunks it crosses only."""
        case_id = self.case_id(key)
        if view not in AXES:
            raise NotFound(f"no view {view!r}", hint=f"views: {', '.join(AXES)}")
        if window not in WINDOWS:
            raise NotFound(f"no window {window!r}", hint=f"windows: {', '.join(WINDOWS)}")
        store = self._arrays()
        if store is None or not store.has_image(case_id):
            raise NotFound(f"case {case_id} has no CT image in snapshot {self.wh.snapshot_id}")
        shape, affine = store.grid(case_id)
        xform = ornt_transform(io_orientation(affine), axcodes2ornt(("L", "P", "S")))  # stored axis -> L, P, S
        axis = int(np.flatnonzero(xform[:, 0] == AXES[view])[0])  # the stored axis the view steps along
        n = shape[axis]
        if not 0 <= index < n:
            raise NotFound(f"no {view} slice {index}: the case has {n}", hint=f"0 to {n - 1}")
        lo, hi = [0, 0, 0], list(shape)
        lo[axis] = n - 1 - index if xform[axis, 1] < 0 else index
        hi[axis] = lo[axis] + 1
        hu = store.image_box(case_id, (tuple(lo), tuple(hi)))
        shown = views(to_display(hu, shift_affine(affine, tuple(lo))), (0, 0, 0))[view]
        level, width = WINDOWS[window]
        grey = np.clip((shown.astype(np.float32) - (level - width / 2)) / width * 255, 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(grey).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()


def _jsonable(value: Any) -> Any:
    """Rows with dates and non-finite floats as JSON takes them (ISO text, null)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
