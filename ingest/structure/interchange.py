"""The JSON form of a parsed report: what an LLM backend asks a model for, and how it becomes rows.

`OUTPUT_SCHEMA` is a JSON Schema (usable as vLLM's guided-JSON or an OpenAI
`response_format`) for one report: its sentences, each with the anatomy regions it
speaks of (names of the DAG) and its findings. `parsed_from_json` checks a model's answer
against the schema (with `jsonschema`) and the DAG and turns it into `ParsedSentence`s, which
`report.assemble` makes into the same rows the rules backend writes; `to_json` is the
inverse, so the rules backend's output is a worked example of the format.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from ingest.structure.findings import Mention
from ingest.structure.grounding import Grounding
from ingest.structure.lexicon import GROUNDED, top_levels_of
from ingest.structure.report import FINDINGS, IMPRESSIONS, ParsedSentence
from ingest.structure.status import ABSENT, PRESENT, UNCERTAIN
from warehouse.core.anatomy import anatomy
from warehouse.core.errors import UnknownRegionError, WarehouseError

SIDES = ("left", "right", "bilateral")

OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"sentences": {"type": "array", "items": {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "The sentence, exactly as in the report."},
            "section": {"enum": [FINDINGS, IMPRESSIONS]},
            "regions": {"type": "array", "items": {"type": "string"},
                        "description": "Most specific anatomy regions the sentence speaks of (DAG names)."},
            "findings": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "term": {"type": "string", "description": "Normalised finding, e.g. pulmonary nodule."},
                    "raw_text": {"type": "string", "description": "The words of the sentence naming it."},
                    "status": {"enum": [PRESENT, ABSENT, UNCERTAIN]},
                    "region": {"type": ["string", "null"]},
                    "size_mm": {"type": ["number", "null"]},
                    "size_text": {"type": ["string", "null"]},
                    "laterality": {"enum": [*SIDES, None]},
                },
                "required": ["term", "raw_text", "status"],
            }},
        },
        "required": ["text", "regions", "findings"],
    }}},
    "required": ["sentences"],
}


MAX_PROBLEM_CHARS = 300  # a problem is one line of an error; a long value is cut


@cache
def _validator() -> Validator:
    """A validator of `OUTPUT_SCHEMA` for the draft it declares (2020-12 when it names none, as now)."""
    cls = validator_for(OUTPUT_SCHEMA, default=Draft202012Validator)
    cls.check_schema(OUTPUT_SCHEMA)  # a broken schema is this module's bug: fail loudly, once
    return cls(OUTPUT_SCHEMA)


def _where(path: list[str | int]) -> str:
    """A field's path as a person reads it: sentences[2].findings[0].status -> 'sentence 3, finding 1: status'."""
    parts, k = [], 0
    while k + 1 < len(path) and path[k] in ("sentences", "findings") and isinstance(path[k + 1], int):
        parts.append(f"{str(path[k])[:-1]} {path[k + 1] + 1}")
        k += 2
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[k:]).lstrip(".")
    return ", ".join(parts or ["answer"]) + (f": {field}" if field else ":")


def _describe(error: ValidationError) -> str:
    problem = f"{_where(list(error.absolute_path))} {error.message}"
    return problem if len(problem) <= MAX_PROBLEM_CHARS else problem[: MAX_PROBLEM_CHARS - 1] + "…"


def schema_problem(data: Any) -> str | None:
    """What keeps `data` from fitting `OUTPUT_SCHEMA`, as one line (where, then what was expected), or None.

    e.g. "sentence 1, finding 2: status 'maybe' is not one of ['present', 'absent', 'uncertain']"."""
    error = best_match(_validator().iter_errors(data))  # the most relevant error, None when it fits
    return None if error is None else _describe(error)


def _region(name: str, where: str) -> str:
    try:
        return anatomy().resolve(name).name
    except UnknownRegionError as e:
        raise WarehouseError(f"{where}: {e.message}", stage="structure", hint=e.hint) from None


def parsed_from_json(data: dict[str, Any]) -> list[ParsedSentence]:
    """A model's answer (`OUTPUT_SCHEMA`) as parsed sentences; an answer that does not fit the schema, or
    names a region outside the anatomy DAG, raises `WarehouseError` naming the sentence and the field."""
    problem = schema_problem(data)
    if problem is not None:
        raise WarehouseError(f"answer does not fit the schema: {problem}", stage="structure")
    out = []
    for k, s in enumerate(data.get("sentences") or []):
        text, where = str(s.get("text", "")).strip(), f"sentence {k + 1}"
        regions = tuple(dict.fromkeys(_region(r, where) for r in s.get("regions") or []))
        tops = tuple(t for t in GROUNDED if any(t in top_levels_of(r) or t == r for r in regions))
        mentions = []
        for f in s.get("findings") or []:  # the schema has checked the types, the status and required keys
            status = f["status"]
            raw = str(f.get("raw_text") or f["term"])
            start = max(text.lower().find(raw.lower()), 0)
            side = f.get("laterality") if f.get("laterality") in SIDES else None
            region = _region(f["region"], where) if f.get("region") else (regions[0] if regions else "others")
            size = f.get("size_mm")
            mentions.append(Mention(str(f["term"]), region, raw, status, float(size) if size is not None else None,
                                    f.get("size_text"), side, start, start + len(raw)))
        flags = [m.status != ABSENT for m in mentions]
        out.append(ParsedSentence(text, s.get("section") or FINDINGS, Grounding(regions, tops, "model"),
                                  tuple(mentions), any(flags) if flags else None))
    return out


def to_json(parsed: list[ParsedSentence]) -> dict[str, Any]:
    """Parsed sentences in `OUTPUT_SCHEMA`'s form."""
    return {"sentences": [{
        "text": p.text, "section": p.section,
        "regions": list(p.grounding.regions or p.grounding.top_levels),
        "findings": [{"term": m.term, "raw_text": m.raw_text, "status": m.status, "region": m.region,
                      "size_mm": m.size_mm, "size_text": m.size_text, "laterality": m.laterality}
                     for m in p.mentions],
    } for p in parsed]}
