"""Deterministic row ids: the one recipe every table's content-derived id is made with.

`content_id(*parts)` hashes the parts (BLAKE2b) and gives the first `size` hex digits. Two
builds of the same inputs therefore give the same ids, on any machine and Python version
(no `hash()`, no process salt). Each part is written with its length first, so no choice
of parts can collide by where they split: ``("a", "bc")`` and ``("ab", "c")`` differ, and so do
parts that hold a separator character. ``None`` counts as the empty string, as in a CSV
field, so an exported and re-ingested row gets the id it had.

This is for row ids (sentences, findings, VQA pairs, demo rows). Snapshot ids (a hash of the
tables' bytes, `warehouse.store.commit`) and file digests (sha256 of a file's bytes) are other
concepts and keep their own hashes. Standard library only.
"""

from __future__ import annotations

import hashlib

MAX_SIZE = 64  # hex digits of the 256-bit digest


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
