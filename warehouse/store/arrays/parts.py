"""Parent masks stored as their parts: RadGenome's nesting without its bytes.

`split_unions` finds, among a case's masks, those that contain masks of regions below their
own in the anatomy DAG and keeps only what their parts leave; `pieces` expands a structure
back into the layer values that make it up. Both are exact: every mask reads back bit-exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from functools import cache, lru_cache
from typing import NamedTuple

import numpy as np

from warehouse.core.anatomy import Anatomy, Region
from warehouse.core.boxes import Box, bounding_box, box_shape, inside, slices
from warehouse.store.arrays.ome import Structure

__all__ = ["Crop", "pieces", "split_unions"]


class Crop(NamedTuple):
    """A mask kept as its box and its bit-packed boolean crop (None, None, 0 when empty).

    Bits are packed in the crop's own memory order (`order`): NIfTI masks are Fortran-ordered,
    and packing them in C order cost a transposing copy, 30x the packing itself.
    """

    box: Box | None
    bits: np.ndarray | None
    voxels: int
    order: str = "C"

    @classmethod
    def of(cls, box: Box | None, crop: np.ndarray | None) -> Crop:
        if box is None or crop is None:
            return cls(None, None, 0)
        order = "F" if crop.ndim > 1 and crop.strides[0] < crop.strides[-1] else "C"
        flat = crop.ravel(order=order)
        return cls(box, np.packbits(flat), int(np.count_nonzero(flat)), order)

    def unpack(self) -> np.ndarray:
        """The boolean crop, in the memory order it was packed in."""
        shape = box_shape(self.box)
        return np.unpackbits(self.bits, count=math.prod(shape)).view(bool).reshape(shape, order=self.order)


def split_unions(crops: Mapping[str, Crop], regions: Mapping[str, Region],
                 dag: Anatomy) -> dict[str, tuple[tuple[str, ...], Crop]]:
    """Masks that contain masks of regions below their own: name -> (parts, what remains).

    RadGenome ships a parent's mask beside its children's (lung, left lung, left lung lower
    lobe, ...), most often exactly their union. Such a parent is stored as its parts (the
    outermost contained masks) plus the voxels they leave, often none: bit-exact, fewer
    bytes, and fewer layers, since the rest overlaps none of the parts. (Containment
    outside the DAG — organs inside the thoracic cavity — is left alone: measured on a
    RadGenome-like case it gave more bytes, the rest's holes repeating the organs' edges.)
    """
    unpacked = lru_cache(maxsize=32)(lambda n: crops[n].unpack())
    below = cache(lambda region: dag.descendants(region, include_self=False))  # a walk of the DAG each
    nonempty = sorted(n for n in crops if crops[n].box is not None)
    out = {}
    for p in nonempty:
        pbox = crops[p].box
        contained = []
        for c in nonempty:
            where = inside(crops[c].box, pbox) if regions[c].name in below(regions[p].name) else None
            if where is not None and not (unpacked(c) & ~unpacked(p)[where]).any():
                contained.append(c)
        # the outermost: a part whose region lies under another part's is read through that one
        parts = tuple(c for c in contained if not any(regions[c].name in below(regions[d].name) for d in contained))
        if not parts:
            continue
        rest = unpacked(p).copy(order="K")
        for c in parts:
            rest[inside(crops[c].box, pbox)] &= ~unpacked(c)
        rbox = bounding_box(rest)
        if rbox is None:
            out[p] = (parts, Crop(None, None, 0))
            continue
        lo = tuple(a + b for a, b in zip(rbox[0], pbox[0], strict=True))
        hi = tuple(a + b for a, b in zip(rbox[1], pbox[0], strict=True))
        out[p] = (parts, Crop.of((lo, hi), rest[slices(rbox)]))
    return out


def pieces(structures: Iterable[Structure], catalogue: Iterable[Structure]) -> list[Structure]:
    """The structures whose layer values together make up `structures`: each one's own
    voxels and, through `parts` (recursively), its parts'. `catalogue`: the case's structures."""
    by_name = {(s.mask_source, s.name): s for s in catalogue}
    out, seen, todo = [], set(), list(structures)
    while todo:
        s = todo.pop()
        if (s.mask_source, s.name) in seen:
            continue
        seen.add((s.mask_source, s.name))
        if s.layer is not None:
            out.append(s)
        todo.extend(by_name[s.mask_source, p] for p in s.parts)
    return out
