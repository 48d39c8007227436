"""Split report text into sentences, and sentences into clauses.

CT-RATE reports are Turkish-origin English: decimals ("4.6 mm", "10x8.6 cm"), numbered
and bulleted lists, quotes and bullets between findings and impression items, and
semicolons used as clause breaks after a preamble ("When examined in the lung
parenchyma window; Several nodules ..."). A sentence keeps its preamble (RadGenome's
region reports do); `clauses` cuts it at semicolons and at conjunctions that join two
statements, which is the scope of a negation or a hedge.
"""

from __future__ import annotations

import re

MAX_SENTENCE_CHARS = 1500  # longer runs (no punctuation, garbage) are cut at commas or spaces

# Words after which a period does not end a sentence.
ABBREVIATIONS = frozenset({
    "approx", "appr", "approximately", "e.g", "eg", "i.e", "ie", "vs", "cf", "dr", "mr", "mrs", "fig",
    "no", "nr", "resp", "max", "min", "ca", "cca", "yrs", "st", "sec", "ref", "ant", "post", "sup", "inf",
})
_HARD = re.compile(r"\s*(?:[\n\r\t•·▪■►◦]|(?:^|\s)[\"“”](?=\s|$)|(?<=[.!?])[\"“”])\s*")
_QUOTES = re.compile(r"[\"“”]")
_END = re.compile(r"([.!?]+)(?:\s+|$)")
_LIST_MARK = re.compile(r"^(?:\(?\d{1,2}\s*[.)-](?!\d)\s*|[-*]\s+)+")
_LETTER = re.compile(r"[A-Za-z]")
_WS = re.compile(r"\s+")

# Statements joined in one sentence: a negation or hedge does not reach across these.
_HARD_BREAK = re.compile(
    r"\s*;\s*|:\s+(?=[A-Z])|,?\s+\b(?:but|however|although|though|whereas|while|except(?: for)?|"
    r"apart from(?: this| these| that)?|other than|besides|in addition|additionally)\b,?\s*",
    re.IGNORECASE)
_SOFT_BREAK = re.compile(r",?\s+and\s+|,\s+", re.IGNORECASE)
_VERB = re.compile(r"\b(?:is|are|was|were|has|have|had|observed|detected|seen|noted|appears?|shows?|"
                   r"contains?|measured|measures|exists?|extends?)\b", re.IGNORECASE)
_NEW_STATEMENT = re.compile(r"(?:there|no|the|a|an|it|its|they|this|these)\b", re.IGNORECASE)


def _pieces(chunk: str) -> list[str]:
    """Split one hard-bounded chunk at sentence-final punctuation, minding abbreviations and parentheses."""
    out, start, depth_at = [], 0, 0
    for m in _END.finditer(chunk):
        before = chunk[start:m.start()]
        word = before.rsplit(None, 1)[-1].lower().lstrip("(") if before.strip() else ""
        nxt = chunk[m.end():m.end() + 1]
        if m.group(1) == "." and word in ABBREVIATIONS and m.end() < len(chunk):
            if word != "no" or nxt.isdigit():
                continue
        opened = chunk.count("(", depth_at, m.start()) - chunk.count(")", depth_at, m.start())
        if opened > 0 and m.start() - depth_at < 300 and nxt and not nxt.isupper():
            continue
        out.append(chunk[start:m.end()])
        start = depth_at = m.end()
    if start < len(chunk):
        out.append(chunk[start:])
    return out


def _cut_long(s: str) -> list[str]:
    if len(s) <= MAX_SENTENCE_CHARS:
        return [s]
    out = []
    while len(s) > MAX_SENTENCE_CHARS:
        cut = max(s.rfind(",", 0, MAX_SENTENCE_CHARS), s.rfind(";", 0, MAX_SENTENCE_CHARS))
        if cut < MAX_SENTENCE_CHARS // 2:
            cut = s.rfind(" ", 0, MAX_SENTENCE_CHARS)
        if cut <= 0:
            cut = MAX_SENTENCE_CHARS
        out.append(s[:cut + 1].strip())
        s = s[cut + 1:].strip()
    return out + [s] if s else out


def split_sentences(text: str | None) -> list[str]:
    """The sentences of a report section, cleaned: no list markers, quotes or empty pieces."""
    if not text:
        return []
    out: list[str] = []
    for chunk in _HARD.split(text):
        chunk = _WS.sub(" ", _QUOTES.sub("", chunk)).strip()
        if not chunk:
            continue
        for piece in _pieces(chunk):
            piece = _LIST_MARK.sub("", piece.strip()).strip()
            if _LETTER.search(piece):
                out.extend(_cut_long(piece))
    return out


def _soft_cuts(s: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """Cut [lo, hi) at 'and' or a comma where both sides are statements (each has a verb)."""
    breaks = list(_SOFT_BREAK.finditer(s, lo, hi))
    spans, start = [], lo
    for k, m in enumerate(breaks):  # after 'and' the statement may run to the clause's end
        is_and = "and" in m.group().lower()
        right_end = breaks[k + 1].start() if k + 1 < len(breaks) and not is_and else hi
        left, right = s[start:m.start()], s[m.end():right_end]
        if _VERB.search(left) and (_VERB.search(right) or _NEW_STATEMENT.match(s, m.end())):
            spans.append((start, m.start()))
            start = m.end()
    spans.append((start, hi))
    return spans


def paren_groups(sentence: str, starts: list[int]) -> list[int]:
    """For each character offset in `starts`, 0 outside parentheses, else the number of its group."""
    if "(" not in sentence:
        return [0] * len(starts)
    marks, depth, group, current = [], 0, 0, 0
    for i, ch in enumerate(sentence):
        if ch == "(":
            if depth == 0:
                group += 1
                current = group
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0:
                marks.append((i, 0))
                continue
        marks.append((i, current if depth else 0))
    return [marks[s][1] if s < len(marks) else 0 for s in starts]


def clauses(sentence: str) -> list[tuple[int, int]]:
    """Character spans of the sentence's clauses (the scope of negation and hedging cues)."""
    spans, start = [], 0
    for m in [*_HARD_BREAK.finditer(sentence), None]:
        stop = m.start() if m else len(sentence)
        if stop > start:
            spans.extend(_soft_cuts(sentence, start, stop))
        if m:
            start = m.end()
    return [(a, b) for a, b in spans if b > a] or [(0, len(sentence))]
