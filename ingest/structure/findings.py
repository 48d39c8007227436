"""Finding mentions in a sentence: normalised term, status, size and laterality.

Terms come from `warehouse/core/finding_terms.toml` (seeded from RadGenome-ChestCT's answer phrases),
status from `status`, sizes from `sizes`. A size belongs to the nearest mention in its
clause; laterality ("right", "left", "both", "bilateral", Turkish "sağ"/"sol") is read
from the words after the mention up to the next one ("nodule in the left lung"), else
before it ("right pleural effusion"), else its clause, else the sentence."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from ingest.structure.sentences import clauses, paren_groups
from ingest.structure.sizes import Size, parse_sizes
from ingest.structure.status import ABSENT, find_cues, status_of
from ingest.structure.text import Match, PhraseMatcher, Token, tokenize
from warehouse.core.anatomy import anatomy
from warehouse.core.terms import VOCAB_PATH, lookup_term

VOCAB = VOCAB_PATH

_SIDES = {"right": "right", "left": "left", "sağ": "right", "sag": "right", "sol": "left",
          "bilateral": "bilateral", "bilaterally": "bilateral", "both": "bilateral", "bilat": "bilateral"}


@dataclass(frozen=True, slots=True)
class Term:
    """A vocabulary entry: normalised name and the DAG region it lies in by default."""

    name: str
    region: str


@dataclass(frozen=True, slots=True)
class Mention:
    """One finding mention in a sentence."""

    term: str
    region: str
    raw_text: str
    status: str
    size_mm: float | None
    size_text: str | None
    laterality: str | None
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Phrases -> terms, regular-expression patterns -> terms, and context words -> {top-level: term}."""

    phrases: dict[str, Term]
    patterns: tuple[tuple[re.Pattern[str], Term], ...]
    context: dict[str, dict[str, Term]]
    any_pattern: re.Pattern[str] | None = None  # one pass that rules out most sentences


@cache
def vocabulary(path: Path = VOCAB) -> Vocabulary:
    """The term vocabulary; every region is checked against the DAG."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    dag = anatomy()
    terms = {name: Term(name, dag.get(e["region"]).name) for name, e in data["term"].items()}
    phrases: dict[str, Term] = {}
    patterns = []
    for name, entry in data["term"].items():
        for phrase in (name, *entry["phrases"]):
            phrases.setdefault(phrase, terms[name])
        patterns.extend((re.compile(p, re.IGNORECASE), terms[name]) for p in entry.get("patterns", ()))
    context = {word: {where: terms[name] for where, name in by_region.items()}
               for word, by_region in data.get("context", {}).items()}
    joined = re.compile("|".join(f"(?:{p.pattern})" for p, _ in patterns), re.IGNORECASE) if patterns else None
    return Vocabulary(phrases, tuple(patterns), context, joined)


def load_terms() -> dict[str, Term]:
    """{phrase: Term} of the vocabulary."""
    return vocabulary().phrases


@cache
def term_matcher() -> PhraseMatcher[Term]:
    vocab = vocabulary()
    words = [(w, Term(w, "")) for w in vocab.context]  # region '' marks a context word
    return PhraseMatcher([*vocab.phrases.items(), *words])


def _pattern_matches(sentence: str, tokens: list[Token]) -> list[Match[Term]]:
    out: list[Match[Term]] = []
    vocab = vocabulary()
    if vocab.any_pattern is None or not vocab.any_pattern.search(sentence):
        return out
    for rx, term in vocab.patterns:
        for m in rx.finditer(sentence):
            ks = [k for k, t in enumerate(tokens) if m.start() <= t.start < m.end()]
            if ks and not any(o.i <= ks[-1] and ks[0] < o.j for o in out):
                out.append(Match(ks[0], ks[-1] + 1, term))
    return out


def _term_matches(sentence: str, tokens: list[Token], top_levels: tuple[str, ...]) -> list[Match[Term]]:
    """Pattern matches, then phrase matches outside them; context words resolved by the sentence's place."""
    found = _pattern_matches(sentence, tokens)
    vocab = vocabulary()
    for m in term_matcher().find(tokens):
        if any(o.i < m.j and m.i < o.j for o in found):
            continue
        if not m.value.region:
            by_region = vocab.context[m.value.name]
            where = next((r for r in top_levels if r in by_region), "default")
            if where not in by_region:
                continue
            m = Match(m.i, m.j, by_region[where])
        found.append(m)
    return sorted(found, key=lambda m: m.i)


# Terms that only name the look of a finding: after another term ("sequelae density increases",
# "atelectatic opacity") they are that term's head noun, not a finding of their own.
GENERIC_HEADS = frozenset({"opacity"})


def _merge_heads(matches: list[Match[Term]]) -> list[Match[Term]]:
    """Fold a generic head into the term right before it: [sequela][density increase] -> sequela."""
    out: list[Match[Term]] = []
    for m in matches:
        if out and m.value.name in GENERIC_HEADS and out[-1].j == m.i and out[-1].value.name not in GENERIC_HEADS:
            out[-1] = Match(out[-1].i, m.j, out[-1].value)
        else:
            out.append(m)
    return out


