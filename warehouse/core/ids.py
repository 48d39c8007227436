"""Deterministic row ids: the one recipe every table's content-derived id is made with.

`content_id(*parts)` hashes the parts (BLAKE2b) and gives the first `size` hex digits. Two
builds of the same inputs therefore give the same ids, on any machine and Python version
(no `hash()`, no process salt). Each part is written with its length first, so no choice
of parts can collide by where they split: ``("a", "bc")`` and ``("ab", "c")`` differ, and so do
parts that hold a separator character. ``None`` counts as the empty string, as in a CSV
field, so an exported and re-ingested row gets the id it had.

This is for row ids (sentences, findings, VQA pairs, demo rows) and build keys. `case_key` is the
one name a case id takes in files and Zarr groups (array store, staging, exports). Snapshot ids (a hash of the
tables' bytes, `warehouse.store.commit`) and file digests (sha256 of a file's bytes) are other
concepts and keep their own hashes. Standard library only.
"""

from __future__ import annotations

import hashlib
import re

MAX_SIZE = 64  # hex digits of the 256-bit digest
_PLAIN_VOLUME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_]*)\.nii\.gz$")


def content_id(*parts: object, size: int = 20) -> str:
    """The first `size` hex digits (1..64) of a hash of `parts` (each as ``str``; ``None`` as "").

    A shorter id is a prefix of a longer one of the same parts.
    """
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"size must be 1..{MAX_SIZE} hex digits, not {size}")
    h = hashlib.blake2b(digest_size=MAX_SIZE // 2)
    for p in parts:
        b = ("" if p is None else str(p)).encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "big"))
        h.update(b)
    return h.hexdigest()[:size]


def case_key(case_id: str) -> str:
    """The group name of a case: ``train_1_a_1.nii.gz`` -> ``train_1_a_1``; injective for any id.

    Volume names of letters, digits and '_' drop their ``.nii.gz``; any other id becomes a
    sanitised stem plus '-' and a hash of the id (plain keys never contain '-').
    """
    m = _PLAIN_VOLUME.match(case_id)
    if m:
        return m.group(1)
    stem = re.sub(r"\.nii(\.gz)?$", "", case_id)
    stem = re.sub(r"[^A-Za-z0-9_.]", "_", stem)[:80].strip("._") or "case"  # zarr reserves names starting "__"
    return f"{stem}-{hashlib.sha1(case_id.encode()).hexdigest()[:8]}"
