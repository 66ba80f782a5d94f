"""Invariants of the simulated server on random workloads (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes import FixedK, LinearLatency, PlainPolicy
from sim.acceptance.base import FixedAcceptance
from sim.core.scheduler import Scheduler
from sim.run import SimConfig, simulate
from sim.workload.request import Request, Workload

request_specs = st.lists(
    st.tuples(st.floats(0.0, 0.5), st.integers(1, 120), st.integers(1, 60)),
    min_size=1, max_size=25)


def _workload(specs):
    t = 0.0
    requests = []
    for i, (gap, prompt, output) in enumerate(specs):
        t += gap
        requests.append(Request(i, t, prompt, output))
    return Workload(tuple(requests), "hypothesis", "native")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=request_specs, k=st.integers(0, 5), alpha=st.floats(0.0, 1.0),
       kv_blocks=st.integers(12, 60), max_num_seqs=st.integers(1, 8),
       chunked=st.booleans(), budget=st.integers(16, 512), seed=st.integers(0, 2**16))
def test_every_request_finishes_once_with_exactly_its_tokens(
        specs, k, alpha, kv_blocks, max_num_seqs, chunked, budget, seed):
    workload = _workload(specs)
    checks = []
    original = Scheduler.prepare_decode

    def checked(self, lookahead, now_s):
        slots = original(self, lookahead, now_s)
        held = int(self.blocks.sum())
        checks.append(self.free_blocks >= 0 and held + self.free_blocks == self.config.kv_blocks)
        return slots

    config = SimConfig(kv_blocks=kv_blocks, max_num_seqs=max_num_seqs, estimator="exact",
                       chunked_prefill=chunked, max_num_batched_tokens=budget)
    policy = PlainPolicy() if k == 0 else FixedK(k)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Scheduler, "prepare_decode", checked)
        res = simulate(workload, policy, config, seed=seed, latency=LinearLatency(),
                       acceptance=FixedAcceptance(alpha))
    req = res.requests
    assert all(checks), "KV pool over capacity or leaked"
    assert sorted(req.id) == list(range(len(workload)))  # exactly once each
    fits = [(-(-(r.prompt_tokens + r.output_tokens + k) // 16)) <= kv_blocks - int(0.01 * kv_blocks)
            and (chunked or r.prompt_tokens <= budget)  # vLLM ignores longer unchunked prompts
            for r in workload.requests]
    assert list(req.status == "finished") == fits
    done = req[req.status == "finished"]
    assert (done.generated_tokens == done.output_tokens).all()
    assert (done.arrival_s <= done.admitted_s).all()
    assert (done.admitted_s <= done.first_token_s + 1e-12).all()
    assert (done.first_token_s <= done.finish_s).all()
    assert (done.accepted_tokens <= done.verified_tokens).all()
    assert (done.verified_tokens <= done.drafted_tokens).all()
    # tokens emitted by all iterations = every token of every finished request
    assert res.iterations.emitted_tokens.sum() == done.output_tokens.sum()
    starts = res.iterations.start_s.to_numpy()
    ends = starts + res.iterations.duration_s.to_numpy()
    assert np.all(starts[1:] >= ends[:-1] - 1e-9)  # iterations never overlap


@settings(max_examples=10, deadline=None)
@given(specs=request_specs, seed=st.integers(0, 1000))
def test_same_seed_same_results(specs, seed):
    workload = _workload(specs)
    config = SimConfig(kv_blocks=100, estimator="exact")
    a = simulate(workload, FixedK(3), config, seed=seed, latency=LinearLatency(),
                 acceptance=FixedAcceptance(0.6))
    b = simulate(workload, FixedK(3), config, seed=seed, latency=LinearLatency(),
                 acceptance=FixedAcceptance(0.6))
    pd.testing.assert_frame_equal(a.requests, b.requests)
    pd.testing.assert_frame_equal(a.iterations, b.iterations)
    assert a.summary == b.summary
