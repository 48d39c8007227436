"""Read a CT volume (NIfTI file or DICOM series folder) as int16 HU on an LPS-ordered grid.

Every image the warehouse stores goes through `read_ct`, so all arrays share one
convention:

* **Orientation.** Array axes are permuted and flipped (never resampled) so that
  nibabel's axis codes are ``L, P, S``: the first index runs from the patient's right
  to left, the second from anterior to posterior, the third from feet to head. This is
  the order DICOM scanners write axial slices in, so most CTs are stored unchanged. The
  original codes are kept (`CTImage.original_axcodes`, recorded in the case's
  ``metadata_json``); masks read for the same case go through `to_lps` with the image's
  original grid, so they land on the same stored grid.
* **Affine.** A nibabel (RAS+ world, mm) 4x4 affine of the stored array. Spacing and
  any obliquity are kept.
* **Values.** Hounsfield units after the file's rescale (NIfTI ``scl_slope/scl_inter``,
  DICOM ``RescaleSlope/RescaleIntercept`` per slice), rounded to int16. Values below
  -1024 HU (padding outside the scanner's field of view, -2048 or -3024) are set to
  -1024, air.

What is refused (`IngestError`, naming the file) rather than stored changed: a volume
that is not 3-D, or has an axis of 0 or `SHAPE_MAX` voxels or more; an affine that is not
finite, is singular, or has a voxel spacing outside 0 < s < `SPACING_MAX_MM`; NaN or
infinite voxels; values outside `HU_RANGE` after the rescale (a wrong slope or intercept:
they would be clipped); a volume of one value, or with no air (raw stored values).
Masks are binarised one way for every source (`binary_mask`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from warehouse.core.errors import IngestError
from warehouse.core.grid import AIR_HU, Grid
from warehouse.core.grid import STORED_AXCODES as STORED_AXCODES  # re-exported: its home is warehouse.core.grid
from warehouse.core.grid import to_lps as _to_lps

# Possible values after the rescale: padding reaches int16's -32,768 stored plus a -1,024 intercept;
# int16 (the store) tops out at 32,767, above dense metal on extended-scale scanners. Outside: a wrong rescale.
HU_RANGE = (-33_792.0, 32_767.0)
SHAPE_MAX = 10_000  # voxels along an axis: a CT has fewer than this
SPACING_MAX_MM = 50.0  # a voxel of a CT is above 0 and below this along each axis
MASK_TOLERANCE = 1e-3  # float mask values this close to 0 or 1 count as 0 or 1
NIFTI_SUFFIXES = (".nii.gz", ".nii")


@dataclass
class CTImage:
    """One CT volume as the warehouse stores it."""

    hu: np.ndarray  # int16, x y z, axis codes STORED_AXCODES
    affine: np.ndarray  # 4x4 float64, nibabel RAS+ world
    original_axcodes: tuple[str, ...]
    original_shape: tuple[int, ...]
    original_affine: np.ndarray
    path: str
    format: str  # nifti or dicom
    metadata: dict = field(default_factory=dict)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along each stored array axis, mm."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def axcodes(self) -> str:
        return "".join(nib.aff2axcodes(self.affine))


def is_nifti(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(NIFTI_SUFFIXES)


def case_stem(name: str) -> str:
    """A volume name without its NIfTI suffix: train_1_a_1.nii.gz -> train_1_a_1."""
    low = name.lower()
    for suf in NIFTI_SUFFIXES:
        if low.endswith(suf):
            return name[: -len(suf)]
    return name


def to_lps(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`array` flipped and permuted so that its axis codes are L, P, S (a C-ordered copy unless it
    already is), and the matching affine: `warehouse.core.grid.to_lps`."""
    return _to_lps(array, affine, contiguous=True)


def to_hu_int16(values: np.ndarray) -> np.ndarray:
    """Rounded, floored at -1024 and clipped into int16."""
    if values.dtype == np.int16:
        return np.maximum(values, np.int16(AIR_HU))
    v = np.rint(values) if np.issubdtype(values.dtype, np.floating) else values
    return np.clip(v, AIR_HU, np.iinfo(np.int16).max).astype(np.int16)


