"""benchmarks/write_tables.py: one short real run, its writes timed in a fresh process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(_DIR))  # as `python benchmarks/X.py` has it


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, _DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_writes_are_timed_in_a_real_command(capsys):
    bench = _load("write_tables")
    runs = bench._process(bench.ROOT, "adaspec:8", 40, 2)
    assert len(runs) == 2 and all(wall > 0 and cpu >= 0 for wall, cpu in runs)
    assert bench.main(["--policy", "nospec", "--limit", "40", "--processes", "1",
                       "--writes", "1"]) == 0
    assert "nospec       this      fastest write" in capsys.readouterr().out
