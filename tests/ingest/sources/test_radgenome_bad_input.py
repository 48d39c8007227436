"""Every kind of bad input in a release becomes an `ingest_errors` row naming its file and line or
member, with a message a person can act on; the rest of the build completes."""

from __future__ import annotations

import csv
import tarfile

import pyarrow.parquet as pq
import pytest

from ingest.runner import build
from ingest.sources.radgenome import RadGenomeSource
from ingest.sources.volume_names import parse
from tests.fixtures.release import write_release, write_tar_gz


def _append(path, line: bytes) -> int:
    """Append one line; returns its line number."""
    n = path.read_bytes().count(b"\n")
    with open(path, "ab") as f:
        f.write(line + b"\n")
    return n + 1


def _edit_metadata(path, case_id: str, **changes: str) -> int:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    line = next(i for i, r in enumerate(rows) if r["VolumeName"] == case_id) + 2
    rows[line - 2].update(changes)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return line


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    fx = write_release(root / "in", n=3, seed=1)
    masked, from_ct = [c.case_id for c in fx.cases if c.case_id in fx.masked], \
        [c.case_id for c in fx.cases if c.case_id not in fx.masked][0]
    a, b = masked
    files, data = fx.radgenome / "dataset/radgenome_files", fx.radgenome / "dataset"
    expect: dict[str, tuple] = {}
    # a truncated image
    image = data / parse(a).radgenome_image_path()
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    expect["truncated image"] = ("image", str(image), None, a)
    # a truncated mask member and a member named outside the archive
    archive = data / "train_region_mask.tar.gz"
    with tarfile.open(archive) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar]
    cut = next(n for n, _ in members if n.startswith(f"train_region_mask/seg_{parse(b).stem}/"))
    members = [("../x", b"evil")] + [(n, d[: len(d) // 2] if n == cut else d) for n, d in members]
    write_tar_gz(archive, members)
    expect["truncated member"] = ("masks", str(archive), cut, b)
    expect["member ../x"] = ("masks", str(archive), "../x", None)
    # a missing column, an unknown anatomy path, a duplicate Volumename, bad UTF-8
    (files / "validation_vqa_size.csv").write_text("Volumename,Anatomy,Abnormality\nvalid_1_a_1.nii.gz,lung,x\n")
    expect["missing column"] = ("read", str(files / "validation_vqa_size.csv"), "header", None)
    line = _append(files / "train_vqa_abnormality.csv", f"{a},lung/lung/left lung middle lobe,nodule".encode())
    expect["unknown path"] = ("read", str(files / "train_vqa_abnormality.csv"), f"line {line}", a)
    line = _append(files / "train_case_disorders.csv", f"{a},emphysema".encode())
    expect["duplicate Volumename"] = ("read", str(files / "train_case_disorders.csv"), f"line {line}", a)
    line = _append(files / "train_vqa_presence.csv", f"{b},lung,caf".encode() + b"\xe9,Yes.")
    expect["bad UTF-8"] = ("read", str(files / "train_vqa_presence.csv"), f"line {line}", b)
    # NaN spacing (the CT-RATE volume then has no geometry) and a missing spacing
    meta = fx.ct_rate / "dataset/metadata/train_metadata.csv"
    line = _edit_metadata(meta, from_ct, XYSpacing="[nan, nan]")
    expect["NaN spacing"] = ("metadata", str(meta), f"line {line}", from_ct)
    expect["no geometry"] = ("image", None, None, from_ct)
    line = _edit_metadata(meta, b, ZSpacing="")
    expect["missing spacing"] = ("metadata", str(meta), f"line {line}", b)
    summary = build(RadGenomeSource(fx.radgenome, fx.ct_rate), root / "wh", runner="local", progress=False)
    from warehouse.store.snapshot import open_snapshot

    snap = open_snapshot(root / "wh")
    return fx, summary, snap, expect


def _errors(snap) -> list[dict]:
    return pq.read_table(snap.table_path("ingest_errors")).to_pylist()


MESSAGES = {
    "truncated image": "cannot read NIfTI", "truncated member": "cannot read the mask",
    "member ../x": "leaves the archive", "missing column": "missing column(s) 'Size'",
    "unknown path": "unknown anatomy region 'lung/lung/left lung middle lobe'",
    "duplicate Volumename": "duplicate Volumename", "bad UTF-8": "not valid UTF-8",
    "NaN spacing": "missing or not a positive number", "no geometry": "XYSpacing/ZSpacing is missing or NaN",
    "missing spacing": "missing or not a positive number",
}


@pytest.mark.parametrize("problem", list(MESSAGES))
def test_each_bad_input_is_one_row_with_file_and_place(broken, problem):
    _, _, snap, expect = broken
    stage, file, location, case_id = expect[problem]
    rows = [e for e in _errors(snap) if e["stage"] == stage and MESSAGES[problem] in e["error"]
            and (file is None or e["file"] == file) and e["location"] == location]
    assert len(rows) == 1, (problem, _errors(snap))
    row = rows[0]
    assert (row["source"], row["case_id"]) == ("radgenome", case_id)
    if problem == "no geometry":
        assert row["file"].endswith(parse(case_id).ct_rate_path().name)


def test_the_rest_of_the_build_completes_and_the_summary_counts_them(broken):
    fx, summary, snap, expect = broken
    assert len(_errors(snap)) == len(expect)
    assert summary.errors_by_stage == {"read": 4, "image": 2, "masks": 2, "metadata": 2}
    cases = {c["case_id"]: c for c in pq.read_table(snap.table_path("cases")).to_pylist()}
    assert set(cases) == {c.case_id for c in fx.cases}, "rows of the file with a missing column are not read"
    a, b = fx.masked
    assert not cases[a]["has_image"] and cases[a]["has_masks"], "its masks are kept without the image"
    assert cases[b]["has_image"] and cases[b]["has_masks"] and cases[b]["spacing_z"] is not None
    vqa = pq.read_table(snap.table_path("vqa"), columns=["case_id"]).num_rows
    assert vqa == sum(n for rel, n in fx.rows.items() if "_vqa_" in rel or "case_disorders" in rel)
    from warehouse.store.arrays import ArrayStore

    region = {s["name"] for s in ArrayStore(snap.arrays_path, mode="r").structures(b)
              if s["mask_source"] == "radgenome-region"}
    cut = expect["truncated member"][2].rsplit("/", 1)[1].removesuffix(".nii.gz")
    assert region and cut not in region, "the case's other region masks are kept"
