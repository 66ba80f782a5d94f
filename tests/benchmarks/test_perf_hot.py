"""benchmarks/perf_hot.py: samples placed on a function's instructions, jump targets
shortened; benchmarks/loop_pairs.py: quartiles of the pairs' ratios and a real pair run."""

from __future__ import annotations

from pathlib import Path

import loop_pairs
import perf_hot

ROOT = Path(__file__).resolve().parents[2]


def test_hot_instructions_hand_computed():
    """Offsets relative to the function, shares of the function's own samples, the hottest
    first, each with its context; samples outside the function are not counted."""
    code = [(0x100, "push rbp"), (0x101, "mov rax,QWORD PTR [rdi]"), (0x104, "add rax,1"),
            (0x108, "ret"), (0x109, "nop")]
    counts = {0x101: 1, 0x104: 3, 0x109: 50}
    lines = perf_hot.hot_instructions(counts, code, 0x100, 9, top=2, context=1)
    assert lines[0] == "   75.0 %  +0x4"
    assert lines[1].split() == ["0x1", "1", "mov", "rax,QWORD", "PTR", "[rdi]"]
    assert lines[2].split()[:3] == [">", "0x4", "3"]
    assert lines[3] == "   25.0 %  +0x1"
    assert len(lines) == 6


def test_jump_targets_are_shortened_and_functions_found_by_address():
    text = "call 40 <_ZN3sim8compiled4loop9run_chunkB2v1B56c8E5Arr+0x1c>"
    assert perf_hot._short_targets(text) == "call 40 <sim.compiled.loop.run_chunk+0x1c>"
    functions = perf_hot.Functions([])
    functions.rows = [(1000, 50, "a", 0, 0), (2000, 10, "b", 0, 60)]
    functions.starts = [1000, 2000]
    assert functions.find(1049)[2] == "a"
    assert functions.find(1050) is None
    assert functions.find(2005)[2] == "b"
    assert functions.find(999) is None


def test_report_without_a_process_map_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(perf_hot, "sample_addresses", lambda data: {2 ** 22 + 7: [1, 2]})
    assert perf_hot.report([str(tmp_path / "perf.data")]) == 1
    assert "objects.json" in capsys.readouterr().err


def test_quartiles_hand_computed():
    assert loop_pairs.quartiles([0.9]) == (0.9, 0.9, 0.9)
    low, mid, high = loop_pairs.quartiles([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (low, mid, high) == (1.5, 3.0, 4.5)


def test_a_tree_against_itself(capsys):
    """Two workers of the same tree, a few requests: one line per policy, ratios near 1
    are not asserted (timing), only that both ran on the compiled path."""
    assert loop_pairs.main([str(ROOT), str(ROOT), "--pairs", "2", "--limit", "30",
                            "--policy", "adaspec:8"]) == 0
    out = capsys.readouterr().out
    assert "adaspec:8" in out and "ratio median" in out
