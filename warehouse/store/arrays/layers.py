"""Label layers: overlapping binary masks packed losslessly into a few integer arrays.

A layer is a non-overlapping assignment of structures (value v>0 = structure v of that
layer). `pack_masks` first stores parents as their parts (`warehouse.store.arrays.parts`: lung = its
lungs = their lobes), then puts each structure, largest first, into the first layer where
it overlaps nothing (greedy first fit), so overlapping structures land in different layers
and every mask reads back bit-exact. The number of layers is about the deepest overlap left:
6 on a RadGenome-like case of 210 structures (12-13 with parents stored whole), 1 for a
label map. `union_in_box` reads a union of structures back from the layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from warehouse.core.anatomy import Region, anatomy
from warehouse.core.boxes import Box, bounding_box, box_shape, intersect, slices, union_box
from warehouse.core.errors import GridMismatchError, IngestError, UnknownRegionError
from warehouse.core.grid import Grid, same_affine
from warehouse.store.arrays.ome import Structure
from warehouse.store.arrays.parts import Crop, split_unions

__all__ = ["LayerPacker", "ReadLayer", "label_map_layer", "pack_masks", "union_in_box"]

MAX_VALUES = 255  # values per packed layer: the layer stays uint8


class LayerPacker:
    """Greedy first-fit packing of binary masks into non-overlapping uint8 layers.

    Fed largest first (as `pack_masks` does), a structure that contains others is placed
    before them, so nested structures need as many layers as the nesting is deep.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)
        self.layers: list[np.ndarray] = []
        self._counts: list[int] = []  # values used per layer

    def add(self, box: Box, crop: np.ndarray) -> tuple[int, int]:
        """Place one non-empty mask given as its box and the boolean crop; returns (layer, value)."""
        sl = slices(box)
        for i, layer in enumerate(self.layers):
            if self._counts[i] < MAX_VALUES and not np.logical_and(layer[sl], crop).any():  # 2x a gather
                break
        else:
            self.layers.append(np.zeros(self.shape, np.uint8))
            self._counts.append(0)
            i = len(self.layers) - 1
        self._counts[i] += 1
        self.layers[i][sl][crop] = self._counts[i]
        return i, self._counts[i]


MaskValue = Any  # an array, an (array, affine) pair, or a nibabel image


def _mask_array(case_id: str, name: str, value: MaskValue) -> tuple[np.ndarray, np.ndarray | None]:
    if hasattr(value, "dataobj") and hasattr(value, "affine"):  # nibabel image: read on demand
        arr, aff = np.asanyarray(value.dataobj), np.asarray(value.affine, float)
    elif isinstance(value, tuple) and len(value) == 2:
        arr, aff = np.asarray(value[0]), np.asarray(value[1], float)
    else:
        arr, aff = np.asarray(value), None
    if arr.ndim != 3:
        raise IngestError(f"{name!r} is not a 3-D volume: shape {arr.shape}", case_id=case_id, file=name,
                          stage="masks")
    return arr, aff


def _as_grid(grid: Grid | tuple[tuple[int, ...], np.ndarray] | None) -> Grid | None:
    return grid if grid is None or isinstance(grid, Grid) else Grid(*grid)


def _check_grid(case_id: str, name: str, shape: tuple[int, ...], affine: np.ndarray | None,
                grid: Grid, what: str) -> None:
    """A mask's shape and affine (None: given as a bare array) against the case's grid, within
    the one tolerance of `warehouse.core.grid` (`same_affine`)."""
    if tuple(shape) != grid.shape:
        raise GridMismatchError(f"{what} {name!r} has shape {tuple(shape)}, the case's grid is {grid.shape}",
                                case_id=case_id, file=name, stage="masks",
                                hint="masks must be on the CT's grid: resample them first")
    if affine is not None and not same_affine(affine, grid.affine):
        raise GridMismatchError(f"{what} {name!r} has affine {np.round(affine, 3).tolist()}, the case's is "
                                f"{np.round(grid.affine, 3).tolist()}", case_id=case_id, file=name, stage="masks",
                                hint="masks must be on the CT's grid: resample them first")


