"""RadGenome-ChestCT's released CSVs as warehouse rows (`sentences`, `vqa`, `case_labels`).

The column mappings are `warehouse.exports.RADGENOME_FILES` (the export reads the same
table). Raw texts are kept as released (a ``Size`` of ``6x4 mm``, an ``Abnormality`` or
``Disorders`` comma list) so the export reproduces them; parsed values sit beside them
(`size_mm`, one `case_labels` row per disorder term). Questions come from the released
templates, chosen by a hash of the row, so two builds give the same questions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ingest.sources.release_csv import ErrorSink, read_csv
from ingest.sources.volume_names import case_name_problem, split_of_file, try_parse
from ingest.structure.findings import terms_of
from warehouse.core.anatomy import anatomy
from warehouse.core.errors import UnknownRegionError
from warehouse.core.ids import content_id
from warehouse.core.release_format import REGION_FILES_EXTRACTOR, RELEASE_EXTRACTOR, ReleasedFile

CHUNK = 50_000  # rows per saved part
NO_FINDINGS = "no findings"
_SIZE = re.compile(r"^\s*(?P<nums>\d+(?:\.\d+)?(?:\s*[x\-]\s*\d+(?:\.\d+)?)*)\s*(?P<unit>[a-z]+)\s*$", re.I)
_UNIT_MM = {"mm": 1.0, "cm": 10.0}
_NOT_SIZE_UNITS = ("in",)  # '170 in' in the release is an image number, not inches: no size, no error
SIZE_MAX_MM = 1000.0  # a finding's size is > 0 and < 1 m


def size_mm(text: str | None) -> float | None:
    """``50 mm`` -> 50, ``2 cm`` -> 20, ``1-2 mm`` / ``12 x 9 mm`` -> the largest value; None if unparsed
    or outside 0 < size < `SIZE_MAX_MM` (`size_problem` says why)."""
    m = _SIZE.match(text or "")
    if not m or m["unit"].lower() not in _UNIT_MM:
        return None
    mm = max(float(v) for v in re.split(r"\s*[x\-]\s*", m["nums"])) * _UNIT_MM[m["unit"].lower()]
    return mm if 0 < mm < SIZE_MAX_MM else None


def size_problem(text: str | None) -> str | None:
    """Why a released ``Size`` gives no size in mm (None when it gives one, or is an image number)."""
    m = _SIZE.match(text or "")
    shown = repr(text if len(text or "") <= 40 else f"{text[:30]}...{text[-6:]}")
    if m and m["unit"].lower() in _NOT_SIZE_UNITS:
        return None
    if m and m["unit"].lower() in _UNIT_MM:
        return None if size_mm(text) is not None else \
            f"Size {shown} is not a size above 0 and below {SIZE_MAX_MM:g} mm; size_mm left empty"
    negative = (text or "").strip().startswith("-") and _SIZE.match(text.strip()[1:])
    return f"Size {shown} is " + ("negative" if negative else "not a size in mm or cm (like '6x4 mm')") + \
        "; size_mm left empty"


def split_terms(text: str) -> list[str]:
    """A released comma list as terms, in order (``no findings`` -> none)."""
    terms = [t.strip() for t in text.split(",") if t.strip()]
    return [] if terms == [NO_FINDINGS] else terms


def load_templates(release: Path | None = None) -> dict[str, list[str]]:
    """The five question-template lists: from the release's ``qa_templates/`` if present, else shipped."""
    from ingest.vqa import templates

    out = dict(templates())
    for folder in ([release / "dataset" / "qa_templates", release / "qa_templates"] if release else []):
        for path in sorted(folder.glob("*_template.json")):
            out.update(json.loads(path.read_text(encoding="utf-8")))
    return out


@lru_cache(maxsize=4096)
def _region(path: str) -> tuple[int, str]:
    r = anatomy().resolve(path)
    return r.region_id, r.name


@dataclass
class CsvState:
    """What carries across files and chunks of one build: ordinals, seen keys, the errors."""

    errors: ErrorSink
    templates: dict[str, list[str]]
    ordinals: dict[tuple[str, str], int] = field(default_factory=dict)
    disorder_cases: dict[str, str] = field(default_factory=dict)  # case -> first file:line
    case_ids: set[str] = field(default_factory=set)
    splits: dict[str, str] = field(default_factory=dict)  # case -> split of the first file naming it

    def next_ordinal(self, case_id: str, kind: str) -> int:
        n = self.ordinals.get((case_id, kind), 0)
        self.ordinals[(case_id, kind)] = n + 1
        return n

    def question(self, vqa_type: str, key: str, **fields: str) -> str | None:
        options = self.templates.get(vqa_type)
        return options[int(key[:8], 16) % len(options)].format(**fields) if options else None


