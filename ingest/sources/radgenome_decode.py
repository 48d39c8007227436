"""Decoding released mask files with as few passes over the voxels as possible.

A RadGenome case has about 200 masks of millions of voxels, so each pass counts: a
file is inflated once (zlib checks the gzip CRC as it goes, no second pass), its voxels
are used in place (``np.frombuffer`` over the inflated bytes, in the file's own Fortran
order), and reorientation to the warehouse's L, P, S axes is a view (flips and axis
swaps change strides, not data). Before any voxel is read, each mask's header is checked
(name, grid) from its first kilobyte; the array store then reads the masks one at a
time (`LazyMask`), scans each for its bounding box and copies only the box. Values other
than 0/1 make the mask an error row (`ingest.images.binary_mask`, the rule of every source).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from ingest.images import CTImage, binary_mask
from warehouse.core.errors import IngestError
from warehouse.core.grid import Grid, to_lps

_GZIP = b"\x1f\x8b"


class MaskReadError(Exception):
    """A mask file that could not be read; `where` names it (archive member or path)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where


def gunzip(data: bytes) -> bytes:
    """Inflate gzip bytes in one pass (several gzip members, as some tools write, are joined)."""
    d = zlib.decompressobj(31)
    out = d.decompress(data)
    if not d.eof:
        raise EOFError("compressed data ended before the end-of-stream marker (a truncated file)")
    return out + gzip.decompress(d.unused_data) if d.unused_data.strip(b"\0") else out


def _header(raw: bytes) -> nib.Nifti1Header:
    sizes = (int.from_bytes(raw[:4], "little"), int.from_bytes(raw[:4], "big"))
    if 348 in sizes and raw[344:348] in (b"n+1\0", b"ni1\0"):
        header_class = nib.Nifti1Header
    elif 540 in sizes and raw[4:8] in (b"n+2\0", b"ni2\0"):
        header_class = nib.Nifti2Header
    else:
        raise ValueError(f"not a NIfTI file (it starts with {raw[:16]!r})")
    return header_class.from_fileobj(io.BytesIO(raw[:header_class.sizeof_hdr + 4]), check=True)


def _squeeze(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(shape[:3]) if len(shape) == 4 and shape[3] == 1 else tuple(shape)


def read_header(payload: bytes | str) -> tuple[tuple[int, ...], np.ndarray]:
    """A NIfTI file's shape and affine from its first bytes only (one small inflate, not the voxels)."""
    if isinstance(payload, bytes):
        head = payload[:1 << 16]
    else:
        with open(payload, "rb") as f:
            head = f.read(1 << 16)
    if head[:2] == _GZIP:
        head = zlib.decompressobj(31).decompress(head, 1024)
    header = _header(head)
    return _squeeze(header.get_data_shape()), np.asarray(header.get_best_affine(), float)


def decode_nifti(payload: bytes | str) -> tuple[np.ndarray, np.ndarray]:
    """A NIfTI file's voxels (a read-only view, Fortran order) and affine, from bytes or a path.

    Raises ValueError, EOFError or zlib.error for a truncated or foreign file.
    """
    raw = payload if isinstance(payload, bytes) else Path(payload).read_bytes()
    if raw[:2] == _GZIP:
        raw = gunzip(raw)
    header = _header(raw)
    shape, dtype = header.get_data_shape(), header.get_data_dtype()
    offset, count = int(header.get_data_offset()), int(np.prod(shape))
    if len(raw) < offset + count * dtype.itemsize:
        raise ValueError(f"the file holds {len(raw) - offset} bytes of voxels, its header promises "
                         f"{count * dtype.itemsize} ({shape} {dtype})")
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(shape, order="F")
    slope, inter = header.get_slope_inter()
    if slope is not None and (slope != 1 or (inter or 0) != 0):
        data = data * slope + (inter or 0)
    return data.reshape(_squeeze(shape), order="A"), np.asarray(header.get_best_affine(), dtype=np.float64)


def lps_view(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`data` as a view with axis codes L, P, S (`warehouse.core.grid.to_lps`, without the copy)."""
    return to_lps(data, affine)


def check_image_grid(shape: tuple[int, ...], affine: np.ndarray, image: CTImage, *, file: str) -> None:
    """Raise `GridMismatchError` unless a mask's grid is its image's (as released, before reorienting),
    within the one tolerance of `Grid.same_as`."""
    Grid(shape, affine).check(Grid(image.original_shape, image.original_affine), file=file)


def gzip_body(payload: bytes) -> bytes:
    """A gzip file without its header (RFC 1952: modification time, OS, optional name and comment):
    files written at different times from the same bytes then compare equal. Not gzip: as given.

    By hand because the gzip module keeps its header parser private.
    """
    if len(payload) < 18 or payload[:3] != b"\x1f\x8b\x08":
        return payload
    flags, pos = payload[3], 10
    if flags & 4:  # FEXTRA: two-byte length, then that many bytes
        pos += 2 + int.from_bytes(payload[pos:pos + 2], "little")
    for bit in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & bit:
            pos = payload.find(b"\x00", pos) + 1 or len(payload)
    if flags & 2:  # FHCRC
        pos += 2
    return payload[pos:]


class _Voxels:
    """What `LazyMask.dataobj` returns: decoded when numpy asks for the array, not before."""

    def __init__(self, mask: LazyMask) -> None:
        self._mask = mask

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self._mask.read()
        return data if dtype is None else data.astype(dtype)


class LazyMask:
    """A mask the array store reads when it gets to it (``.dataobj``, ``.affine``): one in memory at a time.

    The voxels are decoded and viewed on the stored L, P, S grid on access; a file that
    turns out to be unreadable raises `MaskReadError` naming it.
    """

    def __init__(self, payload: bytes | str, where: str, affine: np.ndarray) -> None:
        self._payload, self.where, self.affine = payload, where, affine

    @property
    def content_key(self) -> bytes:
        """Equal for masks with the same file bytes on the same grid, so the store decodes such
        masks once (a RadGenome case ships about 50 empty masks, byte-identical files)."""
        if isinstance(self._payload, str):
            try:
                self._payload = Path(self._payload).read_bytes()
            except OSError as e:
                raise MaskReadError(self.where, f"cannot read the mask file ({e.strerror})") from None
        return hashlib.blake2b(gzip_body(self._payload) + np.asarray(self.affine, np.float64).tobytes(),
                               digest_size=16).digest()

    @property
    def dataobj(self) -> _Voxels:
        return _Voxels(self)

    def read(self) -> np.ndarray:
        """The voxels, 0/1 (`ingest.images.binary_mask`), on the stored grid."""
        try:
            data, affine = decode_nifti(self._payload)
        except Exception as e:  # truncated gzip, foreign bytes: zlib and nibabel raise many types
            raise MaskReadError(self.where, f"cannot read the mask ({type(e).__name__}: {e}); "
                                            "re-download the archive or file") from None
        try:
            data = binary_mask(data, self.where)
        except IngestError as e:
            raise MaskReadError(self.where, f"{e.message} — {e.hint}") from None
        return lps_view(data, affine)[0]
