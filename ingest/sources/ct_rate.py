"""CT-RATE's released files: reports, the 44-column metadata, the 18 predicted labels, volumes.

Layout (``--ct-rate DIR``; any part may be missing)::

    dataset/radiology_text_reports/{train,validation}_reports.csv
    dataset/metadata/{train,validation}_metadata.csv
    dataset/multi_abnormality_labels/{train,valid}_predicted_labels.csv
    dataset/{train,valid}/train_1/train_1_a/train_1_a_1.nii.gz

The first release's NIfTI headers carry neither spacing nor rescale: HU is
``RescaleSlope * raw + RescaleIntercept`` from the metadata (the intercept is -8192 on
some scanners) wherever the header has no ``scl_slope`` and the stored values have no
air below 0, and the spacing comes from ``XYSpacing`` / ``ZSpacing`` wherever the header
has no qform/sform. Such an array is
taken to be in DICOM's L, P, S voxel order (affine ``diag(-sx, -sy, sz)``), so it is
stored as it is.

Metadata values outside what a CT can have are error rows (`metadata_problems`) and their
columns are left empty, never wrapped or clipped: an age outside 0..`AGE_MAX` years, a
``Rows``/``Columns``/``NumberofSlices`` outside 1..`SHAPE_MAX`, a spacing outside
0..`SPACING_MAX_MM` mm, a ``RescaleSlope`` that is not a positive number or a
``RescaleIntercept`` outside `INTERCEPT_RANGE`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ingest.images import SHAPE_MAX, SPACING_MAX_MM, CTImage, check_affine, check_shape, hu_int16, to_lps
from ingest.sources.release_csv import ErrorSink, printable, read_csv, report_rows
from ingest.sources.volume_names import case_name_problem, try_parse
from warehouse.core.errors import IngestError
from warehouse.core.release_format import CT_RATE_FILES, CT_RATE_LABEL_SOURCE
from warehouse.core.schema import CT_RATE_LABELS

LABEL_SOURCE = CT_RATE_LABEL_SOURCE
FILE_PATTERNS = {"reports": "*_reports.csv", "metadata": "*_metadata.csv", "labels": "*_predicted_labels.csv"}
AGE_MAX = 130  # years
INTERCEPT_RANGE = (-32_768.0, 32_767.0)  # DICOM's is a 16-bit value's offset; CT-RATE has -1024 and -8192
_DIMS = {"Columns": "shape_x", "Rows": "shape_y", "NumberofSlices": "shape_z"}


@dataclass(frozen=True)
class MetadataRow:
    """One released metadata row (every column as a string) and where it came from."""

    values: dict[str, str]
    file: str
    line: int


def _number(text: str | None) -> float | None:
    try:
        v = float(str(text).strip())
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def parse_spacing(meta: dict[str, str]) -> tuple[float, float, float] | None:
    """``XYSpacing`` ``"[0.34, 0.34]"`` and ``ZSpacing`` as (x, y, z) mm; None when missing, NaN, <= 0
    or `SPACING_MAX_MM` and over."""
    xy = [_number(v) for v in re.findall(r"[^\[\],\s]+", meta.get("XYSpacing") or "")]
    z = _number(meta.get("ZSpacing"))
    if len(xy) != 2 or z is None or any(v is None or not 0 < v < SPACING_MAX_MM for v in (*xy, z)):
        return None
    return xy[0], xy[1], z  # type: ignore[return-value]


def parse_age(text: str | None) -> int | None:
    """``036Y`` -> 36 (months/weeks/days as a fraction of a year, floored); None when empty, unreadable
    or over `AGE_MAX` years (`age_problem` says why)."""
    m = re.fullmatch(r"\s*(\d{1,7})\s*([YMWD]?)\s*", text or "")
    if not m:
        return None
    age = int(m[1]) // {"Y": 1, "": 1, "M": 12, "W": 52, "D": 365}[m[2]]
    return age if age <= AGE_MAX else None


def age_problem(text: str | None) -> str | None:
    """Why a ``PatientAge`` gives no age (None when it gives one or is empty)."""
    if not (text or "").strip() or parse_age(text) is not None:
        return None
    if re.fullmatch(r"\s*\d+\s*[YMWD]?\s*", text or ""):
        return f"PatientAge {printable(text)!r} is over {AGE_MAX} years; age left empty"
    return f"PatientAge {printable(text)!r} is not an age (like 036Y, 018M); age left empty"


def _count(text: str | None) -> int | None:
    v = _number(text)
    return int(v) if v is not None and v == int(v) and 0 < v < SHAPE_MAX else None


def metadata_problems(meta: dict[str, str]) -> list[str]:
    """What in a metadata row is outside what a CT can have (each column it names is left empty)."""
    out = []
    if parse_spacing(meta) is None:
        out.append(f"XYSpacing {meta.get('XYSpacing')!r} / ZSpacing {meta.get('ZSpacing')!r} is missing or "
                   f"not a positive number below {SPACING_MAX_MM:g} mm; spacing left empty")
    if (why := age_problem(meta.get("PatientAge"))) is not None:
        out.append(why)
    for name in _DIMS:
        if (meta.get(name) or "").strip() and _count(meta[name]) is None:
            out.append(f"{name} {meta[name]!r} is not a whole number from 1 to {SHAPE_MAX - 1:,}; "
                       f"{_DIMS[name]} left empty")
    slope, inter = (meta.get(k) for k in ("RescaleSlope", "RescaleIntercept"))
    if (slope or "").strip() and not _usable_slope(_number(slope)):
        out.append(f"RescaleSlope {slope!r} is not a positive number (HU = slope x stored value + intercept)")
    if (inter or "").strip() and not _usable_intercept(_number(inter)):
        out.append(f"RescaleIntercept {inter!r} is not a number from {INTERCEPT_RANGE[0]:g} to "
                   f"{INTERCEPT_RANGE[1]:g}")
    return out


def _usable_slope(v: float | None) -> bool:
    return v is not None and v > 0


def _usable_intercept(v: float | None) -> bool:
    return v is not None and INTERCEPT_RANGE[0] <= v <= INTERCEPT_RANGE[1]


def case_columns(meta: dict[str, str]) -> dict:
    """The `cases` columns the metadata decides (spacing and shape of the released volume); values
    outside what a CT can have are left empty (`metadata_problems` names them)."""
    spacing = parse_spacing(meta) or (None, None, None)
    return {"age": parse_age(meta.get("PatientAge")), "sex": (meta.get("PatientSex") or None),
            "manufacturer": meta.get("Manufacturer") or None,
            **{f"spacing_{a}": s for a, s in zip("xyz", spacing, strict=True)},
            **{col: _count(meta.get(name)) for name, col in _DIMS.items()},
            "metadata_json": json.dumps(meta, ensure_ascii=False)}


def read_metadata(path: Path, errors: ErrorSink, into: dict[str, MetadataRow]) -> None:
    """Metadata rows by case id; a duplicate VolumeName is an error row (the first one is kept)."""
    for line, row in read_csv(path, ["VolumeName"], errors, stage="metadata", key="VolumeName",
                              check_key=case_name_problem):
        case_id = row["VolumeName"].strip()
        if case_id in into:
            first = into[case_id]
            errors.add(f"duplicate VolumeName (first at {Path(first.file).name}:{first.line}); later row skipped",
                       file=path, location=f"line {line}", case_id=case_id, stage="metadata")
            continue
        into[case_id] = MetadataRow(values=row, file=str(path), line=line)


def read_reports(path: Path, errors: ErrorSink, seen: set[str]) -> Iterator[dict[str, list[dict]]]:
    """`reports` rows (`report_rows`); ``Not given.`` is stored as null, an empty field as ""."""
    yield {"reports": [{"case_id": case_id, "source": "ct_rate", **fields}
                       for _, case_id, fields in report_rows(path, errors, seen=seen)]}


def read_labels(path: Path, errors: ErrorSink, seen: set[str]) -> Iterator[dict[str, list[dict]]]:
    """`case_labels` rows (kind ct_rate, ordinal = the class's position in CT-RATE's order)."""
    rows: list[dict] = []
    for line, row in read_csv(path, CT_RATE_FILES["predicted_labels"].header, errors, stage="labels",
                              key="VolumeName", check_key=case_name_problem):
        case_id, where = row["VolumeName"].strip(), f"line {line}"
        if case_id in seen:
            errors.add("duplicate VolumeName; the later row is skipped", file=path, location=where,
                       case_id=case_id, stage="labels")
            continue
        values = [_number(row[name]) for name in CT_RATE_LABELS]
        bad = [n for n, v in zip(CT_RATE_LABELS, values, strict=True) if v not in (0.0, 1.0)]
        if bad:
            errors.add(f"labels must be 0 or 1; {bad[0]!r} is {row[bad[0]]!r}; the row is skipped",
                       file=path, location=where, case_id=case_id, stage="labels")
            continue
        seen.add(case_id)
        rows.extend({"case_id": case_id, "kind": "ct_rate", "label": name, "value": int(v), "ordinal": i,
                     "source": LABEL_SOURCE} for i, (name, v) in enumerate(zip(CT_RATE_LABELS, values, strict=True)))
    yield {"case_labels": rows}


def find_files(root: Path) -> dict[str, list[Path]]:
    """The release's CSVs by kind (reports, metadata, labels), sorted."""
    return {kind: sorted(p for p in root.rglob(pattern) if p.is_file()) for kind, pattern in FILE_PATTERNS.items()}


