"""One released case's job (`ingest.sources.radgenome_case`), run directly: its image and mask sets into
the array store, its `cases` and `region_stats` rows, and an `ingest_errors` row naming the file (and
archive member) for each part that fails while the rest of the case is kept."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from ingest.job import JobContext
from ingest.sources.ct_rate import MetadataRow
from ingest.sources.demo import generate_case
from ingest.sources.radgenome_case import ReleaseCaseJob, case_row, resolve_mask_name
from ingest.sources.radgenome_decode import read_header
from ingest.sources.radgenome_masks import MaskSet
from ingest.sources.volume_names import parse
from tests.fixtures.release import nifti_bytes, released_masks
from warehouse.core.errors import UnknownRegionError
from warehouse.core.grid import Grid, to_lps

SOURCE = "radgenome"  # the build's source name, on every error row
MASKS_ONLY = "train_3_a_1.nii.gz"
SHAPE = (12, 10, 8)
# Array axes to A, R, S (not the stored L, P, S): the stored grid swaps the first two axes and flips them.
SWAPPED = np.array([[0.0, 1.5, 0.0, -7.0], [2.0, 0.0, 0.0, -9.0], [0.0, 0.0, 3.0, -12.0], [0.0, 0.0, 0.0, 1.0]])


def _blob(lo: tuple[int, int, int], hi: tuple[int, int, int], shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = 1
    return m


SMALL = {"heart": _blob((2, 2, 1), (6, 5, 4)), "aorta": _blob((6, 4, 2), (9, 7, 7)),
         "esophagus": _blob((1, 6, 0), (3, 9, 8))}


@pytest.fixture(scope="module")
def case():
    """One demo case (96 x 96 x 64, LPS), reconstruction 1: a RadGenome image and masks."""
    c = generate_case(0, 0)
    assert parse(c.case_id).reconstruction == 1
    return c


def _ctx(tmp_path: Path) -> JobContext:
    return JobContext(arrays_path=tmp_path / "arrays.zarr", source=SOURCE)


def _store(tmp_path: Path):
    from warehouse.store.arrays import ArrayStore

    return ArrayStore(tmp_path / "arrays.zarr", mode="r")


def _archive_set(tmp_path: Path, case_id: str, masks, affine, kind: str = "region",
                 mask_source: str = "radgenome-region") -> MaskSet:
    """A case's masks as archive members (bytes); the archive itself is never opened by the job."""
    folder = parse(case_id).mask_folder(kind)
    return MaskSet(mask_source, str(tmp_path / f"train_{kind}_mask.tar.gz"),
                   tuple((name, nifti_bytes(m, affine), f"{folder}/{name}.nii.gz") for name, m in masks))


def _folder_set(tmp_path: Path, case_id: str, masks, affine, mask_source: str = "radgenome") -> MaskSet:
    """A case's masks as files of an extracted folder (payload and place: the path)."""
    root = tmp_path / "valid_anatomy_mask"
    seg = root / f"seg_{parse(case_id).stem}"
    seg.mkdir(parents=True, exist_ok=True)
    members = []
    for name, m in masks:
        (seg / f"{name}.nii.gz").write_bytes(nifti_bytes(m, affine))
        members.append((name, str(seg / f"{name}.nii.gz"), str(seg / f"{name}.nii.gz")))
    return MaskSet(mask_source, str(root), tuple(members))


def _image(tmp_path: Path, case) -> str:
    path = tmp_path / parse(case.case_id).radgenome_image_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(nifti_bytes(case.hu, case.affine))
    return str(path)


def _names(store, case_id: str) -> set[tuple[str, str]]:
    return {(s["mask_source"], s["name"]) for s in store.structures(case_id)}


def _only(tables: dict, table: str) -> dict:
    assert len(tables[table]) == 1, tables[table]
    return tables[table][0]


# -- a whole case ------------------------------------------------------------------------------------


