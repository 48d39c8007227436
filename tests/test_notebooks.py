"""The notebooks run top to bottom on a fresh clone: the first builds the demo warehouse, the others
reuse it, and each saves its figures. They are committed without outputs.

Each runs in a Jupyter kernel of this interpreter (nbclient, ipykernel's ``python3`` kernel) with
the repository root as working directory and the warehouse, figures and exports in a temporary
folder, so the run leaves the tree as it found it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# notebook -> the figures it saves under RADGENOME_FIGURES (run in this order: 01 builds the demo)
FIGURES = {
    "01_dataset_overview.ipynb": ["01_vqa_types.png", "01_fig4ab_normal_abnormal.png",
                                  "01_fig4c_abnormalities.png", "01_fig4d_disorders.png"],
    "02_cohort.ipynb": ["02_nodule_sizes.png", "02_export_batch.png", "02_region_dataset.png"],
    "03_case_viewer.ipynb": ["03_viewer_lung.png", "03_viewer_region.png", "03_by_hand.png"],
}


def test_every_notebook_is_listed():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(FIGURES)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_is_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{name}: clear the outputs of cells {dirty} before committing"


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory, monkeypatch_module):
    """Warehouse, figures and exports in one temporary folder; the kernels inherit these variables."""
    base = tmp_path_factory.mktemp("notebooks")
    env = {"RADGENOME_WAREHOUSE": base / "warehouse", "RADGENOME_FIGURES": base / "figures",
           "RADGENOME_EXPORTS": base / "exports"}
    for key, value in env.items():
        monkeypatch_module.setenv(key, str(value))
    return env


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FIGURES))
def test_notebook_runs_and_saves_its_figures(name, notebook_env):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, startup_timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()  # raises CellExecutionError naming the cell and its traceback

    figures = notebook_env["RADGENOME_FIGURES"]
    for figure in FIGURES[name]:
        path = figures / figure
        assert path.is_file(), f"{name} did not save {figure}"
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5_000, f"{figure} is not a real PNG ({len(data)} B)"
    assert not (ROOT / "notebooks" / "build").exists(), "a notebook wrote under notebooks/"