def _region(case_id: str, name: str, resolve: Callable[[str], Region]) -> Region:
    try:
        return resolve(name)
    except UnknownRegionError as e:
        raise UnknownRegionError(f"mask {name!r}: {e.message}", case_id=case_id, file=name, stage="masks",
                                 hint=e.hint) from None


def pack_masks(case_id: str, masks: Mapping[str, MaskValue] | Iterable[tuple[str, MaskValue]],
               grid: Grid | tuple[tuple[int, ...], np.ndarray] | None, affine: np.ndarray, mask_source: str,
               layer_prefix: str, resolve: Callable[[str], Region],
               measure: Callable[[str, Box, np.ndarray], None] | None = None) -> tuple[
                   dict[str, np.ndarray], list[Structure], tuple | None]:
    """Binary masks -> (layers by name, structures, grid shape).

    Masks are read one at a time and kept only as bit-packed crops of their bounding box,
    then packed largest first (ties by name): the same masks always give the same layers.
    `measure(name, box, crop)` sees each non-empty mask's boolean crop as it is read. Values
    with a ``content_key`` attribute (`ingest`'s lazily decoded files) that equals an earlier
    one's hold the same voxels and are not decoded again.
    """
    if isinstance(masks, Mapping):  # names known up front: fail before reading any data
        regions = {name: _region(case_id, name, resolve) for name in masks}
        items: Iterable[tuple[str, MaskValue]] = ((k, masks[k]) for k in sorted(masks))
    else:  # a stream of pairs (e.g. a generator reading files): never materialised as a list
        regions, items = {}, masks
    grid = _as_grid(grid)
    crops: dict[str, Crop] = {}
    decoded: dict[bytes, Crop] = {}  # by `content_key`: masks with the same file bytes are decoded once
    for name, value in items:
        if name in crops:
            raise IngestError(f"mask {name!r} given twice", case_id=case_id, file=name, stage="masks")
        regions[name] = regions.get(name) or _region(case_id, name, resolve)
        key = getattr(value, "content_key", None)
        if key is not None and key in decoded:
            crops[name] = same = decoded[key]
            if measure is not None and same.box is not None:
                measure(name, same.box, same.unpack())
            continue
        arr, aff = _mask_array(case_id, name, value)
        if grid is None:
            grid = Grid(arr.shape, affine)
        _check_grid(case_id, name, arr.shape, aff, grid, "mask")
        box = bounding_box(arr)  # on the raw values: no full-size boolean copy
        crop = _nonzero(arr, box) if box else None
        if measure is not None and crop is not None:
            measure(name, box, crop)
        crops[name] = Crop.of(box, crop)
        if key is not None:
            decoded[key] = crops[name]
        del arr, crop
    packer = LayerPacker(grid.shape) if grid else None
    unions = split_unions(crops, regions, anatomy())
    stored = {n: unions[n][1] if n in unions else crops[n] for n in crops}  # the voxels each puts in a layer
    structures = []
    for name in sorted(crops, key=lambda n: (-stored[n].voxels, n)):
        whole, kept = crops.pop(name), stored.pop(name)
        layer = value = None
        if kept.box is not None and packer is not None:
            layer, value = packer.add(kept.box, kept.unpack())
        r = regions[name]
        structures.append(Structure(name=name, region_id=r.region_id, region=r.name, mask_source=mask_source,
                                    layer=None if layer is None else f"{layer_prefix}-{layer}", value=value,
                                    voxels=whole.voxels, bbox=whole.box,
                                    parts=unions[name][0] if name in unions else ()))
    layers = {f"{layer_prefix}-{i}": a for i, a in enumerate(packer.layers)} if packer else {}
    return layers, structures, grid.shape if grid else None


def _nonzero(arr: np.ndarray, box: Box) -> np.ndarray:
    """The boolean crop of `box`, in `arr`'s memory order (comparing a Fortran-ordered NIfTI
    array through its transpose is 2.5x as fast as numpy's own choice of loop order)."""
    if arr.ndim == 3 and arr.strides[0] < arr.strides[-1]:
        return (arr.T[slices(box)[::-1]] != 0).T
    return arr[slices(box)] != 0


