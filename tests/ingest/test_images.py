"""Reading CTs for the folder source: NIfTI and DICOM series -> int16 HU on the stored L, P, S grid."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest

from ingest.images import STORED_AXCODES, mask_to_image_grid, read_ct
from tests.fixtures.folder_data import ct_path, write_dicom_series
from warehouse.core.errors import GridMismatchError, IngestError

RNG = np.random.default_rng(7)


def _world_values_match(image, original: np.ndarray, original_affine: np.ndarray, n: int = 200) -> None:
    """Every sampled stored voxel holds the value the original has at the same world point."""
    idx = np.stack([RNG.integers(0, s, n) for s in image.hu.shape], axis=1)
    world = (image.affine @ np.c_[idx, np.ones(n)].T)
    back = np.rint(np.linalg.inv(original_affine) @ world).astype(int)[:3].T
    np.testing.assert_array_equal(image.hu[tuple(idx.T)], original[tuple(back.T)])


def _phantom(shape=(20, 16, 12)) -> np.ndarray:
    hu = RNG.integers(-1024, 1500, size=shape).astype(np.int16)
    hu[0, 0, 0] = -1024
    return hu


def test_nifti_ras_is_stored_lps_with_world_positions_kept(shared_data):
    path = ct_path(shared_data, "abdomen_small")  # a real RAS-ordered CT
    img = read_ct(path)
    original = np.asanyarray(nib.load(path).dataobj)
    assert img.original_axcodes == ("R", "A", "S") and img.axcodes == "".join(STORED_AXCODES)
    assert img.hu.dtype == np.int16 and img.hu.shape == original.shape  # a permutation-free flip here
    assert img.spacing == pytest.approx((3.0, 3.0, 3.0))
    _world_values_match(img, original, nib.load(path).affine)
    assert not np.array_equal(img.hu, original)  # it really was flipped


def test_nifti_permuted_axes_and_rescale(tmp_path):
    hu = _phantom()
    affine = np.array([[0, 0, 2.0, -10], [0.7, 0, 0, 5], [0, -0.7, 0, 30], [0, 0, 0, 1]])  # axes A, I, R
    img = nib.Nifti1Image((hu.astype(np.float32) + 1024) / 2, affine)
    img.header.set_slope_inter(2.0, -1024.0)
    nib.save(img, tmp_path / "x.nii.gz")
    out = read_ct(tmp_path / "x.nii.gz")
    assert out.original_axcodes == ("A", "I", "R") and out.axcodes == "LPS"
    assert out.hu.shape == (12, 20, 16) and out.spacing == pytest.approx((2.0, 0.7, 0.7))
    _world_values_match(out, hu, affine)


def test_raw_values_without_rescale_are_refused(tmp_path):
    nib.save(nib.Nifti1Image((_phantom() + 1024).astype(np.uint16), np.eye(4)), tmp_path / "raw.nii.gz")
    with pytest.raises(IngestError, match="raw stored values") as e:
        read_ct(tmp_path / "raw.nii.gz")
    assert "scl_inter" in e.value.hint


def test_padding_below_air_is_floored(tmp_path):
    hu = _phantom()
    hu[:2] = -3024
    nib.save(nib.Nifti1Image(hu, np.diag([-1.0, -1, 1, 1])), tmp_path / "p.nii")
    assert read_ct(tmp_path / "p.nii").hu.min() == -1024


def test_dicom_series_equals_the_nifti_it_was_written_from(shared_data, tmp_path):
    img = nib.load(ct_path(shared_data, "chest_crop"))
    hu = np.asanyarray(img.dataobj).astype(np.int16)
    order = list(RNG.permutation(hu.shape[2]))  # files in shuffled order
    folder = write_dicom_series(hu, img.affine, tmp_path / "series", order=order, PatientAge="045Y",
                                Manufacturer="ACME")
    (tmp_path / "series" / "README.txt").write_text("not dicom")
    dcm, nii = read_ct(folder), read_ct(ct_path(shared_data, "chest_crop"))
    np.testing.assert_array_equal(dcm.hu, nii.hu)
    np.testing.assert_allclose(dcm.affine, nii.affine, atol=1e-4)
    assert dcm.format == "dicom" and dcm.metadata["PatientAge"] == "045Y" and dcm.metadata["slices"] == hu.shape[2]
    mask = np.asanyarray(nib.load(shared_data / "ct/chest_crop/masks/pulmonary_artery.nii.gz").dataobj) > 0
    assert mask_to_image_grid(mask, img.affine, dcm, file="pa").sum() == mask.sum()  # NIfTI masks fit


def test_dicom_flipped_rows_are_normalised(tmp_path):
    hu = _phantom()
    affine = np.array([[1.5, 0, 0, 0], [0, -1.5, 0, 0], [0, 0, 2.5, 0], [0, 0, 0, 1]])  # rows run to the right
    out = read_ct(write_dicom_series(hu, affine, tmp_path / "s"))
    # DICOM stacks slices along row x column: mirrored rows make that normal point to the feet
    assert out.original_axcodes == ("R", "P", "I") and out.axcodes == "LPS"
    _world_values_match(out, hu, affine)


@pytest.mark.parametrize("kwargs, match", [
    ({"skip": (5,)}, "not uniform"),
    ({"tilt_mm": 0.8}, "gantry tilt"),
])
def test_broken_dicom_series_are_refused(tmp_path, kwargs, match):
    with pytest.raises(IngestError, match=match):
        read_ct(write_dicom_series(_phantom(), np.diag([-1.0, -1, 2, 1]), tmp_path / "s", **kwargs))


def test_a_duplicated_dicom_slice_is_refused(tmp_path):
    folder = write_dicom_series(_phantom(), np.diag([-1.0, -1, 2, 1]), tmp_path / "s")
    shutil.copy(folder / "IM0005.dcm", folder / "IM0005 copy.dcm")  # MONAI's PydicomReader stacks it silently
    with pytest.raises(IngestError, match="slices repeat"):
        read_ct(folder)


def test_dicom_slices_are_sorted_by_position_and_rescaled_one_by_one(tmp_path):
    """InstanceNumber need not follow position, and each slice may carry its own rescale: the two things
    MONAI's PydicomReader would get wrong in the first case (it sorts by InstanceNumber) are checked here."""
    import pydicom

    hu, affine = _phantom(), np.diag([-1.0, -1, 2, 1])
    folder = write_dicom_series(hu, affine, tmp_path / "s")
    n = hu.shape[2]
    for k, f in enumerate(sorted(folder.iterdir())):
        ds = pydicom.dcmread(f)
        ds.InstanceNumber = (k + n // 2) % n + 1  # numbered from the middle, as by acquisition
        if k % 2:  # odd slices stored as (HU + 2048) / 2 with slope 2: the same HU (hu is even-rounded below)
            ds.PixelData = ((ds.pixel_array.astype(np.int32) + 1024) // 2).astype("<u2").tobytes()
            ds.RescaleSlope, ds.RescaleIntercept = "2", "-2048"
        ds.save_as(f)
    expected = hu.copy()
    expected[:, :, 1::2] = (expected[:, :, 1::2].astype(np.int32) + 2048) // 2 * 2 - 2048  # what slope 2 keeps
    out = read_ct(folder)
    np.testing.assert_allclose(out.original_affine, affine, atol=1e-6)
    _world_values_match(out, np.maximum(expected, -1024), affine)


def test_the_largest_series_of_a_folder_is_read(tmp_path):
    write_dicom_series(_phantom((20, 16, 3)), np.diag([-1.0, -1, 2, 1]), tmp_path / "s", series_uid="1.2.3",
                       prefix="A")
    write_dicom_series(_phantom(), np.diag([-1.0, -1, 2, 1]), tmp_path / "s", series_uid="1.2.4",
                       prefix="B")
    out = read_ct(tmp_path / "s")
    assert out.hu.shape[2] == 12
    assert out.metadata["SeriesInstanceUID"] == "1.2.4" and out.metadata["series_in_folder"] == 2


def test_masks_off_the_image_grid_are_named(shared_data):
    crop = read_ct(ct_path(shared_data, "chest_crop"))
    heart = nib.load(shared_data / "ct/chest_cta/masks/heart.nii.gz")  # the full scan's grid: a real mismatch
    with pytest.raises(GridMismatchError, match="does not match the image grid") as e:
        mask_to_image_grid(np.asanyarray(heart.dataobj) > 0, heart.affine, crop, file="heart.nii.gz")
    assert e.value.file == "heart.nii.gz" and e.value.stage == "masks"


def test_not_an_image(tmp_path):
    (tmp_path / "x.nii.gz").write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(IngestError, match="cannot read NIfTI"):
        read_ct(tmp_path / "x.nii.gz")
    with pytest.raises(IngestError, match="no DICOM image slices"):
        read_ct(tmp_path)
