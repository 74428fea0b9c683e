"""The notebooks are stored executed, figures inline, and still run from top to bottom."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
PNG = b"\x89PNG\r\n\x1a\n"


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def pngs(cell):
    return [
        base64.b64decode(output["data"]["image/png"])
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]


def test_there_is_a_notebook():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_with_its_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    cells = code_cells(notebook)
    # executed once, top to bottom, in one kernel
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))
    for cell in cells:
        assert cell.outputs, cell.source[:60]
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source[:60]
        assert not [o for o in cell.outputs if o.get("name") == "stderr"], cell.source[:60]


def test_quickstart_shows_its_learning_curves_inline():
    notebook = nbformat.read(NOTEBOOKS[0].parent / "quickstart.ipynb", as_version=4)
    cell = next(c for c in code_cells(notebook) if "learning_curves(" in c.source)
    images = pngs(cell)
    assert len(images) == 1 and images[0][:8] == PNG
    assert len(images[0]) > 20_000  # a drawn figure, not an empty canvas


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_and_draws_its_figures(path, tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    stored = [len(pngs(cell)) for cell in code_cells(notebook)]
    client = NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    assert [len(pngs(cell)) for cell in code_cells(notebook)] == stored
