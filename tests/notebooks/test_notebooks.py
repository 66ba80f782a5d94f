"""Executes the notebooks end to end (nbclient) with a kernel on this very interpreter."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
KERNEL = "adaspec-test-python"


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A private kernelspec running ``sys.executable`` (whatever kernels are installed), the
    repository importable, and figures written to a temporary folder."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (adaspec tests)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    monkeypatch.setenv("ADASPEC_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))  # to check the notebooks clean up
    return tmp_path / "figures"


@pytest.mark.parametrize("name, figures", [
    ("slo_attainment", ["slo_attainment.png", "slo_attainment.svg", "speedup.png"]),
    ("policy_anatomy", ["policy_anatomy.png", "policy_anatomy.svg"]),
])
def test_notebook_runs_and_saves_its_figures(kernel_env, name, figures):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, kernel_name=KERNEL, timeout=240,
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    errors = [o for cell in notebook.cells if cell.cell_type == "code"
              for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    for figure in figures:
        assert (kernel_env / figure).stat().st_size > 2000, figure
    left = [p.name for p in (kernel_env.parent / "tmp").iterdir()
            if p.name.startswith(("slo-attainment", "policy-anatomy", "tmp"))]
    assert not left, f"temporary folders left behind: {left}"
