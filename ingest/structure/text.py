"""Word tokens with light stemming, and a phrase matcher over them.

Every matcher of the package (anatomy cues, finding terms, negation and hedging cues)
works on the same tokens: lower-cased words, hyphens read as spaces, plurals folded
("nodules" -> "nodule", "densities" -> "density"), each token keeping its character
span so the raw words can be cut back out of the sentence. Matching is a dictionary
look-up of n-grams, longest first, so thousands of phrases cost the same as ten.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from warehouse.core.terms import fold_plural

T = TypeVar("T")

_WORD = re.compile(r"[^\W_]+(?:\.[0-9]+)?|\?")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Fold plurals: nodules -> nodule, densities -> density (`warehouse.core.terms.fold_plural`,
    the vocabulary's own rule, so text and terms meet on the same keys)."""
    return fold_plural(word)


@dataclass(frozen=True, slots=True)
class Token:
    """One word: its folded form and its character span in the text."""

    norm: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """The words of `text` (lower-cased, plurals folded); '?' is kept as a token (a hedge)."""
    return [Token(stem(m.group()), m.start(), m.end()) for m in _WORD.finditer(text.lower())]


def norm_phrase(phrase: str) -> tuple[str, ...]:
    """A phrase as the tuple of folded tokens the matcher compares."""
    return tuple(t.norm for t in tokenize(phrase))


@dataclass(frozen=True, slots=True)
class Match(Generic[T]):
    """A phrase found in a token list: token indices [i, j) and the phrase's value."""

    i: int
    j: int
    value: T


class PhraseMatcher(Generic[T]):
    """Finds phrases in token lists: leftmost, then longest, non-overlapping."""

    def __init__(self, phrases: Mapping[str, T] | Iterable[tuple[str, T]]) -> None:
        items = phrases.items() if isinstance(phrases, Mapping) else phrases
        self._table: dict[tuple[str, ...], T] = {}
        for phrase, value in items:
            key = norm_phrase(phrase)
            if key:
                self._table.setdefault(key, value)
        self._lengths = sorted({len(k) for k in self._table}, reverse=True)
        self._first = {k[0] for k in self._table}

    def __len__(self) -> int:
        return len(self._table)

    def find(self, tokens: list[Token], lo: int = 0, hi: int | None = None) -> list[Match[T]]:
        """Every match inside tokens[lo:hi]."""
        hi = len(tokens) if hi is None else hi
        words = [t.norm for t in tokens[lo:hi]]
        out: list[Match[T]] = []
        i, n = 0, len(words)
        while i < n:
            if words[i] in self._first:
                for length in self._lengths:
                    if i + length <= n:
                        value = self._table.get(tuple(words[i:i + length]))
                        if value is not None:
                            out.append(Match(lo + i, lo + i + length, value))
                            i += length
                            break
                else:
                    i += 1
                continue
            i += 1
        return out
