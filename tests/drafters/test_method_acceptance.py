"""Each method's acceptance preset reaches its calibration target: the leaderboard's mean
accepted tokens at the depth Spec-Bench verified (exactly, on the simulator's Spec-Bench
workload), with per-task tokens per step proportional to the published per-task speedups;
and a batch-1 simulation measures the same."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sim.acceptance.finite_length import workload_tokens_per_step
from sim.acceptance.presets import make_acceptance, preset_names, spec_bench_task_mixtures
from sim.drafters.acceptance import SPEC_BENCH_METHODS, TASKS, method_acceptance_params, task_targets
from sim.drafters.presets import METHODS

ROOT = Path(__file__).resolve().parents[2]
TREE_METHODS = [m for m in METHODS if m != "draft-model"]


@pytest.mark.parametrize("method", TREE_METHODS)
def test_fit_reaches_the_targets(method):
    params = method_acceptance_params(method)
    targets = task_targets(method)
    mixtures = spec_bench_task_mixtures()
    depth = METHODS[method].fit_depth
    every = [part for mix in mixtures.values() for part in mix]
    got = workload_tokens_per_step([params.categories[""].mean], 12.0, depth, every,
                                   params.position_decay)[0]
    assert got == pytest.approx(targets[""], abs=0.01)
    for task in TASKS:
        cat = {"multi_turn": "writing"}.get(task, task)
        got = workload_tokens_per_step([params.categories[cat].mean], 12.0, depth,
                                       mixtures[task], params.position_decay)[0]
        assert got == pytest.approx(targets[task], abs=0.01)
    if method in SPEC_BENCH_METHODS:
        assert targets[""] == SPEC_BENCH_METHODS[method][0]
    # per-task targets follow the published speedups
    ratio = targets["summarization"] / targets["translation"]
    speedups = dict(zip(TASKS, SPEC_BENCH_METHODS.get(method, SPEC_BENCH_METHODS["eagle-2"])[2]))
    assert ratio == pytest.approx(speedups["summarization"] / speedups["translation"])


def test_presets_are_registered_and_named():
    for method in TREE_METHODS:
        assert f"spec-bench-{method}" in preset_names()
    model = make_acceptance("spec-bench-pld")
    assert model.params.meta["method"] == "pld"
    # PLD: low on translation, high on summarization (the leaderboard's spread)
    assert model.category_profile("translation").mean < model.category_profile("summarization").mean


@pytest.mark.parametrize("method", ["eagle-2", "pld"])
def test_batch1_simulation_matches_the_mean_accepted_tokens(method):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from specbench_methods import method_policy, per_request
    from specbench_batch1 import spec_bench_workload
    from sim.run import SimConfig, simulate

    workload = spec_bench_workload(1, 60.0, 3)
    frame = per_request(simulate(workload, method_policy(method), SimConfig(method=method),
                                 seed=3), workload)
    tokens_per_step = frame["tokens"].sum() / frame["steps"].sum()
    assert tokens_per_step == pytest.approx(SPEC_BENCH_METHODS[method][0], rel=0.04)
