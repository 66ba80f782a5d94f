"""Hand-computed small cases for the simulated server (linear fake latency model)."""

from __future__ import annotations

import math

import pytest

from fakes import FixedK, LinearLatency, PlainPolicy
from sim.acceptance.base import FixedAcceptance
from sim.run import SimConfig, simulate
from sim.workload.request import Request, Workload

CFG = SimConfig(kv_blocks=10_000, estimator="exact", cuda_graphs=False)


def _workload(*specs):
    return Workload(tuple(Request(i, a, p, o) for i, (a, p, o) in enumerate(specs)), "test", "native")


def _run(workload, policy, alpha=0.5, config=CFG, seed=0):
    return simulate(workload, policy, config, seed=seed, latency=LinearLatency(),
                    acceptance=FixedAcceptance(alpha))


def test_one_request_ttft_is_prefill_time_and_tpot_is_decode_time():
    # prefill = 0.010 + 0.0001 * 100 = 0.020 s; 9 decode iterations of 0.020 s
    r = _run(_workload((0.0, 100, 10)), PlainPolicy()).requests.iloc[0]
    assert r.ttft_s == pytest.approx(0.020)
    assert r.finish_s == pytest.approx(0.020 + 9 * 0.020)
    assert r.tpot_s == pytest.approx(0.020)
    assert r.generated_tokens == 10


def test_two_simultaneous_requests_share_prefill_and_decode():
    # one prefill of 200 tokens: 0.010 + 0.0001 * 200 = 0.030 s; then batched decodes
    res = _run(_workload((0.0, 100, 5), (0.0, 100, 5)), PlainPolicy())
    assert list(res.requests.ttft_s) == pytest.approx([0.030, 0.030])
    assert list(res.requests.finish_s) == pytest.approx([0.030 + 4 * 0.020] * 2)
    decode = res.iterations[res.iterations.kind == "decode"]
    assert list(decode.batch_size) == [2, 2, 2, 2]


def test_late_arrival_waits_for_the_running_iteration_then_prefills_first():
    # r0: prefill [0, .02], decodes [.02, .04], [.04, .06]; r1 arrives at .05 and is
    # prefilled at .06 (prefill-first), ending .08 -> TTFT .03; r0 resumes decoding with r1.
    res = _run(_workload((0.0, 100, 4), (0.05, 100, 2)), PlainPolicy())
    r0, r1 = res.requests.itertuples()
    assert r1.first_token_s == pytest.approx(0.08)
    assert r1.ttft_s == pytest.approx(0.03)
    # r0 has 3 tokens after its 2nd decode; its last token comes with r1's second in [.08, .10]
    assert r0.finish_s == pytest.approx(0.10)
    assert r1.finish_s == pytest.approx(0.10)


def test_full_acceptance_emits_k_plus_one_per_iteration_and_stops_drafting_at_the_end():
    # output 9: prefill emits 1 (remaining 8); decode 1 drafts min(3, 8-1)=3 and emits 4;
    # decode 2 drafts 3 and emits 4 -> done. Each decode: 3 draft steps of .002 + verify .020.
    res = _run(_workload((0.0, 100, 9)), FixedK(3), alpha=1.0)
    r = res.requests.iloc[0]
    assert r.finish_s == pytest.approx(0.020 + 2 * 0.026)
    assert (r.drafted_tokens, r.accepted_tokens) == (6, 6)
    assert list(res.iterations.emitted_tokens) == [1, 4, 4]
    assert res.summary["mean_tokens_per_step"] == pytest.approx(4.0)
    assert res.summary["acceptance_rate"] == pytest.approx(1.0)


def test_zero_acceptance_still_emits_one_token_per_iteration():
    res = _run(_workload((0.0, 50, 4)), FixedK(2), alpha=0.0)
    r = res.requests.iloc[0]
    assert r.generated_tokens == 4 and r.accepted_tokens == 0
    # 3 decodes, drafting min(2, remaining-1) = 2, 1, 0 (the last one cannot draft)
    assert list(res.iterations.drafted_tokens) == [0, 2, 1, 0]


def test_small_kv_cache_forces_preemption_and_everyone_still_finishes():
    # each request needs ceil((16 + 40) / 16) = 4 blocks at the end; 6 blocks hold only one
    config = SimConfig(kv_blocks=6, estimator="exact", cuda_graphs=False)
    res = _run(_workload((0.0, 16, 40), (0.0, 16, 40)), PlainPolicy(), config=config)
    assert res.summary["preemptions"] >= 1
    assert list(res.requests.generated_tokens) == [40, 40]
    assert (res.requests.status == "finished").all()


def test_request_that_never_fits_is_rejected_and_the_run_goes_on():
    config = SimConfig(kv_blocks=4, estimator="exact", cuda_graphs=False)
    res = _run(_workload((0.0, 16, 10), (0.0, 200, 10)), PlainPolicy(), config=config)
    assert list(res.requests.status) == ["finished", "rejected"]
    assert not res.requests.slo_met.iloc[1]
    assert math.isnan(res.requests.ttft_s.iloc[1])
    assert res.summary["rejected"] == 1


def test_one_token_output_finishes_at_prefill_with_undefined_tpot():
    res = _run(_workload((0.0, 10, 1)), PlainPolicy())
    r = res.requests.iloc[0]
    assert r.finish_s == pytest.approx(r.first_token_s)
    assert math.isnan(r.tpot_s) and r.slo_met


def test_graph_padding_pads_the_verification_pass():
    config = SimConfig(kv_blocks=10_000, estimator="exact")  # padding on
    res = _run(_workload(*[(0.0, 10, 5)] * 3), FixedK(2), alpha=0.0, config=config)
    first_decode = res.iterations[res.iterations.kind == "decode"].iloc[0]
    # 3 requests x (2 drafted + 1) = 9 tokens -> padded to the 16 graph
    assert first_decode.verify_tokens == 9 and first_decode.padded_tokens == 16
    assert first_decode.padded_batch == 4
