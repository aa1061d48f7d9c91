"""notebooks/tutorial.ipynb: stored without outputs, and it runs (in its small configuration)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "tutorial.ipynb"


def test_the_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code"
    for cell in code:
        assert cell.outputs == [], f"a stored output in the cell starting {cell.source[:40]!r}"
        assert cell.execution_count is None
    assert notebook.metadata.kernelspec.name == "python3"


def test_the_notebook_runs_and_shows_each_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TINYGRAD_NP_NOTEBOOK_QUICK", "1")  # fewer images and iterations
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel is the "python3" that ipykernel (a dev extra) installs with this Python.
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()  # raises CellExecutionError, with the traceback, if a cell fails

    text, images, graphs = "", 0, 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error"
            if output.output_type == "stream":
                text += output.text
            data = output.get("data", {})
            images += "image/png" in data
            graphs += "image/svg+xml" in data
    # The hand-derived and the engine's gradients agree to float64 rounding.
    differences = re.findall(r"max \|tg - by hand\| / max \|by hand\| = (\S+)", text)
    assert len(differences) == 4 and all(float(d) < 1e-12 for d in differences)
    assert "check_grads passed" in text
    assert "Tape: 4 inputs, 15 ops" in text and "= matmul(const (64, 784), %0" in text
    if shutil.which("dot"):
        assert graphs == 1
    else:
        assert "digraph tape {" in text
    assert images == 3  # the digits, the training curves, the predictions
    accuracy = float(re.search(r"test accuracy (\d+\.\d+)% after 20 iterations", text)[1])
    assert 50 < accuracy < 95  # 20 full-batch steps on 1000 images: learning, not done
