"""`warehouse.cli.release`: `radgenome export-release` (latest or `--snapshot`), `radgenome ingest radgenome`
(its inventory of the files used, then the build) and their mistakes as one line with an exit code.

A demo warehouse with two snapshots (one case, then two); a release of two hand-written CSVs for the ingest.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ingest.runner import build
from ingest.sources.demo import DemoSource
from ingest.sources.radgenome import RadGenomeSource
from tests.fixtures.cli import app_of, run
from tests.fixtures.csv_files import read_csv, write_csv
from warehouse import Warehouse
from warehouse.cli import release
from warehouse.cli.release import _count, print_inventory
from warehouse.exports import export_release

METADATA = "ct_rate/dataset/metadata/train_metadata.csv"  # what a demo warehouse gives back (released rows only)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("release_cli") / "wh"
    first = build(DemoSource(n=1), root, runner="local", progress=False)
    second = build(DemoSource(n=2), root, runner="local", progress=False)
    return {"root": root, "first": first.snapshot_id, "second": second.snapshot_id}


def _cli() -> typer.Typer:
    return app_of(release)


# -- export-release ------------------------------------------------------------------------------------
def test_export_release_writes_what_the_function_writes(built, tmp_path):
    res = CliRunner().invoke(_cli(), ["export-release", str(tmp_path / "cli"), "-w", str(built["root"])])
    assert res.exit_code == 0, res.output
    with Warehouse.open(built["root"]) as wh:
        written = export_release(wh, tmp_path / "api")
    assert written == {METADATA: 2}
    lines = res.stdout.splitlines()
    assert lines == [f"{n:>10,}  {tmp_path / 'cli' / rel}" for rel, n in written.items()] + ["1 files, 2 rows"]
    for rel in written:
        assert (tmp_path / "cli" / rel).read_bytes() == (tmp_path / "api" / rel).read_bytes()


def test_export_release_of_an_older_snapshot(built, tmp_path):
    res = CliRunner().invoke(_cli(), ["export-release", str(tmp_path / "old"), "-w", str(built["root"]),
                                      "--snapshot", built["first"]])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[-1] == "1 files, 1 rows"
    rows = read_csv(tmp_path / "old" / METADATA)
    with Warehouse.open(built["root"], built["first"]) as old:
        first = old.sql("SELECT case_id FROM cases")["case_id"].to_list()
    assert len(first) == 1 and [r[0] for r in rows[1:]] == first  # the first snapshot's one case


def test_export_release_mistakes_are_one_line(capsys, built, tmp_path):
    code, out, err = run(capsys, "export-release", str(tmp_path / "x"), "-w", str(built["root"]),
                         "--snapshot", "00009-deadbeef")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "no snapshot '00009-deadbeef'" in err
    code, _, err = run(capsys, "export-release", str(tmp_path / "x"))
    assert code == 2 and "Missing option '--warehouse'" in err
    assert not (tmp_path / "x").exists()


# -- ingest radgenome ---------------------------------------------------------------------------------
@pytest.fixture
def csv_release(tmp_path) -> Path:
    """Two of RadGenome's CSVs, one case: the smallest release a build reads."""
    folder = tmp_path / "release" / "dataset" / "radgenome_files"
    folder.mkdir(parents=True)
    write_csv(folder / "train_region_report.csv", [
        ["Volumename", "Anatomy", "Sentence"], ["train_1_a_1.nii.gz", "", "Whole report."],
        ["train_1_a_1.nii.gz", "lung", "A nodule in the lung."]])
    write_csv(folder / "train_vqa_size.csv", [
        ["Volumename", "Anatomy", "Abnormality", "Size"], ["train_1_a_1.nii.gz", "lung", "nodule", "5 mm"]])
    return tmp_path / "release"


def test_ingest_radgenome_prints_its_inventory_then_builds(csv_release, tmp_path):
    res = CliRunner().invoke(_cli(), ["ingest", "radgenome", "--release", str(csv_release), "-w", str(tmp_path / "wh"),
                                      "--runner", "local", "--no-progress", "--no-text-stages"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "files used:"
    assert any(line.startswith("  region reports (train): 1 file (") for line in lines)
    assert any(line.startswith("  not found: ") and "case disorders" in line for line in lines)
    assert "1 cases, 1 built" in res.stdout
    with Warehouse.open(tmp_path / "wh") as wh:
        assert wh.sql("SELECT text FROM sentences ORDER BY ordinal")["text"].to_list() == [
            "Whole report.", "A nodule in the lung."]
        assert wh.sql("SELECT answer FROM vqa")["answer"].to_list() == ["5 mm"]


def test_print_inventory_lists_every_file_when_verbose(csv_release, capsys):
    source = RadGenomeSource(csv_release, None)
    print_inventory(source)
    short = capsys.readouterr().out
    print_inventory(source, verbose=True)
    long = capsys.readouterr().out
    files = sorted(csv_release.rglob("*.csv"))
    assert all(short.count(str(p)) == 1 and f"({p})" in short for p in files)  # a lone file: named in brackets
    assert all(long.count(str(p)) == 2 and f"      {p}\n" in long for p in files)  # and on a line of its own
    assert len(long.splitlines()) == len(short.splitlines()) + len(files)


def test_count_says_a_kind_in_a_few_words(tmp_path):
    (tmp_path / "seg").mkdir()
    archive = tmp_path / "train_region_mask.tar.gz"
    one, two = tmp_path / "a.csv", tmp_path / "b.csv"
    assert _count("preprocessed images (train)", [one] * 1200) == "1,200 volumes"
    assert _count("CT-RATE volumes", [one]) == "1 volumes"
    assert _count("anatomy masks (validation)", [archive, tmp_path / "seg"]) == "train_region_mask.tar.gz, seg/"
    assert _count("region reports (train)", [one]) == f"1 file ({one})"
    assert _count("VQA size (train)", [one, two]) == "2 files"


@pytest.mark.parametrize(("args", "code", "phrase"), [
    (("ingest", "radgenome", "-w", "{T}/wh"), 2, "give --release, --ct-rate or both"),
    (("ingest", "radgenome", "--release", "{T}/nope", "-w", "{T}/wh"), 2, "is not a folder"),
    (("ingest", "radgenome", "--ct-rate", "{T}/file.txt", "-w", "{T}/wh"), 2, "is not a folder"),
    (("ingest", "radgenome", "--release", "{T}/empty", "-w", "{T}/wh"), 1, "none of the released files are in it"),
    (("ingest", "radgenome", "--release", "{T}/empty", "-w", "{T}/wh", "--runner", "spark"), 2,
     "choose one of local, pool, ray"),
])
def test_ingest_radgenome_mistakes_are_one_line(capsys, tmp_path, args, code, phrase):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    got, out, err = run(capsys, *(a.format(T=tmp_path) for a in args))
    lines = [line for line in err.splitlines() if line.strip()]
    assert got == code and len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], err
    assert not (tmp_path / "wh").exists()
