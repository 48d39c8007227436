"""`radgenome show`: slices in the radiological convention, masks in their OME-Zarr colours, sentences beside."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from ingest.runner import build
from ingest.sources.folder import FolderSource
from tests.fixtures.folder_data import image_folder, reports_csv
from warehouse import Warehouse
from warehouse.cli import pipeline
from warehouse.core.anatomy import anatomy
from warehouse.core.errors import ArrayNotFoundError, UnknownRegionError
from warehouse.store.arrays.ome import region_rgba
from warehouse.viewer import _sentences, region_colour, render_case, to_display, views


def test_views_do_not_depend_on_the_stored_orientation():
    rng = np.random.default_rng(0)
    lps = rng.integers(0, 100, (6, 5, 4))
    a_lps = np.diag([-2.0, -1.5, 3.0, 1.0])
    ras = lps[::-1, ::-1, :]  # the same voxels stored R, A, S
    a_ras = a_lps.copy()
    a_ras[:3, 3] = a_lps[:3, :3] @ [5, 4, 0] + a_lps[:3, 3]
    a_ras[:3, :2] *= -1
    va, vb = views(to_display(lps, a_lps), (2, 1, 3)), views(to_display(ras, a_ras), (2, 1, 3))
    for name in ("axial", "coronal", "sagittal"):
        np.testing.assert_array_equal(va[name], vb[name])
    assert va["axial"][0, 0] == lps[0, 0, 3]  # top left: the patient's right, anterior
    assert va["coronal"][0, 0] == lps[0, 1, 3]  # top: the head


def test_colours_are_the_ome_zarr_ones():
    rid = anatomy().get("left lung").region_id
    assert region_colour(rid) == tuple(v / 255 for v in region_rgba(rid))


@pytest.fixture(scope="module")
def warehouse(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("viewer")
    images = image_folder(shared_data, tmp, names=("abdomen_small",))
    reports = reports_csv(shared_data, tmp / "r.csv", ["abdomen_small.nii.gz"])
    build(FolderSource(images, reports, ["builtin"]), tmp / "wh", runner="local", progress=False)
    return tmp / "wh"


def _cli() -> typer.Typer:
    app = typer.Typer()
    pipeline.register(app)
    app.command("noop")(lambda: None)  # a second command keeps `show` a subcommand
    return app


def test_show_writes_a_png_of_the_requested_size(warehouse, tmp_path):
    out = tmp_path / "case.png"
    result = CliRunner().invoke(_cli(), ["show", "--warehouse", str(warehouse), "abdomen_small.nii.gz",
                                         "--region", "lung", "-o", str(out), "--width", "1200", "--height", "500"])
    assert result.exit_code == 0, result.output
    png = mpimg.imread(out)
    assert out.stat().st_size > 20_000 and png.shape[:2] == (500, 1200)
    assert png[..., :3].std() > 0.05  # a picture, not a blank
    left = np.array(region_rgba(anatomy().get("left lung").region_id)[:3]) / 255
    near = np.abs(png[..., :3] - left).max(axis=-1) < 0.06  # the outline is drawn in the region's colour
    assert near.sum() > 30


def test_whole_case_and_errors(warehouse, tmp_path):
    result = CliRunner().invoke(_cli(), ["show", "-w", str(warehouse), "abdomen_small.nii.gz", "-o",
                                         str(tmp_path / "all.png")])
    assert result.exit_code == 0 and mpimg.imread(tmp_path / "all.png").shape[:2] == (640, 1800)
    bad = CliRunner().invoke(_cli(), ["show", "-w", str(warehouse), "abdomen_small.nii.gz", "--region", "liver",
                                      "-o", str(tmp_path / "x.png")])
    assert isinstance(bad.exception, ArrayNotFoundError) and "liver" in str(bad.exception)
    bad = CliRunner().invoke(_cli(), ["show", "-w", str(warehouse), "abdomen_small.nii.gz", "--region", "lung",
                                      "--mask-source", "monai", "-o", str(tmp_path / "x.png")])
    assert isinstance(bad.exception, ArrayNotFoundError) and "'monai'" in str(bad.exception)
    bad = CliRunner().invoke(_cli(), ["show", "-w", str(warehouse), "abdomen_small.nii.gz", "--region", "lunk"])
    assert isinstance(bad.exception, UnknownRegionError)


def test_sentences_beside_are_the_regions(warehouse):
    wh = Warehouse.open(warehouse)
    lung = _sentences(wh, "abdomen_small.nii.gz", anatomy().get("lung"))
    everything = _sentences(wh, "abdomen_small.nii.gz", None)
    assert lung and all(s.startswith("[lung") for s in lung)
    assert len(everything) >= len(lung) and any(not s.startswith("[lung") for s in everything)


def test_render_case_reads_through_a_warehouse(warehouse, tmp_path):
    with Warehouse.open(warehouse) as wh:
        out = render_case(wh, "abdomen_small.nii.gz", region="lung", out=tmp_path / "wh.png", width=600, height=300)
        assert mpimg.imread(out).shape[:2] == (300, 600)