def find_volumes(root: Path, errors: ErrorSink) -> dict[str, Path]:
    """Volume files by case id: every ``*.nii.gz`` named like a volume (one per case). A NIfTI file
    whose name starts like a volume (``train_``, ``valid_``) but is not one is an error row."""
    out: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            vol = try_parse(name) if name.endswith((".nii.gz", ".nii")) else None
            if vol is None:
                if name.endswith((".nii.gz", ".nii")) and name.startswith(("train_", "valid_")):
                    errors.add("not a CT-RATE volume name (expected <train|valid>_<patient>_<scan letter>_"
                               "<reconstruction>.nii.gz); the file is skipped", file=Path(folder, name),
                               stage="image")
                continue
            path = Path(folder, name)
            if vol.case_id in out:
                errors.add(f"a second file for the volume (first: {out[vol.case_id]}); it is skipped",
                           file=path, case_id=vol.case_id, stage="image")
                continue
            out[vol.case_id] = path
    return out


def _rescale(raw: np.ndarray, meta: dict[str, str] | None, path: Path) -> np.ndarray:
    """Stored values -> HU with the metadata's RescaleSlope / RescaleIntercept."""
    if meta is None:
        raise IngestError("the NIfTI header has no rescale, its values are not HU (no air below 0), and the "
                          "volume has no metadata row", file=str(path), stage="image",
                          hint="pass --ct-rate with the release's metadata CSV, holding the volume's row")
    slope, inter = _number(meta.get("RescaleSlope")), _number(meta.get("RescaleIntercept"))
    if not (_usable_slope(slope) and _usable_intercept(inter)):
        raise IngestError(f"the NIfTI header has no rescale and the metadata's RescaleSlope "
                          f"{meta.get('RescaleSlope')!r} / RescaleIntercept {meta.get('RescaleIntercept')!r} "
                          "is missing or not a usable number (slope > 0)", file=str(path), stage="image",
                          hint="fix the volume's row in the metadata CSV")
    if slope == 1 and inter == int(inter):
        return raw.astype(np.int32) + int(inter)
    return raw.astype(np.float64) * slope + inter


