"""Score structuring against released truth: grounding (RadGenome region paragraphs) and labels (CT-RATE).

Grounding: for each volume the findings text is rebuilt by joining its region paragraphs
in RadGenome's order (a sentence already included is dropped), structured, and each
(volume, top-level region) paragraph is compared with the truth as a multiset of
lower-cased alphanumeric tokens; micro-F1 per region and overall. Labels: per-class F1
of the 18 CT-RATE classes against manual labels, and their macro mean.
`part="k/n"` keeps one of n stable, disjoint shares of the volumes (for a held-out check).
"""

from __future__ import annotations

import csv
import hashlib
import re
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.structure.backend import ReportInput, RulesBackend, StructuringBackend
from ingest.structure.sentences import split_sentences
from warehouse.core.errors import WarehouseError
from warehouse.core.schema import CT_RATE_LABELS

REGION_ORDER: tuple[str, ...] = ("trachea and bronchie", "mediastinum", "heart", "esophagus", "thyroid",
                                 "breast", "lung", "pleura", "abdomen", "bone")
_TOKEN = re.compile(r"[a-z0-9]+")
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass
class Counts:
    """True positives, false positives and false negatives; F1 from them."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Counts) -> None:
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp + self.fp + self.fn else 1.0


@dataclass
class Scores:
    """Per-key counts and the summary figure (micro-F1 for grounding, macro-F1 for labels)."""

    per_key: dict[str, Counts] = field(default_factory=dict)
    cases: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def micro_f1(self) -> float:
        total = Counts()
        for c in self.per_key.values():
            total.add(c)
        return total.f1

    @property
    def macro_f1(self) -> float:
        return sum(c.f1 for c in self.per_key.values()) / len(self.per_key) if self.per_key else 0.0


def in_part(key: str, part: str | None) -> bool:
    """Whether `key` falls in share k of n (part 'k/n'); every key when part is None."""
    if not part:
        return True
    k, n = (int(x) for x in part.split("/"))
    if not 1 <= k <= n:
        raise WarehouseError(f"bad --part {part!r}", hint="use k/n with 1 <= k <= n, e.g. 1/2")
    return int(hashlib.blake2b(key.encode(), digest_size=4).hexdigest(), 16) % n == k - 1


def tokens(text: str) -> Counter[str]:
    """The multiset of lower-cased alphanumeric tokens."""
    return Counter(_TOKEN.findall(text.lower()))


def compare(pred: str, truth: str) -> Counts:
    """Token-multiset counts of one predicted paragraph against its truth."""
    p, t = tokens(pred), tokens(truth)
    tp = sum((p & t).values())
    return Counts(tp, sum(p.values()) - tp, sum(t.values()) - tp)


def read_region_truth(folder: Path | str) -> dict[str, dict[str, str]]:
    """{volume: {top-level region: paragraph}} from region-report CSVs (Volumename,Anatomy,Sentence)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else [folder]
    if not files:
        raise WarehouseError(f"no CSV files in {folder}", file=str(folder), stage="eval")
    truth: dict[str, dict[str, str]] = {}
    for f in files:
        with open(f, newline="", encoding="utf-8-sig", errors="replace") as fh:
            for row in csv.DictReader(fh):
                region = (row.get("Anatomy") or "").strip()
                if region in REGION_ORDER and row.get("Sentence"):
                    truth.setdefault(row["Volumename"], {})[region] = row["Sentence"]
    return truth


def findings_from_paragraphs(paragraphs: dict[str, str]) -> str:
    """The findings text of a volume: region paragraphs in RadGenome's order, repeated sentences dropped."""
    seen, out = set(), []
    for region in REGION_ORDER:
        for s in split_sentences(paragraphs.get(region)):
            if s not in seen:
                seen.add(s)
                out.append(s)
    return " ".join(out)


def eval_grounding(truth_dir: Path | str, backend: StructuringBackend | None = None,
                   part: str | None = None) -> Scores:
    """Micro-F1 of predicted region paragraphs against the truth, per region and overall."""
    truth = {v: p for v, p in read_region_truth(truth_dir).items() if in_part(v, part)}
    results = (backend or RulesBackend()).structure(
        ReportInput(v, findings_from_paragraphs(p)) for v, p in truth.items())
    scores = Scores({r: Counts() for r in REGION_ORDER}, cases=len(truth))
    for (volume, paragraphs), res in zip(truth.items(), results, strict=True):
        if res.error:
            scores.errors.append((volume, res.error))
        predicted = res.paragraphs()
        for region in REGION_ORDER:
            scores.per_key[region].add(compare(predicted.get(region, ""), paragraphs.get(region, "")))
    return scores


def read_label_truth(path: Path | str) -> list[tuple[str, str, dict[str, int]]]:
    """(id, report text, {class: 0/1}) rows of a labelled-reports CSV (AccessionNo,report_text + 18 classes)."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        missing = [c for c in ("report_text", *CT_RATE_LABELS) if c not in cols]
        if missing:
            raise WarehouseError(f"{Path(path).name} lacks columns {missing}", file=str(path), stage="eval")
        key = next((c for c in ("AccessionNo", "VolumeName", "Volumename") if c in cols), cols[0])
        return [(row[key], row["report_text"], {c: int(float(row[c] or 0)) for c in CT_RATE_LABELS})
                for row in reader]


LABEL_PATHS = ("labels", "findings")


def eval_labels(truth_file: Path | str, backend: StructuringBackend | None = None,
                part: str | None = None, via: str = "labels") -> Scores:
    """Per-class F1 of the 18 CT-RATE labels and their macro mean. `via="findings"` scores the
    findings instead of the labeller: a case is positive for a class when it has a present finding
    whose `ct_rate_label` is that class (the evidence `label_evidence` shows)."""
    if via not in LABEL_PATHS:
        raise WarehouseError(f"unknown label path {via!r}", hint=f"one of: {', '.join(LABEL_PATHS)}")
    rows = [r for r in read_label_truth(truth_file) if in_part(r[0], part)]
    results = (backend or RulesBackend()).structure(ReportInput(k, text) for k, text, _ in rows)
    scores = Scores({c: Counts() for c in CT_RATE_LABELS}, cases=len(rows))
    for (key, _, truth), res in zip(rows, results, strict=True):
        if res.error:
            scores.errors.append((key, res.error))
        if via == "findings":
            evidence = {f["ct_rate_label"] for f in res.findings if f["status"] == "present"}
            pred = {c: int(c in evidence) for c in CT_RATE_LABELS}
        else:
            pred = res.label_values()
        for c in CT_RATE_LABELS:
            p, t = pred.get(c, 0), truth[c]
            scores.per_key[c].add(Counts(int(p and t), int(p and not t), int(t and not p)))
    return scores


def format_table(scores: Scores, summary: str, key_name: str) -> Iterable[tuple[str, ...]]:
    """Rows (key, precision, recall, F1) for printing, then the summary row."""
    for k, c in scores.per_key.items():
        yield (k, f"{c.precision:.4f}", f"{c.recall:.4f}", f"{c.f1:.4f}")
    figure = scores.micro_f1 if summary == "micro" else scores.macro_f1
    yield (f"{summary}-F1 ({scores.cases} {key_name})", "", "", f"{figure:.4f}")
