"""Synthetic chest-CT reports in CT-RATE's style, and their ground truth.

A report is written topic by topic in CT-RATE's order (airways, mediastinum and heart,
esophagus, lymph nodes, thyroid, lungs, pleura, upper abdomen, bones). A normal topic
gets one of several normal statements, each carrying the findings it negates; a planned
finding replaces its topic's statement or is added after it. Every sentence keeps its
truth: the DAG regions it speaks of, whether it is abnormal, and its finding mentions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ingest.sources.demo_vocab import (
    ABSENT_FORMS,
    CLINICAL,
    KINDS,
    LOBES,
    LUNG_OPENERS,
    NORMAL,
    TECHNIQUE,
    TOPICS,
    UNCERTAIN_TAILS,
)
from warehouse.core.anatomy import anatomy
from warehouse.core.release_format import NOT_GIVEN
from warehouse.core.schema import CT_RATE_LABELS

# Regions whose report paragraph is not their canonical top level (RadGenome: mediastinum/aorta).
TOP_LEVEL_OVERRIDES = {"aorta": "mediastinum"}


def top_level_of(region: str) -> str:
    """The top-level RadGenome region a sentence about `region` belongs to."""
    return TOP_LEVEL_OVERRIDES.get(region) or anatomy().top_level(region)


def path_of(region: str) -> str:
    """RadGenome '/' path of `region` under the top level its sentences belong to."""
    top = top_level_of(region)
    for p in anatomy().get(region).paths:
        if p == top or p.startswith(top + "/"):
            return p
    return anatomy().path(region)


@dataclass(frozen=True)
class PlannedFinding:
    """An abnormal finding chosen for a scan: the report writes it, the volume draws it."""

    key: str                      # KINDS key
    region: str                   # DAG region
    laterality: str | None
    size_mm: float | None = None
    hedged: bool = False


@dataclass(frozen=True)
class TruthFinding:
    """One finding mention of a sentence."""

    term: str
    status: str                   # present, absent, uncertain
    region: str
    raw_text: str
    size_mm: float | None = None
    size_text: str | None = None
    laterality: str | None = None


@dataclass(frozen=True)
class TruthSentence:
    """One report sentence with its grounding."""

    ordinal: int
    section: str                  # findings or impressions
    text: str
    regions: tuple[str, ...]      # most specific DAG regions it speaks of; () for none
    is_abnormal: bool
    findings: tuple[TruthFinding, ...] = ()

    @property
    def top_levels(self) -> tuple[str, ...]:
        return tuple(top_level_of(r) for r in self.regions)


@dataclass(frozen=True)
class Truth:
    """A case's ground truth: grounded sentences, the 18 CT-RATE labels, the disorders."""

    sentences: tuple[TruthSentence, ...]
    labels: dict[str, int] = field(default_factory=dict)
    disorders: tuple[str, ...] = ()

    @classmethod
    def from_sentences(cls, sentences: tuple[TruthSentence, ...], plan: list[PlannedFinding]) -> Truth:
        present = {f.term for s in sentences for f in s.findings if f.status == "present"}
        implied = {lab for k in KINDS.values() if k.term in present for lab in k.labels}
        disorders = tuple(dict.fromkeys(KINDS[p.key].disorder for p in plan)) or ("no findings",)
        return cls(sentences, {lab: int(lab in implied) for lab in CT_RATE_LABELS}, disorders)

    @property
    def findings(self) -> list[tuple[TruthSentence, TruthFinding]]:
        return [(s, f) for s in self.sentences for f in s.findings]

    @property
    def is_normal(self) -> bool:
        return not any(s.is_abnormal for s in self.sentences)

    def region_paragraphs(self) -> dict[str, str]:
        """Top-level region -> its paragraph of findings sentences (RadGenome's region_report rows)."""
        out: dict[str, list[str]] = {}
        for s in self.sentences:
            if s.section == "findings":
                for top in dict.fromkeys(s.top_levels):
                    out.setdefault(top, []).append(s.text)
        return {top: " ".join(texts) for top, texts in out.items()}


def laterality(region: str) -> str | None:
    """left/right from the region name, bilateral for paired regions named without a side."""
    if region.startswith(("left ", "right ")):
        return region.split(" ", 1)[0]
    return "bilateral" if region in ("lung", "lung upper lobe", "lung lower lobe", "breast") else None


def loc_text(region: str, rng: np.random.Generator) -> str:
    """How a report names a region, article included: 'the middle lobe of the right lung'."""
    both = {"lung": "both lungs", "lung upper lobe": "the upper lobes of both lungs",
            "lung lower lobe": "the lower lobes of both lungs"}
    if region in both:
        return both[region]
    if m := re.fullmatch(r"(left|right) rib (\d+)", region):
        n = int(m[2])
        return f"the {m[1]} {n}{'st' if n == 1 else 'nd' if n == 2 else 'rd' if n == 3 else 'th'} rib"
    if region in LOBES and rng.random() < 0.4:
        side, _, lobe = region.split(" ", 2)
        return f"the {lobe} of the {side} lung"
    return f"the {region}"


def size_text(mm: float, rng: np.random.Generator, *, two_dims: bool = False) -> tuple[str, float]:
    """A size as reports write it ('4.6 mm', '1.2 cm', '14x9 mm') and its largest dimension in mm."""
    if two_dims:
        return f"{mm:g}x{round(mm * float(rng.uniform(0.55, 0.85)), 1):g} mm", float(mm)
    if mm >= 10 and mm % 1 == 0 and rng.random() < 0.5:
        return f"{mm / 10:g} cm", float(mm)
    return f"{mm:g} mm", float(mm)


