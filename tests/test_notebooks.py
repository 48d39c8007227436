"""The notebooks run top to bottom on a fresh clone: the first builds the demo warehouse, the others
reuse it, and each saves its figures. They run as well on a warehouse built from the real sample of
the released files (../shared/data: text only, no CT volumes or masks), where a figure that cannot be
drawn is saved as a placeholder saying why. They are committed without outputs.

Each runs in a Jupyter kernel of this interpreter (nbclient, ipykernel's ``python3`` kernel) with
the repository root as working directory and the warehouse, figures and exports in a temporary
folder, so the run leaves the tree as it found it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = ROOT / "notebooks"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLACEHOLDER = "placeholder: "  # how a notebook's placeholder figure starts its PNG Description

# notebook -> the figures it saves under RADGENOME_FIGURES (run in this order: 01 builds the demo)
FIGURES = {
    "01_dataset_overview.ipynb": ["01_vqa_types.png", "01_fig4ab_normal_abnormal.png",
                                  "01_fig4c_abnormalities.png", "01_fig4d_disorders.png"],
    "02_cohort.ipynb": ["02_nodule_sizes.png", "02_export_batch.png", "02_region_dataset.png"],
    "03_case_viewer.ipynb": ["03_viewer_lung.png", "03_viewer_region.png", "03_by_hand.png"],
}
# figures the real sample has the data for (VQA pairs, grounded sentences, findings read from them,
# disorders); the others need CT volumes and masks, which it has not, and are placeholders there
REAL_SAMPLE_DRAWS = {"01_vqa_types.png", "01_fig4ab_normal_abnormal.png", "01_fig4c_abnormalities.png",
                     "01_fig4d_disorders.png", "02_nodule_sizes.png"}


def test_every_notebook_is_listed():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(FIGURES)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_is_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{name}: clear the outputs of cells {dirty} before committing"


def execute(name: str) -> str:
    """Run a notebook in a fresh kernel (it reads the RADGENOME_* variables of this process); its printed text."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, startup_timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()  # raises CellExecutionError naming the cell and its traceback
    assert not (ROOT / "notebooks" / "build").exists(), "a notebook wrote under notebooks/"
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream")


def saved_figure(path: Path) -> str | None:
    """Check `path` is a real PNG; return its placeholder reason, or None for a drawn figure."""
    from PIL import Image

    assert path.is_file(), f"{path.name} was not saved"
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 5_000, f"{path.name} is not a real PNG ({len(data)} B)"
    with Image.open(path) as image:
        description = image.info.get("Description", "")
    return description.removeprefix(PLACEHOLDER) if description.startswith(PLACEHOLDER) else None


def set_env(mp: pytest.MonkeyPatch, base: Path, warehouse: Path) -> dict[str, Path]:
    env = {"RADGENOME_WAREHOUSE": warehouse, "RADGENOME_FIGURES": base / "figures",
           "RADGENOME_EXPORTS": base / "exports"}
    for key, value in env.items():
        mp.setenv(key, str(value))
    return env


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory, monkeypatch_module):
    """Warehouse (the demo, built by the first notebook), figures and exports in one temporary folder;
    the kernels inherit these variables."""
    base = tmp_path_factory.mktemp("notebooks")
    return set_env(monkeypatch_module, base, base / "warehouse")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FIGURES))
def test_notebook_runs_and_saves_its_figures(name, notebook_env):
    execute(name)
    for figure in FIGURES[name]:
        reason = saved_figure(notebook_env["RADGENOME_FIGURES"] / figure)
        assert reason is None, f"{name} drew a placeholder for {figure} on the demo: {reason}"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FIGURES))
def test_notebook_runs_on_the_real_sample(name, real_warehouse, tmp_path, monkeypatch):
    from warehouse.store.snapshot import list_snapshots

    snapshots = list_snapshots(real_warehouse)
    env = set_env(monkeypatch, tmp_path, real_warehouse)
    printed = execute(name)
    for figure in FIGURES[name]:
        reason = saved_figure(env["RADGENOME_FIGURES"] / figure)
        if figure in REAL_SAMPLE_DRAWS:
            assert reason is None, f"{name}: {figure} is a placeholder on the real sample: {reason}"
        else:  # a placeholder says why, in the figure and in the notebook's output
            assert reason and f"{figure} not drawn: {reason}" in printed, f"{name}: {figure} drawn without a CT"
    assert list_snapshots(real_warehouse) == snapshots, "a notebook changed the shared warehouse"
