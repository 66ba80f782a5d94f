"""Metamorphic properties of the simulated server on the presets' own latency model (the
compiled path, as a command runs): changes to the input that must not change the verdict,
or must change it in a known way (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.run import SimConfig, simulate
from sim.workload.request import Request, Workload

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
TIMES = ["arrival_s", "admitted_s", "first_token_s", "finish_s"]

# gaps in whole milliseconds (0 included: simultaneous arrivals): distinct arrivals stay
# distinct when shifted (two arrivals 2.2e-16 s apart after 0 s are one arrival after 2 s,
# which batches them: a real difference of the input, not of the simulator)
request_specs = st.lists(
    st.tuples(st.integers(0, 300).map(lambda ms: ms / 1e3), st.integers(1, 900),
              st.integers(1, 200)),
    min_size=1, max_size=30)
policies = st.sampled_from(["nospec", "static:3", "adaspec:8", "smartspec:6", "oracle:4"])


def _workload(specs, start_s: float = 0.0, first_id: int = 0) -> Workload:
    t, requests = start_s, []
    for i, (gap, prompt, output) in enumerate(specs):
        t += gap
        requests.append(Request(first_id + i, t, prompt, output))
    return Workload(tuple(requests), "hypothesis", "native")


def _run(workload, policy, config=SimConfig(), seed=0):
    result = simulate(workload, policy, config, seed=seed)
    assert result.summary["iteration_path"] == "compiled"
    return result


@SETTINGS
@given(specs=request_specs, policy=policies, shift_s=st.floats(1.0, 1e6),
       seed=st.integers(0, 1000))
def test_shifting_every_arrival_shifts_every_time_and_nothing_else(specs, policy, shift_s,
                                                                   seed):
    """The simulator has no absolute clock: arrivals ``shift_s`` later give the same
    latencies, tokens and iterations, every timestamp ``shift_s`` later (to rounding: a
    clock near 10^6 s rounds each sum to 1.2e-10 s, which adds up over the iterations, so
    times and latencies are compared within a microsecond)."""
    base = _run(_workload(specs), policy, seed=seed)
    moved = _run(_workload(specs, start_s=shift_s), policy, seed=seed)
    a, b = base.requests, moved.requests
    for column in a.columns:
        if column in TIMES:
            np.testing.assert_allclose(b[column] - shift_s, a[column], rtol=0, atol=1e-6)
        elif a[column].dtype.kind == "f":
            np.testing.assert_allclose(b[column], a[column], rtol=0, atol=1e-6)
        else:
            assert a[column].equals(b[column]), column
    assert len(base.iterations) == len(moved.iterations)
    np.testing.assert_allclose(moved.iterations.duration_s, base.iterations.duration_s,
                               rtol=1e-9)
    for column in ("batch_size", "emitted_tokens", "accepted_tokens", "verify_tokens"):
        assert base.iterations[column].equals(moved.iterations[column]), column


@SETTINGS
@given(specs=request_specs, policy=st.sampled_from(["nospec", "static:3", "static:6"]),
       tpot_ms=st.floats(5.0, 500.0), ttft_ms=st.floats(50.0, 10_000.0),
       seed=st.integers(0, 1000))
def test_an_slo_blind_policy_serves_the_same_whatever_the_slo(specs, policy, tpot_ms,
                                                              ttft_ms, seed):
    """nospec and static:k never read the SLO: another SLO changes only who meets it."""
    base = _run(_workload(specs), policy, seed=seed)
    other = _run(_workload(specs), policy,
                 SimConfig(ttft_slo_s=ttft_ms / 1e3, tpot_slo_s=tpot_ms / 1e3), seed=seed)
    slo_columns = [c for c in base.requests.columns if "slo" in c]
    pd.testing.assert_frame_equal(base.requests.drop(columns=slo_columns),
                                  other.requests.drop(columns=slo_columns), check_exact=True)
    pd.testing.assert_frame_equal(base.iterations, other.iterations, check_exact=True)


@SETTINGS
@given(first=request_specs, second=request_specs, seed=st.integers(0, 1000))
def test_a_later_idle_separated_burst_is_served_as_if_alone(first, second, seed):
    """Plain decoding keeps no state between iterations: a second burst arriving long after
    the first is done is served exactly as it is alone, shifted."""
    alone = _run(_workload(second), "nospec", seed=seed)
    gap_s = 1e5
    both = _run(Workload(_workload(first).requests
                         + _workload(second, start_s=gap_s, first_id=len(first)).requests,
                         "hypothesis", "native"), "nospec", seed=seed)
    later = both.requests[both.requests.id >= len(first)].reset_index(drop=True)
    assert later.status.tolist() == alone.requests.status.tolist()
    for column in TIMES:
        np.testing.assert_allclose(later[column] - gap_s, alone.requests[column],
                                   rtol=0, atol=1e-6)


@SETTINGS
@given(specs=request_specs, k=st.integers(1, 6), seed=st.integers(0, 1000))
def test_full_acceptance_emits_k_plus_one_tokens_a_step(specs, k, seed):
    """fixed:1 acceptance: every drafted token is accepted, so static:k emits k + 1 tokens per
    request per iteration until fewer remain, and each request's accepted tokens are its
    drafted ones."""
    result = _run(_workload(specs), f"static:{k}", SimConfig(acceptance="fixed:1.0"),
                  seed=seed)
    done = result.requests[result.requests.status == "finished"]
    assert (done.accepted_tokens == done.drafted_tokens).all()
    # a request of n output tokens: 1 at prefill, then ceil((n - 1) / (k + 1)) decode
    # iterations, the last capped by what remains (drafts min(k, remaining - 1))
    for r in done.itertuples():
        rest = r.output_tokens - 1
        assert r.drafted_tokens == sum(min(k, left - 1)
                                       for left in range(rest, 0, -(k + 1)))


@SETTINGS
@given(specs=request_specs, k=st.integers(1, 8), seed=st.integers(0, 1000),
       engine=st.sampled_from(["single-pass", "vllm-0.6"]))
def test_policies_that_must_coincide_do(specs, k, seed, engine):
    """threshold:0,K (every confidence clears 0) and disable-by-batch:K,B with B above any
    batch are static:K, draw for draw. (disable-by-batch:K,1, which never drafts, is not
    nospec: its server holds the draft model, so it has a smaller KV pool and pays the
    draft's prefill.)"""
    config = SimConfig(engine=engine)
    static = _run(_workload(specs), f"static:{k}", config, seed=seed)
    for policy in (f"threshold:0.0,{k}", f"disable-by-batch:{k},100000"):
        other = _run(_workload(specs), policy, config, seed=seed)
        pd.testing.assert_frame_equal(other.requests, static.requests, check_exact=True)
        pd.testing.assert_frame_equal(other.iterations, static.iterations, check_exact=True)
