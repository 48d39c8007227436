"""Small malformed inputs for `test_hostile_inputs`: NIfTI bytes, tar archives with any member (links,
devices, names that are not UTF-8), CSV lines in any encoding, and a miniature release to corrupt."""

from __future__ import annotations

import csv
import gzip
import io
import os
import shutil
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

AFFINE = np.diag([-1.0, -1.0, 2.0, 1.0])
SHAPE = (16, 12, 6)


def ct(shape: tuple[int, ...] = SHAPE, dtype=np.int16) -> np.ndarray:
    """A tiny CT in HU: air with a soft-tissue block."""
    hu = np.full(shape, -1000, dtype)
    hu[4:12, 3:9] = 40
    return hu


def mask(shape: tuple[int, ...] = SHAPE, dtype=np.uint8, inside=1, outside=0) -> np.ndarray:
    out = np.full(shape, outside, dtype)
    out[2:8, 2:6, 1:4] = inside
    return out


def nifti(array: np.ndarray, affine: np.ndarray | None = AFFINE, *, gz: bool = True, sform: np.ndarray | None = None,
          dims: tuple[int, ...] | None = None) -> bytes:
    """NIfTI-1 bytes (gzip unless `gz` is False); `sform`: a matrix written as is (singular, NaN);
    `dims`: a header that promises another shape than the voxels hold."""
    img = nib.Nifti1Image(array, affine, dtype=array.dtype if array.dtype.kind in "iu" else None)
    raw = bytearray(img.to_bytes())
    if sform is not None:  # written into the header bytes: nibabel would not save a singular one
        struct.pack_into("<hh", raw, 252, 0, 1)  # qform_code 0, sform_code 1
        struct.pack_into("<12f", raw, 280, *np.asarray(sform, np.float32)[:3].ravel())
    if dims is not None:
        raw[40:56] = np.array([len(dims), *dims, *[1] * (7 - len(dims))], "<i2").tobytes()
    return gzip.compress(bytes(raw), mtime=0) if gz else bytes(raw)


@dataclass(frozen=True)
class Member:
    """A tar member as given: a regular file, or a symlink / hardlink / fifo (`kind`)."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    target: str = ""


def tar_gz(members: list[Member]) -> bytes:
    """A .tar.gz of the members, names written byte for byte (GNU format: no UTF-8 check)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type, info.linkname, info.mtime = m.kind, m.target, 0
            info.size = len(m.data) if m.kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(m.data) if m.kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def read_tar(path: Path) -> list[Member]:
    """The members of a (release fixture's) .tar.gz, bytes and all."""
    with tarfile.open(path) as tar:
        return [Member(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]


def csv_line(values: list[str], *, delimiter: str = ",") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerow(values)
    return buf.getvalue()


def append_line(path: Path, line: str | bytes) -> int:
    """Append one line (no newline needed) to a CSV; returns its line number."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data += b"\n"
    line = line.encode() if isinstance(line, str) else line
    path.write_bytes(data + line.rstrip(b"\n") + b"\n")
    return data.count(b"\n") + 1


def fsname(name: str) -> str:
    """A path string holding bytes that are not UTF-8 (``\\udcff``) as the OS shows it."""
    return os.fsdecode(os.fsencode(name))


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst
