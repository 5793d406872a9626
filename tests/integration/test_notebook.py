"""The modelling notebook: stored without outputs, and runs top to bottom on a small pipeline run."""
import nbformat
import pytest
from nbclient import NotebookClient

from ..conftest import REPO

pytestmark = pytest.mark.integration
NOTEBOOK = REPO / "notebooks" / "credit_scoring.ipynb"


def test_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


def test_notebook_runs_on_the_pipeline_outputs(small_pipeline, monkeypatch):
    """Any error in a cell (an exception, a failed assert against the reports) fails the test."""
    monkeypatch.setenv("PROJECT_ROOT", str(small_pipeline))
    monkeypatch.setenv("MPLCONFIGDIR", str(small_pipeline / ".cache" / "matplotlib"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    printed = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for output in cell.outputs)
    assert f"project root: {small_pipeline.resolve()}" in printed
    images = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
              if "image/png" in output.get("data", {})]
    assert len(images) >= 6
