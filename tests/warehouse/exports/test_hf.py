"""`export --format hf`: a dataset repository `datasets.load_dataset` reads back config by config, offline,
with the warehouse's rows per split and NIfTI files equal to its arrays; the card's YAML; dry run, CLI, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ingest.runner import build
from tests.fixtures.cli import export_command
from warehouse import Warehouse
from warehouse.core import schema
from warehouse.exports import hf
from warehouse.exports.bundle import ExportError, export_cohort

ALL = "SELECT case_id FROM cases"
MASKS = ("left lung", "heart")
CT_MASKS = ("liver", "left kidney")  # masks abdomen_small has (TotalSegmentator names)


@pytest.fixture(scope="module", autouse=True)
def hf_cache(tmp_path_factory) -> Path:
    """datasets and huggingface_hub offline, their caches in a tmp folder (never ~/.cache)."""
    home = tmp_path_factory.mktemp("hf_home")
    env = {"HF_HOME": home, "HF_DATASETS_CACHE": home / "datasets", "HF_MODULES_CACHE": home / "modules",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, str(value))
        import datasets  # reads the variables when first imported; set again in case it was imported before
        import huggingface_hub.constants

        mp.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
        mp.setattr(datasets.config, "HF_MODULES_CACHE", home / "modules")
        mp.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield home / "datasets"


def load(out: Path, config: str, cache: Path):
    import datasets

    return datasets.load_dataset(str(out), name=config, cache_dir=str(cache))


@pytest.fixture(scope="module")
def exported(wh, tmp_path_factory):
    out = tmp_path_factory.mktemp("exports") / "hf"
    return out, export_cohort(wh, out, sql=ALL, images=True, masks=MASKS, format="hf")


# -- checks shared by the demo and the real exports -----------------------------------------------
def _key(row: dict) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def _rows(rows: list[dict]) -> list[str]:
    return sorted(map(_key, rows))


def expected(wh: Warehouse, case_ids: list[str]) -> dict[str, dict[str, list[str]]]:
    """Per table and split, the cohort's rows as the warehouse's SQL gives them (empty splits left out)."""
    out: dict[str, dict[str, list[str]]] = {}
    splits = wh.sql("SELECT DISTINCT coalesce(split, 'unassigned') FROM cases WHERE case_id IN (SELECT unnest($c))",
                    {"c": case_ids}).to_series().to_list()
    for name, table in schema.TABLES.items():
        if "case_id" not in table.names:
            out[name] = {"full": _rows(wh.sql(f"SELECT * FROM {name}").to_dicts())}
            continue
        out[name] = {}
        for split in splits:
            rows = wh.sql(f"""SELECT t.* FROM {name} t JOIN cases c ON c.case_id = t.case_id
                              WHERE coalesce(c.split, 'unassigned') = $s AND t.case_id IN (SELECT unnest($c))""",
                          {"s": split, "c": case_ids}).to_dicts()
            if rows:
                out[name][split] = _rows(rows)
    return {name: splits for name, splits in out.items() if splits}


def check_configs(out: Path, wh: Warehouse, case_ids: list[str], cache: Path, volumes: bool) -> dict:
    """Every config of the card loads (offline) with the warehouse's rows per split; returns the volumes."""
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(out / "README.md")
    configs = {c["config_name"]: c for c in card.data.configs}
    want = expected(wh, case_ids)
    assert set(configs) == set(want) | ({"volumes"} if volumes else set())
    assert [c for c in configs.values() if c.get("default")] == [configs["cases"]]
    for name in set(schema.TABLES) - set(want):  # tables without rows: named in the card, no config
        assert f"`{name}`" in card.text.split("so no config:")[1].splitlines()[0]
    loaded = {}
    for name, config in configs.items():
        ds = load(out, name, cache)
        assert list(ds) == [f["split"] for f in config["data_files"]]
        if name == "volumes":
            loaded = ds
            continue
        assert set(ds) == set(want[name]), name
        for split, rows in want[name].items():
            assert _rows(ds[split].to_list()) == rows, (name, split)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "hf" and manifest["snapshot_id"] == wh.snapshot_id
    assert manifest["row_counts"] == {t: sum(len(r) for r in want.get(t, {}).values()) for t in schema.TABLES}
    return loaded


