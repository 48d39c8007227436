"""A structured report: its sentences, grounding and findings, turned into warehouse rows.

Backends produce `ParsedSentence`s (the rules backend here, an LLM backend elsewhere);
`assemble` turns them into rows of the `sentences`, `findings` and `case_labels` tables
and into RadGenome's `region_report` rows, the same way for every backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.structure.findings import Mention
from ingest.structure.grounding import Grounding
from ingest.structure.labels import LabelledMention, ct_rate_labels, label_rows, mention_classes
from ingest.structure.lexicon import GROUNDED, top_levels_of
from warehouse.core.anatomy import anatomy
from warehouse.core.ids import content_id

FINDINGS, IMPRESSIONS = "findings", "impressions"


def stable_id(*parts: object) -> str:
    """A deterministic id from content (16 hex digits): `warehouse.core.ids.content_id`."""
    return content_id(*parts, size=16)


@dataclass(frozen=True)
class ParsedSentence:
    """One sentence as a backend read it."""

    text: str
    section: str  # findings | impressions
    grounding: Grounding
    mentions: tuple[Mention, ...] = ()
    is_abnormal: bool | None = None


@dataclass
class StructuredReport:
    """One case's structured report and its rows; `error` names why a report could not be structured."""

    case_id: str
    extractor: str
    parsed: list[ParsedSentence] = field(default_factory=list)
    sentences: list[dict] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)
    labels: list[dict] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def is_abnormal(self) -> bool | None:
        """The case flag: some sentence reports a present or uncertain finding."""
        flags = [p.is_abnormal for p in self.parsed if p.is_abnormal is not None]
        return any(flags) if flags else None

    def paragraphs(self) -> dict[str, str]:
        """Top-level region -> its paragraph (findings sentences in report order), RadGenome's order."""
        return {r["anatomy_path"]: r["text"] for r in self.sentences if r["anatomy_path"] in GROUNDED}

    def region_report_rows(self) -> list[tuple[str, str]]:
        """(Anatomy, Sentence) rows in RadGenome's region_report format ('' is the whole report)."""
        return [(r["anatomy_path"], r["text"]) for r in self.sentences]

    def label_values(self) -> dict[str, int]:
        return {r["label"]: r["value"] for r in self.labels}


def _child_path(region: str, top: str) -> str:
    """The released path of `region` under the top-level region `top` (canonical path otherwise)."""
    dag = anatomy()
    for p in dag.get(region).paths:
        if p.split("/", 1)[0] == top:
            return p
    return dag.path(region)


def _sentence_rows(case_id: str, parsed: list[ParsedSentence], extractor: str) -> list[dict]:
    """Rows of the whole report, each top-level paragraph and each child region of the findings."""
    dag = anatomy()
    body = [p for p in parsed if p.section == FINDINGS]
    rows = [{"case_id": case_id, "region_id": None, "anatomy_path": "", "text": " ".join(p.text for p in body),
             "is_abnormal": any_known([p.is_abnormal for p in parsed])}]
    for top in GROUNDED:
        members = [p for p in body if top in p.grounding.top_levels]
        if not members:
            continue
        rows.append({"case_id": case_id, "region_id": dag.get(top).region_id, "anatomy_path": top,
                     "text": " ".join(p.text for p in members),
                     "is_abnormal": any_known([p.is_abnormal for p in members])})
        children: dict[str, list[ParsedSentence]] = {}
        for p in members:
            for region in p.grounding.regions:
                if region != top and top in top_levels_of(region):
                    children.setdefault(_child_path(region, top), []).append(p)
        for path, ps in children.items():
            rows.append({"case_id": case_id, "region_id": dag.get(path).region_id, "anatomy_path": path,
                         "text": " ".join(p.text for p in ps), "is_abnormal": any_known([p.is_abnormal for p in ps])})
    for n, r in enumerate(rows):
        r.update(ordinal=n, extractor=extractor, sentence_id=stable_id(case_id, r["anatomy_path"], r["text"]))
    return rows


def any_known(flags: list[bool | None]) -> bool | None:
    """True if a known flag is True, False if all known are False, None if none is known."""
    known = [f for f in flags if f is not None]
    return any(known) if known else None


def finding_region(m: Mention, g: Grounding) -> str:
    """Where a finding lies: the sentence's named region in the term's paragraph (or the term's own
    region where that is more specific); the term's region when the sentence names none there."""
    dag = anatomy()
    term_tops = top_levels_of(m.region)
    if not term_tops:  # devices, surgery: wherever the sentence is
        return g.regions[0] if g.regions else (g.top_levels[0] if g.top_levels else m.region)
    for region in g.regions:
        if top_levels_of(region) & term_tops:
            return m.region if region in dag.ancestors(m.region) else region
    return m.region


def _row_for(region: str, p: ParsedSentence, by_path: dict[str, dict]) -> dict:
    """The sentences row a finding links to: its region's child row, else its paragraph, else the whole report."""
    tops = sorted(top_levels_of(region)) or [anatomy().top_level(region)]
    for top in tops:
        row = by_path.get(_child_path(region, top)) if region != top else None
        if row is not None and p.text in row["text"]:
            return row
    for top in (*p.grounding.top_levels, *tops):
        row = by_path.get(top)
        if row is not None and p.text in row["text"]:
            return row
    return by_path[""]


def finding_rows(case_id: str, n: int, p: ParsedSentence, m: Mention, region: str, sentence_id: str,
                 extractor: str) -> list[dict]:
    """The findings rows of one mention: one, with the CT-RATE class it is evidence for (null where
    none); a mention that is evidence for two classes (calcified plaques of the aorta and the
    coronaries) gets a row for each, the second with its own id."""
    dag = anatomy()
    base = {"case_id": case_id, "sentence_id": sentence_id, "region_id": dag.get(region).region_id,
            "anatomy_path": dag.path(region), "term": m.term, "raw_text": m.raw_text, "sentence": p.text,
            "status": m.status, "size_mm": m.size_mm, "size_text": m.size_text, "laterality": m.laterality,
            "extractor": extractor}
    classes = mention_classes(LabelledMention(m, p.text, p.grounding.top_levels)) or (None,)
    key = (case_id, n, p.section, m.start, m.term)
    return [{**base, "ct_rate_label": label, "finding_id": stable_id(*key, *([label] if k else []))}
            for k, label in enumerate(classes)]


def assemble(case_id: str, parsed: list[ParsedSentence], extractor: str) -> StructuredReport:
    """Rows of every table for one case, from its parsed sentences; the labels come from the mentions,
    so each positive label has a present finding with its `ct_rate_label` (for every backend)."""
    rows = _sentence_rows(case_id, parsed, extractor)
    by_path = {r["anatomy_path"]: r for r in rows}
    findings = []
    for n, p in enumerate(parsed):
        for m in p.mentions:
            region = finding_region(m, p.grounding)
            row = _row_for(region, p, by_path) if p.section == FINDINGS else by_path[""]
            findings.extend(finding_rows(case_id, n, p, m, region, row["sentence_id"], extractor))
    labels = ct_rate_labels(LabelledMention(m, p.text, p.grounding.top_levels) for p in parsed for m in p.mentions)
    return StructuredReport(case_id, extractor, parsed, rows, findings, label_rows(case_id, labels, extractor))