def plan_findings(rng: np.random.Generator, *, sex: str, abnormal: bool | None = None) -> list[PlannedFinding]:
    """Choose a scan's findings: none for a normal scan, else 1-4 kinds placed in regions."""
    if abnormal is None:
        abnormal = bool(rng.random() < 0.7)
    if not abnormal:
        return []
    keys = [k for k in KINDS if sex == "M" or k != "gynecomastia"]
    weights = np.array([KINDS[k].weight for k in keys])
    chosen = rng.choice(len(keys), size=int(rng.integers(1, 5)), replace=False, p=weights / weights.sum())
    plan = []
    for i in sorted(int(i) for i in chosen):  # catalogue order: the report order is stable
        kind = KINDS[keys[i]]
        region = kind.regions[int(rng.integers(len(kind.regions)))]
        side = kind.sides[int(rng.integers(len(kind.sides)))] if kind.sides else laterality(region)
        size = None
        if kind.size_range and rng.random() < kind.p_size:
            lo, hi = kind.size_range
            size = float(rng.uniform(lo, hi))
            size = round(size, 1 if size < 10 else 0)
        plan.append(PlannedFinding(keys[i], region, side, size, bool(rng.random() < kind.p_hedge)))
    return plan


class _Writer:
    """Accumulates sentences and their truth in report order."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.sentences: list[TruthSentence] = []

    def add(self, section: str, text: str, regions: tuple[str, ...], findings: tuple[TruthFinding, ...]) -> None:
        self.sentences.append(TruthSentence(len(self.sentences), section, text, regions,
                                            any(f.status == "present" for f in findings), findings))

    def normal(self, topic: str, prefix: str = "") -> None:
        text, regions, absent = NORMAL[topic][int(self.rng.integers(len(NORMAL[topic])))]
        self.add("findings", prefix + text, regions,
                 tuple(TruthFinding(t, "absent", regions[0], _raw(text, ABSENT_FORMS.get(t, (t,))))
                       for t in absent))

    def finding(self, p: PlannedFinding, section: str = "findings", prefix: str = "") -> None:
        kind = KINDS[p.key]
        size, mm = "", None
        if p.size_mm is not None:
            size, mm = size_text(p.size_mm, self.rng, two_dims=kind.two_dims and self.rng.random() < 0.5)
        side = p.laterality or ""
        fmt = {"loc": loc_text(p.region, self.rng), "side": side, "Side": side.capitalize(),
               "on_side": "on both sides" if side == "bilateral" else f"on the {side}"}
        if section == "impressions":
            text = kind.impression.format(size=f" ({size})" if size else "", **fmt)
        else:
            templates = kind.sized if size else kind.unsized
            text = templates[int(self.rng.integers(len(templates)))].format(size=size, **fmt)
        found = [TruthFinding(kind.term, "present", p.region, _raw(text, kind.raws), mm, size or None,
                              p.laterality)]
        if p.hedged and section == "findings":
            hedge = "malignancy" if kind.hedge == "ipln" and (p.size_mm or 0) >= 6 else kind.hedge
            tail, term, raw = UNCERTAIN_TAILS[hedge]
            text = text[:-1] + tail
            found.append(TruthFinding(term, "uncertain", p.region, raw, laterality=p.laterality))
        self.add(section, prefix + text[0].upper() + text[1:], (p.region,), tuple(found))


def _raw(text: str, forms: tuple[str, ...]) -> str:
    """The first of `forms` that occurs in `text` (as written there)."""
    low = text.lower()
    for f in forms:
        if (i := low.find(f.lower())) >= 0:
            return text[i:i + len(f)]
    return forms[0]


def write_report(rng: np.random.Generator, plan: list[PlannedFinding], *, volume_name: str, contrast: bool,
                 slice_mm: float) -> tuple[dict[str, str], Truth]:
    """The report in CT-RATE's columns and its truth."""
    w = _Writer(rng)
    by_topic: dict[str, list[PlannedFinding]] = {}
    for p in plan:
        by_topic.setdefault(KINDS[p.key].topic, []).append(p)
    for topic, p_mention in TOPICS:
        if topic == "noncontrast" and contrast:
            continue
        found = by_topic.get(topic, [])
        replacing = [p for p in found if KINDS[p.key].mode == "replace"]
        prefix = LUNG_OPENERS[int(rng.integers(len(LUNG_OPENERS)))] + " " if topic == "lung" else ""
        if replacing:
            for p in replacing:
                w.finding(p, prefix=prefix)
                prefix = ""
            if topic == "lung" and all(p.key != "nodule" for p in replacing) and rng.random() < 0.6:
                w.normal("lung_no_nodule")
            if topic == "vessels":
                w.normal("mediastinal_vessels")
        elif found or rng.random() < p_mention:
            w.normal(topic, prefix)
        for p in found:
            if KINDS[p.key].mode == "add":
                w.finding(p)
    for p in plan:
        w.finding(p, "impressions")
    if not plan:
        w.add("impressions", "Thoracic CT examination within normal limits.", (), ())
    technique = TECHNIQUE["contrast" if contrast else "plain"][int(rng.integers(2))].format(mm=f"{slice_mm:g}")
    report = {
        "VolumeName": volume_name,
        "ClinicalInformation_EN": CLINICAL[int(rng.integers(len(CLINICAL)))] if rng.random() < 0.8 else NOT_GIVEN,
        "Technique_EN": technique,
        "Findings_EN": " ".join(s.text for s in w.sentences if s.section == "findings"),
        "Impressions_EN": " ".join(s.text for s in w.sentences if s.section == "impressions"),
    }
    return report, Truth.from_sentences(tuple(w.sentences), plan)
