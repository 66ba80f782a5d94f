"""Each command's process entry (``entry``: console script, ``python -m``): ``main``'s exit
status, the collector's first threshold raised and the final garbage collection left out
(``sim.cli_common.run_process``), every output complete; ``main`` itself leaves the collector
alone."""

from __future__ import annotations

import gc
import importlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sim.cli import main
from sim.cli_common import PROCESS_GC_THRESHOLD

ROOT = Path(__file__).resolve().parents[2]
CODE_TRACE = str(ROOT / "traces" / "adaspec" / "code.csv")
COMMANDS = {"adaspec-sim": "sim.cli", "adaspec-sweep": "sim.sweep.cli",
            "adaspec-realrun": "realrun.cli", "adaspec-calibrate": "calibrate.cli",
            "adaspec-validate": "calibrate.validate_cli"}
# Run ``entry`` of a command module with these arguments; report at exit (after the
# SystemExit, before the interpreter's shutdown) whether the objects were frozen.
PROBE = """
import atexit, gc, importlib, sys
atexit.register(lambda: print("frozen", gc.get_freeze_count() > 0, "threshold",
                              gc.get_threshold()[0], file=sys.stderr))
module = importlib.import_module(sys.argv[1])
sys.argv = [sys.argv[1]] + sys.argv[2:]
module.entry()
"""


def _probe(module: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", PROBE, module, *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=600)


def test_every_console_script_is_its_modules_entry():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {name: f"{module}:entry" for name, module in COMMANDS.items()}
    for module in COMMANDS.values():
        assert callable(importlib.import_module(module).entry)


def test_entry_exits_with_mains_status_and_writes_every_output(tmp_path):
    out = tmp_path / "run"
    done = _probe("sim.cli", "--trace", CODE_TRACE, "--limit", "20", "--policy", "nospec",
                  "--policy", "adaspec:8", "--quiet", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "frozen True" in done.stderr
    assert f"threshold {PROCESS_GC_THRESHOLD}" in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["policies"]) == ["adaspec:8", "nospec"]
    for policy in ("nospec", "adaspec_8"):
        lines = (out / policy / "requests.csv").read_text().splitlines()
        assert len(lines) == 2 + 20  # provenance line, header, one row per request
        assert (out / policy / "iterations.csv").read_text().endswith("\n")


def test_entry_passes_on_an_error_status(tmp_path):
    done = _probe("sim.cli", "--trace", str(tmp_path / "missing.csv"), "--quiet")
    assert done.returncode == 2
    assert "adaspec-sim: error:" in done.stderr and "frozen True" in done.stderr


@pytest.mark.parametrize("module", sorted(set(COMMANDS.values())))
def test_every_entry_runs_as_python_dash_m(module):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().endswith(
        importlib.import_module("sim").__version__)


def test_main_in_process_leaves_the_collector_alone(tmp_path, capsys):
    frozen, enabled, threshold = gc.get_freeze_count(), gc.isenabled(), gc.get_threshold()
    assert main(["--trace", str(tmp_path / "missing.csv"), "--quiet"]) == 2
    assert (gc.get_freeze_count(), gc.isenabled(), gc.get_threshold()) == (
        frozen, enabled, threshold)
