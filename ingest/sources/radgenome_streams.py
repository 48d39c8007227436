"""Merging the mask archives of a release into one stream of cases, in bounded memory.

Each archive yields its cases in its own order. A case is handed on once every archive
of its split that is still being read has delivered it (or has ended), so with one
archive, or archives in the same order, a case waits for nothing. Archives in different
orders make cases wait; once the waiting cases hold more than `budget` bytes, the oldest
are spilled to a temporary folder (still compressed, only those cases) and their jobs
read the files and delete them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.sources.radgenome_masks import MaskInput, MaskSet, case_split, iter_case_groups
from ingest.sources.release_csv import ErrorSink
from warehouse.core.ids import case_key

DEFAULT_BUDGET = 1 << 30  # bytes of compressed masks held while waiting for other archives


@dataclass
class _Waiting:
    sets: dict[int, MaskSet] = field(default_factory=dict)
    spill: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.sets.values())


def merge_archives(inputs: Sequence[MaskInput], errors: ErrorSink, budget: int = DEFAULT_BUDGET,
                   ) -> Iterator[tuple[str, list[MaskSet], list[str]]]:
    """``(case id, mask sets, spilled folders)`` for every case found in the archives."""
    streams = {i: iter_case_groups(inp, errors) for i, inp in enumerate(inputs)}
    waiting: dict[str, _Waiting] = {}
    emitted: set[str] = set()
    spill_root: list[Path] = []
    held = 0
    try:
        while streams:
            for i in list(streams):
                item = next(streams[i], None)
                if item is None:
                    del streams[i]
                    continue
                case, mask_set = item
                if case in emitted:
                    errors.add("this case's members are not together in the archive; the later ones are "
                               "skipped", file=inputs[i].origin, location=f"seg_{case}", case_id=case,
                               stage="masks")
                    continue
                slot = waiting.setdefault(case, _Waiting())
                if i in slot.sets:  # the same archive came back to the case before it was handed on
                    old = slot.sets[i]
                    mask_set = MaskSet(old.mask_source, old.origin, old.members + mask_set.members)
                    held -= old.nbytes
                slot.sets[i] = mask_set
                held += mask_set.nbytes
            for case in list(waiting):
                split = case_split(case)
                if all(i in waiting[case].sets for i in streams if split is None or inputs[i].split == split):
                    slot = waiting.pop(case)
                    held -= slot.nbytes
                    emitted.add(case)
                    yield case, [slot.sets[i] for i in sorted(slot.sets)], slot.spill
            for case in list(waiting):  # oldest first
                if held <= budget:
                    break
                held -= _spill(case, waiting[case], spill_root)
    finally:
        for s in streams.values():
            s.close()


def _spill(case: str, slot: _Waiting, spill_root: list[Path]) -> int:
    """Write a waiting case's member bytes to files; returns the bytes no longer held."""
    if not spill_root:
        spill_root.append(Path(tempfile.mkdtemp(prefix="radgenome-spill-")))
    freed = 0
    for i, mask_set in list(slot.sets.items()):
        if not mask_set.nbytes:
            continue
        folder = spill_root[0] / case_key(case) / str(i)
        folder.mkdir(parents=True, exist_ok=True)
        members = []
        for k, (name, payload, where) in enumerate(mask_set.members):
            if isinstance(payload, bytes):  # numbered: a name repeated in an archive must not overwrite the first
                suffix = ".nii.gz" if payload[:2] == b"\x1f\x8b" else ".nii"
                path = folder / f"{k:04d}-{case_key(name)}{suffix}"
                path.write_bytes(payload)
                freed += len(payload)
                payload = str(path)
            members.append((name, payload, where))
        slot.sets[i] = MaskSet(mask_set.mask_source, mask_set.origin, tuple(members))
        slot.spill.append(str(folder))
    return freed
