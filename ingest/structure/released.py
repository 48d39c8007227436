"""Findings on text that RadGenome already grounded: its region-report rows, region kept.

A released case's `sentences` rows are a whole report ('' path), one paragraph per top-level
region and, in the region_report files, fragments of it under child regions. Each row gets
`is_abnormal` from the findings in its own text. Each sentence of the case is read once for the
`findings` table (a sentence that RadGenome filed under two paragraphs is one mention, not two):
its grounding is the regions of every row holding it, so the finding lies where RadGenome put it
(the nodule of `lung/lung/left lung/left lung lower lobe` lies in the left lower lobe); sentences
of the whole report that no paragraph holds are grounded by the rules, as a new report's are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.structure.findings import find_mentions, is_abnormal
from ingest.structure.grounding import Grounding, ground_sentences, most_specific
from ingest.structure.labels import LabelledMention, ct_rate_labels, disorder_rows, label_rows
from ingest.structure.lexicon import GROUNDED
from ingest.structure.report import FINDINGS, ParsedSentence, any_known, finding_region, finding_rows
from ingest.structure.sentences import split_sentences
from ingest.structure.text import tokenize
from warehouse.core.anatomy import anatomy


@dataclass
class ReleasedText:
    """One case's released sentences, read: its rows with `is_abnormal`, findings, and what labels need."""

    case_id: str
    extractor: str
    sentences: list[dict]
    findings: list[dict] = field(default_factory=list)
    mentions: list[LabelledMention] = field(default_factory=list)

    def ct_rate_label_rows(self) -> list[dict]:
        """The 18 CT-RATE classes from the present findings (for cases the release gives no labels)."""
        return label_rows(self.case_id, ct_rate_labels(self.mentions), self.extractor)

    def disorder_rows(self) -> list[dict]:
        """Case disorders: the present findings' terms in report order (for cases the release gives none)."""
        return disorder_rows(self.case_id, self.findings, self.extractor)


def _top(path: str) -> str:
    return path.split("/", 1)[0]


def _holds(row_sentences: list[str], sentence: str) -> bool:
    """A row holds a sentence when one of its sentences is it, or a fragment of it, or contains it."""
    return any(s == sentence or s in sentence or sentence in s for s in row_sentences)


def read_released(case_id: str, rows: list[dict], extractor: str) -> ReleasedText:
    """Findings of one case's released `sentences` rows (changed in place: `is_abnormal` set)."""
    dag = anatomy()
    split = {id(r): split_sentences(r["text"]) for r in rows}
    mentions_of: dict[tuple[str, tuple[str, ...]], list] = {}  # (sentence, top levels) -> its mentions

    def mentions(sentence: str, tops: tuple[str, ...]) -> list:
        key = (sentence, tops)
        if key not in mentions_of:
            mentions_of[key] = find_mentions(sentence, tokenize(sentence), tops)
        return mentions_of[key]

    # Each row's flag, from its own text read in its own paragraph.
    for r in rows:
        path = r["anatomy_path"] or ""
        tops = (_top(path),) if path else ()
        r["is_abnormal"] = any_known([is_abnormal(mentions(s, tops), s) for s in split[id(r)]])

    out = ReleasedText(case_id, extractor, rows)
    grounded = [r for r in rows if r["anatomy_path"]]
    by_depth = sorted(grounded, key=lambda r: (-r["anatomy_path"].count("/"), r["ordinal"]))
    seen: set[str] = set()
    n = 0
    for r in sorted(grounded, key=lambda r: (r["anatomy_path"].count("/"), r["ordinal"])):  # paragraphs first
        for sentence in split[id(r)]:
            if sentence in seen or any(sentence in x or x in sentence for x in seen):
                continue  # read already, whole or as the paragraph sentence a child row holds a fragment of
            seen.add(sentence)
            holders = [h for h in by_depth if _holds(split[id(h)], sentence)]
            tops = tuple(t for t in GROUNDED if any(_top(h["anatomy_path"]) == t for h in holders))
            regions = most_specific({dag.get(h["anatomy_path"]).name for h in holders})
            n = _add(out, n, sentence, Grounding(regions, tops, "released"), mentions(sentence, tops), holders)
    whole = [r for r in rows if not r["anatomy_path"]]
    for r in whole:  # the whole report: what no paragraph holds, grounded by the rules
        rest = [s for s in split[id(r)] if s not in seen and not any(s in x or x in s for x in seen)]
        for sentence, g in zip(rest, ground_sentences(rest), strict=True):
            seen.add(sentence)
            n = _add(out, n, sentence, g, find_mentions(sentence, tokenize(sentence), g.top_levels), [r])
    return out


def _add(out: ReleasedText, n: int, sentence: str, g: Grounding, mentions: list, holders: list[dict]) -> int:
    """Append the findings of one sentence; returns the next sentence number."""
    dag = anatomy()
    p = ParsedSentence(sentence, FINDINGS, g, tuple(mentions))
    for m in mentions:
        region = finding_region(m, g)
        # the most specific row holding the sentence whose region contains the finding, else the first
        row = next((h for h in holders if h["region_id"] is not None
                    and dag.get(h["anatomy_path"]).name in {region, *dag.ancestors(region)}), holders[0])
        out.findings.extend(finding_rows(out.case_id, n, p, m, region, row["sentence_id"], out.extractor))
        out.mentions.append(LabelledMention(m, sentence, g.top_levels))
    return n + 1