def check_hu(hu: np.ndarray, path: str) -> None:
    """Refuse volumes whose values are clearly not HU (raw stored values without their rescale)."""
    check_shape(hu.shape, path)
    if int(hu.min()) >= 0:
        raise IngestError(
            f"values range {int(hu.min())}..{int(hu.max())} contain no air: they look like raw stored values, "
            "not Hounsfield units", file=path, stage="read",
            hint="set the NIfTI scl_slope/scl_inter (e.g. 1 and -1024) or convert the file to HU first")
    if int(hu.max()) <= AIR_HU:
        raise IngestError(f"every voxel is {AIR_HU} HU or below (padding or air only): not a CT",
                          file=path, stage="read", hint="check the file and its rescale (slope, intercept)")


def check_shape(shape: tuple[int, ...], path: str, what: str = "volume") -> None:
    """Refuse a grid that is not 3-D or has an axis of 0 or `SHAPE_MAX` voxels or more."""
    if len(shape) != 3:
        raise IngestError(f"expected a 3-D {what}, got {len(shape)}-D shape {tuple(shape)}", file=path,
                          stage="read", hint="give one 3-D volume per file (a 2-D slice or a 4-D series is not a CT)")
    if not all(0 < n < SHAPE_MAX for n in shape):
        raise IngestError(f"{what} shape {tuple(shape)} has an axis of 0 or {SHAPE_MAX:,}+ voxels",
                          file=path, stage="read", hint="check the file's header (dim)")


def check_affine(affine: np.ndarray, path: str, what: str = "image") -> None:
    """Refuse an affine that places no grid: not finite, singular, or a spacing outside 0..`SPACING_MAX_MM`."""
    a = np.asarray(affine, dtype=np.float64)
    hint = "fix the file's geometry (NIfTI sform/qform, DICOM PixelSpacing and positions)"
    if a.shape != (4, 4) or not np.isfinite(a).all():
        raise IngestError(f"the {what}'s affine holds NaN or infinite values", file=path, stage="read", hint=hint)
    spacing = np.linalg.norm(a[:3, :3], axis=0)
    if not spacing.all() or abs(np.linalg.det(a[:3, :3])) < 1e-6 * float(np.prod(spacing)):
        raise IngestError(f"the {what}'s affine is singular (voxel axes {np.round(a[:3, :3], 4).tolist()} "
                          "span no volume)", file=path, stage="read", hint=hint)
    if not all(0 < s < SPACING_MAX_MM for s in spacing):
        raise IngestError(f"the {what}'s voxel spacing {np.round(spacing, 4).tolist()} mm is outside "
                          f"0..{SPACING_MAX_MM:g} mm", file=path, stage="read", hint=hint)


def hu_int16(values: np.ndarray, path: str) -> np.ndarray:
    """Values already rescaled to HU, checked (`check_shape`, finite, within `HU_RANGE`, not one value,
    some air) and stored as int16 (`to_hu_int16`)."""
    check_shape(values.shape, path)
    lo, hi = values.min(), values.max()
    if not (np.isfinite(lo) and np.isfinite(hi)):
        bad = int(np.count_nonzero(~np.isfinite(values)))
        raise IngestError(f"{bad:,} voxels are NaN or infinite (of {values.size:,})", file=path, stage="read",
                          hint="write padding as a number (e.g. -1024): NaN and infinity are not Hounsfield units")
    if lo < HU_RANGE[0] or hi > HU_RANGE[1]:
        raise IngestError(f"values {float(lo):g}..{float(hi):g} HU lie outside the possible "
                          f"{HU_RANGE[0]:g}..{HU_RANGE[1]:g} HU", file=path, stage="read",
                          hint="check the rescale (NIfTI scl_slope/scl_inter, DICOM or metadata RescaleSlope/"
                               "RescaleIntercept); they would be clipped")
    if lo == hi:
        raise IngestError(f"every voxel holds the same value ({float(lo):g} HU): not a CT", file=path,
                          stage="read", hint="check the file and its rescale (a RescaleSlope of 0 gives this)")
    hu = to_hu_int16(values)
    check_hu(hu, path)
    return hu


