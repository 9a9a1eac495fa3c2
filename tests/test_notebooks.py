"""The notebooks run, top to bottom, against a freshly trained project, so they cannot rot."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.e2e
def test_the_python3_kernel_runs_this_environments_python():
    """nbclient starts the kernel by name: it must be the venv's interpreter (with kedro and the
    package), not another Jupyter installation's."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; sys.prefix")])
    NotebookClient(notebook, kernel_name="python3", timeout=60).execute()
    assert notebook.cells[0].outputs[0]["data"]["text/plain"] == repr(sys.prefix)


def test_there_is_a_notebook():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_the_notebook_is_saved_without_outputs(path: Path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not any(cell.outputs or cell.execution_count for cell in code), "clear the outputs"


@pytest.mark.e2e
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_the_notebook_runs_on_the_trained_project(
    path: Path, trained_project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # a copy: a notebook may train (train_from_python), and the serving tests that share the
    # trained project expect its model and registered version unchanged
    trained_project = Path(shutil.copytree(trained_project, tmp_path / "project", symlinks=True))
    for name, value in {
        "KEDRO_DISABLE_TELEMETRY": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "KEDRO_LOGGING_CONFIG": str(trained_project / "conf" / "logging.yml"),
    }.items():
        monkeypatch.setenv(name, value)  # the kernel inherits this process's environment
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=180,
        resources={"metadata": {"path": str(trained_project)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on an error

    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    kinds = {kind for output in outputs for kind in output.get("data", {})}
    assert {"text/html", "image/png"} <= kinds, "a table and a plot"
