"""Ground sentences in the anatomy DAG: which region(s) each sentence speaks of.

A sentence's regions come from the strongest tier of cues it holds (see `lexicon`):
places named in its main text, else places named only in a preamble ("When examined
in the lung parenchyma window; ...") or in parentheses, else vague places, else the
places its findings imply ("nodules" -> lung), else its neighbour's (a sentence with
no cue at all continues the one before it, as report paragraphs do). Where several
top-level regions remain, `DOMINATES` settles RadGenome's filing conventions
(a subpleural nodule is filed under pleura, not lung).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ingest.structure.lexicon import GROUNDED, Cue, lexicon
from ingest.structure.text import Match, Token, tokenize
from warehouse.core.anatomy import anatomy

PREAMBLE_MAX_WORDS = 14

# When both are named, the first wins the sentence (RadGenome files these under one paragraph).
DOMINATES: tuple[tuple[str, str], ...] = (
    ("pleura", "lung"), ("pleura", "heart"), ("pleura", "mediastinum"), ("pleura", "bone"),
    ("pleura", "trachea and bronchie"),
)


@dataclass(frozen=True, slots=True)
class Grounding:
    """Where a sentence belongs: its most specific regions, their top-level paragraphs, and why."""

    regions: tuple[str, ...]
    top_levels: tuple[str, ...]
    how: str  # place | aside | weak | finding | context | none

    @property
    def grounded(self) -> bool:
        return bool(self.top_levels)


NONE = Grounding((), (), "none")


def _aside_spans(sentence: str) -> list[tuple[int, int]]:
    """Character spans whose places count less: a short preamble before ';' or ':', and parentheses."""
    spans = []
    for sep in (";", ":"):
        k = sentence.find(sep)
        if 0 < k < len(sentence) - 2 and len(sentence[:k].split()) <= PREAMBLE_MAX_WORDS:
            spans.append((0, k + 1))
            break
    depth, start = 0, 0
    for i, ch in enumerate(sentence):
        if ch == "(":
            if depth == 0:
                start = i
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0:
                spans.append((start, i + 1))
    return spans


def _in(spans: list[tuple[int, int]], pos: int) -> bool:
    return any(a <= pos < b for a, b in spans)


def _resolve(tops: set[str]) -> set[str]:
    for winner, loser in DOMINATES:
        if winner in tops and loser in tops:
            tops.discard(loser)
    return tops


def most_specific(regions: set[str]) -> tuple[str, ...]:
    """Drop regions that are ancestors of another named region; keep the DAG's order stable."""
    dag = anatomy()
    keep = {r for r in regions if not any(o != r and r in dag.ancestors(o) for o in regions)}
    return tuple(sorted(keep))


def ground_tokens(sentence: str, tokens: list[Token] | None = None,
                  matches: list[Match[Cue]] | None = None) -> Grounding:
    """Ground one sentence on its own (no context); `how == 'none'` when it names nothing."""
    tokens = tokenize(sentence) if tokens is None else tokens
    matches = lexicon().find(tokens) if matches is None else matches
    aside = _aside_spans(sentence)
    tiers: dict[str, list[Cue]] = {"place": [], "aside": [], "weak": [], "finding": []}
    for m in matches:
        cue = m.value
        tier = cue.tier
        if tier == "place" and _in(aside, tokens[m.i].start):
            tier = "aside"
        tiers[tier].append(cue)
    for how in ("place", "aside", "weak", "finding"):
        cues = [c for c in tiers[how] if c.top_levels]
        if not cues:
            continue
        tops = _resolve({t for c in cues for t in c.top_levels})
        regions = {c.region for c in cues if c.top_levels & tops}
        if how in ("place", "aside"):
            regions = set(most_specific(regions))
        ordered = tuple(t for t in GROUNDED if t in tops)
        return Grounding(most_specific(regions) if how != "finding" else ordered, ordered, how)
    return NONE


def ground_sentences(sentences: Sequence[str], tokens: Sequence[list[Token]] | None = None) -> list[Grounding]:
    """Ground a section's sentences; one with no cue continues its neighbour (before, else after)."""
    own = [ground_tokens(s, tokens[k] if tokens is not None else None) for k, s in enumerate(sentences)]
    out = list(own)
    last: Grounding | None = None
    for i, g in enumerate(own):
        if g.grounded:
            last = g
        elif last is not None:
            out[i] = Grounding(last.top_levels, last.top_levels, "context")
    nxt: Grounding | None = None
    for i in range(len(own) - 1, -1, -1):
        if own[i].grounded:
            nxt = own[i]
        elif out[i].how == "none" and nxt is not None:
            out[i] = Grounding(nxt.top_levels, nxt.top_levels, "context")
    return out
