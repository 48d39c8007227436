"""The geometry of a voxel grid, written once: the `Grid` value type, its one tolerance, crops and reorientation.

A grid is a shape and a nibabel (RAS+ world, mm) 4x4 affine. Every module that compares
grids, shifts an affine to a crop, grows a box by a margin or turns an array to the
stored L, P, S axis order calls this module, so the rules cannot drift apart:

* **Tolerance.** Two grids are the same when their shapes are equal and every entry of
  their affines differs by at most `GRID_ATOL_MM` (1e-3 mm: axes and origin alike, no
  relative term). A mask written by another tool on the CT's grid passes (float32
  headers round at about 3e-5 mm at 300 mm); a grid shifted by 0.01 mm does not.
* **Orientation.** Stored arrays have nibabel axis codes ``L, P, S`` (`STORED_AXCODES`):
  the array is flipped and permuted, never resampled (`to_lps`).
* **Air.** -1024 HU (`AIR_HU`): the floor of stored HU, the fill of unstored image chunks
  and of padding.

Imports only numpy (nibabel lazily) and warehouse core modules (`warehouse.core.errors`,
`warehouse.core.boxes`), so ingest and the store can both use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from warehouse.core.boxes import Box
from warehouse.core.errors import GridMismatchError

__all__ = ["AIR_HU", "GRID_ATOL_MM", "STORED_AXCODES", "Box", "Grid", "axcodes", "margin_box", "same_affine",
           "shift_affine", "spacing", "to_lps"]

AIR_HU = -1024  # air in Hounsfield units
GRID_ATOL_MM = 1e-3  # the one tolerance of a grid comparison, per affine entry (see the module docstring)
STORED_AXCODES: tuple[str, str, str] = ("L", "P", "S")
_IDENTITY = np.array([[0, 1], [1, 1], [2, 1]], dtype=np.float64)
_MISMATCH_HINT = "masks must be written on the CT's own grid; resample them onto it first"


def spacing(affine: np.ndarray) -> np.ndarray:
    """Voxel spacing in mm along each array axis (lengths of the affine's columns)."""
    return np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)


def axcodes(affine: np.ndarray) -> tuple[str, ...]:
    """nibabel's axis codes of an affine, e.g. ``('L', 'P', 'S')``."""
    from nibabel.orientations import aff2axcodes

    return tuple(aff2axcodes(np.asarray(affine, dtype=np.float64)))


def same_affine(a: np.ndarray, b: np.ndarray) -> bool:
    """Every entry of the two 4x4 affines within `GRID_ATOL_MM` of the other's."""
    return bool(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))
                <= GRID_ATOL_MM)


def shift_affine(affine: np.ndarray, offset: Iterable[int] | np.ndarray) -> np.ndarray:
    """Affine of a sub-grid whose voxel [0,0,0] is voxel `offset` of the grid of `affine`
    (the same world coordinates for the same voxel); a new float64 array."""
    out = np.array(affine, dtype=np.float64)
    out[:3, 3] = out[:3, :3] @ np.asarray(list(offset), dtype=np.float64) + out[:3, 3]
    return out


def margin_box(bbox: Box, shape: Iterable[int], affine: np.ndarray, margin_mm: float) -> Box:
    """`bbox` (voxels, hi exclusive) grown by `margin_mm` on every side, in whole voxels
    (rounded up per axis from the spacing), clipped to a grid of `shape`."""
    grow = np.ceil(max(float(margin_mm), 0.0) / spacing(affine) - 1e-9).astype(int)
    lo = tuple(max(0, int(a) - int(g)) for a, g in zip(bbox[0], grow, strict=True))
    hi = tuple(min(int(n), int(b) + int(g)) for b, g, n in zip(bbox[1], grow, shape, strict=True))
    return lo, hi  # type: ignore[return-value]


@lru_cache(maxsize=64)
def _lps_transform(affine_bytes: bytes, shape: tuple[int, ...]) -> tuple[bytes, bytes]:
    from nibabel.orientations import axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

    affine = np.frombuffer(affine_bytes).reshape(4, 4)
    xform = ornt_transform(io_orientation(affine), axcodes2ornt(STORED_AXCODES))
    return xform.astype(np.float64).tobytes(), (affine @ inv_ornt_aff(xform, shape)).tobytes()


