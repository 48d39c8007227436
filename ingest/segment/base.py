"""The one interface every segmentation provider implements, and the spec parser that picks one.

A provider turns a case's CT (`ingest.images.CTImage`, on the stored LPS grid) into a
`Segmentation`: binary masks by region, or an integer label map with its value -> region
map, always on the CT's own stored grid and named with anatomy-DAG region names. Writing
them (label layers, parents as unions through the DAG, region statistics) is the array
store's job, not the provider's.

Specs, as the CLI takes them (``--segmenter``)::

    builtin          HU thresholds, connected components, morphology (CPU, no weights)
    import:DIR       masks made elsewhere: DIR/<case>/ or DIR/seg_<case>/ per-structure folders,
                     or DIR/<case>.nii.gz integer label maps (TotalSegmentator v2 ids by default)
    monai:PATH       a MONAI bundle folder, or a TorchScript file with a label-map JSON beside it
    none             no segmentation
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from warehouse.core.errors import IngestError

if TYPE_CHECKING:
    from ingest.images import CTImage


@dataclass
class Segmentation:
    """A provider's output for one case, on the CT's stored grid.

    `masks`: name -> bool array. `label_map` + `classes`: an integer array and value -> name
    (0 is background). Either or both may be given. Names are the source's own (a mask file's
    stem, a class name), each one that `region_for_name` maps onto the anatomy DAG.
    """

    mask_source: str
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    label_map: np.ndarray | None = None
    classes: dict[int, str] = field(default_factory=dict)
    problems: list[dict] = field(default_factory=list)  # {"file", "error"}: inputs skipped, case kept

    def problem(self, file: str | None, error: str) -> None:
        """Record an input that was skipped (an unknown mask name, a value missing from a class map)."""
        self.problems.append({"file": file, "error": error})

    def __bool__(self) -> bool:
        return bool(self.masks) or (self.label_map is not None and bool(self.classes))

    def regions(self) -> list[str]:
        """Every DAG region this segmentation gives a mask of its own."""
        return sorted({region_for_name(n) for n in (*self.masks, *self.classes.values())})


def region_for_name(name: str) -> str:
    """The DAG region a source's mask or class name stands for.

    TotalSegmentator names first, then any alias the DAG knows; a snake_case name that is
    neither is read as words, a trailing side first (``pulmonary_artery`` -> pulmonary
    artery, ``atrial_appendage_left`` -> left atrial appendage).
    """
    from warehouse.core.anatomy import anatomy
    from warehouse.core.errors import UnknownRegionError

    dag = anatomy()
    try:
        return dag.from_totalsegmentator(name).name
    except UnknownRegionError:
        words = name.strip().split("_")
        if len(words) < 2:
            raise
        if words[-1] in ("left", "right"):
            words = [words[-1], *words[:-1]]
        try:
            return dag.resolve(" ".join(words)).name
        except UnknownRegionError:
            raise UnknownRegionError(f"unknown anatomy region {name!r}", hint=dag_hint(name)) from None


def dag_hint(name: str) -> str:
    """The closest names the DAG knows, as `resolve` words them."""
    from warehouse.core.anatomy import anatomy
    from warehouse.core.errors import UnknownRegionError

    try:
        anatomy().resolve(name.replace("_", " "))
    except UnknownRegionError as e:
        return e.hint or ""
    return ""


class Segmenter(abc.ABC):
    """A segmentation provider. Subclasses are cheap to build and picklable (state loads lazily)."""

    #: What `region_stats.mask_source` records for masks it makes.
    mask_source: str = "unknown"

    @abc.abstractmethod
    def applies(self, case_id: str) -> bool:
        """Whether this provider has something for the case (an import folder may lack it)."""

    @abc.abstractmethod
    def segment(self, case_id: str, image: CTImage) -> Segmentation:
        """The case's masks on `image`'s stored grid; raises `IngestError` (stage 'masks') on bad input."""

    @property
    def spec(self) -> str:
        """The spec string that rebuilds this provider."""
        return self.mask_source


class NoSegmenter(Segmenter):
    """The `none` provider: cases get no masks."""

    mask_source = "none"

    def applies(self, case_id: str) -> bool:
        return False

    def segment(self, case_id: str, image: CTImage) -> Segmentation:
        return Segmentation(self.mask_source)


PROVIDERS = {
    "builtin": "ingest.segment.builtin:BuiltinSegmenter",
    "import": "ingest.segment.imported:ImportedMasks",
    "monai": "ingest.segment.monai_model:MonaiSegmenter",
    "none": "ingest.segment.base:NoSegmenter",
}


def parse_spec(spec: str) -> tuple[str, str | None]:
    """'import:DIR' -> ('import', 'DIR'); 'builtin' -> ('builtin', None)."""
    kind, _, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in PROVIDERS:
        raise IngestError(f"unknown segmenter {spec!r}", stage="masks",
                          hint="use builtin, none, import:DIR or monai:PATH")
    if kind in ("import", "monai") and not arg:
        raise IngestError(f"segmenter {kind!r} needs a path: {kind}:PATH", stage="masks")
    return kind, (arg or None)


@cache
def make_segmenter(spec: str) -> Segmenter:
    """The provider a spec names (cached per process, so a model loads once per worker)."""
    import importlib

    kind, arg = parse_spec(spec)
    module, _, cls_name = PROVIDERS[kind].partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    return cls(arg) if arg is not None else cls()
