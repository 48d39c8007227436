"""The case page's data: the report and regions of a case, its masks as crops and its slices, against the
warehouse read independently (SQL, whole arrays)."""

from __future__ import annotations

import gzip
import io

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from warehouse.core.anatomy import anatomy
from warehouse.core.errors import ArrayNotFoundError
from warehouse.core.ids import case_key
from warehouse.store.arrays.ome import region_rgba
from warehouse.viewer import to_display, views
from warehouse.web.cases import WINDOWS, Cases, NotFound


def _first_case(wh) -> str:
    return wh.sql("SELECT case_id FROM cases ORDER BY case_id LIMIT 1")["case_id"][0]


def _nifti(data: bytes) -> nib.Nifti1Image:
    return nib.Nifti1Image.from_bytes(gzip.decompress(data))


def test_info_holds_the_cases_report_regions_and_pairs(demo_wh):
    cases, case_id = Cases(demo_wh), _first_case(demo_wh)
    info = cases.info(case_key(case_id))
    want = demo_wh.sql("SELECT sentence_id, text, region_id FROM sentences WHERE case_id = $c", {"c": case_id})
    assert sorted((s["sentence_id"], s["text"], s["region_id"]) for s in info["sentences"]) == sorted(want.rows())
    assert [s["ordinal"] for s in info["sentences"]] == sorted(s["ordinal"] for s in info["sentences"])
    counts = demo_wh.sql("SELECT (SELECT count(*) FROM findings WHERE case_id = $c) AS f, "
                         "(SELECT count(*) FROM vqa WHERE case_id = $c) AS v", {"c": case_id}).row(0)
    assert (len(info["findings"]), len(info["vqa"])) == counts
    store = demo_wh.arrays
    shape, affine = store.grid(case_id)
    assert info["has_image"] and info["grid"]["shape"] == list(shape)
    assert np.allclose(info["grid"]["affine"], affine)
    dag = anatomy()
    for r in (r for r in info["regions"] if r["has_mask"]):  # box, colour and centre are the store's
        box = store.region_bbox(case_id, r["region_id"])
        assert r["bbox"] == [list(box[0]), list(box[1])] and r["rgba"] == region_rgba(r["region_id"])
        centre = (np.array(box[0]) + np.array(box[1]) - 1) / 2
        assert np.allclose(r["centre_mm"], affine[:3, :3] @ centre + affine[:3, 3])
        assert r["region_id"] in r["subtree"]
        assert set(r["subtree"]) == {dag.get(n).region_id for n in dag.descendants(r["name"])}
    masked = {r["region_id"] for r in info["regions"] if r["has_mask"]}
    with_mask = {s["region_id"] for s in store.structures(case_id) if s["voxels"]}
    assert with_mask <= masked
    named = {x["region_id"] for rows in (info["sentences"], info["findings"], info["vqa"]) for x in rows}
    assert {r["region_id"] for r in info["regions"]} == (named - {None}) | with_mask  # every region named
    for r in (r for r in info["regions"] if not r["has_mask"]):
        with pytest.raises(ArrayNotFoundError):
            store.region_mask(case_id, r["region_id"])
    assert [r["name"] for r in info["regions"]] == sorted(r["name"] for r in info["regions"])


def test_a_mask_is_its_crop_on_the_cases_grid(demo_wh):
    cases, case_id = Cases(demo_wh), _first_case(demo_wh)
    region = anatomy().get("left lung")
    img = _nifti(cases.mask_nifti(case_key(case_id), str(region.region_id)))
    whole, affine = demo_wh.arrays.region_mask(case_id, region)
    box = demo_wh.arrays.region_bbox(case_id, region)
    assert img.shape == tuple(hi - lo for lo, hi in zip(*box, strict=True))  # a crop, not the volume
    lo = np.rint(np.linalg.solve(affine, img.affine[:, 3])[:3]).astype(int)  # where the crop lies on the grid
    assert tuple(lo) == tuple(box[0])
    inside = tuple(slice(a, b) for a, b in zip(*box, strict=True))
    assert np.array_equal(np.asanyarray(img.dataobj).astype(bool), whole[inside])