def _lps(affine: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray | None, np.ndarray]:
    """The orientation transform to L, P, S (None when there is none to do) and the new affine."""
    a = np.asarray(affine, dtype=np.float64)
    xform_bytes, affine_bytes = _lps_transform(a.tobytes(), tuple(int(n) for n in shape[:3]))
    xform = np.frombuffer(xform_bytes).reshape(3, 2)
    if np.array_equal(xform, _IDENTITY):
        return None, a
    return xform, np.frombuffer(affine_bytes).reshape(4, 4).copy()


def to_lps(array: np.ndarray, affine: np.ndarray, *, contiguous: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`array` flipped and permuted (never resampled) so that its axis codes are L, P, S, and its affine.

    The array is a view (flips and axis swaps change strides, not data) unless
    `contiguous`, which copies a reoriented array into C order; an array already in
    L, P, S order comes back as it is, with its affine as float64.
    """
    from nibabel.orientations import apply_orientation

    xform, new_affine = _lps(affine, np.shape(array))
    if xform is None:
        return array, new_affine
    out = apply_orientation(array, xform)
    return (np.ascontiguousarray(out) if contiguous else out), new_affine


@dataclass(frozen=True, eq=False)
class Grid:
    """A voxel grid: shape and nibabel affine (a read-only float64 copy). Equal when exactly equal;
    `same_as` compares within `GRID_ATOL_MM`."""

    shape: tuple[int, ...]
    affine: np.ndarray

    def __post_init__(self) -> None:
        affine = np.array(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise ValueError(f"a grid's affine is 4x4, got shape {affine.shape}")
        affine.flags.writeable = False
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        object.__setattr__(self, "affine", affine)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grid):
            return NotImplemented
        return self.shape == other.shape and bool(np.array_equal(self.affine, other.affine))

    def __hash__(self) -> int:
        return hash((self.shape, self.affine.tobytes()))

    def __iter__(self):  # unpacks as the (shape, affine) pairs it replaces
        return iter((self.shape, self.affine))

    @property
    def spacing(self) -> tuple[float, ...]:
        """Voxel size in mm along each array axis."""
        return tuple(float(v) for v in spacing(self.affine))

    @property
    def axcodes(self) -> tuple[str, ...]:
        """nibabel's axis codes, e.g. ``('L', 'P', 'S')``."""
        return axcodes(self.affine)

    @property
    def orientation(self) -> str:
        """The axis codes as one string, e.g. ``'LPS'`` (the `orientation` column of `cases`)."""
        return "".join(self.axcodes)

    def same_as(self, other: Grid) -> bool:
        """Same shape, and every affine entry within `GRID_ATOL_MM` (1e-3 mm) of `other`'s."""
        return self.shape == tuple(other.shape) and same_affine(self.affine, other.affine)

    def check(self, other: Grid, *, file: str | None = None, case_id: str | None = None,
              what: str = "mask", of: str = "image") -> None:
        """Raise `GridMismatchError` (naming `file`) unless this grid (a mask's) is `other` (its image's)."""
        if self.same_as(other):
            return
        same_shape = self.shape == tuple(other.shape)
        raise GridMismatchError(
            f"{what} grid {self.shape} does not match the {of} grid {tuple(other.shape)}"
            + (" (same shape, different affine)" if same_shape else ""),
            case_id=case_id, file=file, stage="masks", hint=_MISMATCH_HINT)

    def shifted(self, offset: Iterable[int], shape: Iterable[int]) -> Grid:
        """The sub-grid of `shape` whose voxel [0,0,0] is voxel `offset` of this one."""
        return Grid(tuple(shape), shift_affine(self.affine, offset))

    def to_lps(self) -> Grid:
        """This grid as stored: axis codes L, P, S (shape permuted, affine to match)."""
        xform, affine = _lps(self.affine, self.shape)
        if xform is None:
            return Grid(self.shape, affine)
        return Grid(tuple(self.shape[int(i)] for i in np.argsort(xform[:, 0])), affine)
