"""``sim.compiled.warm``: the compiled loop readied in this process (loaded, or compiled into
the disk cache) before work goes to worker processes, and which runs could use it."""

from __future__ import annotations

import pytest

import sim.run
from sim.compiled import jit
from sim.compiled.loop import run_chunk
from sim.compiled.warm import WARM_UP_REQUESTS, may_take_compiled_path, warm_loop


def test_the_warm_up_runs_the_compiled_path_and_leaves_the_loop_loaded(monkeypatch):
    if jit.cache_dir() is None:
        pytest.skip("the compiled-code cache is off in this environment")
    ran = []
    simulate = sim.run.simulate

    def recording(workload, policy, *args, **kwargs):
        result = simulate(workload, policy, *args, **kwargs)
        ran.append((len(workload), policy, result.summary["iteration_path"],
                    result.summary["requests"]))
        return result

    monkeypatch.setattr(sim.run, "simulate", recording)
    assert warm_loop() is True
    assert ran == [(len(WARM_UP_REQUESTS), "adaspec", "compiled", len(WARM_UP_REQUESTS))]
    assert len(jit.compiled(run_chunk).overloads) == 1  # the one signature of every run


def test_without_a_disk_cache_the_warm_up_does_nothing(monkeypatch):
    """``ADASPEC_SIM_JIT_CACHE=off``: each worker compiles anyway, so nothing is run here."""
    monkeypatch.setenv(jit.ENV_VAR, "off")

    def refuse(*args, **kwargs):
        raise AssertionError("simulated without a cache to fill")

    monkeypatch.setattr(sim.run, "simulate", refuse)
    assert warm_loop() is False


@pytest.mark.parametrize("policy", ["nospec", "static:3", "smartspec:8", "threshold", "oracle",
                                    "adaspec", "adaspec:8", "adaspec-nv", "vllm-v1",
                                    "vllm-v1:3,zero=catchup", "trtllm", "sglang"])
def test_policies_with_a_compiled_form_may_take_the_compiled_path(policy):
    assert may_take_compiled_path(policy, "auto")
    assert not may_take_compiled_path(policy, "protocol")


@pytest.mark.parametrize("policy", ["no-such-policy", "static"])  # errors of their own runs
def test_other_policies_never_need_the_loop(policy):
    assert not may_take_compiled_path(policy, "auto")