def binary_mask(data: np.ndarray, path: str) -> np.ndarray:
    """A mask's voxels as 0/1, the one rule for every source: booleans and 0/1 integers as they are,
    floats within `MASK_TOLERANCE` of 0 or 1 as booleans. Any other value (2, -1, NaN, 0.5) is an
    `IngestError` naming the file: a label map or a probability map is not a binary mask."""
    kind = data.dtype.kind
    if kind == "b" or data.size == 0:
        return data
    if kind in "ui":
        if data.max() <= 1 and (kind == "u" or data.min() >= 0):  # one pass for the usual uint8
            return data
        bad = np.unique(data[(data < 0) | (data > 1)])
    elif kind == "f":
        one = np.abs(data - 1) <= MASK_TOLERANCE
        ok = one | (np.abs(data) <= MASK_TOLERANCE)
        if ok.all():
            return one
        bad = np.unique(data[~ok])
    else:
        raise IngestError(f"mask voxels are {data.dtype}, not numbers 0/1", file=path, stage="masks")
    shown = ", ".join(f"{v:g}" for v in bad[:5].tolist()) + (", ..." if len(bad) > 5 else "")
    raise IngestError(f"mask values must be 0 or 1; it holds {shown} ({data.dtype}); the mask is skipped",
                      file=path, stage="masks",
                      hint="a label map goes in as import:DIR/<case>.nii.gz with a class map; threshold a "
                           "probability map first")


def read_nifti(path: Path) -> CTImage:
    """A NIfTI CT in HU on the stored LPS grid."""
    try:
        img = nib.load(str(path))
        shape = img.shape[:3] if len(img.shape) == 4 and img.shape[3] == 1 else img.shape
        check_shape(shape, str(path))
        check_affine(img.affine, str(path))
        data = np.asanyarray(img.dataobj)
    except IngestError:
        raise
    except Exception as e:  # nibabel raises many types for truncated or foreign files
        raise IngestError(f"cannot read NIfTI: {type(e).__name__}: {e}", file=str(path), stage="read",
                          hint="check that the file is a complete .nii/.nii.gz") from None
    hu = hu_int16(data.reshape(shape), str(path))
    affine = np.asarray(img.affine, dtype=np.float64)
    stored, stored_affine = to_lps(hu, affine)
    return CTImage(hu=stored, affine=stored_affine, original_axcodes=tuple(nib.aff2axcodes(affine)),
                   original_shape=tuple(hu.shape), original_affine=affine, path=str(path), format="nifti")


def read_ct(path: Path | str) -> CTImage:
    """A CT from a NIfTI file or a folder holding one DICOM series."""
    path = Path(path)
    if is_nifti(path):
        return read_nifti(path)
    if path.is_dir():
        return read_dicom_series(path)
    raise IngestError(f"not a NIfTI file or a DICOM folder: {path.name}", file=str(path), stage="read",
                      hint="images must be .nii, .nii.gz or a folder of one DICOM series")


# -- DICOM ---------------------------------------------------------------------------------------
# Assembled here with pydicom, not with MONAI's `monai.data.PydicomReader` (MONAI 1.6.1, evaluated for
# issue #15 on series written by tests/_folder_data.write_dicom_series). On a complete, well-ordered
# series it agrees exactly: same HU (per-slice RescaleSlope/Intercept applied, also when slices differ),
# the same RAS affine (|diff| 0 after to_lps), and non-DICOM files skipped (with a warning). But:
# * it sorts slices by InstanceNumber, not by position: with InstanceNumbers rotated by n/2 (positions
#   right) it silently returned a mis-stacked volume whose affine was off by 82.5 mm;
# * it checks neither gaps nor repeats: a missing slice gave 11 slices on a 2.2 mm step (truly 2 mm
#   with a 4 mm gap), a duplicated file 13 slices on 1.83 mm, no error or warning; a 0.8 mm/slice
#   gantry tilt came back as a sheared affine, silently;
# * it stacks every DICOM file of the folder: a 3-slice and a 12-slice series became one 15-slice volume;
# * RescaleSlope 0 read as a constant volume; a folder with no DICOM raised IndexError; one slice gave 2-D;
# * `monai.data` imports torch, so a plain read would make the `dicom` extra pull in torch.
# Every one of these is an IngestError with a clear message here (tests/ingest/test_images.py).
def _dicom_files(folder: Path) -> list:
    import pydicom

    headers = []
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:  # not DICOM (a README, a DICOMDIR's neighbours): skip it
            continue
        if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds and "PixelSpacing" in ds:
            headers.append((f, ds))
    return headers


