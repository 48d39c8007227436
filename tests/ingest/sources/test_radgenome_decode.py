"""Decoding released mask files: one inflate, voxels used in place, headers read from the first bytes,
masks read one at a time (`LazyMask`) on the stored L, P, S grid."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from ingest.images import CTImage
from ingest.sources.radgenome_decode import (
    LazyMask,
    MaskReadError,
    check_image_grid,
    decode_nifti,
    gunzip,
    gzip_body,
    lps_view,
    read_header,
)
from tests.fixtures.release import nifti_bytes
from warehouse.core.errors import GridMismatchError

MASK = (np.arange(24).reshape(4, 3, 2) % 3 == 0).astype(np.uint8)


def test_mask_decoding_reads_voxels_in_place_and_refuses_truncated_files():
    mask = (np.random.default_rng(1).random((7, 6, 5)) > 0.6).astype(np.uint8)
    data = gzip.compress(nib.Nifti1Image(mask, np.diag([3.0, 1, 1, 1])).to_bytes())
    voxels, affine = decode_nifti(data)
    assert np.array_equal(voxels, mask) and not voxels.flags.writeable and voxels.flags.f_contiguous
    assert read_header(data)[0] == (7, 6, 5) and np.array_equal(read_header(data)[1], affine)
    assert gunzip(data + gzip.compress(b"more")).endswith(b"more"), "several gzip members are joined"
    with pytest.raises(EOFError):
        decode_nifti(data[:-40])
    scaled = nib.Nifti1Image(mask.astype(np.int16), np.eye(4))
    scaled.header.set_slope_inter(2.0, 1.0)
    assert np.array_equal(decode_nifti(scaled.to_bytes())[0], mask * 2 + 1)
    with pytest.raises(ValueError, match="not a NIfTI"):
        read_header(b"not a nifti file" * 40)


def test_masks_written_at_different_times_share_a_content_key(tmp_path):
    import io

    raw = nib.Nifti1Image(np.zeros((4, 3, 2), np.uint8), np.eye(4)).to_bytes()
    buf = io.BytesIO()
    with gzip.GzipFile(filename="empty.nii", mode="wb", fileobj=buf, mtime=123) as f:  # a name, another time
        f.write(raw)
    early, late, named = gzip.compress(raw, mtime=1), gzip.compress(raw, mtime=2), buf.getvalue()
    assert early != late and gzip_body(early) == gzip_body(late) == gzip_body(named)
    (tmp_path / "a.nii.gz").write_bytes(named)
    keys = {LazyMask(early, "x", np.eye(4)).content_key,
            LazyMask(str(tmp_path / "a.nii.gz"), "y", np.eye(4)).content_key}
    assert len(keys) == 1
    other = gzip.compress(nib.Nifti1Image(np.ones((4, 3, 2), np.uint8), np.eye(4)).to_bytes(), mtime=1)
    assert LazyMask(other, "z", np.eye(4)).content_key not in keys
    assert LazyMask(early, "x", np.diag([2.0, 1, 1, 1])).content_key not in keys  # another grid
    assert gzip_body(b"not gzip") == b"not gzip"


def test_read_header_reads_shape_and_affine_from_bytes_or_a_path(tmp_path):
    data = nifti_bytes(MASK, np.diag([2.0, 1, 1, 1]))
    shape, affine = read_header(data)
    assert shape == (4, 3, 2) and np.array_equal(affine, np.diag([2.0, 1, 1, 1]))
    (tmp_path / "m.nii.gz").write_bytes(data)
    assert read_header(str(tmp_path / "m.nii.gz"))[0] == (4, 3, 2)
    raw = nib.Nifti1Image(MASK, np.eye(4)).to_bytes()  # not compressed
    assert read_header(raw)[0] == (4, 3, 2)


def test_a_4d_file_of_one_volume_and_nifti2_read_as_3d():
    assert read_header(nifti_bytes(MASK[..., None], np.eye(4)))[0] == (4, 3, 2)
    n2 = nib.Nifti2Image(MASK[..., None], np.eye(4)).to_bytes()
    assert read_header(n2)[0] == (4, 3, 2)
    voxels, _ = decode_nifti(n2)
    assert voxels.shape == (4, 3, 2) and np.array_equal(voxels, MASK)


def test_decode_refuses_a_file_shorter_than_its_header_promises():
    raw = nib.Nifti1Image(MASK, np.eye(4)).to_bytes()
    with pytest.raises(ValueError, match=r"holds 19 bytes of voxels, its header promises 24"):
        decode_nifti(raw[:-5])


def test_gunzip():
    raw = nib.Nifti1Image(MASK, np.eye(4)).to_bytes()
    assert gunzip(gzip.compress(raw)) == raw
    assert gunzip(gzip.compress(raw) + b"\0" * 16) == raw, "NUL padding after the stream is not a member"
    assert gunzip(gzip.compress(b"one") + gzip.compress(b"two")) == b"onetwo"
    with pytest.raises(EOFError, match="truncated"):
        gunzip(gzip.compress(raw)[:-10])


def test_lazy_mask_reads_on_access_on_the_stored_grid():
    mask = LazyMask(nifti_bytes(MASK, np.eye(4)), "seg/lung.nii.gz", np.eye(4))
    voxels = np.asarray(mask.dataobj)  # RAS on disk: L, P, S flips the first two axes
    assert voxels.shape == (4, 3, 2) and np.array_equal(voxels, MASK[::-1, ::-1, :])
    assert np.asarray(mask.dataobj, dtype=bool).dtype == bool
    view, affine = lps_view(MASK, np.eye(4))
    assert np.shares_memory(view, MASK) and "".join(nib.aff2axcodes(affine)) == "LPS"


@pytest.mark.parametrize("payload, message", [
    (nifti_bytes((MASK * 2).astype(np.uint8), np.eye(4)), "mask values must be 0 or 1; it holds 2"),
    (nifti_bytes(MASK, np.eye(4))[:-30], "cannot read the mask (EOFError"),
    (b"not a nifti file" * 40, "cannot read the mask (ValueError: not a NIfTI"),
])
def test_an_unreadable_mask_raises_naming_its_file(payload, message):
    with pytest.raises(MaskReadError) as e:
        LazyMask(payload, "seg_valid_1_a_1/lung.nii.gz", np.eye(4)).read()
    assert e.value.where == "seg_valid_1_a_1/lung.nii.gz" and str(e.value).startswith(message)


def test_a_missing_mask_file_raises_when_its_key_is_asked(tmp_path):
    mask = LazyMask(str(tmp_path / "gone.nii.gz"), "gone.nii.gz", np.eye(4))
    with pytest.raises(MaskReadError, match="cannot read the mask file"):
        _ = mask.content_key


def test_check_image_grid():
    affine = np.diag([0.7, 0.7, 1.5, 1.0])
    image = CTImage(np.zeros((4, 3, 2), np.int16), affine, ("R", "A", "S"), (4, 3, 2), affine, "v.nii.gz", "nifti")
    check_image_grid((4, 3, 2), affine + 1e-6, image, file="lung.nii.gz")  # within the tolerance
    with pytest.raises(GridMismatchError):
        check_image_grid((4, 3, 3), affine, image, file="lung.nii.gz")
    with pytest.raises(GridMismatchError):
        check_image_grid((4, 3, 2), np.diag([0.7, 0.7, 3.0, 1.0]), image, file="lung.nii.gz")
