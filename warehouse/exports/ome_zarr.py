"""`radgenome export --format ome-zarr`: each case as a plain OME-Zarr 0.5 image with its labels.

Layout of OUT (Zarr v3; the metadata is built and validated with ome-zarr-models, the arrays
are written by zarr-python)::

    OUT/<case>.ome.zarr/            attrs: ome.multiscales (one level: "0"), radgenome_warehouse
      0                             int16 HU, axes (z, y, x) in millimetres
      labels/                       attrs: ome.labels (only when the case has a region of --masks)
        regions-<n>/                attrs: ome.image-label (colors, properties), ome.multiscales
          0                         uint8 (uint16 past 255 regions), axes (z, y, x)
    OUT/manifest.json               every file's bytes and sha256; per case its folder and label images

``<case>`` is the array store's case key. Every array is one resolution level (no pyramid), chunked
64^3 in one shard, so two files (its zarr.json and the shard) in a group with its own zarr.json.

Axes: the store keeps the NIfTI voxel order (x, y, z: the affine's i, j, k); OME-Zarr viewers
expect the spatial axes as z, y, x (they show the last two as the image plane: an axial slice
here), so arrays are written transposed: ``array[k, j, i] == stored[i, j, k]``. The scale is the
voxel spacing and the translation the world position of voxel 0, both in (z, y, x) order; OME-Zarr
0.5 cannot express a flip or rotation, so a viewer sees the volume axis-aligned (a left-right
flipped grid shows mirrored), and the exact 4x4 affine (NIfTI order: it maps (i, j, k), the
array index reversed, to world mm) is kept in ``radgenome_warehouse.affine``.

Labels: region ``i`` of ``--masks`` (1-based, in the order asked) is label value ``i`` in every
case and every label image, coloured with `warehouse.store.arrays.ome.region_rgba` and named in
the image-label ``properties``. Regions overlap (lung holds left lung), and a label image gives a
voxel one value, so each case's regions are packed first-fit, in the order asked, into as few
label images as keep every mask exact: a region joins the first label image none of whose regions
share a voxel with it. Disjoint regions (left lung, right lung, trachea) share ``regions-0``; a
region inside another (left lung in lung) goes to ``regions-1``. Which regions went where is in
the properties and the manifest. A case lacking a region leaves it out (a note says so); a case
lacking all of them has no ``labels`` group: an image alone is valid OME-Zarr.

``--crop REGION`` crops the image and its labels to the box the NIfTI bundle uses (the region's
box grown by ``--margin-mm``); a case without the region is left out. A dry run reads no CT: it
writes the metadata in a temporary folder (its file count and metadata bytes are exact) and reads
the masks whose boxes meet, to know how many label images each case needs; shard bytes are bounds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr
from ome_zarr_models.v05.axes import Axis
from ome_zarr_models.v05.base import BaseZarrAttrs
from ome_zarr_models.v05.image import Image
from ome_zarr_models.v05.image_label import ImageLabel, ImageLabelAttrs
from ome_zarr_models.v05.image_label_types import Color, Label, Property, Source
from ome_zarr_models.v05.labels import Labels, LabelsAttrs
from ome_zarr_models.v05.multiscales import Dataset, Multiscale
from pydantic import BaseModel
from pydantic_zarr.v3 import ArraySpec, GroupSpec
from zarr.codecs import BloscCodec
from zarr.storage import LocalStore, MemoryStore

from warehouse.core.anatomy import anatomy
from warehouse.core.boxes import Box, box_shape, inside, intersect
from warehouse.core.grid import AIR_HU, shift_affine, spacing
from warehouse.exports.cohort import ExportError
from warehouse.exports.nifti import voxel_offset
from warehouse.store.arrays.ome import region_rgba
from warehouse.store.arrays.store import LABEL_CODEC, chunking

if TYPE_CHECKING:
    from warehouse.exports.cohort import Cohort

NEEDS_IMAGES = True
AXES = ("z", "y", "x")  # the arrays' axes: the stored (x, y, z) reversed
LABELS = "regions"  # label images are regions-0, regions-1, ...
IMAGE_CODEC = BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")  # the store's image codec
SUFFIX = ".ome.zarr"
WRITE_ALL_CHUNKS = {"write_empty_chunks": True}  # every array has its shard file, even an all-zero label image


@dataclass
class _Region:
    """One region of `--masks` in one case: its label value and its voxels inside the export box."""

    name: str
    value: int
    box: Box | None  # its voxels' box on the case grid, clipped to the export box; None: no voxel there
    load: Callable[[], np.ndarray]  # its mask over `box`
    _mask: np.ndarray | None = field(default=None, repr=False)

    def mask(self) -> np.ndarray:
        if self._mask is None:
            self._mask = self.load()
        return self._mask


@dataclass
class _Case:
    """What one case contributes: the export box, its affine and its label images."""

    case_id: str
    key: str
    box: Box  # on the store's grid (x, y, z)
    affine: np.ndarray  # of the box, NIfTI voxel order
    groups: list[list[_Region]]  # one list per label image

    @property
    def folder(self) -> str:
        return f"{self.key}{SUFFIX}"

    @property
    def label_names(self) -> list[str]:
        return [f"{LABELS}-{n}" for n in range(len(self.groups))]


# -- the format's interface (see warehouse.exports.bundle.FORMATS) --------------------------------
def check(c: Cohort) -> None:
    """Refuse, before anything is written, a crop region no case has or a region of --masks no case has."""
    kept = [cid for cid in c.case_ids if c.plans.get(cid)]
    if not kept:
        what = f"a voxel of the crop region {c.crop!r}" if c.crop else "arrays in the store"
        raise ExportError(f"no case of the cohort has {what}: nothing to export as OME-Zarr",
                          hint="choose another --crop region or leave --crop out" if c.crop
                          else "check the cohort query")
    have = {f.region for cid in kept for f in c.plans[cid] if f.kind == "mask"}
    missing = [r for r in c.masks if r not in have]
    if missing:
        more = f" (and {', '.join(map(repr, missing[1:]))})" if len(missing) > 1 else ""
        within = f" among those with the crop region {c.crop!r}" if c.crop else ""
        raise ExportError(f"no case of the cohort has a mask for region {missing[0]!r}{within}{more}",
                          hint="leave it out of --masks (the region_stats table lists each case's regions)")


def dry_run(c: Cohort) -> tuple[int, int]:
    """Files and an upper bound of their bytes (manifest.json excluded), reading no CT."""
    files = size = 0
    with tempfile.TemporaryDirectory(prefix=".radgenome-ome-zarr-") as tmp:
        for case in _cases(c):
            root = Path(tmp) / case.folder
            _write_metadata(c, case, root)
            meta = [p for p in root.rglob("*") if p.is_file()]
            arrays = 1 + len(case.groups)
            files += len(meta) + arrays  # each array: its metadata and one shard
            label_bytes = np.dtype(_label_dtype(c)).itemsize
            size += sum(p.stat().st_size for p in meta) + _shard_bound(case.box, 2) + \
                len(case.groups) * _shard_bound(case.box, label_bytes)
    return files, size


def write(c: Cohort, stage: Path) -> dict:
    """Write each case's OME-Zarr image into `stage`; returns the manifest's entries."""
    def one(case_id: str) -> tuple[str, dict] | None:
        case = _plan(c, case_id)
        if case is None:
            return None
        _write_case(c, case, stage / case.folder)
        return case_id, {"path": case.folder,
                         "labels": {n: [r.name for r in g] for n, g in zip(case.label_names, case.groups, strict=True)}}

    with ThreadPoolExecutor(max(1, c.workers)) as pool:
        done = [r for r in pool.map(one, c.case_ids) if r is not None]
    return {"ome_zarr": dict(done), "label_values": label_values(c)}


# -- planning ---------------------------------------------------------------------------------
def label_values(c: Cohort) -> dict[str, int]:
    """Region name -> its label value: its 1-based place in --masks, the same in every case."""
    return {r: i + 1 for i, r in enumerate(c.masks)}


def _label_dtype(c: Cohort) -> type:
    return np.uint8 if len(c.masks) <= 255 else np.uint16


def _cases(c: Cohort) -> list[_Case]:
    return [case for case in (_plan(c, cid) for cid in c.case_ids) if case is not None]


def _plan(c: Cohort, case_id: str) -> _Case | None:
    """A case's export box and label images (None: the case is left out, as its NIfTI plan is)."""
    files = c.plans.get(case_id) or []
    if not files:
        return None
    store = c.wh.arrays
    _, affine = store.grid(case_id)
    box = files[0].box
    values = label_values(c)
    regions = []
    for f in files:
        if f.kind != "mask":
            continue
        bbox = store.region_bbox(case_id, f.region)
        inner = intersect(bbox, box) if bbox is not None else None
        regions.append(_Region(f.region, values[f.region], inner, _loader(c, case_id, f.region, affine, inner)))
    return _Case(case_id, c.keys[case_id], box, shift_affine(affine, box[0]), _pack(regions))


