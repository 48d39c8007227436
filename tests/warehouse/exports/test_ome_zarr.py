"""`export --format ome-zarr`: OME-Zarr 0.5 images with labels that validate, that ome-zarr's reader opens,
whose voxels are the warehouse's; overlapping regions, crops, the CLI, dry runs and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader
from ome_zarr_models import open_ome_zarr
from ome_zarr_models.v05.image import Image
from zarr.storage import LocalStore

from ingest.runner import build
from tests.fixtures.cli import export_command
from tests.warehouse.store.arrays.test_ome import validate_store_case
from warehouse import Warehouse
from warehouse.core.anatomy import anatomy
from warehouse.core.boxes import slices
from warehouse.core.grid import spacing
from warehouse.exports.bundle import ExportError, export_cohort
from warehouse.store.arrays.ome import region_rgba

WITH_CT = "SELECT case_id FROM cases WHERE case_id <> 'valid_6_a_1.nii.gz'"  # valid_6 has masks, no CT
MASKS = ("lung", "left lung", "heart", "trachea and bronchie")  # lung holds left lung; heart touches both lungs


@pytest.fixture(scope="module")
def exported(wh, tmp_path_factory) -> tuple[Path, dict, int]:
    out = tmp_path_factory.mktemp("ome") / "out"
    dry = export_cohort(wh, out, sql=WITH_CT, masks=MASKS, format="ome-zarr", dry_run=True)
    assert not out.exists()
    summary = export_cohort(wh, out, sql=WITH_CT, masks=MASKS, format="ome-zarr")
    assert summary.files == dry.files and dry.bytes >= summary.bytes
    return out, json.loads((out / "manifest.json").read_text()), dry.files


def read_back(folder: Path) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, str], dict]:
    """Through ome-zarr's reader: the image and each region's mask (both in the store's x, y, z order), the
    label image each region is in, and the image node's metadata."""
    nodes = list(Reader(parse_url(str(folder)))())
    image = nodes[0]
    assert [type(s).__name__ for s in image.specs] == ["Multiscales"] and len(image.data) == 1
    masks, where = {}, {}
    for node in nodes:
        if "Label" not in [type(s).__name__ for s in node.specs]:
            continue
        data = np.asarray(node.data[0]).transpose(2, 1, 0)
        name = str(node.zarr.path).rstrip("/").rsplit("/", 1)[-1]
        assert node.metadata["name"] == ", ".join(p["name"] for p in node.metadata["properties"].values())
        for value, props in node.metadata["properties"].items():
            assert node.metadata["color"][value] == pytest.approx([v / 255 for v in region_rgba(props["region_id"])])
            masks[props["name"]], where[props["name"]] = data == value, name
    return np.asarray(image.data[0]).transpose(2, 1, 0), masks, where, image.metadata


def validate(folder: Path) -> Image:
    """ome-zarr-models' OME-NGFF 0.5 validation of one exported case (image and labels)."""
    group = zarr.open_group(LocalStore(folder, read_only=True), mode="r")
    assert isinstance(open_ome_zarr(group), Image)
    return Image.from_zarr(group)


def test_cases_validate_and_hold_the_warehouses_voxels(wh, exported):
    out, manifest, _ = exported
    assert sorted(manifest["ome_zarr"]) == sorted(wh.sql(WITH_CT)["case_id"])
    assert manifest["label_values"] == {r: i + 1 for i, r in enumerate(MASKS)} and manifest["format"] == "ome-zarr"
    for case_id, entry in manifest["ome_zarr"].items():
        image = validate(out / entry["path"])
        assert image.labels is not None and image.labels.label_paths == list(entry["labels"])
        hu, masks, where, meta = read_back(out / entry["path"])
        want, affine = wh.arrays.image(case_id)
        assert hu.dtype == np.int16 and np.array_equal(hu, want)
        for region in MASKS:
            assert np.array_equal(masks[region], wh.arrays.region_mask(case_id, region)[0]), (case_id, region)
        assert where == {r: name for name, rs in entry["labels"].items() for r in rs}
        assert [a["name"] for a in meta["axes"]] == ["z", "y", "x"]
        scale, shift = meta["coordinateTransformations"][0]
        assert scale["scale"] == pytest.approx(spacing(affine)[::-1]) and shift["translation"] == pytest.approx(
            affine[:3, 3][::-1])
        attrs = zarr.open_group(LocalStore(out / entry["path"], read_only=True), mode="r").attrs["radgenome_warehouse"]
        assert attrs["case_id"] == case_id and np.allclose(attrs["affine"], affine) and attrs["crop"] is None


def test_overlapping_regions_get_separate_label_images_disjoint_ones_share(exported):
    _, manifest, _ = exported
    # the synthetic heart touches both lungs; train_5's heart is empty, so it fits beside lung
    assert manifest["ome_zarr"]["train_1_a_1.nii.gz"]["labels"] == {
        "regions-0": ["lung", "trachea and bronchie"], "regions-1": ["left lung"], "regions-2": ["heart"]}
    assert manifest["ome_zarr"]["train_5_a_1.nii.gz"]["labels"] == {
        "regions-0": ["lung", "heart", "trachea and bronchie"], "regions-1": ["left lung"]}


def test_dry_run_counts_the_files_the_export_writes(exported):
    out, manifest, dry_files = exported
    files = [p for p in out.rglob("*") if p.is_file()]
    assert dry_files == len(files) == len(manifest["files"]) + 1
    # per case: image group, array metadata and shard; labels group; per label image group, metadata, shard
    assert len(files) - 1 == sum(4 + 3 * len(e["labels"]) for e in manifest["ome_zarr"].values())


def test_the_demo_warehouse_store_validates(wh, tmp_path):
    store = Path(wh.arrays.path)
    cases = sorted(p for p in store.iterdir() if p.is_dir())
    assert len(cases) == 6
    for case_dir in cases:  # valid_6 has no CT: its labels validate alone
        validate_store_case(case_dir)


def test_crop_cuts_image_and_labels_to_the_nifti_box(wh, tmp_path):
    out = tmp_path / "crop"
    export_cohort(wh, out, sql=WITH_CT + " AND case_id LIKE 'train%'", masks=("left lung", "heart", "right lung"),
                  crop="left lung", margin_mm=5, format="ome-zarr")
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["ome_zarr"]) == 3
    for case_id, entry in manifest["ome_zarr"].items():
        validate(out / entry["path"])
        hu, masks, _, meta = read_back(out / entry["path"])
        want, _, crop_affine = wh.arrays.region_crop(case_id, "left lung", margin_mm=5)
        assert np.array_equal(hu, want)
        attrs = zarr.open_group(LocalStore(out / entry["path"], read_only=True), mode="r").attrs["radgenome_warehouse"]
        box = (tuple(attrs["box"][0]), tuple(attrs["box"][1]))
        assert attrs["crop"] == "left lung" and attrs["margin_mm"] == 5 and np.allclose(attrs["affine"], crop_affine)
        assert meta["coordinateTransformations"][0][1]["translation"] == pytest.approx(crop_affine[:3, 3][::-1])
        for region in ("left lung", "heart", "right lung"):
            assert np.array_equal(masks[region], wh.arrays.region_mask(case_id, region)[0][slices(box)]), region


