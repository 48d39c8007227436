"""Parent masks stored as their parts: RadGenome's nesting without its bytes.

`split_unions` finds, among a case's masks, those that contain masks of regions below their
own in the anatomy DAG and keeps only what their parts leave; `pieces` expands a structure
back into the layer values that make it up. Both are exact: every mask reads back bit-exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

import numpy as np

from warehouse.anatomy import Anatomy, Region
from warehouse.boxes import Box, bounding_box, inside, slices
from warehouse.ome import Structure

__all__ = ["Crop", "pieces", "split_unions", "unpack"]


Crop = tuple[Box | None, np.ndarray | None, int]  # a mask as its box, bit-packed crop and voxel count


def unpack(box: Box, bits: np.ndarray) -> np.ndarray:
    shape = tuple(b - a for a, b in zip(*box, strict=True))
    return np.unpackbits(bits, count=int(np.prod(shape))).reshape(shape).view(bool)


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
    unpacked = lru_cache(maxsize=32)(lambda n: unpack(*crops[n][:2]))
    nonempty = sorted(n for n in crops if crops[n][0] is not None)
    out = {}
    for p in nonempty:
        pbox = crops[p][0]
        below = dag.descendants(regions[p].name, include_self=False)
        contained = []
        for c in nonempty:
            where = inside(crops[c][0], pbox) if regions[c].name in below else None
            if where is not None and not (unpacked(c) & ~unpacked(p)[where]).any():
                contained.append(c)
        # the outermost: a part whose region lies under another part's is read through that one
        parts = tuple(c for c in contained
                      if not any(regions[c].name in dag.descendants(regions[d].name, include_self=False)
                                 for d in contained))
        if not parts:
            continue
        rest = unpacked(p).copy()
        for c in parts:
            rest[inside(crops[c][0], pbox)] &= ~unpacked(c)
        rbox = bounding_box(rest)
        if rbox is None:
            out[p] = (parts, (None, None, 0))
            continue
        crop = rest[slices(rbox)]
        lo = tuple(a + b for a, b in zip(rbox[0], pbox[0], strict=True))
        hi = tuple(a + b for a, b in zip(rbox[1], pbox[0], strict=True))
        out[p] = (parts, ((lo, hi), np.packbits(crop), int(np.count_nonzero(crop))))
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