def check_volumes(out: Path, wh: Warehouse, ds, masks: tuple[str, ...]) -> int:
    """Image and mask paths open with nibabel and equal the warehouse's arrays; returns images seen."""
    splits = dict(wh.sql("SELECT case_id, coalesce(split, 'unassigned') FROM cases").iter_rows())
    images = 0
    for split, rows in ds.items():
        for row in rows:
            case = row["case_id"]
            assert splits[case] == split
            if not wh.arrays.has_image(case):
                assert row["image"] is None
            else:
                hu, affine = wh.image(case)
                img = nib.load(out / row["image"])
                assert img.get_data_dtype() == np.int16 and np.array_equal(np.asanyarray(img.dataobj), hu)
                np.testing.assert_allclose(img.affine, affine, atol=1e-5)
                images += 1
            assert list(row["masks"]) == list(masks)
            for region, rel in row["masks"].items():
                mask, m_affine = wh.region_mask(case, region)
                nii = nib.load(out / rel)
                assert np.array_equal(np.asanyarray(nii.dataobj) == 1, mask), (case, region)
                np.testing.assert_allclose(nii.affine, m_affine, atol=1e-5)
    return images


# -- the demo-like warehouse ----------------------------------------------------------------------
def test_every_config_loads_with_the_warehouses_rows(wh, exported, hf_cache):
    out, summary = exported
    ids = wh.sql(ALL)["case_id"].sort().to_list()
    ds = check_configs(out, wh, ids, hf_cache, volumes=True)
    assert {s: len(d) for s, d in ds.items()} == {"train": 3, "validation": 3}
    assert check_volumes(out, wh, ds, MASKS) == 5  # valid_6 has no CT
    assert summary.notes == ["valid_6_a_1.nii.gz: no CT image in the store"]


def test_the_cards_nifti_recipe_decodes_to_nibabel_images(wh, exported, hf_cache):
    import datasets

    out, _ = exported
    root = str(out)
    ds = datasets.load_dataset(root, "volumes", split="validation", cache_dir=str(hf_cache))  # as the card says
    ds = ds.map(lambda r: {"image": r["image"] and str(Path(root, r["image"]))})
    ds = ds.cast_column("image", datasets.Nifti())
    assert 'ds = ds.cast_column("image", datasets.Nifti())' in (out / "README.md").read_text()
    seen = 0
    for row in ds:
        if row["image"] is None:
            assert not wh.arrays.has_image(row["case_id"])
            continue
        assert isinstance(row["image"], nib.Nifti1Image)
        assert np.array_equal(np.asanyarray(row["image"].dataobj), wh.image(row["case_id"])[0])
        seen += 1
    assert seen == 2


def test_card_yaml_round_trips_through_huggingface_hub(wh, exported):
    from huggingface_hub import DatasetCard, DatasetCardData

    out, _ = exported
    card = DatasetCard.load(out / "README.md")
    assert DatasetCard(str(card)).data.to_dict() == card.data.to_dict()  # parsed again, the same YAML
    assert DatasetCardData(**card.data.to_dict()).to_yaml() == card.data.to_yaml()
    data = card.data.to_dict()
    assert data["license"] == hf.LICENSE and data["language"] == ["en"]
    cases = next(c for c in data["configs"] if c["config_name"] == "cases")
    assert cases["data_files"] == [{"split": s, "path": f"data/cases/{s}-00000-of-00001.parquet"}
                                   for s in ("train", "validation")]
    text = card.text
    assert wh.snapshot_id in text and "    SELECT case_id FROM cases" in text
    assert "CC-BY-NC-SA-4.0" in text and "CC-BY-4.0" in text and "@article{zhang2024radgenome" in text
    assert schema.description(schema.CASES.field("scan_id")).split(";")[0] in text  # column descriptions
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == set(json.loads((out / "manifest.json").read_text())["files"]) | {"manifest.json"}
    assert {f for f in files if f.startswith("masks/train_1_a_1/")} == {
        "masks/train_1_a_1/left lung.nii.gz", "masks/train_1_a_1/heart.nii.gz"}


def test_cropped_volumes_are_the_warehouse_crops(wh, tmp_path, hf_cache):
    out = tmp_path / "crop"
    export_cohort(wh, out, sql=ALL + " WHERE split = 'train'", images=True, masks=["heart"], crop="left lung",
                  margin_mm=5, format="hf")
    assert "cropped to the box of `left lung` grown by 5 mm" in (out / "README.md").read_text()
    rows = load(out, "volumes", hf_cache)["train"]
    assert len(rows) == 3
    for row in rows:
        hu, _, affine = wh.region_crop(row["case_id"], "left lung", margin_mm=5)
        img, heart = nib.load(out / row["image"]), nib.load(out / row["masks"]["heart"])
        assert np.array_equal(np.asanyarray(img.dataobj), hu) and heart.shape == hu.shape
        np.testing.assert_allclose(img.affine, affine, atol=1e-5)


def test_dry_run_counts_the_files_and_bounds_their_bytes(wh, exported, tmp_path):
    out, real = exported
    dry = export_cohort(wh, tmp_path / "dry", sql=ALL, images=True, masks=MASKS, format="hf", dry_run=True)
    assert dry.dry_run and not dry.bytes_exact and dry.files == real.files
    assert dry.bytes >= real.bytes
    assert list(tmp_path.iterdir()) == []  # nothing written, no stage left


