"""RadGenome's per-structure masks, read from tar streams or extracted folders, grouped by case.

The release ships ``<split>_{region,anatomy}_mask.tar.gz``; the train anatomy masks come
as parts (``train_anatomy_mask_aa`` .. ``_ae``, earlier ``.tar.gz.part-00`` ..) that make
a tar only when concatenated. Parts are read as one stream (`ConcatReader`), members one
by one, and never extracted: a case's members (``seg_<volume>/<structure>.nii.gz``, still
gzip-compressed) are handed to its job as bytes. Extracted folders work the same way with
file paths instead of bytes.

Members named outside the archive (``../x``, ``/etc/x``), with bytes that are not UTF-8 or
control characters, links and devices are refused with an `ingest_errors` row naming the
archive and the member, as is a case folder whose name cannot be a case id; a truncated
archive stops its stream with a row, and the cases read before it are kept. Parts are
checked for gaps (``_aa``, ``_ab``, ``_ad``: part ``_ac`` is missing): the parts before
the gap are read, and a row names the missing part.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ingest.sources.release_csv import CONTROL, ErrorSink
from ingest.sources.volume_names import FOLDER_SPLIT, SPLITS, case_name_problem, mask_member

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
    missing: tuple[str, ...] = ()  # names of parts missing between the parts found

    @property
    def mask_source(self) -> str:
        return MASK_KINDS[self.kind]

    @property
    def origin(self) -> str:
        return str(self.folder or self.parts[0])

    @property
    def readable(self) -> tuple[Path, ...]:
        """The parts that make a stream: those before the first missing one."""
        if not self.missing:
            return self.parts
        first = self.missing[0]
        return tuple(p for p in self.parts if _part_key(p.name) < _part_key(first))


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


def _part_key(name: str) -> tuple[int, int | str]:
    m = _PART.match(name)
    if m is None:
        return (0, name)
    return (1, int(m["num"])) if m["num"] is not None else (1, m["aa"])


def missing_parts(parts: list[Path]) -> tuple[str, ...]:
    """Names of the parts missing from a split archive: gaps in ``_aa``, ``_ab``, ... (which starts at
    ``_aa``) or in ``.part-00``, ``.part-01``, ... (from the first number found)."""
    found = [_PART.match(p.name) for p in parts]
    if not parts or any(m is None for m in found):
        return ()
    head = parts[0].name[:found[0].start("aa" if found[0]["aa"] else "num")]
    if found[0]["aa"]:
        have = {m["aa"] for m in found}
        codes = [a + b for a in "abcdefghijklmnopqrstuvwxyz" for b in "abcdefghijklmnopqrstuvwxyz"]
        wanted = codes[:codes.index(max(have)) + 1]
        return tuple(head + c for c in wanted if c not in have)
    nums = {int(m["num"]): m["num"] for m in found}
    width = len(found[0]["num"])
    return tuple(head + str(n).zfill(width) for n in range(min(nums), max(nums)) if n not in nums)


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
                    found.append(MaskInput(kind, split, parts=tuple(parts), missing=missing_parts(parts)))
                if (base / stem).is_dir():
                    found.append(MaskInput(kind, split, folder=base / stem))
    return found


def _safe(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and not re.match(r"^[A-Za-z]:", name)


def _part_problems(mask_input: MaskInput, errors: ErrorSink) -> str:
    """Error rows for missing and empty parts; returns what to add to an 'ends early' message."""
    parts = mask_input.parts
    if mask_input.missing:
        base = _PART.match(parts[0].name)["base"]

        def suffixes(names: list[str]) -> str:
            return ", ".join(n[len(base):] for n in names) or "none"

        for name in mask_input.missing:
            errors.add(f"part {name[len(base):]} of {base} is missing (found {suffixes([p.name for p in parts])}); "
                       f"only the parts before it are read ({suffixes([p.name for p in mask_input.readable])}), "
                       "so the cases in the later parts are missing — download the part and run the build again",
                       file=parts[0].parent / name, stage="masks")
    for p in mask_input.readable:
        if p.stat().st_size == 0:
            errors.add("the archive file is empty (0 bytes); re-download it", file=p, stage="masks")
    if mask_input.missing:
        return f" (part {mask_input.missing[0]} is missing)"
    return f" (the part after {parts[-1].name} may be missing)" if len(parts) > 1 else ""


def _member_problem(name: str) -> str | None:
    if re.search("[\udc80-\udcff]", name) or CONTROL.search(name):
        return "member name is not UTF-8 text (undecodable bytes or control characters); it is skipped"
    if not _safe(name):
        return "member path leaves the archive (absolute or '..'); it is skipped"
    return None


def iter_members(mask_input: MaskInput, errors: ErrorSink) -> Iterator[tuple[str, bytes]]:
    """``(member name, bytes)`` of each regular file of an archive stream; bad members are error rows."""
    origin, last = mask_input.origin, None
    note = _part_problems(mask_input, errors)
    if not mask_input.readable or not sum(p.stat().st_size for p in mask_input.readable):
        return
    reader = io.BufferedReader(ConcatReader(mask_input.readable), buffer_size=1 << 20)
    try:
        with tarfile.open(fileobj=reader, mode="r|*") as tar:
            for m in tar:
                last = m.name
                if (why := _member_problem(m.name)) is not None:
                    errors.add(why, file=origin, location=m.name, stage="masks")
                    continue
                if not m.isfile():
                    if not m.isdir():
                        errors.add("member is a link or device, not a mask file; it is skipped",
                                   file=origin, location=m.name, stage="masks")
                    continue
                f = tar.extractfile(m)
                yield m.name, f.read() if f else b""
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error) as e:
        what = "archive stream ends early" if last else "cannot read the archive"
        errors.add(f"{what} ({type(e).__name__}: {e}){note}; cases after {last or 'the start'} are missing — "
                   "re-download the archive", file=origin, location=last, stage="masks")
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
        if (why := case_name_problem(parsed[0])) is not None:
            errors.add(f"{why}; the member is skipped", file=mask_input.origin, location=name, stage="masks")
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
            if (why := case_name_problem(parsed[0])) is not None:
                errors.add(f"{why}; the mask file is skipped", file=path, stage="masks")
                continue
            if _member_problem(name) is not None:
                errors.add("the file name is not UTF-8 text (undecodable bytes or control characters); the mask "
                           "file is skipped — rename it", file=path, case_id=parsed[0], stage="masks")
                continue
            by_case.setdefault(parsed[0], []).append((parsed[1], str(path), str(path)))
    return {c: MaskSet(mask_input.mask_source, mask_input.origin, tuple(m)) for c, m in by_case.items()}


def case_split(case_id: str) -> str | None:
    """train / validation from a case id's prefix."""
    prefix = case_id.split("_", 1)[0]
    return SPLITS.get(prefix)
