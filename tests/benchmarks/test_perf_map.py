"""benchmarks/perf_map.py: numba's mangled names shortened, and a perf map of a real run's
cached objects placed where the JIT engine loaded them."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "perf_map.py"
_spec = importlib.util.spec_from_file_location("perf_map", _PATH)
perf_map = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(perf_map)

CODE_TRACE = str(Path(__file__).resolve().parents[2] / "traces" / "adaspec" / "code.csv")


def test_short_names_hand_computed():
    assert perf_map.short_name("_ZN3sim8policies7goodput9ddot_onesB4v468B58c8tJTC_2fWwE5Arr"
                               ) == "sim.policies.goodput.ddot_ones"
    assert perf_map.short_name("cpython._ZN3sim8compiled4loop9run_chunkB2v1B56c8E5Arr"
                               ) == "cpython.sim.compiled.loop.run_chunk"
    assert perf_map.short_name("NRT_incref") == "NRT_incref"


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs nm (binutils)")
def test_a_real_runs_functions_are_mapped(tmp_path, capsys):
    assert perf_map.main(["--trace", CODE_TRACE, "--limit", "20", "--policy", "adaspec:8",
                          "--quiet"]) == 0
    path = Path(f"/tmp/perf-{os.getpid()}.map")
    try:
        lines = path.read_text().splitlines()
    finally:
        path.unlink(missing_ok=True)
    names = {line.split(" ", 2)[2] for line in lines}
    assert "sim.compiled.loop.run_chunk" in names
    assert "sim.policies.adaspec_rules.adaspec_continue" in names
    starts = [(int(line.split()[0], 16), int(line.split()[1], 16)) for line in lines]
    assert all(start > 0 and size > 0 for start, size in starts)
    assert "functions named" in capsys.readouterr().err
