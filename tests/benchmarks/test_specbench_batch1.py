"""benchmarks/specbench_batch1.py: the batch-1 Spec-Bench workload and the HF heuristic
draft-length rule it reports (hand-computed with always / never accepted drafts)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sim.acceptance.base import FixedAcceptance
from sim.acceptance.presets import SPEC_BENCH_QUESTIONS
from sim.workload.request import Request, Workload

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "specbench_batch1.py"
_SPEC = importlib.util.spec_from_file_location("specbench_batch1", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def _workload(outputs):
    return Workload(tuple(Request(i, 60.0 * i, 10, n) for i, n in enumerate(outputs)),
                    "test", "synthetic")


def test_workload_has_every_question_spaced_apart():
    wl = bench.spec_bench_workload(2, 60.0, seed=3)
    assert len(wl) == 2 * sum(SPEC_BENCH_QUESTIONS.values())
    cats = [r.category for r in wl.requests]
    assert all(cats.count(c) == 2 * n for c, n in SPEC_BENCH_QUESTIONS.items())
    assert [r.arrival_s for r in wl.requests[:3]] == [0.0, 60.0, 120.0]
    assert bench.spec_bench_workload(2, 60.0, seed=3) == wl


def test_heuristic_schedule_grows_by_two_when_all_accepted():
    # 1 + 21 decode tokens, always accepted: k = 5, 7, 9 -> steps emit 6, 8, then the last 7
    tps, drafted = bench.heuristic_schedule(FixedAcceptance(1.0), _workload([22]), seed=0)
    assert tps == pytest.approx(21 / 3)
    assert drafted == pytest.approx((5 + 7 + 6) / 3)  # the last step drafts remaining - 1


def test_heuristic_schedule_shrinks_to_one_when_nothing_is_accepted():
    # never accepted: k = 5, 4, 3, 2, 1, 1, ...; one token per step
    tps, drafted = bench.heuristic_schedule(FixedAcceptance(0.0), _workload([9]), seed=0)
    assert tps == 1.0
    # 8 decode steps; drafts capped by remaining - 1: min(5,7), min(4,6), min(3,5), min(2,4),
    # then 1, 1, 1, min(1, 0)
    assert drafted == pytest.approx((5 + 4 + 3 + 2 + 1 + 1 + 1 + 0) / 8)
