"""Inputs for the folder-source, segmentation and viewer tests, built in tmp folders from ../shared/data.

Shared files are linked, never copied into the repository; DICOM series and small models
are written by the helpers here.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np

CT_CASES = ("abdomen_small", "chest_cta", "chest_crop", "lung1")
REPORT_FIELDS = ["VolumeName", "ClinicalInformation_EN", "Technique_EN", "Findings_EN", "Impressions_EN"]


def write_dicom_series(hu: np.ndarray, affine: np.ndarray, folder: Path, *, series_uid: str | None = None,
                       order: list[int] | None = None, skip: tuple[int, ...] = (), tilt_mm: float = 0.0,
                       prefix: str = "IM", **tags: str) -> Path:
    """One CT slice file per z index of `hu` (x, y, z; nibabel affine), raw = HU + 1024, LPS positions."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, float)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    row_dir, col_dir = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    series_uid = series_uid or generate_uid(entropy_srcs=[str(folder)])
    for k in order if order is not None else range(hu.shape[2]):
        if k in skip:
            continue
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[series_uid, str(k)])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.InstanceNumber = "CT", series_uid, k + 1
        pos = lps[:3, :3] @ [0, 0, k] + lps[:3, 3] + [0.0, tilt_mm * k, 0.0]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]
        ds.SliceThickness = f"{spacing[2]:.6f}"
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
        for key, value in tags.items():
            setattr(ds, key, value)
        raw = np.clip(hu[:, :, k].T.astype(np.int32) + 1024, 0, 65535)  # below -1024 HU: padding, floored
        ds.PixelData = np.ascontiguousarray(raw.astype("<u2")).tobytes()
        ds.save_as(folder / f"{prefix}{k:04d}.dcm", enforce_file_format=True)
    return folder


def ct_path(shared: Path, name: str) -> Path:
    return shared / "ct" / name / "ct.nii.gz"


def image_folder(shared: Path, tmp: Path, names=CT_CASES, dicom: tuple[str, ...] = ()) -> Path:
    """tmp/images with a link per NIfTI case (<name>.nii.gz) and a DICOM series folder per name in `dicom`."""
    out = tmp / "images"
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name in dicom:
            img = nib.load(ct_path(shared, name))
            write_dicom_series(np.asanyarray(img.dataobj).astype(np.int16), img.affine, out / name,
                               PatientAge="061Y", PatientSex="F", Manufacturer="TestVendor")
        else:
            (out / f"{name}.nii.gz").symlink_to(ct_path(shared, name))
    return out


def mask_folder(shared: Path, tmp: Path) -> Path:
    """import:DIR layout: per-structure folders (abdomen_small, chest_cta, chest_crop) and lung1's lesion."""
    out = tmp / "masks"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("abdomen_small", "chest_cta", "chest_crop"):
        (out / name).symlink_to(shared / "ct" / name / "masks", target_is_directory=True)
    (out / "lung1").mkdir()
    (out / "lung1" / "lesion.nii.gz").symlink_to(shared / "ct" / "lung1" / "lesion.nii.gz")  # not a region
    return out


def dev_reports(shared: Path, n: int) -> list[str]:
    """The first `n` real reports of labeled_reports_dev.csv with at least two positive labels."""
    texts = []
    with open(shared / "ct_rate" / "labeled_reports_dev.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if sum(int(v) for k, v in row.items() if k not in ("AccessionNo", "report_text")) >= 2:
                texts.append(row["report_text"])
            if len(texts) == n:
                break
    return texts


def reports_csv(shared: Path, path: Path, volume_names: list[str]) -> Path:
    """A CT-RATE-style reports CSV assigning real report texts (as Findings_EN) to the volumes."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(REPORT_FIELDS)
        for name, text in zip(volume_names, dev_reports(shared, len(volume_names)), strict=True):
            w.writerow([name, "Not given.", "Not given.", text, "Not given."])
    return path


def torchscript_model(path: Path, *, kind: str = "random", labels: dict | None = None, **config) -> Path:
    """A TorchScript model and its label-map JSON: a random 3-class UNet, or a 2-class 'air below -500 HU' net."""
    import torch

    torch.manual_seed(0)
    if kind == "random":
        from monai.networks.nets import UNet

        net = UNet(spatial_dims=3, in_channels=1, out_channels=3, channels=(4, 8), strides=(2,), num_res_units=0)
        labels = labels or {"1": "left lung", "2": "lung_upper_lobe_right"}
    else:
        net = AirNet()
        labels = labels or {"1": "lung"}
    torch.jit.script(net.eval()).save(str(path))
    path.with_suffix(".json").write_text(json.dumps({"labels": labels, **config}))
    return path


try:
    import torch

    class AirNet(torch.nn.Module):
        """Channel 1 wins where the scaled intensity is below 0.25 (HU < -500 for a -1000..1000 window)."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x - 0.25, 0.25 - x], dim=1)
except ImportError:  # pragma: no cover - torch is in the dev extra
    AirNet = None  # type: ignore[assignment,misc]
