"""The `import:DIR` provider: masks made elsewhere (RadGenome, TotalSegmentator, any tool).

For a case whose volume name is ``<stem>.nii.gz`` (or a DICOM folder ``<stem>``), DIR holds
one of:

* ``DIR/<stem>/`` or ``DIR/seg_<stem>/`` — one binary NIfTI per structure, named as
  RadGenome names them (``left lung upper lobe.nii.gz``) or as TotalSegmentator does
  (``lung_upper_lobe_left.nii.gz``); any name the anatomy DAG knows works. Empty masks
  are kept (their region gets ``voxels = 0``). Values must be 0 or 1 (floats within
  1e-3), the rule of every mask source (`ingest.images.binary_mask`): a file holding
  other values, or one that cannot be read, is skipped and reported.
* ``DIR/<stem>.nii.gz`` — one integer label map. Its class map (value -> name) is
  ``DIR/<stem>.json``, else ``DIR/classes.json``, else TotalSegmentator v2's ``total``
  classes (shipped with this package as ``totalsegmentator_v2_total_classes.json``).

Masks must lie on the CT's own grid (shape and affine); they are reoriented with the
image onto the stored LPS grid. A mask with an unknown name, or label values missing from
the class map, is skipped and reported as an `ingest_errors` row; the case keeps the rest.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import nibabel as nib
import numpy as np

from ingest.images import NIFTI_SUFFIXES, CTImage, binary_mask, case_stem, mask_to_image_grid
from ingest.segment.base import Segmentation, Segmenter, region_for_name
from warehouse.core.errors import IngestError, UnknownRegionError

TS_CLASSES_FILE = Path(__file__).with_name("totalsegmentator_v2_total_classes.json")


@cache
def totalsegmentator_classes() -> dict[int, str]:
    """TotalSegmentator v2 `total` task: label value -> class name (117 classes)."""
    return read_class_map(TS_CLASSES_FILE)


def read_class_map(path: Path) -> dict[int, str]:
    """A value -> name JSON: ``{"1": "spleen", ...}``, optionally under a ``"labels"`` key."""
    data = json.loads(Path(path).read_text())
    data = data.get("labels", data) if isinstance(data, dict) else data
    try:
        return {int(k): str(v) for k, v in data.items() if int(k) != 0}
    except (AttributeError, ValueError) as e:
        raise IngestError(f"class map is not a {{value: name}} object: {e}", file=str(path), stage="masks") from None


def _load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        img = nib.load(str(path))
        return np.asanyarray(img.dataobj), np.asarray(img.affine, dtype=np.float64)
    except Exception as e:
        raise IngestError(f"cannot read mask: {type(e).__name__}: {e}", file=str(path), stage="masks") from None


class ImportedMasks(Segmenter):
    """Per-structure mask folders or integer label maps from DIR."""

    mask_source = "imported"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()
        if not self.directory.is_dir():
            raise IngestError(f"mask folder {self.directory} does not exist", stage="masks",
                              hint="import:DIR needs a folder of per-case mask folders or label maps")

    @property
    def spec(self) -> str:
        return f"import:{self.directory}"

    def find(self, case_id: str) -> Path | None:
        """The case's mask folder or label-map file, if DIR has one."""
        for stem in dict.fromkeys((case_stem(case_id), case_id)):
            for cand in (self.directory / stem, self.directory / f"seg_{stem}"):
                if cand.is_dir():
                    return cand
            for suf in NIFTI_SUFFIXES:
                if (self.directory / f"{stem}{suf}").is_file():
                    return self.directory / f"{stem}{suf}"
        return None

    def applies(self, case_id: str) -> bool:
        return self.find(case_id) is not None

    def segment(self, case_id: str, image: CTImage) -> Segmentation:
        found = self.find(case_id)
        if found is None:
            raise IngestError(f"no masks for the case in {self.directory}", case_id=case_id, stage="masks",
                              hint="expected DIR/<stem>/, DIR/seg_<stem>/ or DIR/<stem>.nii.gz")
        source = "radgenome" if found.name.startswith("seg_") else "imported"
        seg = Segmentation(source)
        if found.is_dir():
            self._read_folder(found, image, seg)
        else:
            self._read_label_map(found, image, seg)
        return seg

    def _read_folder(self, folder: Path, image: CTImage, seg: Segmentation) -> None:
        files = sorted(p for p in folder.iterdir() if p.name.lower().endswith(NIFTI_SUFFIXES))
        if not files:
            raise IngestError("mask folder holds no NIfTI files", file=str(folder), stage="masks")
        ts_names = 0
        for f in files:
            name = case_stem(f.name)
            try:
                region = region_for_name(name)
            except UnknownRegionError as e:  # skipped, reported; the case keeps its other masks
                seg.problem(str(f), f"mask name {name!r} is not a region of the anatomy DAG ({e.hint or ''})")
                continue
            ts_names += "_" in name and name != region
            try:
                data, affine = _load(f)
                mask = np.asarray(binary_mask(np.asarray(data), str(f)), dtype=bool)
            except IngestError as e:  # skipped, reported; the case keeps its other masks
                seg.problem(str(f), e.message + (f" — {e.hint}" if e.hint else ""))
                continue
            seg.masks[name] = mask_to_image_grid(mask, affine, image, file=str(f))
        if seg.mask_source == "imported" and ts_names > len(files) // 2:
            seg.mask_source = "totalsegmentator"

    def _read_label_map(self, path: Path, image: CTImage, seg: Segmentation) -> None:
        stem = case_stem(path.name)
        for cand in (path.with_name(f"{stem}.json"), self.directory / "classes.json"):
            if cand.is_file():
                classes = read_class_map(cand)
                break
        else:
            classes = totalsegmentator_classes()
            seg.mask_source = "totalsegmentator"
        data, affine = _load(path)
        if not np.issubdtype(data.dtype, np.integer):
            if not np.array_equal(data, np.rint(data)):
                raise IngestError("label map holds non-integer values", file=str(path), stage="masks")
        labels = mask_to_image_grid(np.asarray(data).astype(np.int32), affine, image, file=str(path))
        present = {int(v) for v in np.unique(labels)} - {0}
        unknown = sorted(present - set(classes))
        if unknown:
            seg.problem(str(path), f"label values {unknown[:10]} are not in the class map; their voxels are dropped")
            labels = np.where(np.isin(labels, unknown), 0, labels)
        mapped: dict[int, str] = {}
        for value, name in sorted(classes.items()):
            try:
                region_for_name(name)
                mapped[value] = name
            except UnknownRegionError:
                seg.problem(str(path), f"class {value} {name!r} is not a region of the anatomy DAG; dropped")
                labels = np.where(labels == value, 0, labels)
        seg.label_map, seg.classes = labels, mapped