def test_image_and_masks_give_rows_and_arrays_that_read_back_equal(tmp_path, case):
    region, structures = released_masks(case)
    anatomy_part = [(n, m) for n, m in structures if n in ("aorta", "left lung", "liver", "trachea", "gallbladder")]
    assert len(anatomy_part) == 5 and not dict(anatomy_part)["gallbladder"].any()
    job = ReleaseCaseJob(case_id=case.case_id, image=_image(tmp_path, case), split="train",
                         masks=(_archive_set(tmp_path, case.case_id, region, case.affine),
                                _folder_set(tmp_path, case.case_id, anatomy_part, case.affine)))
    tables = job.run(_ctx(tmp_path)).tables()

    assert set(tables) == {"cases", "region_stats"}, tables.get("ingest_errors")
    row = _only(tables, "cases")
    assert row["case_id"] == case.case_id and row["source"] == "radgenome" and row["split"] == "train"
    assert row["has_image"] and row["has_masks"] and row["orientation"] == "LPS"
    assert (row["shape_x"], row["shape_y"], row["shape_z"]) == case.hu.shape
    spacing = np.linalg.norm(case.affine[:3, :3], axis=0)
    assert [row[f"spacing_{a}"] for a in "xyz"] == pytest.approx(spacing)

    stats = {(r["mask_source"], r["region_id"]): r for r in tables["region_stats"]}
    assert all(r["case_id"] == case.case_id for r in tables["region_stats"])
    store = _store(tmp_path)
    hu, affine = store.image(case.case_id)
    assert np.array_equal(hu, np.maximum(case.hu, -1024)) and np.allclose(affine, case.affine)
    stored = {(s["mask_source"], s["name"]): s for s in store.structures(case.case_id)}
    expected = [("radgenome-region", n, m) for n, m in region] + [("radgenome", n, m) for n, m in anatomy_part]
    assert set(stored) == {(src, n) for src, n, _ in expected}
    for src, name, mask in expected:
        region_of = resolve_mask_name(name)
        assert stats[src, region_of.region_id]["voxels"] == int(mask.sum()), (src, name)
        assert stored[src, name]["voxels"] == int(mask.sum()), (src, name)
        if mask.any():
            got, got_affine = store.region_mask(case.case_id, region_of.name, mask_source=src)
            assert np.array_equal(got, mask != 0) and np.allclose(got_affine, case.affine), (src, name)


def test_a_case_with_neither_image_nor_masks_is_its_row_and_carried_errors_only(tmp_path):
    carried = {"source": SOURCE, "case_id": "valid_4_b_2.nii.gz", "stage": "read", "file": "x.csv",
               "location": "line 3", "error": "duplicate Volumename"}
    tables = ReleaseCaseJob(case_id="valid_4_b_2.nii.gz", source="ct_rate", errors=(carried,)).run(
        _ctx(tmp_path)).tables()
    assert tables == {"cases": [case_row("valid_4_b_2.nii.gz", "ct_rate", None, [], SOURCE)],
                      "ingest_errors": [carried]}
    assert not (tmp_path / "arrays.zarr").exists(), "a case with no array opens no store"


def test_an_image_stored_in_another_orientation_keeps_its_masks_on_it(tmp_path, case):
    """The same case written R, A, S (x and y flipped): image and masks come back on the L, P, S grid."""
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[:2, 3] = np.array(case.hu.shape[:2]) - 1
    ras_affine = case.affine @ flip
    path = tmp_path / "ras.nii.gz"
    path.write_bytes(nifti_bytes(case.hu[::-1, ::-1], ras_affine))
    region, _ = released_masks(case)
    masks = [(n, m[::-1, ::-1]) for n, m in region]
    job = ReleaseCaseJob(case_id=case.case_id, image=str(path),
                         masks=(_archive_set(tmp_path, case.case_id, masks, ras_affine),))
    tables = job.run(_ctx(tmp_path)).tables()
    assert "ingest_errors" not in tables
    assert _only(tables, "cases")["orientation"] == "LPS"
    store = _store(tmp_path)
    hu, affine = store.image(case.case_id)
    assert np.array_equal(hu, np.maximum(case.hu, -1024)) and np.allclose(affine, case.affine)
    for name, mask in region:
        if mask.any():
            got, _ = store.region_mask(case.case_id, resolve_mask_name(name).name, mask_source="radgenome-region")
            assert np.array_equal(got, mask != 0), name


