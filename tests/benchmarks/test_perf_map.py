"""benchmarks/perf_map.py: numba's mangled names shortened, and a perf map of a real run's
cached objects placed where the JIT engine loaded them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import perf_map
import pytest

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
    assert "sim.compiled.engine.decode_iteration" in names
    starts = [(int(line.split()[0], 16), int(line.split()[1], 16)) for line in lines]
    assert all(start > 0 and size > 0 for start, size in starts)
    assert "functions named" in capsys.readouterr().err


def test_unreadable_cache_entries_are_skipped(tmp_path):
    """Another program's cached code (a module not importable here) or a torn file is left
    out of the map, not fatal."""
    entry = tmp_path / "compiled_x" / "other.fn-1.py311.1.nbc"
    entry.parent.mkdir()
    entry.write_bytes(b"\x80\x04\x95not a pickle")
    assert perf_map.map_lines(tmp_path, lambda name: 0) == []