def label_map_layer(case_id: str, labels: Any, classes: Mapping[int, str],
                    grid: Grid | tuple[tuple[int, ...], np.ndarray] | None, affine: np.ndarray, mask_source: str,
                    layer_prefix: str, resolve: Callable[[str], Region]) -> tuple[dict[str, np.ndarray],
                                                                                  list[Structure], tuple]:
    """An integer label map ({value: class}, 0 = background) -> (one layer, structures, shape)."""
    from scipy import ndimage

    arr, aff = _mask_array(case_id, "label map", labels)
    _check_grid(case_id, "label map", arr.shape, aff, _as_grid(grid) or Grid(arr.shape, affine), "label map")
    classes = {int(v): c for v, c in classes.items()}
    regions = {v: _region(case_id, c, resolve) for v, c in classes.items()}
    if arr.dtype.kind == "f" and not np.array_equal(arr, np.rint(arr)):
        raise IngestError("label map holds non-integer values", case_id=case_id, stage="masks")
    if arr.size and (arr.min() < 0 or min(classes, default=1) < 1):
        raise IngestError("label values must be positive (0 = background)", case_id=case_id, stage="masks")
    top = max(int(arr.max(initial=0)), max(classes, default=0))
    layer = arr.astype(np.uint8 if top <= 255 else np.uint16 if top <= 65535 else np.uint32)
    counts = np.bincount(layer.ravel(), minlength=top + 1)
    unmapped = [v for v in np.flatnonzero(counts).tolist() if v and v not in classes]
    if unmapped:
        raise IngestError(f"label values {unmapped[:20]} have no class name", case_id=case_id, stage="masks",
                          hint="pass every value present in the label map in the class map")
    objects = ndimage.find_objects(layer)
    name = f"{layer_prefix}-0"
    structures = []
    for v in sorted(classes):
        n = int(counts[v])
        sl = objects[v - 1] if n else None
        box = ((sl[0].start, sl[1].start, sl[2].start), (sl[0].stop, sl[1].stop, sl[2].stop)) if sl else None
        r = regions[v]
        structures.append(Structure(name=classes[v], region_id=r.region_id, region=r.name, mask_source=mask_source,
                                    layer=name if n else None, value=v if n else None, voxels=n, bbox=box))
    return {name: layer}, structures, arr.shape


ReadLayer = Callable[[str, tuple[slice, ...]], np.ndarray]


def _reads(structures: Iterable[Structure], box: Box) -> list[tuple[str, Box, list[Structure]]]:
    """(layer, box, structures) reads covering `structures` inside `box`: one per layer, or one
    per structure where a layer's structures lie apart (the ribs of `rib`): their boxes' sum is
    then well under their union's, and the union's box would decode mostly other structures."""
    by_layer: dict[str, list[Structure]] = {}
    for s in structures:
        if s.layer is not None and s.bbox is not None and intersect(s.bbox, box) is not None:
            by_layer.setdefault(s.layer, []).append(s)
    out = []
    for layer, group in by_layer.items():
        whole = intersect(union_box(s.bbox for s in group), box)
        own = [intersect(s.bbox, box) for s in group]
        if len(group) > 1 and 2 * sum(math.prod(box_shape(b)) for b in own) < math.prod(box_shape(whole)):
            out.extend((layer, b, [s]) for b, s in zip(own, group, strict=True))
        else:
            out.append((layer, whole, group))
    return out


def union_in_box(read: ReadLayer, structures: Iterable[Structure], box: Box) -> np.ndarray:
    """Union of `structures` inside `box`; reads only the parts of the layers the structures cover."""
    size = box_shape(box)
    out: np.ndarray | None = None
    for layer, inter, group in _reads(structures, box):
        chunk = read(layer, slices(inter))
        if len(group) == 1:
            hit = chunk == group[0].value
        else:  # one lookup table per layer instead of one comparison per structure
            lut = np.zeros(int(max(chunk.max(initial=0), *(s.value for s in group))) + 1, bool)
            lut[[s.value for s in group]] = True
            hit = lut[chunk]
        if out is None and inter == box:  # the common case, one layer covering the box: no copy
            out = hit
            continue
        if out is None:
            out = np.zeros(size, bool)
        dst = tuple(slice(a - b, c - b) for a, c, b in zip(inter[0], inter[1], box[0], strict=True))
        out[dst] |= hit
    return out if out is not None else np.zeros(size, bool)