def test_a_ct_rate_volume_is_rescaled_with_its_metadata(tmp_path, case):
    meta = {k: "" if v is None else v for k, v in case.metadata.items()}
    slope, inter = float(meta["RescaleSlope"]), float(meta["RescaleIntercept"])
    raw = np.rint((case.hu.astype(np.float64) - inter) / slope).astype(np.int16)
    path = tmp_path / parse(case.case_id).ct_rate_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(nifti_bytes(raw, None, bare=True))
    job = ReleaseCaseJob(case_id=case.case_id, source="ct_rate", image=str(path), image_kind="ct_rate",
                         metadata=MetadataRow(values=meta, file="train_metadata.csv", line=2))
    tables = job.run(_ctx(tmp_path)).tables()
    assert "ingest_errors" not in tables and "region_stats" not in tables
    row = _only(tables, "cases")
    assert row["has_image"] and not row["has_masks"] and row["source"] == "ct_rate"
    assert row["age"] == int(meta["PatientAge"][:-1]) and json.loads(row["metadata_json"]) == meta
    hu, _ = _store(tmp_path).image(case.case_id)
    assert np.array_equal(hu, np.maximum(case.hu, -1024))


def test_a_ct_rate_volume_without_geometry_is_an_image_row_naming_the_file(tmp_path, case):
    path = tmp_path / "bare.nii.gz"
    path.write_bytes(nifti_bytes(case.hu, None, bare=True))
    job = ReleaseCaseJob(case_id=case.case_id, image=str(path), image_kind="ct_rate")
    tables = job.run(_ctx(tmp_path)).tables()
    err = _only(tables, "ingest_errors")
    assert (err["stage"], err["file"], err["case_id"], err["source"]) == ("image", str(path), case.case_id, SOURCE)
    assert "no geometry" in err["error"]
    assert not _only(tables, "cases")["has_image"]


# -- masks without an image ------------------------------------------------------------------------


def test_masks_only_take_their_grid_from_the_masks_as_stored(tmp_path):
    job = ReleaseCaseJob(case_id=MASKS_ONLY, masks=(_archive_set(tmp_path, MASKS_ONLY, SMALL.items(), SWAPPED),))
    tables = job.run(_ctx(tmp_path)).tables()
    assert "ingest_errors" not in tables
    row = _only(tables, "cases")
    assert row["has_masks"] and not row["has_image"]
    stored = Grid(SHAPE, SWAPPED).to_lps()
    assert stored.shape == (10, 12, 8), "the A and R axes swap places on the stored grid"
    assert (row["shape_x"], row["shape_y"], row["shape_z"]) == stored.shape
    assert [row[f"spacing_{a}"] for a in "xyz"] == pytest.approx([1.5, 2.0, 3.0])
    assert row["orientation"] == "LPS"
    store = _store(tmp_path)
    assert store.grid(MASKS_ONLY).same_as(stored) and not store.has_image(MASKS_ONLY)
    for name, mask in SMALL.items():
        got, _ = store.region_mask(MASKS_ONLY, name, mask_source="radgenome-region")
        assert np.array_equal(got, to_lps(mask, SWAPPED)[0] != 0), name
    assert {r["region_id"] for r in tables["region_stats"]} >= {resolve_mask_name(n).region_id for n in SMALL}


@pytest.mark.parametrize("layout", ["archive", "folder"])
def test_without_an_image_a_mask_on_another_grid_is_refused_naming_its_file(tmp_path, layout):
    masks = [*SMALL.items(), ("trachea", _blob((0, 0, 0), (2, 2, 2), (12, 10, 9)))]
    make = _archive_set if layout == "archive" else _folder_set
    mask_set = make(tmp_path, MASKS_ONLY, masks, SWAPPED)
    tables = ReleaseCaseJob(case_id=MASKS_ONLY, masks=(mask_set,)).run(_ctx(tmp_path)).tables()

    err = _only(tables, "ingest_errors")
    _, _, where = mask_set.members[-1]
    if layout == "archive":  # the archive and the member in it
        assert (err["file"], err["location"]) == (mask_set.origin, where)
    else:  # the file itself
        assert (err["file"], err["location"]) == (where, None)
        assert err["file"].endswith("/trachea.nii.gz")
    assert (err["stage"], err["case_id"], err["source"]) == ("masks", MASKS_ONLY, SOURCE)
    assert "does not match the case's other masks" in err["error"] and "(10, 12, 9)" in err["error"]
    row = _only(tables, "cases")
    assert row["has_masks"] and (row["shape_x"], row["shape_y"], row["shape_z"]) == (10, 12, 8)
    assert {n for _, n in _names(_store(tmp_path), MASKS_ONLY)} == set(SMALL)


