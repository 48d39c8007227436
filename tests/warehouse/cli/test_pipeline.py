"""`warehouse.cli.pipeline`: `radgenome show` (a PNG of the size asked for) and `radgenome ingest folder`'s
checks before any work (a reports file that cannot give a report is refused in one line, and nothing is
written). Ingesting a folder of real CTs is tests/ingest/sources/test_folder.py's.

A demo warehouse of two cases (the demo has CTs and masks).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import pytest
import typer
from typer.testing import CliRunner

from ingest.runner import build
from ingest.sources.demo import DemoSource
from tests.fixtures.cli import app_of, run
from tests.fixtures.csv_files import write_csv
from warehouse import Warehouse
from warehouse.cli import pipeline


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    """(warehouse root, its first case)."""
    root = tmp_path_factory.mktemp("pipeline_cli") / "wh"
    build(DemoSource(n=2), root, runner="local", progress=False)
    with Warehouse.open(root) as wh:
        return root, wh.sql("SELECT min(case_id) AS c FROM cases")["c"][0]


def _cli() -> typer.Typer:
    return app_of(pipeline)


# -- show -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("region", "width", "height"), [("lung", 600, 300), (None, 480, 200)])
def test_show_writes_a_png_of_the_size_asked_for(demo, tmp_path, region, width, height):
    root, case = demo
    out = tmp_path / "case.png"
    args = ["show", case, "-w", str(root), "-o", str(out), "--width", str(width), "--height", str(height)]
    res = CliRunner().invoke(_cli(), args + (["--region", region] if region else []))
    assert res.exit_code == 0, res.output
    assert res.stdout == f"wrote {out} ({width}x{height})\n"
    png = mpimg.imread(out)
    assert png.shape[:2] == (height, width) and png[..., :3].std() > 0.05  # a picture, not a blank


@pytest.mark.parametrize(("args", "phrase"), [
    (("show", "nope.nii.gz", "-w", "{W}", "-o", "{T}/x.png"), "no case 'nope.nii.gz'"),
    (("show", "{C}", "-w", "{W}", "-o", "{T}/x.png", "--region", "lunk"), "did you mean 'lung'"),
    (("show", "{C}", "-w", "{W}", "-o", "{T}/x.png", "--width", "100"), "--width"),
    (("show", "{C}", "-w", "{T}", "-o", "{T}/x.png"), "is not a warehouse"),
])
def test_show_mistakes_are_one_line_and_write_nothing(capsys, demo, tmp_path, args, phrase):
    root, case = demo
    code, out, err = run(capsys, *(a.format(W=root, C=case, T=tmp_path) for a in args))
    lines = [line for line in err.splitlines() if line.strip()]
    assert (code, out) == (2, "") and len(lines) == 1 and lines[0].startswith("error: ") and phrase in lines[0], err
    assert not (tmp_path / "x.png").exists()


# -- ingest folder ----------------------------------------------------------------------------------------
BAD_REPORTS = [
    ("no VolumeName", [["Name", "Findings_EN"], ["a.nii.gz", "Normal."]], "no VolumeName column; its columns: Name"),
    ("no report column", [["VolumeName", "Text"], ["a.nii.gz", "Normal."]],
     "none of ClinicalInformation_EN, Technique_EN, Findings_EN, Impressions_EN"),
    ("names in the wrong case", [["volumename", "findings_en"], ["a.nii.gz", "Normal."]],
     "near misses: volumename (should be VolumeName"),
    ("empty file", [], "its columns: (none)"),
]


@pytest.mark.parametrize(("rows", "phrase"), [b[1:] for b in BAD_REPORTS], ids=[b[0] for b in BAD_REPORTS])
def test_ingest_folder_refuses_a_reports_file_that_gives_no_report(capsys, tmp_path, rows, phrase):
    (tmp_path / "images").mkdir()
    reports = write_csv(tmp_path / "r.csv", rows)
    code, out, err = run(capsys, "ingest", "folder", "--images", str(tmp_path / "images"), "--reports", str(reports),
                         "-w", str(tmp_path / "wh"), "--runner", "local", "--no-progress")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"error: --reports {reports}: "), err
    assert phrase in lines[0] and "nothing was imported" in lines[0] and "Traceback" not in out + err
    assert not (tmp_path / "wh").exists()


def test_ingest_folder_refuses_utf16_reports(capsys, tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "r.csv").write_text("VolumeName,Findings_EN\na.nii.gz,Normal.\n", encoding="utf-16")
    code, _, err = run(capsys, "ingest", "folder", "--images", str(tmp_path / "images"), "--reports",
                       str(tmp_path / "r.csv"), "-w", str(tmp_path / "wh"))
    assert code == 1 and err.count("\n") == 1 and "UTF-16 text, not UTF-8" in err
    assert not (tmp_path / "wh").exists()


def test_ingest_folder_checks_its_paths_and_options_first(capsys, tmp_path):
    (tmp_path / "images").mkdir()
    reports = write_csv(tmp_path / "r.csv", [["VolumeName", "Findings_EN"], ["a.nii.gz", "Normal."]])
    base = ["ingest", "folder", "--images", str(tmp_path / "images"), "-w", str(tmp_path / "wh")]
    for args, phrase in ((base + ["--reports", str(tmp_path)], "is not a file"),
                         (base + ["--reports", str(reports), "--address", "x"], "--address needs --runner ray"),
                         (base + ["--reports", str(reports), "--runner", "spark"], "choose one of local, pool, ray"),
                         (["ingest", "folder", "--images", str(reports), "-w", str(tmp_path / "wh")],
                          "is not a folder")):
        code, out, err = run(capsys, *args)
        assert (code, out) == (2, "") and err.count("\n") == 1 and phrase in err, err
    assert not (tmp_path / "wh").exists()
