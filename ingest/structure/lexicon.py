"""The grounding lexicon: every phrase that places a sentence in the anatomy DAG.

Region names and synonyms come from `warehouse/core/anatomy.toml` (the one anatomy file);
RadGenome's filing conventions (axillary nodes under mediastinum, subpleural lesions
under pleura) and findings that imply a place come from `vocab/cues.toml`. One
phrase matcher holds them all, so the longest phrase wins ("pulmonary artery" over
"pulmonary", "inferior vena cava" over "vena cava").
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ingest.structure.text import PhraseMatcher
from warehouse.core.anatomy import TOP_LEVEL, anatomy

VOCAB = Path(__file__).with_name("vocab")
TIERS = ("place", "weak", "finding")  # strongest first
GROUNDED = TOP_LEVEL[:-1]  # the ten paragraphs of a region report ('others' has none)


@dataclass(frozen=True, slots=True)
class Cue:
    """What a matched phrase says: a DAG region, how strongly, and its top-level paragraphs."""

    region: str
    tier: str
    top_levels: frozenset[str]


@cache
def top_levels_of(region: str) -> frozenset[str]:
    """Top-level paragraphs a region is filed under: those of its released paths (two for the aorta,
    abdomen and mediastinum), else those of all its ancestors."""
    dag = anatomy()
    paths = dag.get(region).paths
    names = {p.split("/", 1)[0] for p in paths} if paths else dag.ancestors(region)
    return frozenset(n for n in names if n in GROUNDED)


@cache
def load_cues(path: Path = VOCAB / "cues.toml") -> dict[str, dict[str, list[str]]]:
    """The cue file as {tier: {region: [phrases]}}, every region checked against the DAG."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    dag = anatomy()
    for tier, regions in data.items():
        if tier not in TIERS:
            raise ValueError(f"{path.name}: unknown section [{tier}] (expected one of {TIERS})")
        for region in regions:
            if region not in dag:
                raise ValueError(f"{path.name}: [{tier}] names unknown region {region!r}")
    return data


@cache
def lexicon() -> PhraseMatcher[Cue]:
    """One matcher for region names, synonyms and cues (built once per process)."""
    dag = anatomy()
    entries: list[tuple[str, Cue]] = []
    for region in dag:
        cue = Cue(region.name, "place", top_levels_of(region.name))
        entries.extend((phrase, cue) for phrase in (region.name, *region.synonyms))
    for tier, regions in load_cues().items():
        for region, phrases in regions.items():
            cue = Cue(region, tier, top_levels_of(region))
            entries.extend((phrase, cue) for phrase in phrases)
    return PhraseMatcher(entries)
