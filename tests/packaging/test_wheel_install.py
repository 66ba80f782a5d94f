"""A regular (non-editable) install works: build the wheel, install it into a fresh virtual
environment (``--system-site-packages`` for the dependencies, ``--no-deps --no-index``: no
download), and replay every shipped trace with the installed ``adaspec-sim`` from a folder
outside the repository. The code also names no absolute path of one machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TRACES = REPO / "traces"
SHIPPED = sorted(p for p in TRACES.rglob("*") if p.suffix in (".csv", ".jsonl")
                 and p.parent.name not in ("spec-bench", "sharegpt"))  # those are length data
SOURCE_IGNORE = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                                       ".pytest_cache", ".ruff_cache", "results", "notebooks")


def _run(cmd: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin folder, a working folder outside the repository, the wheel)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"  # build from a copy: the checkout gets no build/ or egg-info
    shutil.copytree(REPO, source, symlinks=True, ignore=SOURCE_IGNORE)
    dist = root / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", str(dist), str(source)], cwd=root)
    wheel = next(dist.glob("adaspec_sim-*.whl"))
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=root)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    _run([str(bin_dir / "python"), "-m", "pip", "install", "--no-deps", "--no-index",
          "--ignore-installed", "-q", str(wheel)], cwd=root)
    work = root / "elsewhere"
    work.mkdir()
    return bin_dir, work, wheel


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def test_the_wheel_carries_the_length_sources_and_no_repository_folders(installed):
    names = zipfile.ZipFile(installed[2]).namelist()
    for data in ("origin-spec-bench.jsonl", "sharegpt_8k_filtered_stats_llama2_tokenizer.csv"):
        assert f"sim/workload/data/{data}" in names
    assert not [n for n in names if n.split("/")[0] in ("traces", "tests", "notebooks")]


def test_the_installed_package_is_the_one_that_runs(installed):
    bin_dir, work, _ = installed
    proc = _run([str(bin_dir / "python"), "-c", "import sim, sim.workload.lengths as l; "
                 "print(sim.__file__); print(l.data_path('spec-bench'))"], cwd=work,
                env=_clean_env())
    module, data = proc.stdout.split()
    venv = bin_dir.parent.resolve()
    assert Path(module).resolve().is_relative_to(venv) and Path(data).is_file()
    assert Path(data).resolve().is_relative_to(venv)


@pytest.mark.parametrize("trace", SHIPPED, ids=[p.relative_to(TRACES).as_posix() for p in SHIPPED])
def test_every_shipped_trace_replays_with_the_installed_command(installed, trace):
    bin_dir, work, _ = installed
    out = work / f"run-{trace.stem}"
    proc = _run([str(bin_dir / "adaspec-sim"), "--trace", str(trace), "--limit", "20",
                 "--policy", "nospec", "--policy", "adaspec:8", "--out", str(out), "--quiet"],
                cwd=work, env=_clean_env())
    assert "adaspec:8" in proc.stdout and (out / "summary.json").is_file()


def test_the_sharegpt_length_source_and_a_sweep_run_installed(installed):
    bin_dir, work, _ = installed
    trace = TRACES / "adaspec" / "code.csv"
    _run([str(bin_dir / "adaspec-sim"), "--trace", str(trace), "--limit", "10", "--lengths",
          "sharegpt", "--policy", "static:3", "--quiet"], cwd=work, env=_clean_env())
    sweep = work / "s.toml"
    sweep.write_text(f'[sweep]\ntraces = ["{trace}"]\npolicies = ["nospec"]\nlimit = 10\n')
    _run([str(bin_dir / "adaspec-sweep"), str(sweep), "--out", str(work / "sweep"),
          "--workers", "1", "--no-plots", "--quiet"], cwd=work, env=_clean_env())


def test_the_code_names_no_absolute_path_of_one_machine():
    pattern = re.compile(r"""["'](/work/|/root/|/home/|/Users/|[A-Z]:\\\\)""")
    found = []
    for package in ("sim", "calibrate", "realrun"):
        for path in (REPO / package).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if pattern.search(line):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
