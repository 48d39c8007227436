"""The RadGenome-ChestCT release (and, optionally, CT-RATE's) as one source of a build.

``RadGenomeSource(release, ct_rate)`` finds whatever parts of the releases are present
and ingests them: the released CSVs and CT-RATE's reports and labels as bulk row chunks
(read once, in the main process), and one job per case for its image, masks and `cases`
row. Mask archives are streamed (see `radgenome_streams`), so jobs come out while the
archives are read; a re-run skips the cases already saved.

Release layout (``--release DIR``; the files in any nesting under ``DIR``, as downloaded; any part may be missing)::

    radgenome_files/{train,validation}_{region_report,vqa_*,case_disorders}.csv
    qa_templates/*_template.json                      (else the shipped copy)
    {train,valid}_{region,anatomy}_mask.tar.gz        (or parts _aa.._ae, or extracted folders)
    {train,valid}_preprocessed/train_1/train_1a/train_1_a_1.nii.gz
    radgenome_validation_regions/<top-level region>.csv (validation region files)
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ingest.build_outcome import BuildFailedError
from ingest.job import CaseJob, CaseOutput, JobContext, Rows, Source
from ingest.sources import ct_rate
from ingest.sources.radgenome_case import ReleaseCaseJob, case_row
from ingest.sources.radgenome_csv import CHUNK, CsvState, load_templates, read_region_file, read_release_csv
from ingest.sources.radgenome_masks import MASK_KINDS, MaskInput, MaskSet, find_mask_inputs, index_folder
from ingest.sources.radgenome_streams import DEFAULT_BUDGET, merge_archives
from ingest.sources.release_csv import ErrorSink
from ingest.sources.release_text import ReleaseText
from ingest.sources.volume_names import split_of_file
from warehouse.core.anatomy import COARSE_REGIONS
from warehouse.core.ids import content_id
from warehouse.core.release_format import RADGENOME_FILES, REGION_FILE


@dataclass
class Layout:
    """What was found in the release folders."""

    csvs: list[tuple[Path, str]] = field(default_factory=list)  # (file, RADGENOME_FILES kind)
    region_files: list[Path] = field(default_factory=list)
    masks: list[MaskInput] = field(default_factory=list)
    images: dict[str, Path] = field(default_factory=dict)  # RadGenome preprocessed volumes
    ct_rate_files: dict[str, list[Path]] = field(default_factory=dict)
    ct_rate_volumes: dict[str, Path] = field(default_factory=dict)


_MASK_ENTRY = re.compile(r"^(train|valid)_(region|anatomy)_mask(?:$|[._])")  # archive, part or folder
_IMAGE_FOLDERS = ("train_preprocessed", "valid_preprocessed")
_KIND_NAMES = {"region_report": "region reports", "vqa_abnormality": "VQA abnormality",
               "vqa_location": "VQA location", "vqa_presence": "VQA presence", "vqa_size": "VQA size",
               "case_disorders": "case disorders"}
_SPLIT_NAMES = ("train", "validation")
# What `RadGenomeSource.inventory` says it looked for, in a folder that held none of it.
LOOKED_FOR = {
    "release": "<split>_{region_report,vqa_abnormality,vqa_location,vqa_presence,vqa_size,case_disorders}.csv, "
               "<region>.csv validation region files, {train,valid}_{region,anatomy}_mask archives or folders, "
               "{train,valid}_preprocessed/ images",
    "ct_rate": "*_reports.csv, *_metadata.csv, *_predicted_labels.csv, volumes named like train_1_a_1.nii.gz",
}


def scan_release(root: Path) -> tuple[list[tuple[Path, str]], list[Path], list[MaskInput], list[Path]]:
    """The released CSVs (file, kind), validation region files, mask inputs and preprocessed-image
    folders anywhere under `root`; hidden folders, mask folders and image folders are not descended."""
    csvs, regions, masks, images, seen = [], [], [], [], set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        here = Path(folder)
        if (real := os.path.realpath(here)) in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add(real)
        images += [here / d for d in dirs if d in _IMAGE_FOLDERS]
        if any(_MASK_ENTRY.match(n) for n in (*dirs, *files)):
            masks += [m for m in find_mask_inputs(here) if m not in masks]
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _IMAGE_FOLDERS
                         and not _MASK_ENTRY.match(d))
        for name in files:
            if not name.endswith(".csv"):
                continue
            kind = next((k for k in RADGENOME_FILES if name[:-4].endswith("_" + k)), None)
            if kind and split_of_file(name):
                csvs.append((here / name, kind))
            elif name[:-4] in COARSE_REGIONS:
                regions.append(here / name)
    return sorted(csvs), sorted(regions), masks, sorted(images)


def describe_layout(layout: Layout, release: bool, ct_rate_dir: bool) -> tuple[list[tuple[str, list[Path]]], list[str]]:
    """What a build will read, as (label, files) per kind found, and the labels of the release
    parts found none of (`release`, `ct_rate_dir`: whether each folder was given)."""
    found: list[tuple[str, list[Path]]] = []
    missing: list[str] = []

    def add(label: str, by_split: dict[str, list[Path]], report_missing: bool = True) -> None:
        for split in _SPLIT_NAMES:
            if by_split.get(split):
                found.append((f"{label} ({split})", sorted(by_split[split])))
        absent = [s for s in _SPLIT_NAMES if not by_split.get(s)]
        if absent and report_missing:
            missing.append(label + ("" if len(absent) == 2 else f" ({absent[0]})"))

    if release:
        for kind, label in _KIND_NAMES.items():
            add(label, _group((split_of_file(p.name), p) for p, k in layout.csvs if k == kind))
        add("region files", {"validation": layout.region_files}, report_missing=False)
        for kind in MASK_KINDS:
            add(f"{kind} masks", _group((m.split, p) for m in layout.masks if m.kind == kind
                                        for p in (m.parts or (m.folder,))))
        add("preprocessed images", _group((split_of_file(p.name), p) for p in layout.images.values()))
    if ct_rate_dir:
        for kind, paths in layout.ct_rate_files.items():
            found += [(f"CT-RATE {kind}", paths)] if paths else []
            missing += [] if paths else [f"CT-RATE {kind}"]
        vols = list(layout.ct_rate_volumes.values())
        found += [("CT-RATE volumes", vols)] if vols else []
        missing += [] if vols else ["CT-RATE volumes"]
    return found, missing


def _group(pairs: Iterable[tuple[str | None, Path]]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for split, path in pairs:
        out.setdefault(split or "train", []).append(path)
    return out


@dataclass(frozen=True)
class Catalog:
    """The cases the released CSVs name: what `RadGenomeSource.jobs` needs from the files `bulk` reads."""

    radgenome: frozenset[str] = frozenset()  # in RadGenome's CSVs
    ct_rate: frozenset[str] = frozenset()  # in CT-RATE's reports or labels
    splits: dict[str, str] = field(default_factory=dict)  # case -> split of the first RadGenome file naming it


class RadGenomeSource(Source):
    """A RadGenome-ChestCT release folder, with an optional CT-RATE release folder.

    `bulk` and `jobs` each work alone and in either order. What the jobs need from the CSVs (the
    case ids, their splits) is the `catalog`: `bulk` records it as it reads the CSVs for their rows,
    and `jobs` without `bulk` before it reads the CSVs for it alone (no text stages; their errors are
    `bulk`'s to give), so a build reads them once and the jobs are the same either way.
    """

    name = "radgenome"

    def __init__(self, release: Path | str | None, ct_rate_dir: Path | str | None = None, *,
                 budget: int = DEFAULT_BUDGET, text_stages: bool = True, workers: int = 1) -> None:
        """`text_stages`: findings on the released sentences and structure for CT-RATE reports
        (`release_text`); `workers`: processes for those stages."""
        self.release = Path(release).expanduser().resolve() if release else None
        self.ct_rate_dir = Path(ct_rate_dir).expanduser().resolve() if ct_rate_dir else None
        self.budget = budget
        self.text_stages, self.workers = text_stages, workers
        self._errors = ErrorSink(self.name)
        self._catalog: Catalog | None = None

    def inputs(self) -> list[Path]:
        """The released CSVs and archives (hashed into the manifest); volume and extracted-mask folders,
        tens of thousands of files, are listed by their folder only through the build key."""
        layout = self.layout
        files = [p for p, _ in layout.csvs] + layout.region_files + [p for m in layout.masks for p in m.parts]
        files += [p for paths in layout.ct_rate_files.values() for p in paths]
        return sorted(set(files))

    def build_key(self) -> str:
        """Same release folders and files, same key: a re-run resumes the build's staging folder."""
        key = content_id(self.name, self.release, self.ct_rate_dir, *map(str, self.inputs()), size=12)
        return f"{self.name}-{key}"

    # -- discovery ---------------------------------------------------------------------------------
    @cached_property
    def layout(self) -> Layout:
        """The released files wherever they sit under the folders, in any nesting, as downloaded."""
        out, rel = Layout(), self.release
        if rel is not None:
            if not rel.is_dir():
                self._errors.add("the release folder does not exist", file=rel)
            else:
                out.csvs, out.region_files, out.masks, image_folders = scan_release(rel)
                for folder in image_folders:
                    out.images.update(ct_rate.find_volumes(folder, self._errors))
        if self.ct_rate_dir is not None:
            if not self.ct_rate_dir.is_dir():
                self._errors.add("the CT-RATE folder does not exist", file=self.ct_rate_dir)
            else:
                out.ct_rate_files = ct_rate.find_files(self.ct_rate_dir)
                out.ct_rate_volumes = ct_rate.find_volumes(self.ct_rate_dir, self._errors)
        return out

    def inventory(self, *, release_name: str = "release", ct_rate_name: str = "ct_rate_dir"
                  ) -> tuple[list[tuple[str, list[Path]]], list[str]]:
        """`describe_layout` of the folders given: (label, files) per kind found, and the parts found
        none of. A folder holding none of its release's files raises `BuildFailedError`, naming it
        as `release_name` or `ct_rate_name` (the CLI passes its options' names)."""
        found, missing = describe_layout(self.layout, self.release is not None, self.ct_rate_dir is not None)
        given = ((release_name, self.release, "release"), (ct_rate_name, self.ct_rate_dir, "ct_rate"))
        for name, folder, kind in given:
            ours = [label for label, _ in found if label.startswith("CT-RATE") == (kind == "ct_rate")]
            if folder is not None and not ours:
                raise BuildFailedError(f"{name} {folder}: none of the released files are in it (looked for "
                                       f"{LOOKED_FOR[kind]})", hint=f"point {name} at the downloaded release folder")
        return found, missing

    def expected_cases(self) -> int | None:
        """Cases known once the CSVs were read (by `bulk` or `jobs`), for a progress total; None before
        (a progress bar is not worth reading them for)."""
        return len(self._known_cases()) if self._catalog is not None else None

    @cached_property
    def metadata(self) -> dict[str, ct_rate.MetadataRow]:
        """CT-RATE's metadata rows by case (read once, for the `cases` rows)."""
        rows: dict[str, ct_rate.MetadataRow] = {}
        for path in self.layout.ct_rate_files.get("metadata", []):
            ct_rate.read_metadata(path, self._errors, rows)
        return rows

    @property
    def catalog(self) -> Catalog:
        """The case ids and splits of the CSVs: recorded by `bulk`, else read here for them alone."""
        if self._catalog is None:
            reading = self._read_csvs(ErrorSink(self.name))  # its errors are bulk()'s to give out
            while True:
                try:
                    next(reading)
                except StopIteration as done:
                    self._catalog = done.value
                    break
        return self._catalog

    # -- rows read once ----------------------------------------------------------------------------
    def bulk(self) -> Iterable[tuple[str, Rows]]:
        """The CSVs' rows, the `cases` rows of cases with no job, then the errors met; records the
        `catalog` on the way."""
        # sentences are held back until every file is read, then given out read (findings, labels)
        text = ReleaseText(enabled=self.text_stages, workers=self.workers)
        self._catalog = yield from self._read_csvs(self._errors, text.take)
        yield from text.parts()
        yield from self._light_cases()
        yield "errors:bulk", {"ingest_errors": self._errors.take()}

    def _read_csvs(self, errors: ErrorSink, take: Callable[[Rows], Rows] = lambda rows: rows
                   ) -> Generator[tuple[str, Rows], None, Catalog]:
        """The rows of every released CSV and of CT-RATE's reports and labels, in chunks passed through
        `take`, bad rows to `errors`; returns the `Catalog` they make."""
        state = CsvState(errors=errors, templates=load_templates(self.release))
        files = [(p, RADGENOME_FILES[k], read_release_csv) for p, k in self.layout.csvs]
        files += [(p, REGION_FILE, read_region_file) for p in self.layout.region_files]
        for path, spec, reader in files:
            for i, chunk in enumerate(reader(path, spec, state)):
                yield f"{path}:{i}", take(chunk)
        seen_reports: set[str] = set()
        seen_labels: set[str] = set()
        for path in self.layout.ct_rate_files.get("reports", []):
            yield f"{path}:0", take(next(ct_rate.read_reports(path, errors, seen_reports)))
        for path in self.layout.ct_rate_files.get("labels", []):
            yield f"{path}:0", take(next(ct_rate.read_labels(path, errors, seen_labels)))
        return Catalog(frozenset(state.case_ids), frozenset(seen_reports | seen_labels), dict(state.splits))

    def _light_cases(self) -> Iterator[tuple[str, Rows]]:
        """`cases` rows of the cases with no job (`_light_case_ids`)."""
        light, splits = sorted(self._light_case_ids()), self.catalog.splits
        for i in range(0, len(light), CHUNK):
            errors: list[dict] = []
            rows = [case_row(c, self._case_source(c, False), self.metadata.get(c), errors, self.name,
                             splits.get(c)) for c in light[i:i + CHUNK]]
            yield f"cases:{i // CHUNK}", {"cases": rows, "ingest_errors": errors}

    def _light_case_ids(self) -> set[str]:
        """Cases with no image and no mask, when no archive can bring one: their `cases` rows come with
        the bulk rows, and they have no job."""
        layout = self.layout
        if any(m.parts for m in layout.masks):
            return set()
        return self._known_cases() - (set(layout.images) | set(layout.ct_rate_volumes) | set(self.folder_masks))

    def _known_cases(self) -> set[str]:
        layout, catalog = self.layout, self.catalog
        return catalog.radgenome | catalog.ct_rate | set(self.metadata) | set(layout.images) \
            | set(self.folder_masks) | set(layout.ct_rate_volumes)

    def _case_source(self, case_id: str, has_masks: bool) -> str:
        radgenome = case_id in self.catalog.radgenome or has_masks or case_id in self.layout.images
        return "radgenome" if radgenome else "ct_rate"

    @cached_property
    def folder_masks(self) -> dict[str, list[MaskSet]]:
        """Extracted mask folders, indexed by case."""
        out: dict[str, list[MaskSet]] = {}
        for m in self.layout.masks:
            if m.folder is not None:
                for case, mask_set in index_folder(m, self._errors).items():
                    out.setdefault(case, []).append(mask_set)
        return out

    # -- one job per case --------------------------------------------------------------------------
    def jobs(self) -> Iterator[CaseJob]:
        """A job per case with an image or masks (streamed from the archives as they are read), then
        the other known cases' jobs, then a job carrying the errors met that no case job took."""
        emitted, folders = self._light_case_ids(), self.folder_masks
        for case, sets, spill in merge_archives([m for m in self.layout.masks if m.parts], self._errors,
                                                self.budget):
            emitted.add(case)
            yield self._job(case, sets + folders.get(case, []), spill)
        for case in sorted(self._known_cases() - emitted):
            yield self._job(case, folders.get(case, []), [])
        if self._errors.rows:  # stream problems not tied to a case that was still to come
            yield ErrorsJob(case_id=f"ingest_errors:{self.name}", rows=tuple(self._errors.take()))

    def _job(self, case_id: str, masks: list[MaskSet], spill: list[str]) -> ReleaseCaseJob:
        layout = self.layout
        image, kind = layout.images.get(case_id), "radgenome"
        if image is None and case_id in layout.ct_rate_volumes:
            image, kind = layout.ct_rate_volumes[case_id], "ct_rate"
        return ReleaseCaseJob(case_id=case_id, source=self._case_source(case_id, bool(masks)),
                              image=str(image) if image else None, image_kind=kind,
                              metadata=self.metadata.get(case_id), masks=tuple(masks), spill=tuple(spill),
                              errors=tuple(self._errors.take()), split=self.catalog.splits.get(case_id))


@dataclass
class ErrorsJob(CaseJob):
    """Carries `ingest_errors` rows met while streaming, after the last case job."""

    case_id: str
    rows: tuple[dict, ...] = ()

    def run(self, ctx: JobContext) -> CaseOutput:
        out = CaseOutput()
        out.errors.extend(self.rows)
        return out