def read_dicom_series(folder: Path) -> CTImage:
    """The largest series of image slices in `folder` as a CT volume (slices sorted by position)."""
    import pydicom

    headers = _dicom_files(folder)
    if not headers:
        raise IngestError("no DICOM image slices in the folder", file=str(folder), stage="read",
                          hint="a DICOM case is a folder of one series' slice files")
    by_series: dict[str, list] = {}
    for f, ds in headers:
        by_series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((f, ds))
    uid, series = max(by_series.items(), key=lambda kv: (len(kv[1]), kv[0]))
    if len(series) < 2:
        raise IngestError("the DICOM series has a single slice", file=str(folder), stage="read")
    iop = np.array(series[0][1].ImageOrientationPatient, dtype=np.float64)
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    series.sort(key=lambda x: float(np.dot(np.array(x[1].ImagePositionPatient, float), normal)))
    pos = np.array([np.array(ds.ImagePositionPatient, float) for _, ds in series])
    steps = np.diff(pos, axis=0)
    dz = steps @ normal
    if any(not np.allclose(np.array(ds.ImageOrientationPatient, float), iop, atol=1e-4) for _, ds in series):
        raise IngestError("slices of the series have different orientations", file=str(folder), stage="read")
    if np.any(dz <= 1e-6) or np.ptp(dz) > max(0.01, 0.01 * float(np.median(dz))):
        raise IngestError(f"slice spacing is not uniform ({dz.min():.3f}..{dz.max():.3f} mm) or slices repeat",
                          file=str(folder), stage="read",
                          hint="missing or duplicate slices; export the complete series, or resample it")
    if np.abs(steps - np.outer(dz, normal)).max() > 0.01 * float(np.median(dz)) + 1e-3:
        raise IngestError("the series has a gantry tilt (slices are sheared)", file=str(folder), stage="read",
                          hint="correct the tilt (e.g. dcm2niix) and ingest the NIfTI")
    sy, sx = (float(v) for v in series[0][1].PixelSpacing)  # between rows, between columns
    slices = []
    for f, _ in series:
        ds = pydicom.dcmread(f)
        raw = ds.pixel_array.astype(np.float64)
        slope = 1.0 if ds.get("RescaleSlope") in (None, "") else float(ds.RescaleSlope)  # 0 is refused
        if not slope > 0:
            raise IngestError(f"RescaleSlope {ds.get('RescaleSlope')!r} of {f.name} is not a positive number",
                              file=str(folder), stage="read", hint="fix the series' RescaleSlope (HU = slope x "
                                                                   "stored value + intercept)")
        slices.append(raw * slope + float(ds.get("RescaleIntercept", 0) or 0))
    vol = np.stack(slices, axis=-1).transpose(1, 0, 2)  # (rows, cols, k) -> (i = column, j = row, k)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = row_dir * sx, col_dir * sy, normal * float(np.median(dz)), pos[0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # DICOM LPS world -> nibabel RAS world
    check_affine(affine, str(folder))
    hu = hu_int16(vol, str(folder))
    stored, stored_affine = to_lps(hu, affine)
    ds0 = series[0][1]
    meta = {k: str(ds0.get(k)) for k in DICOM_KEYS if ds0.get(k) not in (None, "")}
    meta.update({"SeriesInstanceUID": uid, "slices": len(series), "series_in_folder": len(by_series)})
    return CTImage(hu=stored, affine=stored_affine, original_axcodes=tuple(nib.aff2axcodes(affine)),
                   original_shape=tuple(hu.shape), original_affine=affine, path=str(folder), format="dicom",
                   metadata=meta)


DICOM_KEYS = ("PatientID", "PatientAge", "PatientSex", "Manufacturer", "ManufacturerModelName", "StudyDate",
              "Modality", "SeriesDescription", "ConvolutionKernel", "SliceThickness", "KVP")



def mask_to_image_grid(mask: np.ndarray, mask_affine: np.ndarray, image: CTImage, *, file: str) -> np.ndarray:
    """A mask read from a file, checked against the image's original grid and put on the stored grid."""
    if mask.ndim == 4 and mask.shape[3] == 1:
        mask = mask[..., 0]
    Grid(mask.shape, mask_affine).check(Grid(image.original_shape, image.original_affine), file=file)
    return to_lps(mask, mask_affine)[0]
