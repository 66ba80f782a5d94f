"""The server adds the engine rules' drafter upkeep to exactly the iterations that carry it:
the k = 0 draft pass under zero=sync, the catch-up prefill when drafting resumes under
zero=catchup, nothing under zero=free; other policies are unaffected."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import LinearLatency

from calibrate.validate import predict_iterations
from sim.acceptance.base import FixedAcceptance
from sim.latency.iteration import ENGINES
from sim.policies.registry import ENGINE_RULE_SPECS, make_policy
from sim.run import SimConfig, build_padding, simulate
from sim.workload.request import Request, Workload

# a burst of 12 requests (batch up to 12), then 3 stragglers that run alone
WORKLOAD = Workload(tuple(Request(i, 0.001 * i, 40, 30 + 7 * (i % 4)) for i in range(12))
                    + tuple(Request(12 + i, 5.0 + 0.001 * i, 40, 60) for i in range(3)),
                    "test", "native")
LATENCY = LinearLatency(draft_s=0.002, draft_prefill_s_=0.005)


def _run(policy, engine="single-pass"):
    cfg = SimConfig(kv_blocks=10_000, engine=engine)
    res = simulate(WORKLOAD, make_policy(policy), cfg, seed=1, latency=LATENCY,
                   acceptance=FixedAcceptance(0.6))
    it = res.iterations
    extra = it["duration_s"].to_numpy() - predict_iterations(it, res.requests, LATENCY,
                                                            build_padding(cfg), True)
    decode = (it["kind"] == "decode").to_numpy()
    return it[decode], extra[decode]


def test_sync_charges_a_draft_pass_on_every_k0_iteration():
    """trtllm:4,sched=4:4: k = 0 above batch 4. Under zero=sync each such iteration costs one
    more draft pass (2 ms; LinearLatency has no drafting overhead); nothing else changes."""
    it, extra = _run("trtllm:4,sched=4:4,zero=sync")
    off = (it["draft_steps"] == 0).to_numpy() & (it["batch_size"] > 4).to_numpy()
    assert off.sum() > 10
    np.testing.assert_allclose(extra[off], 0.002, atol=1e-12)
    np.testing.assert_allclose(extra[~off], 0.0, atol=1e-12)


def test_catchup_charges_one_draft_prefill_when_drafting_resumes():
    """zero=catchup: k = 0 iterations cost nothing; the first iteration that drafts after them
    pays one batched draft prefill (5 ms), the following ones nothing."""
    it, extra = _run("trtllm:4,sched=4:4")
    steps = it["draft_steps"].to_numpy()
    batch = it["batch_size"].to_numpy()
    resumed = np.zeros(len(steps), dtype=bool)
    resumed[1:] = (steps[1:] > 0) & (batch[:-1] > 4)  # drafts right after a k = 0 iteration
    assert resumed.sum() >= 1
    np.testing.assert_allclose(extra[resumed], 0.005, atol=1e-12)
    np.testing.assert_allclose(extra[~resumed], 0.0, atol=1e-12)


@pytest.mark.parametrize("policy", ["trtllm:4,sched=4:4,zero=free", "static:4", "adaspec:8"])
def test_no_upkeep_without_it(policy):
    _, extra = _run(policy)
    np.testing.assert_allclose(extra, 0.0, atol=1e-12)


def test_free_matches_the_plain_rule_and_sync_costs_time():
    """The same decisions under every zero= mode (same seed, same batches); sync is slower."""
    free, _ = _run("trtllm:4,sched=4:4,zero=free")
    sync, _ = _run("trtllm:4,sched=4:4,zero=sync")
    assert free["draft_steps"].tolist() == sync["draft_steps"].tolist()
    assert sync["duration_s"].sum() > free["duration_s"].sum()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("policy", ENGINE_RULE_SPECS + ("trtllm:4,window=4,threshold=0.9",))
def test_engine_rules_run_under_both_engines(policy, engine):
    it, _ = _run(policy, engine)
    assert len(it) > 0 and (it["draft_steps"] > 0).any()
    if "threshold" in policy:  # 0.6-acceptance drafts fail a 0.9 gate: speculation stops
        spec = np.flatnonzero(it["draft_steps"].to_numpy() > 0)
        assert len(spec) == 4 and (it["draft_steps"].to_numpy()[spec[-1] + 1:] == 0).all()