def read_volume(path: Path, meta: dict[str, str] | None) -> CTImage:
    """A CT-RATE volume in HU: the header's rescale and geometry where present, else the metadata's.

    A header without a rescale (none, or 1 and 0) holding non-negative values holds the
    scanner's stored values: the metadata's rescale makes them HU. Values below 0 are HU
    already (air), as in volumes re-exported in HU.
    """
    try:
        img = nib.load(str(path))
        check_shape(img.shape[:3] if len(img.shape) == 4 and img.shape[3] == 1 else img.shape, str(path))
        slope, inter = float(img.dataobj.slope), float(img.dataobj.inter)  # the file's scl_slope / scl_inter
        raw = np.asarray(img.dataobj.get_unscaled())
    except IngestError:
        raise
    except Exception as e:  # nibabel raises many types for truncated or foreign files
        raise IngestError(f"cannot read NIfTI: {type(e).__name__}: {e}", file=str(path), stage="image",
                          hint="re-download the file; a complete .nii.gz ends with a gzip trailer") from None
    if (slope, inter) != (1.0, 0.0):
        values = raw.astype(np.float64) * slope + inter
    else:
        values = _rescale(raw, meta, path) if raw.size and raw.min() >= 0 else raw
    affine = np.asarray(img.affine, dtype=np.float64)
    if int(img.header["sform_code"]) == 0 and int(img.header["qform_code"]) == 0:
        spacing = parse_spacing(meta or {})
        if spacing is None:
            raise IngestError("the NIfTI header has no geometry and the metadata's XYSpacing/ZSpacing is "
                              "missing or NaN", file=str(path), stage="image",
                              hint="fix the metadata row, or write the spacing into the NIfTI header")
        affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    check_affine(affine, str(path))
    hu = hu_int16(values[..., 0] if values.ndim == 4 and values.shape[3] == 1 else values, str(path))
    stored, stored_affine = to_lps(hu, affine)
    return CTImage(hu=stored, affine=stored_affine, original_axcodes=tuple(nib.aff2axcodes(affine)),
                   original_shape=tuple(hu.shape), original_affine=affine, path=str(path), format="nifti")
