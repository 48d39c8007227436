"""Mask archives as streams: split parts, member safety, truncation, and merging archives by case."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ingest.sources.radgenome_masks import MaskInput, find_mask_inputs, iter_case_groups, iter_members
from ingest.sources.radgenome_streams import merge_archives
from ingest.sources.release_csv import ErrorSink
from tests.fixtures.release import split_file, write_tar_gz


def _members(cases: list[str], structures: list[str], kind: str = "anatomy") -> list[tuple[str, bytes]]:
    return [(f"train_{kind}_mask/seg_{c}/{s}.nii.gz", gzip.compress(f"{c}/{s}".encode() * 50, mtime=0))
            for c in cases for s in structures]


def _archive(tmp_path: Path, name: str, members: list[tuple[str, bytes]], parts: int = 0) -> MaskInput:
    path = tmp_path / "dataset" / name
    write_tar_gz(path, members)
    files = split_file(path, parts) if parts else [path]
    return MaskInput("anatomy" if "anatomy" in name else "region", "train", parts=tuple(files))


def test_split_parts_read_as_one_stream(tmp_path):
    members = _members(["train_1_a_1", "train_2_a_1"], ["lung", "heart", "left lung"])
    mask_input = _archive(tmp_path, "train_anatomy_mask.tar.gz", members, parts=5)
    assert [p.name for p in mask_input.parts] == [f"train_anatomy_mask_a{c}" for c in "abcde"]
    errors = ErrorSink("radgenome")
    assert list(iter_members(mask_input, errors)) == members
    assert errors.rows == []
    groups = list(iter_case_groups(mask_input, errors))
    assert [(c, [n for n, _, _ in s.members]) for c, s in groups] == [
        ("train_1_a_1.nii.gz", ["lung", "heart", "left lung"]), ("train_2_a_1.nii.gz", ["lung", "heart", "left lung"])]


def test_find_mask_inputs_knows_every_released_naming(tmp_path):
    data = tmp_path / "dataset"
    data.mkdir()
    for name in ("train_anatomy_mask_ab", "train_anatomy_mask_aa", "valid_region_mask.tar.gz",
                 "train_region_mask.tar.gz.part-01", "train_region_mask.tar.gz.part-00", "notes.txt"):
        (data / name).write_bytes(b"x")
    (data / "valid_anatomy_mask" / "seg_valid_1_a_1").mkdir(parents=True)
    found = {(m.kind, m.split): m for m in find_mask_inputs(tmp_path)}
    assert [p.name for p in found["anatomy", "train"].parts] == ["train_anatomy_mask_aa", "train_anatomy_mask_ab"]
    assert [p.name for p in found["region", "train"].parts] == ["train_region_mask.tar.gz.part-00",
                                                                "train_region_mask.tar.gz.part-01"]
    assert [p.name for p in found["region", "validation"].parts] == ["valid_region_mask.tar.gz"]
    assert found["anatomy", "validation"].folder == data / "valid_anatomy_mask"


def test_unsafe_members_are_refused_by_name(tmp_path):
    good = _members(["train_1_a_1"], ["lung"])
    mask_input = _archive(tmp_path, "train_region_mask.tar.gz",
                          [("../x", b"evil"), ("/etc/x.nii.gz", b"evil"), *good,
                           ("train_region_mask/seg_train_1_a_1/../../y.nii.gz", b"evil")])
    errors = ErrorSink("radgenome")
    assert list(iter_members(mask_input, errors)) == good
    assert [e["location"] for e in errors.rows] == ["../x", "/etc/x.nii.gz",
                                                    "train_region_mask/seg_train_1_a_1/../../y.nii.gz"]
    assert all(e["file"] == str(mask_input.parts[0]) and "leaves the archive" in e["error"] for e in errors.rows)
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()


def test_a_truncated_archive_keeps_the_cases_before_the_cut(tmp_path):
    cases = [f"train_{i}_a_1" for i in range(1, 6)]
    mask_input = _archive(tmp_path, "train_region_mask.tar.gz", _members(cases, ["lung", "heart"], "region"))
    path = mask_input.parts[0]
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])
    errors = ErrorSink("radgenome")
    got = [c for c, _ in iter_case_groups(mask_input, errors)]
    assert 0 < len(got) < 5 and got == [f"{c}.nii.gz" for c in cases[: len(got)]]
    assert len(errors.rows) == 1 and "ends early" in errors.rows[0]["error"]
    assert errors.rows[0]["location"].startswith("train_region_mask/seg_train_")


def test_archives_in_different_orders_merge_by_case_and_spill_past_the_budget(tmp_path):
    cases = [f"train_{i}_a_1" for i in range(1, 7)]
    region = _archive(tmp_path, "train_region_mask.tar.gz", _members(cases, ["lung", "heart"], "region"))
    anatomy = _archive(tmp_path, "train_anatomy_mask.tar.gz", _members(cases[::-1], ["left lung"]), parts=2)
    errors = ErrorSink("radgenome")
    merged = list(merge_archives([region, anatomy], errors, budget=0))
    assert errors.rows == []
    assert sorted(c for c, _, _ in merged) == sorted(f"{c}.nii.gz" for c in cases)
    spilled = 0
    for case, sets, spill in merged:
        assert [s.mask_source for s in sets] == ["radgenome-region", "radgenome"]
        assert [n for s in sets for n, _, _ in s.members] == ["lung", "heart", "left lung"]
        for s in sets:
            for name, payload, member in s.members:
                assert member.endswith(f"seg_{case[:-7]}/{name}.nii.gz")
                data = Path(payload).read_bytes() if isinstance(payload, str) else payload
                assert gzip.decompress(data).startswith(f"{case[:-7]}/{name}".encode())
                spilled += isinstance(payload, str)
        assert all(Path(p).is_dir() for p in spill)
    assert spilled > 0, "with budget 0, waiting cases go to disk"


@pytest.mark.parametrize("budget", [0, 1 << 30])
def test_one_archive_hands_each_case_on_at_once(tmp_path, budget):
    cases = [f"train_{i}_a_1" for i in range(1, 4)]
    region = _archive(tmp_path, "train_region_mask.tar.gz", _members(cases, ["lung"], "region"))
    merged = list(merge_archives([region], ErrorSink("radgenome"), budget=budget))
    assert [c for c, _, _ in merged] == [f"{c}.nii.gz" for c in cases]
    assert all(not spill for _, _, spill in merged), "nothing waits, so nothing spills"


def test_scattered_members_of_an_emitted_case_are_an_error(tmp_path):
    members = _members(["train_1_a_1"], ["lung"]) + _members(["train_2_a_1"], ["lung"]) + \
        _members(["train_1_a_1"], ["heart"])
    region = _archive(tmp_path, "train_region_mask.tar.gz", members)
    errors = ErrorSink("radgenome")
    merged = list(merge_archives([region], errors))
    assert [c for c, _, _ in merged] == ["train_1_a_1.nii.gz", "train_2_a_1.nii.gz"]
    assert len(errors.rows) == 1 and "not together" in errors.rows[0]["error"]
    assert errors.rows[0]["case_id"] == "train_1_a_1.nii.gz"


def test_stream_problems_after_the_last_case_are_still_reported(tmp_path):
    from ingest.runner import BuildFailedError, build
    from ingest.sources.radgenome import RadGenomeSource

    _archive(tmp_path / "release", "valid_region_mask.tar.gz", [("../../escape.nii.gz", b"evil")])
    with pytest.raises(BuildFailedError) as e:  # its only member is rejected: nothing to publish
        build(RadGenomeSource(tmp_path / "release"), tmp_path / "wh", runner="local", progress=False)
    rows = e.value.errors
    assert [(r["location"], r["stage"]) for r in rows] == [("../../escape.nii.gz", "masks")]
    assert rows[0]["file"].endswith("valid_region_mask.tar.gz") and not (tmp_path / "wh").exists()
    assert not (tmp_path / "escape.nii.gz").exists()
