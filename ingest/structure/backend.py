"""Structuring backends: a batch of reports in, structured reports out.

`StructuringBackend` is the contract. It cleans and checks the input (empty findings,
"Not given.", oversized or unreadable text become a per-report `error`, never an
exception), calls the backend's `parse_batch` for the rest and assembles rows with
`report.assemble`, so every backend writes the same rows and only `extractor` differs.
`RulesBackend` is the default: deterministic, CPU only. LLM backends register in
`BACKENDS` by import path and are loaded only when asked for.
"""

from __future__ import annotations

import abc
import importlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from ingest.structure.findings import find_mentions, is_abnormal
from ingest.structure.grounding import ground_sentences
from ingest.structure.report import FINDINGS, IMPRESSIONS, ParsedSentence, StructuredReport, assemble
from ingest.structure.sentences import split_sentences
from ingest.structure.text import tokenize
from warehouse.core.errors import WarehouseError

MAX_REPORT_CHARS = 1_000_000
EMPTY_TEXTS = frozenset({"", "not given", "not given.", "nan", "none", "null", "n/a", "na", "-"})


@dataclass(frozen=True, slots=True)
class ReportInput:
    """One report: the case it belongs to, its findings and (optional) impressions."""

    case_id: str
    findings: str | None
    impressions: str | None = None


def clean_text(value: object) -> str | None:
    """The text of a report field, or None for empty, 'Not given.', NaN and non-strings."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return None if text.lower() in EMPTY_TEXTS else text


class StructuringBackend(abc.ABC):
    """Turns reports into `StructuredReport`s, in batches; subclasses implement `parse_batch`."""

    name: ClassVar[str]
    version: ClassVar[str]
    batch_size: int = 512

    @property
    def extractor(self) -> str:
        """Recorded in every row this backend makes, e.g. rules-0.1."""
        return f"{self.name}-{self.version}"

    @abc.abstractmethod
    def parse_batch(self, reports: Sequence[ReportInput]) -> list[list[ParsedSentence] | Exception]:
        """Parsed sentences for each report (findings then impressions), or the exception for that report."""

    def structure(self, reports: Iterable[ReportInput | tuple]) -> list[StructuredReport]:
        """Structure every report; a bad report becomes a result with `error` set, never an exception."""
        out: list[StructuredReport] = []
        batch: list[tuple[int, ReportInput]] = []
        for item in reports:
            report = item if isinstance(item, ReportInput) else ReportInput(*item)
            report = ReportInput(str(report.case_id), clean_text(report.findings), clean_text(report.impressions))
            problem = self._check(report)
            out.append(StructuredReport(report.case_id, self.extractor, error=problem))
            if problem is None or report.impressions and problem.startswith("empty findings"):
                batch.append((len(out) - 1, report))
            if len(batch) >= self.batch_size:
                self._run(batch, out)
                batch = []
        if batch:
            self._run(batch, out)
        return out

    @staticmethod
    def _check(report: ReportInput) -> str | None:
        if report.findings is None:
            return "empty findings (no text, or 'Not given.')"
        size = len(report.findings) + len(report.impressions or "")
        if size > MAX_REPORT_CHARS:
            return f"report too long ({size:,} characters, limit {MAX_REPORT_CHARS:,})"
        return None

    def _run(self, batch: list[tuple[int, ReportInput]], out: list[StructuredReport]) -> None:
        try:
            parsed = self.parse_batch([r for _, r in batch])
        except Exception as e:  # the whole batch failed: each report says why
            parsed = [e] * len(batch)
        for (k, report), result in zip(batch, parsed, strict=True):
            error = out[k].error
            if isinstance(result, Exception):
                msg = str(result) if isinstance(result, WarehouseError) else f"{type(result).__name__}: {result}"
                out[k] = StructuredReport(report.case_id, self.extractor, error=msg)
                continue
            if error is None and not any(p.grounding.grounded or p.mentions for p in result):
                error = "no anatomy or finding recognised (text not English, or garbled)"
                result = []
            done = assemble(report.case_id, result, self.extractor) if result else out[k]
            done.error = error
            out[k] = done


class RulesBackend(StructuringBackend):
    """The default backend: sentence rules, the anatomy lexicon and the finding vocabulary."""

    name = "rules"
    version = "0.1"

    def parse_batch(self, reports: Sequence[ReportInput]) -> list[list[ParsedSentence] | Exception]:
        out: list[list[ParsedSentence] | Exception] = []
        for report in reports:
            try:
                out.append(self.parse(report.findings, report.impressions))
            except Exception as e:  # one report's bug must not lose the batch
                out.append(e)
        return out

    @staticmethod
    def parse(findings: str | None, impressions: str | None = None) -> list[ParsedSentence]:
        """Split, ground and read the findings of both sections."""
        parsed: list[ParsedSentence] = []
        for section, text in ((FINDINGS, findings), (IMPRESSIONS, impressions)):
            sentences = split_sentences(text)
            tokens = [tokenize(s) for s in sentences]
            for s, toks, g in zip(sentences, tokens, ground_sentences(sentences, tokens), strict=True):
                mentions = tuple(find_mentions(s, toks, g.top_levels))
                parsed.append(ParsedSentence(s, section, g, mentions, is_abnormal(list(mentions), s)))
        return parsed


# Backends by name: the class, or "module:Class" imported on first use.
BACKENDS: dict[str, type[StructuringBackend] | str] = {
    "rules": RulesBackend,
    "vllm": "ingest.structure.llm:VLLMBackend",
    "openai": "ingest.structure.llm:OpenAIBackend",
}


def get_backend(name: str = "rules", **options: object) -> StructuringBackend:
    """A backend by name, constructed with `options` (e.g. model=..., base_url=...)."""
    if name not in BACKENDS:
        raise WarehouseError(f"unknown structuring backend {name!r}", stage="structure",
                             hint=f"choose one of {', '.join(BACKENDS)}")
    cls = BACKENDS[name]
    if isinstance(cls, str):
        module, _, attr = cls.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise WarehouseError(f"structuring backend {name!r} is not available: {e}", stage="structure",
                                 hint="install its extra, or use --backend rules") from None
    return cls(**options)
