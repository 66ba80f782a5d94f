"""The compiled loop's hand-over of arrivals (``sim.compiled.loop``) against the protocol
path's two SimPy processes, where the order of events is delicate: arrivals at exactly the
end of an iteration (scheduled before it started, or during it), bursts of simultaneous
arrivals with rejections while an iteration is in flight, an idle engine woken by a burst,
arrivals at time 0, and buffers so small that the loop must return to Python mid-step."""

from __future__ import annotations

from dataclasses import replace

import pytest

import sim.compiled.run as compiled_run
from sim.run import SimConfig, simulate
from sim.workload.request import Request, Workload
from test_compiled_equivalence import CONV, _assert_same, _both, _slice

REJECTED = (2000, 100)  # prompt, output: above the 2048-token context, rejected on arrival


def _with(workload: Workload, extra: list[tuple[float, int, int]]) -> Workload:
    """``workload`` plus requests (arrival_s, prompt, output), renumbered in arrival order
    (the extra ones after the originals at equal times)."""
    rows = [(r.arrival_s, r.prompt_tokens, r.output_tokens) for r in workload.requests]
    rows += extra
    rows.sort(key=lambda row: row[0])  # stable: ties keep the originals first
    requests = tuple(Request(i, a, p, o) for i, (a, p, o) in enumerate(rows))
    return Workload(requests, "test", "test")


def _ends(workload: Workload, policy: str, config: SimConfig,
          acceptance) -> list[tuple[float, float]]:
    """(start, end) of every iteration on the protocol path (its clock at each resume)."""
    result = simulate(workload, policy, replace(config, engine_path="protocol"), seed=3,
                      acceptance=acceptance)
    frame = result.iterations
    return list(zip(frame["start_s"].tolist(),
                    (frame["start_s"] + frame["duration_s"]).tolist()))


@pytest.mark.parametrize("policy", ["nospec", "adaspec:8", "smartspec:8"])
def test_arrivals_tied_with_the_end_of_an_iteration(policy):
    """Round by round, requests arrive at exactly the end of a busy iteration: one whose
    timeout was scheduled before the iteration began (it comes before the engine resumes)
    and one scheduled by an arrival during the iteration (it comes after), with a rejected
    request beside each. (A fixed acceptance rate draws no per-request levels, so added
    requests leave the earlier iterations as they were.)"""
    from sim.acceptance.presets import make_acceptance

    config = SimConfig()
    acceptance = make_acceptance("fixed:0.6")
    workload = _slice(CONV, 50, scale=6.0)
    for round_ in range(4):
        ends = _ends(workload, policy, config, acceptance)
        start, end = ends[len(ends) * (round_ + 1) // 6]
        middle = start + (end - start) / 2
        workload = _with(workload, [(end, 300, 20), (end, *REJECTED), (middle, 200, 10),
                                    (middle, *REJECTED), (end, 100, 30)])
        assert end in {e for _, e in _ends(workload, policy, config, acceptance)}  # a tie
    _assert_same(*_both(workload, policy, config, acceptance=acceptance))


@pytest.mark.parametrize("policy", ["nospec", "static:4", "adaspec:8"])
def test_bursts_idle_wakeups_and_arrivals_at_zero(policy):
    """Three requests at time 0 (one rejected), a burst after a long idle gap that starts
    with rejections, and a burst during a busy period."""
    extra = [(0.0, 500, 40), (0.0, *REJECTED), (0.0, 80, 5)]
    extra += [(500.0, *REJECTED), (500.0, *REJECTED)] + [(500.0, 100 + i, 8) for i in range(6)]
    extra += [(3.0, 64 * (i + 1), 12) if i % 3 else (3.0, *REJECTED) for i in range(12)]
    workload = _with(_slice(CONV, 40, scale=6.0), extra)
    _assert_same(*_both(workload, policy, SimConfig()))


@pytest.mark.parametrize("policy", ["nospec", "adaspec:8"])
def test_tiny_buffers_make_the_loop_return_mid_step(monkeypatch, policy):
    """Buffers of a few records and request rows: the loop returns for room while an
    arrival step or an iteration is in flight (42 rejections arrive at once while four
    requests decode; then 70 requests more than the 64 request rows the scheduler starts
    with) and resumes where it stopped."""
    monkeypatch.setattr(compiled_run, "RECORDS", 8)
    monkeypatch.setattr(compiled_run, "FINISHED", 1)
    monkeypatch.setattr(compiled_run, "RESERVED", 2)
    extra = [(2.0001, *REJECTED)] * 42 + [(2.0001, 50, 300)] * 10 + [(2.5, 50, 20)] * 70
    workload = _with(_slice(CONV, 30, scale=6.0), extra)
    config = SimConfig(max_num_seqs=4)
    compiled, protocol = _both(workload, policy, config)
    assert compiled.summary["rejected"] >= 42
    _assert_same(compiled, protocol)