def test_without_an_image_a_second_mask_set_on_another_grid_is_skipped_whole(tmp_path):
    other = np.diag([1.0, 1.0, 2.0, 1.0])
    first = _archive_set(tmp_path, MASKS_ONLY, SMALL.items(), SWAPPED)
    second = _folder_set(tmp_path, MASKS_ONLY, [("liver", _blob((1, 1, 1), (3, 3, 3)))], other)
    tables = ReleaseCaseJob(case_id=MASKS_ONLY, masks=(first, second)).run(_ctx(tmp_path)).tables()
    err = _only(tables, "ingest_errors")
    assert (err["stage"], err["file"], err["location"]) == ("masks", second.origin, None)
    assert "the case's masks from this input are skipped" in err["error"]
    assert _names(_store(tmp_path), MASKS_ONLY) == {("radgenome-region", n) for n in SMALL}
    row = _only(tables, "cases")
    assert row["has_masks"] and (row["shape_x"], row["shape_y"], row["shape_z"]) == (10, 12, 8)


# -- one bad mask among good ones -----------------------------------------------------------------


def _truncated_voxels() -> bytes:
    """A mask whose header reads but whose gzip stream ends early (noise: it does not compress away)."""
    noise = np.random.default_rng(0).integers(0, 2, SHAPE).astype(np.uint8)
    data = nifti_bytes(noise, SWAPPED)[:-40]
    assert read_header(data)[0] == SHAPE
    return data


BAD = {  # problem -> (structure name, payload, member file name, words of the message)
    "unknown name": ("liverwurst", nifti_bytes(SMALL["heart"], SWAPPED), "liverwurst.nii.gz",
                     "unknown anatomy region 'liverwurst'"),
    "duplicate name": ("heart", gzip.decompress(nifti_bytes(SMALL["aorta"], SWAPPED)), "heart.nii",
                       "a second mask named 'heart'"),
    "the same region by a synonym": ("cardiac", nifti_bytes(SMALL["aorta"], SWAPPED), "cardiac.nii.gz",
                                     "a second mask named 'cardiac' for the case's region 'heart'"),
    "truncated header": ("spleen", nifti_bytes(SMALL["aorta"], SWAPPED)[:20], "spleen.nii.gz",
                         "cannot read the mask (ValueError: not a NIfTI file"),
    "truncated voxels": ("liver", _truncated_voxels(), "liver.nii.gz", "cannot read the mask (EOFError"),
    "label values": ("trachea", nifti_bytes(SMALL["aorta"] * 2, SWAPPED), "trachea.nii.gz",
                     "mask values must be 0 or 1; it holds 2"),
}


@pytest.mark.parametrize("problem", list(BAD))
def test_a_bad_mask_is_one_error_row_and_the_rest_is_written(tmp_path, problem):
    name, payload, file_name, words = BAD[problem]
    good = _archive_set(tmp_path, MASKS_ONLY, SMALL.items(), SWAPPED)
    where = f"{parse(MASKS_ONLY).mask_folder('region')}/{file_name}"
    mask_set = MaskSet(good.mask_source, good.origin, (good.members[0], (name, payload, where), *good.members[1:]))
    tables = ReleaseCaseJob(case_id=MASKS_ONLY, masks=(mask_set,)).run(_ctx(tmp_path)).tables()

    err = _only(tables, "ingest_errors")
    assert (err["stage"], err["file"], err["location"], err["case_id"]) == ("masks", good.origin, where, MASKS_ONLY)
    assert words in err["error"], err["error"]
    if problem in ("duplicate name", "the same region by a synonym"):
        assert good.members[0][2] in err["error"], "the message names the first file of that region"
    store = _store(tmp_path)
    assert _names(store, MASKS_ONLY) == {("radgenome-region", n) for n in SMALL}
    got, _ = store.region_mask(MASKS_ONLY, "heart", mask_source="radgenome-region")
    assert np.array_equal(got, to_lps(SMALL["heart"], SWAPPED)[0] != 0), "the first 'heart' is the one kept"
    ids = {r["region_id"] for r in tables["region_stats"]}
    assert {resolve_mask_name(n).region_id for n in SMALL} <= ids
    if problem not in ("unknown name", "duplicate name", "the same region by a synonym"):
        assert resolve_mask_name(name).region_id not in ids
    assert _only(tables, "cases")["has_masks"]


