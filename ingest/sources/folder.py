"""The `folder` source: a hospital's own CTs and reports, run through the RadGenome process.

``FolderSource(images, reports, segmenters)``:

* **images**: every ``*.nii`` / ``*.nii.gz`` under the folder (case id = file name, as
  CT-RATE's ``VolumeName``) and every folder that holds a DICOM series (case id = folder
  name); read by `ingest.images.read_ct` (HU, LPS-ordered, original axis codes kept).
  A name that cannot be a case id (`case_name_problem`: bytes that are not UTF-8, control
  characters, quotes, ``;``) and a link to nothing are `ingest_errors` rows, not cases.
  Folders of masks among them (``seg_<volume>/``, or files named as anatomy regions) are
  skipped, with one `ingest_errors` row saying to pass them as ``--segmenter import:DIR``.
* **reports**: a CSV in CT-RATE's columns (``VolumeName``, ``ClinicalInformation_EN``,
  ``Technique_EN``, ``Findings_EN``, ``Impressions_EN``; only ``VolumeName`` is required),
  joined on ``VolumeName`` (with or without ``.nii.gz``); structured by
  `ingest.structure` into sentences, findings and labels, then VQA pairs.
* **segmenters**: one or more specs (``builtin``, ``import:DIR``, ``monai:PATH``); each that
  applies to a case writes its masks (its own ``mask_source``) and `region_stats` rows.

One job per case. A stage that fails (``masks``, ``structure``, ``vqa``) is an
`ingest_errors` row and the case keeps the rest; an unreadable image fails the case.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ingest.build_outcome import BuildFailedError
from ingest.images import NIFTI_SUFFIXES, CTImage, case_stem, is_nifti, read_ct
from ingest.job import CaseJob, CaseOutput, JobContext, Rows, Source
from ingest.sources.ct_rate import age_problem, parse_age
from ingest.sources.release_csv import ErrorSink, csv_header, encoding_problem, printable, report_rows
from ingest.sources.volume_names import case_name_problem, try_parse
from warehouse.core.errors import WarehouseError
from warehouse.core.ids import content_id
from warehouse.core.release_format import CT_RATE_FILES

SOURCE = "folder"


def _is_dicom(path: Path) -> bool:
    if path.suffix.lower() == ".dcm":
        return True
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:] == b"DICM"
    except OSError:
        return False


MASK_FOLDER_NAMES = frozenset({"mask", "masks", "seg", "segs", "segmentation", "segmentations", "label", "labels"})


def _is_region_name(stem: str) -> bool:
    from ingest.segment.base import region_for_name
    from warehouse.core.errors import UnknownRegionError

    try:
        region_for_name(stem)
    except UnknownRegionError:
        return False
    return True


def is_mask_folder(folder: Path, niftis: list[str]) -> bool:
    """A folder of per-structure masks rather than CTs: RadGenome's ``seg_<volume>/``, or NIfTI files
    (at least 80%) named as anatomy regions, two or more of them or in a folder named like ``masks/``."""
    if not niftis:
        return False
    if folder.name.startswith("seg_"):
        return True
    if len(niftis) < 2 and folder.name.lower() not in MASK_FOLDER_NAMES:
        return False
    return sum(_is_region_name(case_stem(n)) for n in niftis) >= 0.8 * len(niftis)


def find_images(root: Path, errors: ErrorSink, mask_folders: list[Path] | None = None) -> dict[str, Path]:
    """Case id -> NIfTI file or DICOM folder, in sorted walk order; a repeated id is an error row.

    Folders of masks (`is_mask_folder`) are skipped and listed in `mask_folders`."""
    out: dict[str, Path] = {}
    stems: dict[str, Path] = {}
    skipped: list[Path] = []

    def add(case_id: str, path: Path) -> None:
        if case_stem(case_id) in stems:  # a.nii.gz and a.nii, or a DICOM folder a: one case
            errors.add(f"a second image for case {case_stem(case_id)!r} (first: {stems[case_stem(case_id)]}); "
                       "it is skipped", file=path, case_id=case_id, stage="read")
        else:
            out[case_id] = stems[case_stem(case_id)] = path

    def named(case_id: str, path: Path) -> None:
        why = case_name_problem(case_id)
        if why is None:
            add(case_id, path)
        else:
            errors.add(f"{why}; the image is skipped — rename it", file=path, stage="read")

    for folder, dirs, files in os.walk(root):
        dirs.sort()
        here = Path(folder)
        files = sorted(files)
        niftis = [name for name in files if is_nifti(here / name)]
        for name in files:
            if name.lower().endswith(NIFTI_SUFFIXES) and (here / name).is_symlink() and not (here / name).exists():
                errors.add("a symbolic link to a file that does not exist; it is skipped", file=here / name,
                           stage="read")
        if is_mask_folder(here, niftis):
            skipped.append(here)
            dirs[:] = []
            continue
        if any(_is_dicom(here / f) for f in files[:5]):
            named(here.name, here)
        for name in niftis:
            named(name, here / name)
    if mask_folders is not None:
        mask_folders.extend(skipped)
    return out


def mask_folders_message(root: Path, skipped: list[Path]) -> str:
    """What was skipped under `root`, and the option that imports it as masks."""
    seg = [p.parent for p in skipped if p.name.startswith("seg_")]  # import:DIR reads these as they are
    example = seg[0] if seg else Path(os.path.commonpath([p.parent for p in skipped]))
    shown = ", ".join(str(p.relative_to(root) if p != root else p) for p in skipped[:3]) \
        + (", ..." if len(skipped) > 3 else "")
    return (f"skipped {len(skipped)} folder(s) of masks, not CT images ({shown}); to import masks, add "
            f"--segmenter import:DIR, DIR holding a <case>/ or seg_<case>/ folder per image (e.g. import:{example})")


def check_reports(path: Path | str, name: str = "reports") -> None:
    """Refuse, before a build, a reports CSV that cannot give any report: it needs CT-RATE's
    `VolumeName` and at least one other report column. Raises `BuildFailedError` (exit 1), its
    message naming the file as `name` (the CLI's ``--reports``), its columns and any near miss."""
    import csv

    path = Path(path)
    expected = CT_RATE_FILES["reports"].header
    try:
        with open(path, "rb") as f:
            problem = encoding_problem(f.read(4096))
    except OSError as e:
        raise BuildFailedError(f"{name} {path}: cannot read it: {e}") from None
    if problem:
        raise BuildFailedError(f"{name} {path}: {problem}", hint="nothing was imported")
    try:
        header = csv_header(path)
    except (OSError, csv.Error) as e:
        raise BuildFailedError(f"{name} {path}: cannot read its header: {e}") from None
    if expected[0] in header and set(expected[1:]) & set(header):
        return
    lower = {h.lower(): h for h in header}
    near = [f"{lower[c.lower()]} (should be {c}: names are case-sensitive)" for c in expected
            if c not in header and c.lower() in lower]
    lacking = "no VolumeName column" if expected[0] not in header else f"none of {', '.join(expected[1:])}"
    raise BuildFailedError(
        f"{name} {path}: {lacking}; its columns: {', '.join(header) or '(none)'}"
        + (f"; near misses: {', '.join(near)}" if near else ""),
        hint=f"give a CSV in CT-RATE's report columns: {', '.join(expected)} (nothing was imported)")


def read_reports(path: Path, errors: ErrorSink) -> dict[str, tuple[str, dict]]:
    """(VolumeName, `reports` columns) by VolumeName stem, read by `release_csv.report_rows` (only
    ``VolumeName`` required; a duplicate stem is an error row); empty and ``Not given.`` become null."""
    return {case_stem(name): (name, {col: v or None for col, v in fields.items()})
            for _, name, fields in report_rows(path, errors, required=["VolumeName"], same=case_stem,
                                               note_blank=False)}


@dataclass
class FolderCaseJob(CaseJob):
    """One CT of a folder: image, masks from each segmenter, report rows."""

    case_id: str
    image: str
    segmenters: tuple[str, ...] = ("builtin",)
    report: dict | None = None
    stage: str = "read"

    def run(self, ctx: JobContext) -> CaseOutput:
        from warehouse.store.arrays import ArrayStore

        out = CaseOutput()
        try:
            image = read_ct(self.image)
        except WarehouseError as e:  # fails the case: its row names the file, printably
            e.file = printable(e.file or self.image)
            raise
        store = ArrayStore(ctx.arrays_path, mode="a")
        store.write_image(self.case_id, image.hu, image.affine)
        row = case_row(self.case_id, image)
        if (why := age_problem(image.metadata.get("PatientAge"))) is not None:
            out.error(ctx.source, f"DICOM {why}", case_id=self.case_id, stage="read", file=self.image)
        for spec in self.segmenters:
            stats = self._segment(spec, image, store, out, ctx)
            out.add("region_stats", stats)
            row["has_masks"] = row["has_masks"] or bool(stats)
        out.add("cases", row)
        if self.report is not None:
            out.add("reports", {"case_id": self.case_id, "source": SOURCE, **self.report})
            self._structure(out, ctx)
        return out

    def _segment(self, spec: str, image: CTImage, store, out: CaseOutput, ctx: JobContext) -> list[dict]:
        from ingest.segment import make_segmenter
        from ingest.segment.base import region_for_name

        def resolve(name: str):
            from warehouse.core.anatomy import anatomy

            return anatomy().get(region_for_name(name))

        try:
            seg = make_segmenter(spec)
            if not seg.applies(self.case_id):
                return []
            result = seg.segment(self.case_id, image)
            for p in result.problems:
                out.error(ctx.source, printable(p["error"]), case_id=self.case_id, stage="masks",
                          file=printable(p["file"]))
            stats = []
            if result.masks:
                stats += store.write_masks(self.case_id, result.masks, image.affine,
                                           mask_source=result.mask_source, resolve=resolve)
            if result.label_map is not None and result.classes:
                stats += store.write_label_map(self.case_id, result.label_map, result.classes, image.affine,
                                               mask_source=result.mask_source, resolve=resolve)
            return stats
        except WarehouseError as e:
            out.error(ctx.source, printable(f"{spec}: {e.message}" + (f" — {e.hint}" if e.hint else "")),
                      case_id=self.case_id, stage="masks", file=printable(e.file))
        except Exception as e:  # a provider's bug or a model that does not fit: the case keeps the rest
            out.error(ctx.source, printable(f"{spec}: {type(e).__name__}: {e}"), case_id=self.case_id,
                      stage="masks")
        return []

    def _structure(self, out: CaseOutput, ctx: JobContext) -> None:
        """Sentences, findings, case labels and VQA by the shared text stages (`ingest.report_stage`)."""
        from ingest.report_stage import report_rows

        text = CaseOutput()  # all of the text rows or none of them
        try:
            report_rows(text, ctx.source, self.case_id, self.report.get("findings"), self.report.get("impressions"))
        except Exception as e:  # a backend bug: the case keeps its image, masks and report
            out.error(ctx.source, f"{type(e).__name__}: {e}", case_id=self.case_id, stage="structure")
            return
        for table, rows in text.rows.items():
            out.add(table, rows)
        out.errors.extend(text.errors)


def case_row(case_id: str, image: CTImage) -> dict:
    """The `cases` row of a CT read from a folder (volume-name parts where the name has them)."""
    vol = try_parse(case_id)
    meta = image.metadata
    spacing = image.spacing
    info = {"format": image.format, "file": image.path, "original_orientation": "".join(image.original_axcodes),
            "original_shape": [int(n) for n in image.original_shape], **meta}
    return {"case_id": case_id, "source": SOURCE, **(vol.as_row() if vol else {}),
            "age": parse_age(meta.get("PatientAge")), "sex": meta.get("PatientSex") or None,
            "manufacturer": meta.get("Manufacturer") or None,
            **{f"spacing_{a}": float(s) for a, s in zip("xyz", spacing, strict=True)},
            **{f"shape_{a}": int(n) for a, n in zip("xyz", image.hu.shape, strict=True)},
            "orientation": image.axcodes, "has_image": True, "has_masks": False,
            "metadata_json": json.dumps(info, sort_keys=True, default=_plain)}


def _plain(v: object) -> object:
    return v.tolist() if isinstance(v, np.ndarray) else str(v)


@dataclass(frozen=True)
class FolderScan:
    """What a folder source finds: images by case id, reports by VolumeName stem, the folders of
    masks skipped among the images and, unless an ``import:DIR`` segmenter reads them, what to do."""

    images: dict[str, Path]
    reports: dict[str, tuple[str, dict]]
    mask_folders: list[Path]
    mask_note: str | None


class FolderSource(Source):
    """A folder of CTs (NIfTI files, DICOM series folders) with an optional CT-RATE-style reports CSV.

    The folders are read once (`scan`), by whichever of `bulk` and `jobs` comes first: `bulk` gives
    the errors met reading them, `jobs` one job per image, and either works without the other.
    """

    name = SOURCE

    def __init__(self, images: Path | str, reports: Path | str | None = None,
                 segmenters: Iterable[str] = ("builtin",)) -> None:
        self.images = Path(images).expanduser().resolve()
        self.reports = Path(reports).expanduser().resolve() if reports else None
        self.segmenters = tuple(segmenters)
        self._errors = ErrorSink(self.name)

    def inputs(self) -> list[Path]:
        return [self.images] + ([self.reports] if self.reports else [])

    def build_key(self) -> str:
        """Inputs and segmenters: a re-run with other segmenters starts a new build."""
        return f"{self.name}-{content_id(super().build_key(), *self.segmenters, size=12)}"

    @cached_property
    def scan(self) -> FolderScan:
        """The images and reports found; the problems met go to the errors `bulk` gives out."""
        from ingest.segment import make_segmenter

        for spec in self.segmenters:  # a bad spec or a missing model stops the build before it starts
            make_segmenter(spec)
        mask_folders: list[Path] = []
        images = find_images(self.images, self._errors, mask_folders)
        imported = {Path(s[len("import:"):]).expanduser().resolve() for s in self.segmenters
                    if s.startswith("import:")}
        note = None
        if any(p.parent not in imported for p in mask_folders):
            note = mask_folders_message(self.images, mask_folders)
            self._errors.add(note, file=self.images, stage="read")
        reports = read_reports(self.reports, self._errors) if self.reports else {}
        stems = {case_stem(c) for c in images}
        for stem in sorted(set(reports) - stems):
            name = reports[stem][0]
            self._errors.add(f"report for {name!r} has no image in {self.images}; it is skipped",
                             file=self.reports, case_id=name, stage="report")
        return FolderScan(images, reports, mask_folders, note)

    @property
    def mask_note(self) -> str | None:
        """What to do about folders of masks met among the images (None: there were none, or an
        ``import:DIR`` segmenter reads them)."""
        return self.scan.mask_note

    def bulk(self) -> Iterable[tuple[str, Rows]]:
        self.scan  # noqa: B018 -- reading the folders is what finds the errors given here
        errors = self._errors.take()
        if errors:
            yield "folder-errors", {"ingest_errors": errors}

    def jobs(self) -> Iterator[CaseJob]:
        scan = self.scan
        for case_id, path in scan.images.items():
            report = scan.reports.get(case_stem(case_id))
            yield FolderCaseJob(case_id=case_id, image=str(path), segmenters=self.segmenters,
                                report=report[1] if report else None)
