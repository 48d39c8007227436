"""Sizes written in reports: "4.6 mm", "2 cm", "12x8 mm", "12 x 8 x 5 mm", "2.3 and 3 mm", "3-5 mm".

Each size keeps its text; its value is the largest dimension in millimetres. A size whose
largest dimension is not above 0 and below 1 m (``0 mm``, a 400-digit number) is no size:
it is left out, never stored as 0 or infinity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUM = r"\d+(?:[.,]\d+)?"
_UNIT = r"(?:mm|cm|millimet(?:er|re)s?|centimet(?:er|re)s?)(?![a-z])"
SIZE = re.compile(
    rf"(?<![\w.]){_NUM}(?:\s*{_UNIT})?(?:\s*(?:[x×*]|and|to|-|–)\s*{_NUM}(?:\s*{_UNIT})?)*\s*{_UNIT}",
    re.IGNORECASE)
_PART = re.compile(rf"({_NUM})(\s*{_UNIT})?", re.IGNORECASE)
SIZE_MAX_MM = 1000.0


@dataclass(frozen=True, slots=True)
class Size:
    """A size as written and its largest dimension in mm."""

    text: str
    mm: float
    start: int
    end: int


def _to_mm(value: str, unit: str) -> float:
    v = float(value.replace(",", "."))
    return v * 10 if unit.strip().lower().startswith("c") else v


def parse_sizes(text: str) -> list[Size]:
    """Every size in `text`, each with its largest dimension in mm (numbers share the next unit)."""
    out = []
    for m in SIZE.finditer(text):
        parts = _PART.findall(m.group())
        values, pending = [], []
        for number, unit in parts:
            pending.append(number)
            if unit:
                values.extend(_to_mm(n, unit) for n in pending)
                pending = []
        if values and 0 < max(values) < SIZE_MAX_MM:
            out.append(Size(m.group(), max(values), m.start(), m.end()))
    return out