def test_bad_input_is_one_line_and_writes_nothing(wh, tmp_path):
    out = tmp_path / "out"
    cases = [(dict(masks=("liver",)), "no case of the cohort has a mask for region 'liver'"),
             (dict(masks=("heart",), crop="liver"), "no case of the cohort has a voxel of the crop region 'liver'"),
             (dict(sql="SELECT case_id FROM cases", masks=("heart",)), "has no CT image")]
    for kwargs, message in cases:
        with pytest.raises(ExportError) as e:
            export_cohort(wh, out, **{"sql": WITH_CT, **kwargs}, format="ome-zarr")
        assert message in str(e.value) and "\n" not in str(e.value) and e.value.hint
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def cli():
    return export_command()


def test_cli_exports_images_without_masks_and_refuses_bad_regions(cli, wh, tmp_path):
    args = ["--warehouse", wh.root, "--sql", WITH_CT + " AND case_id = 'valid_2_a_1.nii.gz'", "--format", "ome-zarr"]
    dry = cli(*args, "--dry-run", tmp_path / "out")
    assert dry.exit_code == 0, dry.output
    real = cli(*args, tmp_path / "out")
    assert real.exit_code == 0, real.output
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert f"files: {len(files)}" in dry.output and len(files) == 4  # image group, array, shard; manifest
    folder = tmp_path / "out" / "valid_2_a_1.ome.zarr"
    assert validate(folder).labels is None and not (folder / "labels").exists()  # an image alone is valid
    bad = cli(*args, "--masks", "heart, liver", tmp_path / "bad")
    assert bad.exit_code != 0 and isinstance(bad.exception, ExportError) and "'liver'" in str(bad.exception)
    assert not (tmp_path / "bad").exists()


# -- a real CT with TotalSegmentator masks ------------------------------------------------------
def test_real_ct_exports_validate_and_read_back_exactly(shared_data, tmp_path):
    from ingest.sources.folder import FolderSource
    from tests.fixtures.folder_data import image_folder, mask_folder, reports_csv

    if not (shared_data / "ct" / "abdomen_small" / "masks").is_dir():
        pytest.skip("real sample data absent: ct/abdomen_small/masks")
    images = image_folder(shared_data, tmp_path, names=("abdomen_small",))
    reports = reports_csv(shared_data, tmp_path / "r.csv", ["abdomen_small.nii.gz"])
    build(FolderSource(images, reports, [f"import:{mask_folder(shared_data, tmp_path)}"]), tmp_path / "wh",
          runner="local", progress=False)
    real = Warehouse.open(tmp_path / "wh")
    regions = ("liver", "spleen", "kidney", "left kidney", "aorta")  # kidney holds left kidney
    out = tmp_path / "out"
    export_cohort(real, out, sql="SELECT case_id FROM cases", masks=regions, format="ome-zarr")
    entry = json.loads((out / "manifest.json").read_text())["ome_zarr"]["abdomen_small.nii.gz"]
    assert entry["labels"] == {"regions-0": ["liver", "spleen", "kidney", "aorta"], "regions-1": ["left kidney"]}
    validate(out / entry["path"])
    hu, masks, _, _ = read_back(out / entry["path"])
    assert np.array_equal(hu, real.arrays.image("abdomen_small.nii.gz")[0])
    for region in regions:
        want = real.arrays.region_mask("abdomen_small.nii.gz", region)[0]
        assert want.any() and np.array_equal(masks[region], want), region
    assert {anatomy().resolve(r).name for r in regions} == set(masks)