def test_the_image_is_the_whole_ct(demo_wh):
    cases, case_id = Cases(demo_wh), _first_case(demo_wh)
    img = _nifti(cases.image_nifti(case_key(case_id)))
    hu, affine = demo_wh.arrays.image(case_id)
    assert np.array_equal(np.asanyarray(img.dataobj), hu) and np.allclose(img.affine, affine)


@pytest.mark.parametrize("view", ["axial", "coronal", "sagittal"])
def test_a_slice_is_the_viewers_slice_windowed(demo_wh, view):
    cases, case_id = Cases(demo_wh), _first_case(demo_wh)
    hu, affine = demo_wh.arrays.image(case_id)
    display = to_display(hu, affine)
    index = display.shape[{"sagittal": 0, "coronal": 1, "axial": 2}[view]] // 3
    centre = [0, 0, 0]
    centre[{"sagittal": 0, "coronal": 1, "axial": 2}[view]] = index
    level, width = WINDOWS["mediastinum"]
    want = np.clip((views(display, tuple(centre))[view].astype(np.float32) - (level - width / 2)) / width * 255,
                   0, 255).astype(np.uint8)
    got = np.asarray(Image.open(io.BytesIO(cases.slice_png(case_key(case_id), view, index, "mediastinum"))))
    assert np.array_equal(got, want)


def test_what_the_snapshot_lacks_is_not_found(demo_wh):
    cases, key = Cases(demo_wh), case_key(_first_case(demo_wh))
    for call in (lambda: cases.info("../../etc/passwd"), lambda: cases.image_nifti("nope"),
                 lambda: cases.mask_nifti(key, "12"), lambda: cases.mask_nifti(key, "heart"),
                 lambda: cases.slice_png(key, "oblique", 0), lambda: cases.slice_png(key, "axial", 10_000),
                 lambda: cases.slice_png(key, "axial", 0, "brain")):
        with pytest.raises(NotFound) as e:
            call()
        assert "\n" not in str(e.value)
    absent = next(r for r in anatomy() if r.name == "urinary bladder")
    with pytest.raises(NotFound, match="no mask of 'urinary bladder'"):
        cases.mask_nifti(key, str(absent.region_id))


def test_real_cts_masks_and_slices(real_ct_wh):
    cases = Cases(real_ct_wh)
    info = cases.info(case_key("abdomen_small.nii.gz"))
    names = {r["name"] for r in info["regions"]}
    assert {"liver", "spleen"} <= names and info["has_image"]
    liver = next(r for r in info["regions"] if r["name"] == "liver")
    img = _nifti(cases.mask_nifti(info["key"], str(liver["region_id"])))
    want, _ = real_ct_wh.arrays.region_mask("abdomen_small.nii.gz", "liver", crop=True)
    assert np.array_equal(np.asanyarray(img.dataobj).astype(bool), want)
    hu, affine = real_ct_wh.arrays.image("lung1.nii.gz")
    display = to_display(hu, affine)
    got = np.asarray(Image.open(io.BytesIO(cases.slice_png(case_key("lung1.nii.gz"), "axial", 20))))
    level, width = WINDOWS["lung"]
    want = np.clip((display[:, :, 20].T.astype(np.float32) - (level - width / 2)) / width * 255, 0, 255)
    assert np.array_equal(got, want.astype(np.uint8))


def test_a_case_without_arrays_lists_the_regions_its_report_names(real_warehouse):
    from warehouse import Warehouse

    with Warehouse.open(real_warehouse) as wh:
        case_id = wh.sql("SELECT min(case_id) AS c FROM sentences WHERE region_id IS NOT NULL")["c"][0]
        info = Cases(wh).info(case_key(case_id))
        named = set(wh.sql("SELECT DISTINCT region_id FROM sentences WHERE case_id = $c AND region_id IS NOT NULL",
                           {"c": case_id})["region_id"].to_list())
    assert not info["has_image"] and named <= {r["region_id"] for r in info["regions"]}
    assert not any(r["has_mask"] for r in info["regions"])