def _loader(c: Cohort, case_id: str, region: str, affine: np.ndarray, box: Box | None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        if box is None:
            return np.zeros((0, 0, 0), bool)
        part, part_affine = c.wh.arrays.region_mask(case_id, region, crop=True)
        lo = voxel_offset(affine, part_affine)
        where = inside(box, (lo, tuple(a + n for a, n in zip(lo, part.shape, strict=True))))
        if where is None:
            raise ExportError(f"the mask of {region!r} does not cover its box {box}", case_id=case_id, stage="export")
        return part[where]
    return load


def _pack(regions: list[_Region]) -> list[list[_Region]]:
    """First fit, in the order given: each region joins the first label image it shares no voxel with."""
    groups: list[list[_Region]] = []
    for r in regions:
        for g in groups:
            if not any(_overlap(r, other) for other in g):
                g.append(r)
                break
        else:
            groups.append([r])
    return groups


def _overlap(a: _Region, b: _Region) -> bool:
    """Whether two regions share a voxel (boxes first; masks are read only where the boxes meet)."""
    if a.box is None or b.box is None:
        return False
    both = intersect(a.box, b.box)
    if both is None:
        return False
    return bool((a.mask()[inside(both, a.box)] & b.mask()[inside(both, b.box)]).any())


# -- writing ----------------------------------------------------------------------------------
def _write_case(c: Cohort, case: _Case, root: Path) -> None:
    """Metadata first (validated by reading it back), then the arrays' voxels."""
    shape = box_shape(case.box)
    hu = c.wh.arrays.image_box(case.case_id, case.box)  # the planned box: the whole grid, or the crop
    group = _write_metadata(c, case, root)
    Image.from_zarr(zarr.open_group(LocalStore(root, read_only=True), mode="r"))  # what a validator sees
    _write_array(group, "0", hu)
    for name, regions in zip(case.label_names, case.groups, strict=True):
        labels = np.zeros(shape, _label_dtype(c))
        for r in regions:
            if r.box is not None:
                labels[inside(r.box, case.box)][r.mask()] = r.value
        _write_array(group, f"labels/{name}/0", labels)


def _write_array(group: zarr.Group, path: str, data: np.ndarray) -> None:
    """Write all of `data` (stored x, y, z order) into the array at `path`, transposed to z, y, x."""
    out = zarr.open_array(group.store, path=path, mode="r+", config=WRITE_ALL_CHUNKS)
    out[...] = np.transpose(data, (2, 1, 0))


def _write_metadata(c: Cohort, case: _Case, root: Path) -> zarr.Group:
    """The case's groups and array metadata, from the validated ome-zarr-models tree; no voxel."""
    image = _model(c, case)
    group = _plain(image).to_zarr(LocalStore(root), path="")
    group.attrs.update({"radgenome_warehouse": {
        "case_id": case.case_id, "snapshot_id": c.wh.snapshot_id,
        "affine": np.asarray(case.affine, float).tolist(), "affine_voxel_order": ["x", "y", "z"],
        "box": [list(case.box[0]), list(case.box[1])], "crop": c.crop,
        "margin_mm": c.margin_mm if c.crop else None}})
    return group


def _model(c: Cohort, case: _Case) -> Image:
    """The case as an ome-zarr-models `Image` (its labels inside): validated as it is built."""
    shape = box_shape(case.box)[::-1]
    scale = [float(s) for s in spacing(case.affine)[::-1]]
    translation = [float(t) for t in case.affine[:3, 3][::-1]]
    axes = [Axis(name=a, type="space", unit="millimeter") for a in AXES]
    image = Image.new(array_specs=[_array_spec(shape, np.int16, AIR_HU, IMAGE_CODEC)], paths=["0"], axes=axes,
                      scales=[scale], translations=[translation], name=case.case_id)
    if not case.groups:
        return image
    dag = anatomy()
    members: dict[str, Any] = {}
    for name, regions in zip(case.label_names, case.groups, strict=True):
        ids = {r.name: dag.get(r.name).region_id for r in regions}
        label = Label(colors=tuple(Color(label_value=r.value, rgba=tuple(region_rgba(ids[r.name]))) for r in regions),
                      properties=tuple(Property(label_value=r.value, name=r.name, region_id=ids[r.name])
                                       for r in regions),
                      source=Source(image="../../"))
        ms = Multiscale(axes=axes, datasets=(Dataset.build(path="0", scale=scale, translation=translation),),
                        name=", ".join(r.name for r in regions))  # what a viewer calls the layer
        members[name] = ImageLabel(
            attributes=BaseZarrAttrs(ome=ImageLabelAttrs(version="0.5", multiscales=[ms], image_label=label)),
            members={"0": _array_spec(shape, _label_dtype(c), 0, LABEL_CODEC)})
    labels = Labels(attributes=BaseZarrAttrs(ome=LabelsAttrs(version="0.5", labels=case.label_names)), members=members)
    return Image(attributes=image.attributes, members={**(image.members or {}), "labels": labels})


def _array_spec(shape: tuple[int, ...], dtype: Any, fill: int, codec: Any) -> ArraySpec:
    """The Zarr v3 metadata zarr-python writes for such an array (64^3 chunks, one shard, named axes)."""
    template = zarr.create_array(MemoryStore(), shape=shape, dtype=dtype, fill_value=fill, compressors=codec,
                                 dimension_names=AXES, **chunking(shape))
    return ArraySpec.from_zarr(template)


def _plain(node: Any) -> Any:
    """A pydantic-zarr tree whose attributes are the OME JSON: by alias (``image-label``, ``label-value``)
    and without unset fields. (ome-zarr-models' own ``to_zarr`` dumps field names: ``image_label``.)"""
    if isinstance(node, ArraySpec):
        return node
    attrs = node.attributes
    attrs = attrs.model_dump(by_alias=True, exclude_none=True) if isinstance(attrs, BaseModel) else dict(attrs)
    return GroupSpec(attributes=attrs, members={k: _plain(v) for k, v in (node.members or {}).items()})


def _shard_bound(box: Box, itemsize: int) -> int:
    """Upper bound of one shard's bytes: every chunk stored uncompressed with the codec's worst overhead,
    plus the shard index (16 bytes a chunk and a checksum)."""
    chunks = chunking(box_shape(box))["chunks"]
    n = int(np.prod([-(-s // k) for s, k in zip(box_shape(box), chunks, strict=True)]))
    raw = int(np.prod(chunks)) * itemsize
    return n * (raw + raw // 128 + 160) + n * 16 + 4


__all__ = ["NEEDS_IMAGES", "check", "dry_run", "label_values", "write"]