def laterality(tokens: list[Token], lo: int, hi: int) -> str | None:
    """left, right or bilateral from the side words in tokens[lo:hi]."""
    sides = {_SIDES[t.norm] for t in tokens[lo:hi] if t.norm in _SIDES}
    if "bilateral" in sides or {"left", "right"} <= sides:
        return "bilateral"
    return sides.pop() if sides else None


def _clause_index(tokens: list[Token], spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """For each token, the token range [lo, hi) of its clause."""
    bounds, k, out = [], 0, []
    for a, b in spans:
        lo = k
        while k < len(tokens) and tokens[k].start < b:
            k += 1
        bounds.append((lo, k, a, b))
    for t in tokens:
        for lo, hi, a, b in bounds:
            if a <= t.start < b or t.start < a:
                out.append((lo, hi))
                break
        else:
            out.append(bounds[-1][:2] if bounds else (0, len(tokens)))
    return out


def _nearest(sizes: list[Size], spans: list[tuple[int, int]], clause_spans: list[tuple[int, int]]
             ) -> dict[int, Size]:
    """Give each size to the nearest mention (in characters) of its clause, else of the sentence;
    a mention keeps the first size given to it."""
    def clause(pos: int) -> int:
        return next((k for k, (a, b) in enumerate(clause_spans) if a <= pos < b), -1)

    out: dict[int, Size] = {}
    for size in sizes:
        def distance(k: int, size: Size = size) -> tuple[bool, int]:
            s, e = spans[k]
            gap = 0 if s <= size.start < e else min(abs(size.start - e), abs(s - size.end))
            return clause(s) != clause(size.start), gap

        best = min(range(len(spans)), key=distance, default=None)
        if best is not None and best not in out:
            out[best] = size
    return out


def find_mentions(sentence: str, tokens: list[Token] | None = None, top_levels: tuple[str, ...] = ()
                  ) -> list[Mention]:
    """Every finding mention in one sentence, with status, size and laterality; `top_levels` (the
    sentence's grounding) decides context words ("effusion" in the pericardium is pericardial)."""
    tokens = tokenize(sentence) if tokens is None else tokens
    matches = _merge_heads(_term_matches(sentence, tokens, top_levels))
    if not matches:
        return []
    cues = find_cues(tokens)
    group = paren_groups(sentence, [t.start for t in tokens])
    clause_spans = clauses(sentence)
    per_token = _clause_index(tokens, clause_spans)
    spans = [(tokens[m.i].start, tokens[m.j - 1].end) for m in matches]
    sizes = parse_sizes(sentence)
    size_for = _nearest(sizes, spans, clause_spans) if sizes else {}
    sentence_side = laterality(tokens, 0, len(tokens))
    out = []
    for k, m in enumerate(matches):
        lo, hi = per_token[m.i]
        status = status_of(m.i, m.j, [c for c in cues if group[c.i] == group[m.i]], lo, hi)
        size = size_for.get(k)
        after = laterality(tokens, m.j, min(hi, matches[k + 1].i) if k + 1 < len(matches) else hi)
        before = laterality(tokens, max(lo, matches[k - 1].j) if k else lo, m.i)
        side = after or before or laterality(tokens, lo, hi) or sentence_side
        start, end = spans[k]
        out.append(Mention(m.value.name, m.value.region, sentence[start:end], status,
                           size.mm if size else None, size.text if size else None, side, start, end))
    return out


@lru_cache(maxsize=65_536)
def term_of(phrase: str | None, top_level: str | None = None) -> str | None:
    """The vocabulary term of a short phrase such as a released VQA answer ("nonspecific nodules",
    "Bilateral pleural effusion" -> its term): the term it names exactly, else its first mention's
    read in `top_level`'s paragraph ("effusion" about the heart is pericardial), else None."""
    if not phrase or not phrase.strip():
        return None
    exact = lookup_term(phrase)
    if exact is not None:
        return exact
    found = find_mentions(phrase.strip(), top_levels=(top_level,) if top_level else ())
    return found[0].term if found else None


def terms_of(text: str | None, top_level: str | None = None) -> list[str]:
    """A comma list of phrases (a released VQA answer) in the vocabulary: its terms in order, once
    each; phrases with no term ('no findings', 'motion artifacts') are left out."""
    return list(dict.fromkeys(t for t in (term_of(p, top_level) for p in (text or "").split(",")) if t))


_NORMAL = re.compile(r"\b(?:normal|natural|unremarkable|preserved|open|patent|clear|symmetrical|symmetric|"
                     r"no|not|without)\b", re.IGNORECASE)


def is_abnormal(mentions: list[Mention], sentence: str = "") -> bool | None:
    """True when a finding is present or uncertain; False when all are absent, or the sentence has no
    finding and reads as normal ("Heart contour, size are normal."); None when it cannot tell."""
    if mentions:
        return any(m.status != ABSENT for m in mentions)
    return False if _NORMAL.search(sentence) else None


__all__ = ["Mention", "Term", "find_mentions", "is_abnormal", "laterality", "load_terms", "term_of", "terms_of",
           "vocabulary"]
