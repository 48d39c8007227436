"""The JSON form of a parsed report: what an LLM backend asks a model for, and how it becomes rows.

`OUTPUT_SCHEMA` is a JSON Schema (usable as vLLM's guided-JSON or an OpenAI
`response_format`) for one report: its sentences, each with the anatomy regions it
speaks of (names of the DAG) and its findings. `parsed_from_json` checks a model's answer
against the DAG and the statuses and turns it into `ParsedSentence`s, which
`report.assemble` makes into the same rows the rules backend writes; `to_json` is the
inverse, so the rules backend's output is a worked example of the format.
"""

from __future__ import annotations

from typing import Any

from ingest.structure.findings import Mention
from ingest.structure.grounding import Grounding
from ingest.structure.lexicon import GROUNDED, top_levels_of
from ingest.structure.report import FINDINGS, IMPRESSIONS, ParsedSentence
from ingest.structure.status import ABSENT, PRESENT, UNCERTAIN
from warehouse.anatomy import anatomy
from warehouse.errors import UnknownRegionError, WarehouseError

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


def _region(name: str, where: str) -> str:
    try:
        return anatomy().resolve(name).name
    except UnknownRegionError as e:
        raise WarehouseError(f"{where}: {e.message}", stage="structure", hint=e.hint) from None


def parsed_from_json(data: dict[str, Any]) -> list[ParsedSentence]:
    """A model's answer (`OUTPUT_SCHEMA`) as parsed sentences; unknown regions or statuses raise
    `WarehouseError` naming the sentence."""
    out = []
    for k, s in enumerate(data.get("sentences") or []):
        text, where = str(s.get("text", "")).strip(), f"sentence {k + 1}"
        regions = tuple(dict.fromkeys(_region(r, where) for r in s.get("regions") or []))
        tops = tuple(t for t in GROUNDED if any(t in top_levels_of(r) or t == r for r in regions))
        mentions = []
        for f in s.get("findings") or []:
            status = f.get("status")
            if status not in (PRESENT, ABSENT, UNCERTAIN):
                raise WarehouseError(f"{where}: status {status!r} is not present, absent or uncertain",
                                     stage="structure")
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
