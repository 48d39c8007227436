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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.orientations import apply_orientation, axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

from warehouse.errors import IngestError

STORED_AXCODES: tuple[str, str, str] = ("L", "P", "S")
HU_FLOOR = -1024
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
    """`array` flipped and permuted so that its axis codes are L, P, S; the matching affine."""
    current = io_orientation(affine)
    xform = ornt_transform(current, axcodes2ornt(STORED_AXCODES))
    if np.array_equal(xform, [[0, 1], [1, 1], [2, 1]]):
        return array, np.asarray(affine, dtype=np.float64)
    out = apply_orientation(array, xform)
    new_affine = np.asarray(affine, dtype=np.float64) @ inv_ornt_aff(xform, array.shape)
    return np.ascontiguousarray(out), new_affine


def to_hu_int16(values: np.ndarray) -> np.ndarray:
    """Rounded, floored at -1024 and clipped into int16."""
    if values.dtype == np.int16:
        return np.maximum(values, np.int16(HU_FLOOR))
    v = np.rint(values) if np.issubdtype(values.dtype, np.floating) else values
    return np.clip(v, HU_FLOOR, np.iinfo(np.int16).max).astype(np.int16)


def check_hu(hu: np.ndarray, path: str) -> None:
    """Refuse volumes whose values are clearly not HU (raw stored values without their rescale)."""
    if hu.size == 0 or hu.ndim != 3:
        raise IngestError(f"expected a 3-D volume, got shape {hu.shape}", file=path, stage="read")
    if int(hu.min()) >= 0:
        raise IngestError(
            f"values range {int(hu.min())}..{int(hu.max())} contain no air: they look like raw stored values, "
            "not Hounsfield units", file=path, stage="read",
            hint="set the NIfTI scl_slope/scl_inter (e.g. 1 and -1024) or convert the file to HU first")


def read_nifti(path: Path) -> CTImage:
    """A NIfTI CT in HU on the stored LPS grid."""
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as e:  # nibabel raises many types for truncated or foreign files
        raise IngestError(f"cannot read NIfTI: {type(e).__name__}: {e}", file=str(path), stage="read",
                          hint="check that the file is a complete .nii/.nii.gz") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise IngestError(f"expected a 3-D volume, got shape {data.shape}", file=str(path), stage="read")
    hu = to_hu_int16(data)
    check_hu(hu, str(path))
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
        slices.append(raw * float(ds.get("RescaleSlope", 1) or 1) + float(ds.get("RescaleIntercept", 0) or 0))
    vol = np.stack(slices, axis=-1).transpose(1, 0, 2)  # (rows, cols, k) -> (i = column, j = row, k)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = row_dir * sx, col_dir * sy, normal * float(np.median(dz)), pos[0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # DICOM LPS world -> nibabel RAS world
    hu = to_hu_int16(vol)
    check_hu(hu, str(folder))
    stored, stored_affine = to_lps(hu, affine)
    ds0 = series[0][1]
    meta = {k: str(ds0.get(k)) for k in DICOM_KEYS if ds0.get(k) not in (None, "")}
    meta.update({"SeriesInstanceUID": uid, "slices": len(series), "series_in_folder": len(by_series)})
    return CTImage(hu=stored, affine=stored_affine, original_axcodes=tuple(nib.aff2axcodes(affine)),
                   original_shape=tuple(hu.shape), original_affine=affine, path=str(folder), format="dicom",
                   metadata=meta)


DICOM_KEYS = ("PatientID", "PatientAge", "PatientSex", "Manufacturer", "ManufacturerModelName", "StudyDate",
              "Modality", "SeriesDescription", "ConvolutionKernel", "SliceThickness", "KVP")


def same_grid(a: np.ndarray, b: np.ndarray, shape_a: tuple, shape_b: tuple) -> bool:
    """Same shape, axes within 1e-4 mm per voxel step and origins within 0.01 mm."""
    return (tuple(shape_a) == tuple(shape_b) and np.allclose(a[:3, :3], b[:3, :3], atol=1e-4)
            and np.allclose(a[:3, 3], b[:3, 3], atol=1e-2))


def mask_to_image_grid(mask: np.ndarray, mask_affine: np.ndarray, image: CTImage, *, file: str) -> np.ndarray:
    """A mask read from a file, checked against the image's original grid and put on the stored grid."""
    from warehouse.errors import GridMismatchError

    if mask.ndim == 4 and mask.shape[3] == 1:
        mask = mask[..., 0]
    if not same_grid(mask_affine, image.original_affine, mask.shape, image.original_shape):
        raise GridMismatchError(
            f"mask grid {tuple(mask.shape)} does not match the image grid {tuple(image.original_shape)}"
            + ("" if tuple(mask.shape) != tuple(image.original_shape) else " (same shape, different affine)"),
            case_id=None, file=file, stage="masks",
            hint="masks must be written on the CT's own grid; resample them onto it first")
    return to_lps(mask, mask_affine)[0]
