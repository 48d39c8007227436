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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ingest.job import CaseJob, CaseOutput, JobContext, Rows, Source
from ingest.sources import ct_rate
from ingest.sources.radgenome_case import ReleaseCaseJob, case_row
from ingest.sources.radgenome_csv import CHUNK, CsvState, load_templates, read_region_file, read_release_csv
from ingest.sources.radgenome_masks import MaskInput, MaskSet, find_mask_inputs, index_folder
from ingest.sources.radgenome_streams import DEFAULT_BUDGET, merge_archives
from ingest.sources.release_csv import ErrorSink
from ingest.sources.release_text import ReleaseText
from ingest.sources.volume_names import split_of_file
from warehouse.core.anatomy import COARSE_REGIONS
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
    from ingest.sources.radgenome_masks import MASK_KINDS

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


class RadGenomeSource(Source):
    """A RadGenome-ChestCT release folder, with an optional CT-RATE release folder."""

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
        self._radgenome_cases: set[str] | None = None
        self._ct_rate_cases: set[str] = set()
        self._light: set[str] = set()  # cases whose `cases` row came with the bulk rows
        self._splits: dict[str, str] = {}

    def inputs(self) -> list[Path]:
        """The released CSVs and archives (hashed into the manifest); volume and extracted-mask folders,
        tens of thousands of files, are listed by their folder only through the build key."""
        layout = self.layout
        files = [p for p, _ in layout.csvs] + layout.region_files + [p for m in layout.masks for p in m.parts]
        files += [p for paths in layout.ct_rate_files.values() for p in paths]
        return sorted(set(files))

    def build_key(self) -> str:
        """Same release folders and files, same key: a re-run resumes the build's staging folder."""
        import hashlib

        h = hashlib.sha256(f"{self.name}\0{self.release}\0{self.ct_rate_dir}".encode())
        for p in self.inputs():
            h.update(str(p).encode())
        return f"{self.name}-{h.hexdigest()[:12]}"

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

    def expected_cases(self) -> int | None:
        """Cases known from the files read so far (after `bulk`), for a progress total; None before."""
        return len(self._known_cases()) if self._radgenome_cases is not None else None

    @cached_property
    def metadata(self) -> dict[str, ct_rate.MetadataRow]:
        rows: dict[str, ct_rate.MetadataRow] = {}
        for path in self.layout.ct_rate_files.get("metadata", []):
            ct_rate.read_metadata(path, self._errors, rows)
        return rows

    # -- rows read once ----------------------------------------------------------------------------
    def bulk(self) -> Iterable[tuple[str, Rows]]:
        state = CsvState(errors=self._errors, templates=load_templates(self.release))
        files = [(p, RADGENOME_FILES[k], read_release_csv) for p, k in self.layout.csvs]
        files += [(p, REGION_FILE, read_region_file) for p in self.layout.region_files]
        # sentences are held back until every file is read, then given out read (findings, labels)
        text = ReleaseText(enabled=self.text_stages, workers=self.workers)
        for path, spec, reader in files:
            for i, chunk in enumerate(reader(path, spec, state)):
                yield f"{path}:{i}", text.take(chunk)
        seen_reports: set[str] = set()
        seen_labels: set[str] = set()
        for path in self.layout.ct_rate_files.get("reports", []):
            yield f"{path}:0", text.take(next(ct_rate.read_reports(path, self._errors, seen_reports)))
        for path in self.layout.ct_rate_files.get("labels", []):
            yield f"{path}:0", text.take(next(ct_rate.read_labels(path, self._errors, seen_labels)))
        self._radgenome_cases, self._ct_rate_cases = set(state.case_ids), seen_reports | seen_labels
        self._splits = state.splits
        yield from text.parts()
        yield from self._light_cases()
        yield "errors:bulk", {"ingest_errors": self._errors.take()}

    def _light_cases(self) -> Iterator[tuple[str, Rows]]:
        """`cases` rows of cases with no image and no mask, when no archive can bring one (no jobs)."""
        layout = self.layout
        if any(m.parts for m in layout.masks):
            return
        arrays = set(layout.images) | set(layout.ct_rate_volumes) | set(self.folder_masks)
        light = sorted(self._known_cases() - arrays)
        for i in range(0, len(light), CHUNK):
            errors: list[dict] = []
            rows = [case_row(c, self._case_source(c, False), self.metadata.get(c), errors, self.name,
                             self._splits.get(c)) for c in light[i:i + CHUNK]]
            yield f"cases:{i // CHUNK}", {"cases": rows, "ingest_errors": errors}
        self._light = set(light)

    def _known_cases(self) -> set[str]:
        layout = self.layout
        return (self._radgenome_cases or set()) | self._ct_rate_cases | set(self.metadata) | set(layout.images) \
            | set(self.folder_masks) | set(layout.ct_rate_volumes)

    def _case_source(self, case_id: str, has_masks: bool) -> str:
        radgenome = case_id in (self._radgenome_cases or ()) or has_masks or case_id in self.layout.images
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
        if self._radgenome_cases is None:  # jobs() without bulk(): read the CSVs for their case ids only
            errors = [e for _, rows in self.bulk() for e in rows.get("ingest_errors", [])]
            self._errors.rows = errors + self._errors.rows
        emitted, folders = set(self._light), self.folder_masks
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
                              errors=tuple(self._errors.take()), split=self._splits.get(case_id))


@dataclass
class ErrorsJob(CaseJob):
    """Carries `ingest_errors` rows met while streaming, after the last case job."""

    case_id: str
    rows: tuple[dict, ...] = ()

    def run(self, ctx: JobContext) -> CaseOutput:
        out = CaseOutput()
        out.errors.extend(self.rows)
        return out
