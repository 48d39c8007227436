"""The anatomy DAG, loaded from its one data file, `anatomy.toml`.

A region has a name (RadGenome's spelling), parents (several: it is a DAG), the
released '/' paths, text synonyms and the names it has in mask sources. From it
come the `anatomy` and `anatomy_closure` tables, so "everything under lung" is one
join in any SQL engine.
"""

from __future__ import annotations

import difflib
import hashlib
import tomllib
from collections import deque
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import pyarrow as pa

from warehouse.core import schema
from warehouse.core.errors import UnknownRegionError

DATA_FILE = Path(__file__).with_name("anatomy.toml")

# RadGenome's top-level regions, in the order its region reports list them.
TOP_LEVEL: tuple[str, ...] = ("trachea and bronchie", "mediastinum", "heart", "esophagus", "thyroid",
                              "breast", "lung", "pleura", "abdomen", "bone", "others")
COARSE_REGIONS: tuple[str, ...] = TOP_LEVEL[:-1]  # the 10 coarse region masks


def region_id_for(name: str) -> int:
    """Stable 31-bit id from a region name: independent of the file's order."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class Region:
    """One region of the DAG."""

    name: str
    region_id: int
    parents: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()
    radgenome_masks: tuple[str, ...] = ()
    region_mask: bool = False
    totalsegmentator: tuple[str, ...] = ()
    sat: tuple[str, ...] = ()
    children: tuple[str, ...] = field(default=(), compare=False)


class Anatomy:
    """The loaded DAG with lookups by name, path, synonym and mask-source name."""

    def __init__(self, regions: list[Region]) -> None:
        children: dict[str, list[str]] = {r.name: [] for r in regions}
        for r in regions:
            for p in r.parents:
                if p not in children:
                    raise ValueError(f"{DATA_FILE.name}: region {r.name!r} has unknown parent {p!r}")
                children[p].append(r.name)
        self.regions: dict[str, Region] = {
            r.name: Region(**{**r.__dict__, "children": tuple(children[r.name])}) for r in regions}
        self.by_id: dict[int, Region] = {}
        for r in self.regions.values():
            if r.region_id in self.by_id:
                raise ValueError(f"region id collision: {r.name!r} and {self.by_id[r.region_id].name!r}")
            self.by_id[r.region_id] = r
        self._check_acyclic()
        self._aliases = self._build_aliases()

    # -- loading -----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path | str = DATA_FILE) -> Anatomy:
        """Read the data file (normally through `anatomy()`, which caches it)."""
        with open(path, "rb") as f:
            data = tomllib.load(f)
        regions = []
        for entry in data["region"]:
            name = entry["name"]
            regions.append(Region(
                name=name, region_id=region_id_for(name),
                parents=tuple(entry.get("parents", ())), paths=tuple(entry.get("paths", ())),
                synonyms=tuple(entry.get("synonyms", ())),
                radgenome_masks=tuple(entry.get("radgenome_masks", ())),
                region_mask=bool(entry.get("region_mask", False)),
                totalsegmentator=tuple(entry.get("totalsegmentator", ())), sat=tuple(entry.get("sat", ())),
            ))
        if len({r.name for r in regions}) != len(regions):
            raise ValueError(f"{path}: duplicate region names")
        return cls(regions)

    def _check_acyclic(self) -> None:
        state: dict[str, int] = {}

        def visit(name: str, trail: tuple[str, ...]) -> None:
            if state.get(name) == 1:
                raise ValueError(f"anatomy cycle: {' -> '.join(trail + (name,))}")
            if state.get(name) == 2:
                return
            state[name] = 1
            for p in self.regions[name].parents:
                visit(p, trail + (name,))
            state[name] = 2

        for n in self.regions:
            visit(n, ())

    def _build_aliases(self) -> dict[str, str]:
        aliases: dict[str, str] = {}
        for r in self.regions.values():
            for a in (r.name, *r.paths, *r.radgenome_masks, *r.totalsegmentator, *r.sat, *r.synonyms):
                aliases.setdefault(a.lower(), r.name)
        return aliases

    # -- lookups -----------------------------------------------------------------------------
    def __contains__(self, name: str) -> bool:
        return name in self.regions

    def __iter__(self):
        return iter(self.regions.values())

    def __len__(self) -> int:
        return len(self.regions)

    def get(self, name_or_id: str | int) -> Region:
        """A region by its exact name or id; `resolve` also accepts paths, synonyms and mask names."""
        if isinstance(name_or_id, int):
            try:
                return self.by_id[name_or_id]
            except KeyError:
                raise UnknownRegionError(f"no region with id {name_or_id}") from None
        if name_or_id in self.regions:
            return self.regions[name_or_id]
        return self.resolve(name_or_id)

    def resolve(self, name: str) -> Region:
        """A region by name, released path, synonym, or a mask-source name (RadGenome, TotalSegmentator, SAT).

        Raises `UnknownRegionError` naming the closest known names.
        """
        key = name.strip().lower()
        if key in self._aliases:
            return self.regions[self._aliases[key]]
        if "/" in key:  # a path not in the file: its last component decides
            last = key.rstrip("/").rsplit("/", 1)[-1]
            if last in self._aliases:
                return self.regions[self._aliases[last]]
        close = difflib.get_close_matches(key, list(self._aliases), n=5, cutoff=0.6)
        suggestion = ", ".join(repr(self._aliases[c]) if c == self._aliases[c] else f"{c!r} ({self._aliases[c]})"
                               for c in close)
        raise UnknownRegionError(
            f"unknown anatomy region {name!r}",
            hint=f"did you mean {suggestion}?" if close else "see `SELECT name FROM anatomy` for the known regions")

    def from_totalsegmentator(self, class_name: str) -> Region:
        """The region a TotalSegmentator v2 class name maps onto."""
        for r in self.regions.values():
            if class_name in r.totalsegmentator:
                return r
        return self.resolve(class_name)

    # -- structure ---------------------------------------------------------------------------
    @cached_property
    def _levels(self) -> dict[str, int]:
        level = {n: 0 for n in TOP_LEVEL if n in self.regions}
        queue = deque(level)
        while queue:
            n = queue.popleft()
            for c in self.regions[n].children:
                if c not in level:
                    level[c] = level[n] + 1
                    queue.append(c)
        return level

    def level(self, name: str) -> int:
        """Shortest distance from a top-level region."""
        return self._levels[name]

    def descendants(self, name: str, include_self: bool = True) -> dict[str, int]:
        """Every region under `name` with its shortest depth (itself at 0)."""
        depth = {name: 0}
        queue = deque([name])
        while queue:
            n = queue.popleft()
            for c in self.regions[n].children:
                if c not in depth:
                    depth[c] = depth[n] + 1
                    queue.append(c)
        if not include_self:
            depth.pop(name)
        return depth

    def ancestors(self, name: str, include_self: bool = True) -> set[str]:
        """Every region `name` lies under."""
        seen = {name}
        stack = [name]
        while stack:
            for p in self.regions[stack.pop()].parents:
                if p not in seen:
                    seen.add(p)
                    stack.append(p)
        if not include_self:
            seen.discard(name)
        return seen

    @cached_property
    def _paths(self) -> dict[str, str]:
        out: dict[str, str] = {}

        def path(n: str) -> str:
            if n not in out:
                r = self.regions[n]
                out[n] = r.paths[0] if r.paths else (f"{path(r.parents[0])}/{n}" if r.parents else n)
            return out[n]

        for n in self.regions:
            path(n)
        return out

    def path(self, name: str) -> str:
        """Canonical RadGenome '/' path: the first released one, else the first parent's plus the name."""
        return self._paths[name]

    def top_level(self, name: str) -> str:
        """The top-level region of the canonical path."""
        return self.path(name).split("/", 1)[0]

    # -- tables ------------------------------------------------------------------------------
    def tables(self) -> dict[str, pa.Table]:
        """The `anatomy` and `anatomy_closure` tables."""
        rows, closure = [], []
        for r in self.regions.values():
            rows.append({
                "region_id": r.region_id, "name": r.name, "path": self.path(r.name), "paths": list(r.paths),
                "parent_ids": [self.regions[p].region_id for p in r.parents], "level": self.level(r.name),
                "is_leaf": not r.children, "is_top_level": r.name in TOP_LEVEL,
                "top_level": self.top_level(r.name), "synonyms": list(r.synonyms),
                "radgenome_masks": list(r.radgenome_masks), "totalsegmentator": list(r.totalsegmentator),
                "sat": list(r.sat),
            })
            for d, depth in self.descendants(r.name).items():
                closure.append({"ancestor_id": r.region_id, "descendant_id": self.regions[d].region_id,
                                "depth": depth})
        return {"anatomy": schema.to_table("anatomy", rows),
                "anatomy_closure": schema.to_table("anatomy_closure", closure)}


@cache
def anatomy() -> Anatomy:
    """The project's DAG, loaded once per process."""
    return Anatomy.load()
