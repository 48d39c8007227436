"""RadGenome's per-structure masks, read from tar streams or extracted folders, grouped by case.

The release ships ``<split>_{region,anatomy}_mask.tar.gz``; the train anatomy masks come
as parts (``train_anatomy_mask_aa`` .. ``_ae``, earlier ``.tar.gz.part-00`` ..) that make
a tar only when concatenated. Parts are read as one stream (`ConcatReader`), members one
by one, and never extracted: a case's members (``seg_<volume>/<structure>.nii.gz``, still
gzip-compressed) are handed to its job as bytes. Extracted folders work the same way with
file paths instead of bytes.

Members named outside the archive (``../x``, ``/etc/x``), links and devices are refused
with an `ingest_errors` row naming the archive and the member; a truncated archive stops
its stream with a row, and the cases read before it are kept.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ingest.sources.release_csv import ErrorSink
from ingest.sources.volume_names import FOLDER_SPLIT, SPLITS, mask_member

MASK_KINDS: dict[str, str] = {"region": "radgenome-region", "anatomy": "radgenome"}  # kind -> mask_source
_PART = re.compile(r"^(?P<base>.+?)(?:_(?P<aa>[a-z]{2})|\.part-?(?P<num>\d+))$")

Payload = bytes | str  # a member's compressed bytes, or a file path


@dataclass(frozen=True)
class MaskSet:
    """One case's masks from one input: (structure, payload, member name or file) and the input."""

    mask_source: str
    origin: str  # the archive (first part) or folder, for error rows
    members: tuple[tuple[str, Payload, str], ...]

    @property
    def nbytes(self) -> int:
        return sum(len(p) for _, p, _ in self.members if isinstance(p, bytes))


@dataclass(frozen=True)
class MaskInput:
    """A released mask archive (one or more parts) or an extracted folder."""

    kind: str  # region or anatomy
    split: str  # train or validation
    parts: tuple[Path, ...] = ()
    folder: Path | None = None

    @property
    def mask_source(self) -> str:
        return MASK_KINDS[self.kind]

    @property
    def origin(self) -> str:
        return str(self.folder or self.parts[0])


class ConcatReader(io.RawIOBase):
    """Several files read as one stream, in order (split archive parts)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._paths, self._i, self._f = list(paths), 0, None

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        while self._i < len(self._paths):
            if self._f is None:
                self._f = open(self._paths[self._i], "rb")
            n = self._f.readinto(buf)
            if n:
                return n
            self._f.close()
            self._f, self._i = None, self._i + 1
        return 0

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
        super().close()


def find_mask_inputs(release: Path) -> list[MaskInput]:
    """Every mask archive and extracted mask folder of a release (``dataset/`` or the folder itself)."""
    found: list[MaskInput] = []
    for base in (release / "dataset", release):
        if not base.is_dir():
            continue
        entries = sorted(base.iterdir())
        for kind in MASK_KINDS:
            for split, prefix in FOLDER_SPLIT.items():
                stem = f"{prefix}_{kind}_mask"
                parts = [p for p in entries if p.is_file() and p.name in (f"{stem}.tar.gz", f"{stem}.tgz",
                                                                           f"{stem}.tar")]
                parts = parts[:1] or sorted(
                    (p for p in entries if p.is_file() and (m := _PART.match(p.name))
                     and m["base"] in (stem, f"{stem}.tar.gz", f"{stem}.tar")), key=lambda p: p.name)
                if parts:
                    found.append(MaskInput(kind, split, parts=tuple(parts)))
                if (base / stem).is_dir():
                    found.append(MaskInput(kind, split, folder=base / stem))
    return found


def _safe(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and not re.match(r"^[A-Za-z]:", name)


def iter_members(mask_input: MaskInput, errors: ErrorSink) -> Iterator[tuple[str, bytes]]:
    """``(member name, bytes)`` of each regular file of an archive stream; bad members are error rows."""
    origin, last = mask_input.origin, None
    reader = io.BufferedReader(ConcatReader(mask_input.parts), buffer_size=1 << 20)
    try:
        with tarfile.open(fileobj=reader, mode="r|*") as tar:
            for m in tar:
                last = m.name
                if not _safe(m.name):
                    errors.add("member path leaves the archive (absolute or '..'); it is skipped",
                               file=origin, location=m.name, stage="masks")
                    continue
                if not m.isfile():
                    if not m.isdir():
                        errors.add("member is a link or device, not a mask file; it is skipped",
                                   file=origin, location=m.name, stage="masks")
                    continue
                f = tar.extractfile(m)
                yield m.name, f.read() if f else b""
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        errors.add(f"archive stream ends early ({type(e).__name__}: {e}); cases after "
                   f"{last or 'the start'} are missing", file=origin, location=last, stage="masks",
                   )
    finally:
        reader.close()


def iter_case_groups(mask_input: MaskInput, errors: ErrorSink) -> Iterator[tuple[str, MaskSet]]:
    """``(case id, MaskSet)`` per case folder of an archive, in archive order."""
    case, members = None, []
    for name, data in iter_members(mask_input, errors):
        parsed = mask_member(name)
        if parsed is None:
            errors.add("not a mask member (expected seg_<volume>/<structure>.nii.gz); it is skipped",
                       file=mask_input.origin, location=name, stage="masks")
            continue
        if parsed[0] != case and members:
            yield case, MaskSet(mask_input.mask_source, mask_input.origin, tuple(members))
            members = []
        case = parsed[0]
        members.append((parsed[1], data, name))
    if members:
        yield case, MaskSet(mask_input.mask_source, mask_input.origin, tuple(members))


def index_folder(mask_input: MaskInput, errors: ErrorSink) -> dict[str, MaskSet]:
    """An extracted mask folder as MaskSets of file paths, by case id."""
    by_case: dict[str, list[tuple[str, Payload, str]]] = {}
    for folder, dirs, files in os.walk(mask_input.folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name)
            parsed = mask_member(path.relative_to(mask_input.folder).as_posix())
            if parsed is None:
                if name.endswith((".nii.gz", ".nii")):
                    errors.add("mask file outside a seg_<volume>/ folder; it is skipped", file=path,
                               stage="masks")
                continue
            by_case.setdefault(parsed[0], []).append((parsed[1], str(path), str(path)))
    return {c: MaskSet(mask_input.mask_source, mask_input.origin, tuple(m)) for c, m in by_case.items()}


def case_split(case_id: str) -> str | None:
    """train / validation from a case id's prefix."""
    prefix = case_id.split("_", 1)[0]
    return SPLITS.get(prefix)