def read_release_csv(path: Path, spec: ReleasedFile, state: CsvState, *,
                     extractor: str = RELEASE_EXTRACTOR) -> Iterator[dict[str, list[dict]]]:
    """Rows of one released CSV, in chunks of `CHUNK`; bad rows go to `state.errors`."""
    file_split = split_of_file(path.name)
    kind = spec.vqa_type or extractor  # ordinals: per case within each VQA type / sentence source
    out: dict[str, list[dict]] = {}
    n = 0
    for line, row in read_csv(path, spec.header, state.errors, key="Volumename", check_key=case_name_problem):
        values = {col: row[name] for name, col in spec.columns}
        case_id, where = values["case_id"].strip(), f"line {line}"
        vol = try_parse(case_id)
        if not case_id:
            state.errors.add("empty Volumename; the row is skipped", file=path, location=where)
            continue
        if spec.table == "sentences" and not values["text"].strip():
            state.errors.add("empty Sentence (nothing but whitespace); the row is skipped", file=path,
                             location=where, case_id=case_id)
            continue
        if vol and file_split and vol.split != file_split:
            state.errors.add(f"a {vol.split} volume in a {file_split} file; kept under its own split",
                             file=path, location=where, case_id=case_id)
        if spec.vqa_type == "disorders":
            if case_id in state.disorder_cases:
                state.errors.add(f"duplicate Volumename (first at {state.disorder_cases[case_id]}); "
                                 "the later row is skipped", file=path, location=where, case_id=case_id)
                continue
            state.disorder_cases[case_id] = f"{path.name}:{line}"
        path_text = values.get("anatomy_path", "")
        region_id, region = None, ""
        if path_text:
            try:
                region_id, region = _region(path_text)
            except UnknownRegionError as e:
                state.errors.add(f"{e}; the row is skipped", file=path, location=where, case_id=case_id)
                continue
        elif spec.vqa_type not in ("disorders", None):
            state.errors.add("empty Anatomy in a VQA file; the row is skipped", file=path, location=where,
                             case_id=case_id)
            continue
        state.case_ids.add(case_id)
        if file_split:
            state.splits.setdefault(case_id, file_split)
        ordinal = state.next_ordinal(case_id, kind)
        if spec.table == "sentences":
            out.setdefault("sentences", []).append({
                "sentence_id": content_id(case_id, extractor, ordinal, path_text, values["text"]),
                "case_id": case_id, "region_id": region_id, "anatomy_path": path_text, "ordinal": ordinal,
                "text": values["text"], "is_abnormal": None, "extractor": extractor})
        else:
            _vqa_rows(out, spec.vqa_type, values, case_id, ordinal, region_id, region, state)
            if spec.vqa_type == "size" and (why := size_problem(values["answer"])):
                state.errors.add(f"{why} (the row is kept)", file=path, location=where, case_id=case_id)
        n += 1
        if n % CHUNK == 0:
            yield out
            out = {}
    if out:
        yield out


def _vqa_rows(out: dict[str, list[dict]], vqa_type: str, values: dict[str, str], case_id: str, ordinal: int,
              region_id: int | None, region: str, state: CsvState) -> None:
    path, term = values.get("anatomy_path", ""), values.get("term")
    answer = path if vqa_type == "location" else values["answer"]
    key = content_id(case_id, vqa_type, path, term, answer, size=40)
    question = state.question(vqa_type, key, region=region, abnormality=term or "")
    out.setdefault("vqa", []).append({
        "vqa_id": content_id(key, ordinal), "case_id": case_id, "type": vqa_type, "question": question,
        "answer": answer, "region_id": region_id, "anatomy_path": path, "term": term,
        "terms": terms_of(answer if vqa_type in ("abnormality", "disorders") else term, path.split("/")[0] or None),
        "size_mm": size_mm(answer) if vqa_type == "size" else None, "ordinal": ordinal,
        "extractor": RELEASE_EXTRACTOR})
    if vqa_type == "disorders":
        out.setdefault("case_labels", []).extend(
            {"case_id": case_id, "kind": "disorder", "label": t, "value": 1, "ordinal": i,
             "source": RELEASE_EXTRACTOR} for i, t in enumerate(split_terms(answer)))


def read_region_file(path: Path, spec: ReleasedFile, state: CsvState) -> Iterator[dict[str, list[dict]]]:
    """A validation region file (``lung.csv``: one paragraph per volume) as `sentences` rows."""
    return read_release_csv(path, spec, state, extractor=REGION_FILES_EXTRACTOR)