def test_every_bad_mask_of_a_set_is_its_own_row(tmp_path):
    good = _archive_set(tmp_path, MASKS_ONLY, SMALL.items(), SWAPPED)
    folder = parse(MASKS_ONLY).mask_folder("region")
    bad = tuple((n, p, f"{folder}/{f}") for n, p, f, _ in BAD.values())
    mask_set = MaskSet(good.mask_source, good.origin, good.members + bad)
    tables = ReleaseCaseJob(case_id=MASKS_ONLY, masks=(mask_set,)).run(_ctx(tmp_path)).tables()
    errors = tables["ingest_errors"]
    assert sorted(e["location"] for e in errors) == sorted(w for _, _, w in bad)
    for e, (_, _, _, words) in zip(sorted(errors, key=lambda e: [w for _, _, w in bad].index(e["location"])),
                                   BAD.values(), strict=True):
        assert words in e["error"]
    assert _names(_store(tmp_path), MASKS_ONLY) == {("radgenome-region", n) for n in SMALL}


def test_a_set_of_only_bad_masks_leaves_the_case_without_masks(tmp_path):
    folder = parse(MASKS_ONLY).mask_folder("region")
    _, payload, _, _ = BAD["truncated voxels"]
    mask_set = MaskSet("radgenome-region", str(tmp_path / "train_region_mask.tar.gz"),
                       (("liver", payload, f"{folder}/liver.nii.gz"),))
    tables = ReleaseCaseJob(case_id=MASKS_ONLY, masks=(mask_set,)).run(_ctx(tmp_path)).tables()
    assert _only(tables, "ingest_errors")["location"] == f"{folder}/liver.nii.gz"
    row = _only(tables, "cases")
    assert not row["has_masks"] and "shape_x" not in row
    assert tables.get("region_stats", []) == []


# -- with an image ------------------------------------------------------------------------------------


def test_with_an_image_a_mask_on_another_grid_is_refused_and_the_rest_kept(tmp_path, case):
    region, _ = released_masks(case)
    (odd, odd_mask), rest = region[0], region[1:]
    masks = [(odd, odd_mask[:, :, :-1]), *rest]
    mask_set = _archive_set(tmp_path, case.case_id, masks, case.affine)
    tables = ReleaseCaseJob(case_id=case.case_id, image=_image(tmp_path, case), masks=(mask_set,)).run(
        _ctx(tmp_path)).tables()
    err = _only(tables, "ingest_errors")
    assert (err["stage"], err["file"], err["location"]) == ("masks", mask_set.origin, mask_set.members[0][2])
    assert "does not match the image grid" in err["error"]
    row = _only(tables, "cases")
    assert row["has_image"] and row["has_masks"]
    assert _names(_store(tmp_path), case.case_id) == {("radgenome-region", n) for n, _ in rest}


def test_an_unreadable_image_is_an_image_row_and_the_masks_keep_their_grid(tmp_path, case):
    image = Path(_image(tmp_path, case))
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    region, _ = released_masks(case)
    job = ReleaseCaseJob(case_id=case.case_id, image=str(image),
                         masks=(_archive_set(tmp_path, case.case_id, region, case.affine),))
    tables = job.run(_ctx(tmp_path)).tables()
    err = _only(tables, "ingest_errors")
    assert (err["stage"], err["file"], err["location"]) == ("image", str(image), None)
    assert "cannot read NIfTI" in err["error"]
    row = _only(tables, "cases")
    assert not row["has_image"] and row["has_masks"]
    assert (row["shape_x"], row["shape_y"], row["shape_z"]) == case.hu.shape and row["orientation"] == "LPS"
    store = _store(tmp_path)
    assert not store.has_image(case.case_id)
    assert _names(store, case.case_id) == {("radgenome-region", n) for n, _ in region}


