"""Cohort exports: bundle layout, manifest hashes, exact arrays and affines, MONAI datalist, dry run, safety."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ingest.runner import build
from tests.fixtures.cohort_source import CohortJob, CohortSource
from warehouse import Warehouse
from warehouse.exports import bundle
from warehouse.exports.bundle import ExportError, export_cohort

ALL = "SELECT case_id FROM cases"
MASKS = ("left lung", "heart")


@pytest.fixture(scope="module")
def whole(wh, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "whole"
    export_cohort(wh, out, sql=ALL + " WHERE case_id <> $skip", params={"skip": "valid_4_a_1.nii.gz"},
                  images=True, masks=MASKS)
    return out


@pytest.fixture(scope="module")
def cropped(wh, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "cropped"
    export_cohort(wh, out, sql=ALL, images=True, masks=("lung", "heart", "LLL"), crop="left lung", margin_mm=5)
    return out


def _files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}


def test_manifest_lists_every_file_with_its_hash(wh, whole):
    m = json.loads((whole / "manifest.json").read_text())
    assert m["kind"] == bundle.KIND and m["snapshot_id"] == wh.snapshot_id
    assert m["query"]["sql"].endswith("WHERE case_id <> $skip") and m["query"]["params"] == {
        "skip": "valid_4_a_1.nii.gz"}
    assert {(x["dataset"], x["licence"]) for x in m["licences"]} == {
        ("RadGenome-ChestCT", "CC-BY-4.0"), ("CT-RATE", "CC-BY-NC-SA-4.0")}
    files = _files(whole)
    assert set(m["files"]) == set(files) - {"manifest.json"}
    for rel, entry in m["files"].items():
        assert entry["bytes"] == files[rel].stat().st_size
        assert entry["sha256"] == hashlib.sha256(files[rel].read_bytes()).hexdigest()
    assert m["cases"] == 5 and "valid_4_a_1.nii.gz" not in m["case_files"]
    assert m["notes"] == ["valid_6_a_1.nii.gz: no CT image in the store"]


def test_tables_hold_the_cohorts_rows(wh, whole):
    import polars as pl

    m = json.loads((whole / "manifest.json").read_text())
    cohort = set(m["case_files"])
    for name, n in m["row_counts"].items():
        t = pl.read_parquet(whole / "tables" / f"{name}.parquet")
        assert t.height == n == pl.read_csv(whole / "tables" / f"{name}.csv", infer_schema=False).height
        if "case_id" in t.columns:
            assert set(t["case_id"]) <= cohort
            assert n == wh.sql(f"SELECT count(*) FROM {name} WHERE case_id IN (SELECT unnest($c))",
                               {"c": sorted(cohort)}).item()
        else:  # reference tables whole
            assert n == wh.sql(f"SELECT count(*) FROM {name}").item() > 0
    anatomy_csv = pl.read_csv(whole / "tables" / "anatomy.csv", infer_schema=False)
    assert json.loads(anatomy_csv.filter(pl.col("name") == "left lung lower lobe")["parent_ids"][0])


def test_whole_arrays_and_affines_equal_the_warehouse(wh, whole):
    for case_id, key in json.loads((whole / "manifest.json").read_text())["case_files"].items():
        img_path = whole / "images" / f"{key}.nii.gz"
        if not wh.arrays.has_image(case_id):
            assert not img_path.exists()
            continue
        hu, affine = wh.image(case_id)
        img = nib.load(img_path)
        assert img.get_data_dtype() == np.int16
        assert np.array_equal(np.asanyarray(img.dataobj), hu)
        np.testing.assert_allclose(img.affine, affine, atol=1e-5)
        for region in MASKS:
            mask, m_affine = wh.region_mask(case_id, region)
            nii = nib.load(whole / "masks" / key / f"{region}.nii.gz")
            assert np.array_equal(np.asanyarray(nii.dataobj) == 1, mask)
            np.testing.assert_allclose(nii.affine, m_affine, atol=1e-5)


def test_crops_are_the_warehouse_crops_on_one_grid(wh, cropped):
    m = json.loads((cropped / "manifest.json").read_text())
    assert m["options"]["masks"] == ["lung", "heart", "left lung lower lobe"]  # synonyms resolved
    for case_id, key in m["case_files"].items():
        if not wh.arrays.has_image(case_id):
            continue
        hu, left, affine = wh.region_crop(case_id, "left lung", margin_mm=5)
        img = nib.load(cropped / "images" / f"{key}.nii.gz")
        assert np.array_equal(np.asanyarray(img.dataobj), hu)
        np.testing.assert_allclose(img.affine, affine, atol=1e-5)
        lo = np.rint(np.linalg.solve(wh.image(case_id)[1], affine[:, 3])[:3]).astype(int)
        box = tuple(slice(a, a + n) for a, n in zip(lo, hu.shape, strict=True))
        for region in ("lung", "heart", "left lung lower lobe"):
            nii = nib.load(cropped / "masks" / key / f"{region}.nii.gz")
            assert nii.shape == hu.shape
            np.testing.assert_allclose(nii.affine, affine, atol=1e-5)
            assert np.array_equal(np.asanyarray(nii.dataobj) == 1, wh.region_mask(case_id, region)[0][box])
        lung = np.asanyarray(nib.load(cropped / "masks" / key / "lung.nii.gz").dataobj) == 1
        assert left.any() and not (left & ~lung).any()  # the crop region lies inside its parent


def test_datalist_loads_with_monai_and_every_file_reads(whole, cropped):
    from monai.data import load_decathlon_datalist
    from monai.transforms import LoadImaged

    for folder, n_masks in ((whole, 2), (cropped, 3)):
        meta = json.loads((folder / "datalist.json").read_text())
        load = LoadImaged(keys=["image", "label"], ensure_channel_first=True, allow_missing_keys=True)
        seen = 0
        for key in ("training", "validation"):
            items = load_decathlon_datalist(folder / "datalist.json", data_list_key=key)
            assert len(items) == meta[f"num{key.title()}"]
            for item in items:
                assert Path(item["label"][0]).is_file() and item["label_regions"] == meta["regions"]
                out = load(item)
                assert out["label"].shape[0] == n_masks
                if "image" in item:
                    assert out["image"].shape[1:] == out["label"].shape[1:]
                    np.testing.assert_allclose(out["image"].affine, nib.load(item["image"]).affine, atol=1e-5)
                seen += 1
        assert seen == json.loads((folder / "manifest.json").read_text())["cases"]
    entry = json.loads((cropped / "datalist.json").read_text())["training"][0]
    assert entry["region"] == "left lung" and entry["text"] == "A 3 mm nodule is seen in the left lower lobe."


def test_radgenome_csvs_hold_only_the_cohort(whole):
    import polars as pl

    cohort = set(json.loads((whole / "manifest.json").read_text())["case_files"])
    csvs = list((whole / "radgenome").rglob("*.csv"))
    assert csvs
    for p in csvs:
        assert set(pl.read_csv(p, infer_schema=False)["Volumename"]) <= cohort
    assert set(pl.read_csv(whole / "reports.csv", infer_schema=False)["VolumeName"]) == cohort


@pytest.mark.parametrize("arrays", [False, True])
def test_dry_run_counts_equal_a_real_export(wh, tmp_path, arrays):
    opts = {"images": True, "masks": MASKS, "crop": "lung"} if arrays else {}
    out = tmp_path / "new" / "out"
    dry = export_cohort(wh, out, sql=ALL, dry_run=True, **opts)
    assert list(tmp_path.iterdir()) == []  # not even the parent folder
    real = export_cohort(wh, out, sql=ALL, **opts)
    on_disk = _files(out)
    assert (dry.cases, dry.files) == (real.cases, real.files) == (6, len(on_disk))
    assert real.bytes == sum(p.stat().st_size for p in on_disk.values())
    if arrays:
        assert not dry.bytes_exact and real.bytes <= dry.bytes
    else:
        assert dry.bytes_exact and dry.bytes == real.bytes


def test_refuses_non_empty_folders_and_replaces_only_exports(wh, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        export_cohort(wh, out, sql=ALL)
    with pytest.raises(ExportError, match="not a cohort export"):
        export_cohort(wh, out, sql=ALL, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    first = export_cohort(wh, tmp_path / "exp", sql=ALL + " WHERE split = 'train'")
    again = export_cohort(wh, tmp_path / "exp", sql=ALL, overwrite=True)
    assert (first.cases, again.cases) == (3, 6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp", "out"]  # no stage or old copy left


def test_a_failed_export_leaves_nothing(wh, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bundle, "write_case", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        export_cohort(wh, tmp_path / "out", sql=ALL, images=True)
    assert list(tmp_path.iterdir()) == []


def test_bad_cohorts_are_refused(wh, tmp_path):
    with pytest.raises(ExportError, match="empty"):
        export_cohort(wh, tmp_path / "o", sql=ALL + " WHERE false")
    with pytest.raises(ExportError, match="no case_id column"):
        export_cohort(wh, tmp_path / "o", sql="SELECT split FROM cases")
    with pytest.raises(ExportError, match="exactly one"):
        export_cohort(wh, tmp_path / "o")
    assert list(tmp_path.iterdir()) == []


def test_case_ids_cannot_escape_the_folder(tmp_path):
    class Weird(CohortSource):
        def jobs(self):
            for i, cid in enumerate(("../../escape.nii.gz", "/abs/olute.nii.gz", "a b/c.nii.gz", "..")):
                yield CohortJob(cid, i)

    build(Weird(name="weird"), tmp_path / "wh", runner="local", progress=False)
    out = tmp_path / "deep" / "out"
    export_cohort(Warehouse.open(tmp_path / "wh"), out, sql=ALL, images=True, masks=["heart"])
    files = [p.resolve() for p in (tmp_path / "deep").rglob("*") if p.is_file()]
    assert len([p for p in files if p.name.endswith(".nii.gz")]) == 4 + 4
    assert all(out.resolve() in p.parents for p in files)
    assert not list(tmp_path.glob("escape*")) and not Path("/abs/olute.nii.gz").exists()


def test_the_package_exports_the_bundle_function(wh, tmp_path):
    from warehouse.exports import export_cohort as public

    assert public is export_cohort
    summary = export_cohort(wh, tmp_path / "o", sql=ALL + " WHERE split = $s", params={"s": "validation"}, dry_run=True)
    assert (summary.cases, summary.dry_run) == (3, True) and list(tmp_path.iterdir()) == []