def test_cli_writes_what_its_dry_run_said(wh, tmp_path, hf_cache):
    cli, out = export_command(), tmp_path / "out"
    args = ["--warehouse", wh.root, "--sql", "SELECT case_id FROM cases WHERE split = 'validation'", "--format", "hf",
            out]
    dry = cli(*args, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert not out.exists()
    real = cli(*args)
    assert real.exit_code == 0, real.output
    said = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in dry.output.splitlines()[:3])}
    files = [p for p in out.rglob("*") if p.is_file()]
    assert said["cases"] == 3 and said["files"] == len(files)
    # tables only: the dry run's bytes are exact but for manifest.json's, which it bounds
    manifest = (out / "manifest.json").stat().st_size
    assert sum(p.stat().st_size for p in files) <= said["bytes"] <= sum(p.stat().st_size for p in files) + 20 * manifest
    ds = load(out, "cases", hf_cache)
    assert list(ds) == ["validation"] and sorted(ds["validation"]["case_id"]) == sorted(
        wh.sql("SELECT case_id FROM cases WHERE split = 'validation'")["case_id"])
    assert not (out / "data" / "volumes").exists() and "## Images and masks" not in (out / "README.md").read_text()


@pytest.mark.parametrize("split", ["dev set", "all", "train/1"])
def test_a_split_that_names_no_hub_split_is_refused_before_writing(wh, tmp_path, monkeypatch, split):
    ids = wh.sql(ALL)["case_id"].to_list()
    monkeypatch.setattr(hf, "read_splits", lambda _wh, _ids: {c: split if c == ids[0] else "train" for c in ids})
    with pytest.raises(ExportError) as e:
        export_cohort(wh, tmp_path / "out", sql=ALL, images=True, masks=MASKS, format="hf")
    assert "\n" not in str(e.value) and repr(split) in str(e.value) and e.value.hint
    assert list(tmp_path.iterdir()) == []


def test_case_splits_and_their_order():
    assert hf.case_splits({"a": None, "b": "validation", "c": "train"}) == {
        "a": "unassigned", "b": "validation", "c": "train"}
    assert hf.ordered_splits(["zeta", "validation", "unassigned", "train", "test"]) == [
        "train", "validation", "test", "unassigned", "zeta"]


# -- real data: the released tables, and a real CT with its masks ---------------------------------
def test_real_release_tables_load_config_by_config(real_warehouse, tmp_path, hf_cache):
    wh = Warehouse.open(real_warehouse)
    sql = "SELECT case_id FROM cases"  # the whole release sample: both splits, every table
    out = tmp_path / "hf"
    summary = export_cohort(wh, out, sql=sql, format="hf")
    ids = wh.sql(sql)["case_id"].sort().to_list()
    check_configs(out, wh, ids, hf_cache, volumes=False)
    assert summary.row_counts["vqa"] > 1000 and summary.row_counts["findings"] > 100
    with pytest.raises(ExportError, match="holds no arrays") as e:  # tables only: no CT to export
        export_cohort(wh, tmp_path / "x", sql=sql, images=True, format="hf")
    assert "\n" not in str(e.value) and e.value.hint and not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def ct_warehouse(shared_data, tmp_path_factory) -> Warehouse:
    from ingest.sources.folder import FolderSource
    from tests.fixtures.folder_data import image_folder, reports_csv

    tmp = tmp_path_factory.mktemp("hf_ct")
    images = image_folder(shared_data, tmp, names=("abdomen_small",))
    (tmp / "masks").mkdir()
    (tmp / "masks" / "abdomen_small").symlink_to(shared_data / "ct" / "abdomen_small" / "masks")
    reports = reports_csv(shared_data, tmp / "reports.csv", ["abdomen_small.nii.gz"])
    build(FolderSource(images, reports, [f"import:{tmp / 'masks'}"]), tmp / "wh", runner="local", progress=False)
    return Warehouse.open(tmp / "wh")


def test_real_ct_and_masks_load_as_volumes(ct_warehouse, tmp_path, hf_cache):
    wh = ct_warehouse
    assert {s["region"] for s in wh.arrays.structures("abdomen_small.nii.gz") if s["voxels"]} >= set(CT_MASKS)
    out = tmp_path / "hf"
    summary = export_cohort(wh, out, sql=ALL, images=True, masks=CT_MASKS, format="hf")
    ds = check_configs(out, wh, ["abdomen_small.nii.gz"], hf_cache, volumes=True)
    assert list(ds) == ["unassigned"]  # a folder case has no split
    assert check_volumes(out, wh, ds, CT_MASKS) == 1
    assert summary.notes == ["1 case without a split (cases.split is null): in the split 'unassigned' of every config"]
