"""VQA generation by RadGenome's rules, from a case's grounded sentences and findings.

The released files show the rules (see ``../shared/data/radgenome``):

- ``abnormality``: one row per region path the report speaks of (each released path of the
  region, and every prefix of it: ``lung``, ``lung/lung``, ...), answered with the present
  findings in that region's subtree, or ``no findings``;
- ``location``: the same rows where something is present; the answer is the region path;
- ``presence``: ``Yes.`` for those rows; ``No.`` for findings the report negates in that
  subtree (what the release does); where a region has present findings and nothing negated,
  one drawn with a fixed seed from the region's vocabulary that the case does not have
  (``qa_templates/region_vocabulary.json``), so abnormal regions get a Yes. and a No.;
- ``size``: every present finding with a size, at its region's canonical path (``50 mm``);
- ``disorders``: one row, the case-level list.

Questions come from the released templates (``qa_templates/*.json``); the template is chosen
by a hash of the row's content, so the same inputs give the same questions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.resources import files

from ingest.structure.findings import terms_of
from warehouse.core.anatomy import TOP_LEVEL, anatomy
from warehouse.core.ids import content_id

EXTRACTOR = "radgenome-rules-1"


@cache
def templates() -> dict[str, list[str]]:
    """The five released template lists, by VQA type."""
    root = files("ingest") / "qa_templates"
    out = {}
    for kind in ("abnormality", "presence", "location", "size", "disorders"):
        out.update(json.loads((root / f"{kind}_template.json").read_text()))
    return out


@cache
def region_vocabulary() -> dict[str, tuple[str, ...]]:
    data = json.loads((files("ingest") / "qa_templates" / "region_vocabulary.json").read_text())
    return {k: tuple(v) for k, v in data["terms"].items()}


def _digest(*parts: object) -> str:
    """40 hex digits of `warehouse.core.ids.content_id` (the release reader's VQA key has the same recipe)."""
    return content_id(*parts, size=40)


def _question(kind: str, key: str, **fields: str) -> str:
    options = templates()[kind]
    return options[int(key[:8], 16) % len(options)].format(**fields)


def _prefixes(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _format_size(size_mm: float | None, size_text: str | None) -> str | None:
    if size_text:
        return size_text
    if size_mm is None:
        return None
    return f"{size_mm:g} mm"


def generate_vqa(case_id: str, sentences: Iterable[Mapping], findings: Iterable[Mapping],
                 disorders: Iterable[str] = (), *, extractor: str = EXTRACTOR) -> list[dict]:
    """VQA rows (schema `vqa`) for one case."""
    a = anatomy()
    findings = [f for f in findings if f.get("region_id") is not None and f.get("term")]
    present = [f for f in findings if f.get("status") == "present"]
    absent = [f for f in findings if f.get("status") == "absent"]
    regions = {s["region_id"] for s in sentences if s.get("region_id") is not None}
    regions |= {f["region_id"] for f in findings}
    paths: set[str] = set()
    for rid in regions:
        r = a.get(int(rid))
        for p in r.paths or (a.path(r.name),):
            paths.update(_prefixes(p))
    order = {t: i for i, t in enumerate(TOP_LEVEL)}
    ordered = sorted(paths, key=lambda p: (order.get(p.split("/")[0], 99), p.count("/"), p))

    rows: list[dict] = []
    counters: dict[str, int] = {}

    def add(kind: str, path: str, region_id: int | None, term: str | None, answer: str,
            size_mm: float | None = None, **fields: str) -> None:
        key = _digest(case_id, kind, path, term, answer)
        ordinal = counters.get(kind, 0)
        counters[kind] = ordinal + 1
        rows.append({"vqa_id": _digest(key, ordinal)[:20], "case_id": case_id, "type": kind,
                     "question": _question(kind, key, **fields), "answer": answer, "region_id": region_id,
                     "anatomy_path": path, "term": term, "size_mm": size_mm, "ordinal": ordinal,
                     "terms": terms_of(answer if kind in ("abnormality", "disorders") else term),
                     "extractor": extractor})

    case_terms = {f["term"] for f in present}
    for path in ordered:
        region = a.resolve(path)
        below = {a.get(n).region_id for n in a.descendants(region.name)}
        terms = list(dict.fromkeys(f["term"] for f in present if f["region_id"] in below))
        negated = [t for t in dict.fromkeys(f["term"] for f in absent if f["region_id"] in below)
                   if t not in terms]
        listed = ", ".join(terms)
        add("abnormality", path, region.region_id, None, listed or "no findings", region=region.name)
        if terms:
            add("location", path, region.region_id, listed, path, abnormality=listed)
            add("presence", path, region.region_id, listed, "Yes.", abnormality=listed, region=region.name)
        no = ", ".join(negated) if negated else None
        if not negated and terms:  # an abnormal region the report negates nothing in: draw a No.
            pool = [t for t in region_vocabulary().get(path.split("/")[0], ()) if t not in case_terms]
            no = pool[int(_digest(case_id, path)[:8], 16) % len(pool)] if pool else None
        if no:
            add("presence", path, region.region_id, no, "No.", abnormality=no, region=region.name)
    sized: set[tuple] = set()
    for f in present:
        size = _format_size(f.get("size_mm"), f.get("size_text"))
        r = a.get(int(f["region_id"]))
        if size and (r.name, f["term"], size) not in sized:  # findings and impressions may repeat a size
            sized.add((r.name, f["term"], size))
            add("size", a.path(r.name), r.region_id, f["term"], size, f.get("size_mm"),
                abnormality=f["term"], region=r.name)
    disorders = list(dict.fromkeys(disorders)) or list(dict.fromkeys(f["term"] for f in present))
    add("disorders", "", None, None, ", ".join(disorders) or "no findings")
    return rows