def test_spilled_member_folders_are_deleted_once_read(tmp_path):
    spill = tmp_path / "spill" / "seg_train_3_a_1"
    spill.mkdir(parents=True)
    (spill / "heart.nii.gz").write_bytes(nifti_bytes(SMALL["heart"], SWAPPED))
    mask_set = MaskSet("radgenome", str(tmp_path / "train_anatomy_mask_aa"),
                       (("heart", str(spill / "heart.nii.gz"), "train_anatomy_mask/seg_train_3_a_1/heart.nii.gz"),))
    tables = ReleaseCaseJob(case_id=MASKS_ONLY, masks=(mask_set,), spill=(str(spill),)).run(
        _ctx(tmp_path)).tables()
    assert "ingest_errors" not in tables and _only(tables, "cases")["has_masks"]
    assert not spill.exists()
    assert _names(_store(tmp_path), MASKS_ONLY) == {("radgenome", "heart")}


# -- case_row and resolve_mask_name -------------------------------------------------------------------


def test_case_row_takes_the_volume_names_parts():
    errors: list[dict] = []
    row = case_row("valid_12_b_2.nii.gz", "ct_rate", None, errors, SOURCE, split="train")
    assert row == {"case_id": "valid_12_b_2.nii.gz", "source": "ct_rate", "has_image": False, "has_masks": False,
                   "patient_id": "valid_12", "scan": "b", "scan_id": "valid_12_b", "reconstruction": 2,
                   "split": "validation"}, "the volume name's split wins over the file's"
    assert errors == []


def test_case_row_of_another_name_keeps_the_files_split():
    row = case_row("scan_0042.nii.gz", "radgenome", None, [], SOURCE, split="train")
    assert row == {"case_id": "scan_0042.nii.gz", "source": "radgenome", "has_image": False, "has_masks": False,
                   "split": "train"}


def test_case_row_adds_the_metadata_columns(case):
    meta = {k: "" if v is None else v for k, v in case.metadata.items()}
    errors: list[dict] = []
    row = case_row(case.case_id, "radgenome", MetadataRow(meta, "train_metadata.csv", 5), errors, SOURCE)
    assert errors == []
    assert (row["age"], row["sex"], row["manufacturer"]) == (int(meta["PatientAge"][:-1]), meta["PatientSex"],
                                                             meta["Manufacturer"])
    assert [row[f"spacing_{a}"] for a in "xyz"] == pytest.approx(np.linalg.norm(case.affine[:3, :3], axis=0),
                                                                 abs=1e-3)
    assert (row["shape_x"], row["shape_y"], row["shape_z"]) == case.hu.shape
    assert json.loads(row["metadata_json"]) == meta
    assert row["patient_id"] == parse(case.case_id).patient_id and not row["has_image"]


def test_case_row_names_each_metadata_problem_as_an_error_row(case):
    meta = {k: "" if v is None else v for k, v in case.metadata.items()}
    meta.update(ZSpacing="", PatientAge="old", RescaleSlope="0")
    errors: list[dict] = [{"stage": "read"}]
    row = case_row(case.case_id, "radgenome", MetadataRow(meta, "train_metadata.csv", 7), errors, SOURCE)
    assert row["spacing_z"] is None and row["age"] is None
    added = errors[1:]
    assert len(added) == 3 and errors[0] == {"stage": "read"}, "rows are appended to the list given"
    for e in added:
        assert (e["source"], e["case_id"], e["stage"], e["file"], e["location"]) == (
            SOURCE, case.case_id, "metadata", "train_metadata.csv", "line 7")
    text = " | ".join(e["error"] for e in added)
    assert "ZSpacing" in text and "'old'" in text and "RescaleSlope '0'" in text


def test_resolve_mask_name_reads_underscores_as_spaces():
    assert resolve_mask_name("pulmonary_artery").name == "pulmonary artery"
    assert resolve_mask_name("left lung").name == "left lung"
    with pytest.raises(UnknownRegionError, match="'no_such_organ'.*'no such organ'"):
        resolve_mask_name("no_such_organ")
    with pytest.raises(UnknownRegionError):
        resolve_mask_name("liverwurst")
