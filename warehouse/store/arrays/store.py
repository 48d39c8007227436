"""The array store: CT volumes and lossless label layers, one Zarr v3 group per case.

Layout of ``arrays.zarr`` (a Zarr v3 store: a local folder, or a folder in a bucket,
``s3://bucket/prefix/.../arrays.zarr``; `warehouse.store.arrays.io`)::

    <case_key>/                 attrs: case_id, affine (4x4), shape, axes (x, y, z), ome (with an image)
      image                     int16 HU, NIfTI voxel order (x, y, z)
      labels/                   attrs: ome.labels (layer names), empty (structures with no voxel)
        <source>-<n>/           one label layer: attrs ome.image-label (colors, properties), mask_source
          0                     uint8 values, each a structure; properties map value -> structure

Masks overlap (lung, left lung, left lung lower lobe), so they are packed into a few
non-overlapping layers (`warehouse.store.arrays.layers`); every mask reads back bit-exact. Arrays are
chunked 64^3, zstd-compressed, one shard per array: a region read fetches only the
chunks inside the region's bounding box. Each write touches one case group only, so
worker processes can write different cases of one store at the same time.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec
from zarr.errors import ContainsGroupError

from warehouse.core.anatomy import Region, anatomy
from warehouse.core.boxes import Box, slices, union_box
from warehouse.core.errors import ArrayNotFoundError, GridMismatchError, IngestError, WarehouseError
from warehouse.core.grid import AIR_HU, Grid, margin_box, same_affine, shift_affine
from warehouse.core.ids import case_key
from warehouse.store.arrays import ome
from warehouse.store.arrays.io import (
    ArrayReader,
    Node,
    RemoteNode,
    errors,
    node,
    obstore_usable,
    open_array,
    write_array,
    zarr_store,
)
from warehouse.store.arrays.layers import label_map_layer, pack_masks, union_in_box
from warehouse.store.arrays.ome import Structure
from warehouse.store.arrays.parts import pieces
from warehouse.store.arrays.stats import mask_stats, region_stats

CHUNK = 64
FORMAT = 2  # 2: a structure may be stored as its parts (`parts`, the labels group's `unions` list)
# Label layers: plain zstd 9. Bit-shuffled zstd (blosc clevel 5) stored 20 % fewer bytes for the
# same write CPU on a RadGenome-like case but decoded 1.5x slower; region reads come first.
LABEL_CODEC = ZstdCodec(level=9)

RegionRef = str | int | Region


def chunking(shape: tuple[int, ...]) -> dict:
    """64^3 chunks, one shard covering the whole array (shard shape rounded up to chunks)."""
    chunks = tuple(min(CHUNK, n) for n in shape)
    return {"chunks": chunks, "shards": tuple(-(-n // c) * c for n, c in zip(shape, chunks, strict=True))}


def _compact_json(method: Callable) -> Callable:
    """Write Zarr metadata without indentation: a RadGenome case's structure lists are a fifth of
    its label bytes when indented (zarr-python's default)."""
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with zarr.config.set({"json_indent": None}):
            return method(*args, **kwargs)
    return wrapper


@dataclass
class _Case:
    """What a read needs to know about one case, loaded once per store object."""

    case_id: str
    key: str
    affine: np.ndarray
    shape: tuple[int, int, int]
    has_image: bool
    structures: list[Structure]
    arrays: dict[str, ArrayReader] = field(default_factory=dict)


class ArrayStore:
    """CT volumes and label layers of many cases; see the module docstring for the layout.

    `location`: a local folder, or a bucket URL (``s3://bucket/prefix/arrays.zarr``; see
    `warehouse.store.objects`). `path` is the folder as a `Path`, or the URL as given.
    """

    def __init__(self, location: Path | str, mode: str = "a") -> None:
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', not {mode!r}")
        self._node: Node = node(location)
        self.mode = mode
        self.path: Path | str = self._node if isinstance(self._node, Path) else str(self._node)
        self._cases: dict[str, _Case] = {}
        # zarr-python's store (in a process forked from one using obstore: opened if ever needed, see io)
        self._store: Any = zarr_store(self._node, mode == "r") if isinstance(self._node, Path) or obstore_usable() \
            else None
        self._root: zarr.Group | None = None
        if mode == "r":
            if ome.read_attrs(self._node) is None:  # a GET, not a HEAD: a refusal's body says why
                if isinstance(self._node, RemoteNode):
                    self._node.root.check_access()  # a missing bucket says so
                raise ArrayNotFoundError(f"no array store at {self.path}", hint="build the warehouse first")
        else:
            self._root = self._open_root()

    @property
    def store(self) -> Any:
        """zarr-python's store of this array store."""
        if self._store is None:
            self._store = zarr_store(self._node, read_only=self.mode == "r")
        return self._store

    def _open_root(self) -> zarr.Group:
        """Open the root group; in mode 'a' create it once, if missing (case writes never touch it)."""
        with errors("write", self._node):
            try:
                return zarr.open_group(self.store, mode="a",
                                       attributes={"radgenome_warehouse": {"arrays_format": FORMAT}})
            except ContainsGroupError:  # another process created it between zarr's check and its write
                return zarr.open_group(self.store, mode="r+")

    def __repr__(self) -> str:
        return f"ArrayStore({str(self.path)!r}, mode={self.mode!r})"

    # -- writing -----------------------------------------------------------------------------
    @_compact_json
    def write_image(self, case_id: str, hu: np.ndarray, affine: np.ndarray) -> None:
        """Store a case's CT (HU, voxel order x, y, z). Starts the case afresh: write it first."""
        self._writable(case_id)
        hu = np.asarray(hu)
        affine = _check_affine(affine, case_id)
        if hu.ndim != 3:
            raise IngestError(f"CT must be 3-D, got shape {hu.shape}", case_id=case_id, stage="image")
        if hu.dtype != np.int16:
            if hu.dtype.kind == "f":
                if not np.isfinite(hu).all():
                    raise IngestError("CT holds NaN or infinite values", case_id=case_id, stage="image")
                hu = np.rint(hu)
            if hu.size and (hu.min() < -32768 or hu.max() > 32767):
                raise IngestError(f"HU values {hu.min()}..{hu.max()} do not fit int16", case_id=case_id,
                                  stage="image", hint="check RescaleSlope/RescaleIntercept")
            hu = hu.astype(np.int16)
        key = case_key(case_id)
        self._cases.pop(key, None)
        with errors("write", self._node / key):
            group = zarr.create_group(self.store, path=key, overwrite=True,
                                      attributes=_case_attrs(case_id, affine, hu.shape))
        write_array(self._node, f"{key}/image", self.store, hu, fill_value=AIR_HU, **chunking(hu.shape),
                    dimension_names=ome.AXES,
                    compressors=BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle"))
        with errors("write", self._node / key):
            group.attrs["ome"] = ome.image_attrs(case_id, affine)

    def write_masks(self, case_id: str, masks: Mapping[str, Any] | Iterable[tuple[str, Any]],
                    affine: np.ndarray, mask_source: str = "radgenome",
                    resolve: Callable[[str], Region] | None = None) -> list[dict]:
        """Store binary masks (name -> array) as label layers; returns `region_stats` rows.

        A mask value is an array, an ``(array, affine)`` pair, or a nibabel image; values are
        read one at a time, so ``{name: nib.load(path)}`` never holds more than one mask.
        Replaces the structures this case had from `mask_source`; keeps other sources'.
        """
        affine, grid = self._grid(case_id, affine, "masks")
        image = self.image(case_id)[0] if self.has_image(case_id) else None
        measured: dict[str, dict] = {}  # each mask's stats, taken from its crop as it is read

        def measure(name: str, box: Box, crop: np.ndarray) -> None:
            measured[name] = mask_stats(crop, box[0], affine, image)

        layers, structures, shape = pack_masks(case_id, masks, grid, affine, mask_source,
                                               _layer_prefix(mask_source), resolve or anatomy().resolve,
                                               measure=measure)
        return self._commit(case_id, mask_source, layers, structures, affine, shape, image, measured)

    def write_label_map(self, case_id: str, labels: Any, classes: Mapping[int, str], affine: np.ndarray,
                        mask_source: str = "labelmap", resolve: Callable[[str], Region] | None = None) -> list[dict]:
        """Store an integer label map ({value: class name}, 0 = background) as one layer."""
        affine, grid = self._grid(case_id, affine, "label map")
        layers, structures, shape = label_map_layer(case_id, labels, classes, grid, affine, mask_source,
                                                    _layer_prefix(mask_source), resolve or anatomy().resolve)
        image = self.image(case_id)[0] if self.has_image(case_id) else None
        return self._commit(case_id, mask_source, layers, structures, affine, shape, image)

    def delete_case(self, case_id: str) -> None:
        """Remove a case's group (no error when it is absent)."""
        self._writable(case_id)
        key = case_key(case_id)
        self._cases.pop(key, None)
        with errors("delete", self._node / key):
            if key in self._root:
                del self._root[key]

    def _grid(self, case_id: str, affine: np.ndarray, what: str) -> tuple[np.ndarray, Grid | None]:
        """The call's affine, checked against the case's grid (image or earlier masks) if it has one."""
        self._writable(case_id)
        affine = _check_affine(affine, case_id)
        try:
            case = self._case(case_id)
        except ArrayNotFoundError:
            return affine, None
        if not same_affine(affine, case.affine):
            raise GridMismatchError(f"affine of the {what} {np.round(affine, 3).tolist()} differs from the case's "
                                    f"{np.round(case.affine, 3).tolist()}", case_id=case_id, stage="masks",
                                    hint="masks must be on the CT's grid: resample them first")
        return affine, Grid(case.shape, case.affine)

    @_compact_json
    def _commit(self, case_id: str, mask_source: str, layers: dict[str, np.ndarray],
                structures: list[Structure], affine: np.ndarray, shape: tuple | None,
                image: np.ndarray | None, measured: Mapping[str, dict] | None = None) -> list[dict]:
        """Write one source's layers into the case (replacing that source's) and compute its stats
        (`measured`: stats of single masks already taken, by name)."""
        key = case_key(case_id)
        try:
            case: _Case | None = self._case(case_id)
        except ArrayNotFoundError:
            case = None
        if case is None and shape is None:  # a new case and no mask at all: nothing to record
            return []
        with errors("write", self._node / key):
            self._write_layers(case_id, case is None, mask_source, layers, structures, affine, shape, image)
        self._cases.pop(key, None)
        return region_stats(case_id, mask_source, structures, lambda name, sl: layers[name][sl], affine,
                            image, anatomy(), measured)

    def _write_layers(self, case_id: str, new: bool, mask_source: str, layers: dict[str, np.ndarray],
                      structures: list[Structure], affine: np.ndarray, shape: tuple | None,
                      image: np.ndarray | None) -> None:
        key = case_key(case_id)
        if new:
            zarr.create_group(self.store, path=key, attributes=_case_attrs(case_id, affine, shape))
        labels = zarr.open_group(self.store, path=f"{key}/labels", mode="a")
        listed = labels.attrs.get("ome", {}).get("labels", [])
        keep = [n for n in listed if n in labels and labels[n].attrs.get("mask_source") != mask_source]
        for name in [n for n in labels.group_keys() if n not in keep]:  # this source's, and leftovers
            del labels[name]
        for name, arr in layers.items():
            props = [s.ome_property() for s in structures if s.layer == name]
            zarr.create_group(self.store, path=f"{key}/labels/{name}", attributes={
                "mask_source": mask_source,
                "ome": ome.image_label_attrs(case_id, name, affine, props, has_image=image is not None)})
            write_array(self._node, f"{key}/labels/{name}/0", self.store, arr, fill_value=0, **chunking(arr.shape),
                        dimension_names=ome.AXES, compressors=LABEL_CODEC)
        unlayered = {}  # structures in no layer: with no voxel, or exactly the union of their parts
        for kind, wanted in (("empty", lambda s: s.voxels == 0), ("unions", lambda s: s.voxels > 0)):
            unlayered[kind] = [d for d in labels.attrs.get(kind, []) if d["mask_source"] != mask_source]
            unlayered[kind] += [s.to_dict() for s in structures if s.layer is None and wanted(s)]
        labels.attrs.update({"ome": ome.labels_attrs(keep + list(layers)), **unlayered})

    def _writable(self, case_id: str) -> None:
        if self.mode != "a":
            raise WarehouseError(f"{self.path} is open read-only", case_id=case_id, hint="open it with mode='a'")

    # -- reading -----------------------------------------------------------------------------
    def cases(self) -> list[str]:
        """Case ids in the store."""
        found = ome.read_many([p for p in self._node.iterdir() if p.is_dir()])
        return sorted(a["case_id"] for a in found if a and "case_id" in a)

    def has_image(self, case_id: str) -> bool:
        try:
            return self._case(case_id).has_image
        except ArrayNotFoundError:
            return False

    def image(self, case_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The whole CT (int16 HU) and its affine."""
        case = self._image_case(case_id)
        return self._array(case, "image")[...], case.affine.copy()

    def image_box(self, case_id: str, box: Box) -> np.ndarray:
        """The CT (int16 HU) inside a voxel box (lo inclusive, hi exclusive, clipped to the grid): only
        the chunks the box overlaps are read (a slice of a viewer, a thumbnail)."""
        case = self._image_case(case_id)
        lo = tuple(max(0, min(int(v), n)) for v, n in zip(box[0], case.shape, strict=True))
        hi = tuple(max(a, min(int(v), n)) for a, v, n in zip(lo, box[1], case.shape, strict=True))
        return self._array(case, "image")[slices((lo, hi))]

    def grid(self, case_id: str) -> Grid:
        """A case's `Grid` (metadata only, no voxel is read); unpacks as ``shape, affine``."""
        case = self._case(case_id)
        return Grid(case.shape, case.affine)

    def structures(self, case_id: str) -> list[dict]:
        """Every stored mask of a case: name, region, region_id, layer, value, voxels, bbox, mask_source."""
        return [s.to_dict() for s in self._case(case_id).structures]

    def region_bbox(self, case_id: str, region: RegionRef, mask_source: str | None = None) -> Box | None:
        """Voxel box (lo inclusive, hi exclusive) of a region in a case; None when it is empty."""
        _, structures = self._region_structures(self._case(case_id), region, mask_source)
        return union_box(s.bbox for s in structures)

    def region_mask(self, case_id: str, region: RegionRef, crop: bool = False,
                    mask_source: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A region's mask and affine: its own structures' union, else its descendants'.

        `crop=True` returns only the bounding box (an empty region: a (0, 0, 0) array), with
        the affine shifted to the box. `mask_source` restricts to one source's structures.
        """
        case = self._case(case_id)
        _, structures = self._region_structures(case, region, mask_source)
        box = union_box(s.bbox for s in structures)
        if box is None:
            return (np.zeros((0, 0, 0) if crop else case.shape, bool),
                    case.affine.copy())
        mask = union_in_box(self._reader(case), structures, box)
        if crop:
            return mask, shift_affine(case.affine, box[0])
        full = np.zeros(case.shape, bool)
        full[slices(box)] = mask
        return full, case.affine.copy()

    def region_crop(self, case_id: str, region: RegionRef, margin_mm: float = 10.0,
                    mask_source: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """HU crop, mask crop and affine of a region's bbox grown by `margin_mm`, clipped to the grid."""
        case = self._image_case(case_id)
        reg, structures = self._region_structures(case, region, mask_source)
        box = union_box(s.bbox for s in structures)
        if box is None:
            raise ArrayNotFoundError(f"region {reg.name!r} is empty in case {case_id!r}: nothing to crop",
                                     case_id=case_id)
        big = margin_box(box, case.shape, case.affine, margin_mm)
        hu = self._array(case, "image")[slices(big)]
        return hu, union_in_box(self._reader(case), structures, big), shift_affine(case.affine, big[0])

    # -- internals ---------------------------------------------------------------------------
    def _case(self, case_id: str) -> _Case:
        key = case_key(case_id)
        if key not in self._cases:
            self._cases[key] = _load_case(self._node, key, case_id)
        return self._cases[key]

    def _image_case(self, case_id: str) -> _Case:
        case = self._case(case_id)
        if not case.has_image:
            raise ArrayNotFoundError(f"case {case_id!r} has no CT image in the store", case_id=case_id,
                                     hint="its masks are there; ingest the CT to read HU")
        return case

    def _array(self, case: _Case, name: str) -> ArrayReader:
        if name not in case.arrays:
            path = f"{case.key}/image" if name == "image" else f"{case.key}/labels/{name}/0"
            # Remote reads may cache chunks: a store opened read-only is a snapshot's, whose bytes never change.
            case.arrays[name] = open_array(self._node, path, lambda: self.store, cached=self.mode == "r")
        return case.arrays[name]

    def _reader(self, case: _Case) -> Callable[[str, tuple[slice, ...]], np.ndarray]:
        return lambda layer, sl: self._array(case, layer)[sl]

    def _region_structures(self, case: _Case, region: RegionRef,
                           mask_source: str | None) -> tuple[Region, list[Structure]]:
        dag = anatomy()
        reg = region if isinstance(region, Region) else (
            dag.get(region) if isinstance(region, int) else dag.resolve(region))
        have = [s for s in case.structures if mask_source is None or s.mask_source == mask_source]
        own = [s for s in have if s.region_id == reg.region_id]
        if own:
            return reg, pieces(own, case.structures)
        below = {dag.get(n).region_id for n in dag.descendants(reg.name)}
        under = [s for s in have if s.region_id in below]
        if not under:
            names = sorted({s.region for s in have})
            raise ArrayNotFoundError(
                f"case {case.case_id!r} has no mask for region {reg.name!r}"
                + (f" from {mask_source!r}" if mask_source else ""), case_id=case.case_id,
                hint=f"it has {len(names)} regions: " + ", ".join(names[:40]) + (", ..." if len(names) > 40 else ""))
        return reg, pieces(under, case.structures)


def _case_attrs(case_id: str, affine: np.ndarray, shape: tuple[int, ...]) -> dict:
    return {"case_id": case_id, "affine": np.asarray(affine, float).tolist(), "shape": [int(n) for n in shape],
            "axes": list(ome.AXES)}


def _check_affine(affine: np.ndarray, case_id: str) -> np.ndarray:
    a = np.asarray(affine, dtype=float)
    if a.shape != (4, 4) or not np.isfinite(a).all() or abs(np.linalg.det(a[:3, :3])) < 1e-9:
        raise IngestError(f"not a usable 4x4 affine: {a.tolist()}", case_id=case_id, stage="arrays")
    return a


def _layer_prefix(mask_source: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.]", "_", mask_source).strip(".") or "masks"
    return safe if safe == mask_source else f"{safe}_{hashlib.sha1(mask_source.encode()).hexdigest()[:6]}"


def _load_case(root: Node, key: str, case_id: str) -> _Case:
    attrs = ome.read_attrs(root / key)
    if attrs is None or "affine" not in attrs:
        where = f" at {root}" if isinstance(root, RemoteNode) else ""
        raise ArrayNotFoundError(f"no case {case_id!r} in the array store{where}", case_id=case_id)
    return _Case(case_id=attrs.get("case_id", case_id), key=key, affine=np.asarray(attrs["affine"], float),
                 shape=tuple(attrs["shape"]), has_image=(root / key / "image" / "zarr.json").is_file(),
                 structures=ome.read_structures(root / key))
