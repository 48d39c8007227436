"""Status of a finding mention: present, absent or uncertain, from cues in its clause.

The cues live in `vocab/status.toml`: negations ("no", "was not observed", "were not
detected"), hedges ("cannot be excluded", "suspicious for", "compatible with", "?"), each
reaching forward or backward within its clause, and pseudo-cues ("no change") that
look like negations and are not. An absent cue wins over a hedge in the same scope.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ingest.structure.text import Match, PhraseMatcher, Token

VOCAB = Path(__file__).with_name("vocab") / "status.toml"
PRESENT, ABSENT, UNCERTAIN = "present", "absent", "uncertain"


@dataclass(frozen=True, slots=True)
class StatusCue:
    """What a cue phrase does: (status, direction) pairs; empty for a pseudo-cue."""

    effects: frozenset[tuple[str, str]]


@cache
def cue_matchers(path: Path = VOCAB) -> tuple[PhraseMatcher[StatusCue], PhraseMatcher[StatusCue]]:
    """The pseudo-cues and the status cues (a phrase may reach both ways), as two matchers."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    effects: dict[str, set[tuple[str, str]]] = {}
    for status in (ABSENT, UNCERTAIN):
        for direction in ("forward", "backward"):
            for phrase in data[status][direction]:
                effects.setdefault(phrase, set()).add((status, direction))
    pseudo = {p: StatusCue(frozenset()) for p in data["pseudo"]["phrases"]}
    cues = [(p, StatusCue(frozenset(e))) for p, e in effects.items() if p not in pseudo]
    return PhraseMatcher(pseudo), PhraseMatcher(cues)


def find_cues(tokens: list[Token]) -> list[Match[StatusCue]]:
    """Status cues in a token list; a cue overlapping a pseudo-cue ("there is no significant change") is dropped."""
    pseudo, cues = cue_matchers()
    masked = [(p.i, p.j) for p in pseudo.find(tokens)]
    return [m for m in cues.find(tokens) if not any(m.i < j and i < m.j for i, j in masked)]


def status_of(i: int, j: int, cues: list[Match[StatusCue]], lo: int, hi: int) -> str:
    """Status of the mention at tokens [i, j) given the cues, within its clause tokens [lo, hi)."""
    found: set[str] = set()
    for m in cues:  # a cue may overlap the mention ("no pathological" + "pathological lymph node")
        if i <= m.i and m.j <= j:  # inside a pattern mention: "heart sizes are not increased"
            found.update(s for s, _ in m.value.effects)
        elif lo <= m.i < i:
            found.update(s for s, d in m.value.effects if d == "forward")
        elif j < m.j <= hi:
            found.update(s for s, d in m.value.effects if d == "backward")
    if ABSENT in found:
        return ABSENT
    return UNCERTAIN if UNCERTAIN in found else PRESENT
