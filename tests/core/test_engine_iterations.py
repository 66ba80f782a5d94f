"""The server, the policies' cost model and adaspec-validate price an iteration with one
function (``sim.latency.iteration``); each engine's recorded shape is what it runs."""

from __future__ import annotations

import numpy as np
import pytest

import sim.latency.iteration as iteration
from calibrate.validate import decode_shapes, predict_iterations
from fakes import FixedK, LinearLatency
from sim.acceptance.base import FixedAcceptance
from sim.errors import ConfigError
from sim.latency.presets import roofline_for
from sim.run import SimConfig, build_padding, simulate
from sim.workload.request import Request, Workload

WORKLOAD = Workload(tuple(Request(i, 0.02 * i, 60 + 13 * (i % 7), 20 + 9 * (i % 5))
                          for i in range(40)), "test", "native")
ROOF = roofline_for("vicuna-7b", gpu="A100-80G")


def _run(policy, engine, acceptance=0.7, latency=ROOF, **config):
    cfg = SimConfig(kv_blocks=10_000, engine=engine, **config)
    return cfg, simulate(WORKLOAD, policy, cfg, seed=3, latency=latency,
                         acceptance=FixedAcceptance(acceptance))


@pytest.mark.parametrize("engine", iteration.ENGINES)
@pytest.mark.parametrize("policy", ["static:3", "adaspec:8", "smartspec:8", "nospec"])
def test_recorded_shape_reprices_to_the_recorded_duration(policy, engine):
    """Server and validate: every decode row's duration is decode_iteration_s of its row."""
    cfg, res = _run(policy, engine)
    it = res.iterations
    predicted = predict_iterations(it, res.requests, ROOF, build_padding(cfg), policy != "nospec")
    decode = (it["kind"] == "decode").to_numpy()
    assert decode.sum() > 20
    np.testing.assert_array_equal(predicted[decode], it["duration_s"].to_numpy()[decode])


def test_batch_expansion_shape_of_a_static_run():
    cfg, res = _run(FixedK(3), "vllm-0.6", acceptance=0.9)
    # (shape, sequences that draft at all: a request near its output limit may draft none)
    spec = [(s, sum(int(v) > 0 for v in lengths.split(";")))
            for s, lengths in zip(decode_shapes(res.iterations, res.requests),
                                  res.iterations["verify_lengths"])
            if s is not None and s.draft_rows]
    assert spec
    bonus_seen = False
    for s, drafting in spec:
        k = (s.verify_tokens - s.batch) // s.batch
        # everyone verified k: k draft steps over every sequence (a request near its output
        # limit drafts fewer, which the token total alone does not show)
        if (s.verify_tokens == s.batch * (k + 1) and len(s.draft_rows) == k
                and all(r >= s.batch for r in s.draft_rows)):
            assert s.verify_rows == s.batch * (k + 1)
            assert s.verify_kv_tokens == (k + 1) * s.context_tokens + s.batch * k * (k + 1) // 2
        rows = s.draft_rows[0]
        assert drafting <= rows <= 2 * drafting  # B' <= B_d <= 2B', B' the drafting sequences
        bonus_seen |= rows > s.batch
    assert bonus_seen  # 0.9 acceptance: many requests end an iteration with a bonus token
    _, single = _run(FixedK(3), "single-pass", acceptance=0.9)
    one = [s for s in decode_shapes(single.iterations, single.requests) if s and s.draft_rows]
    assert all(s.verify_rows == s.batch and s.verify_kv_tokens == s.context_tokens
               and s.draft_rows[0] <= s.batch for s in one)


def test_plain_decoding_is_identical_under_both_engines():
    a = _run("nospec", "single-pass")[1].iterations
    b = _run("nospec", "vllm-0.6")[1].iterations
    assert a.equals(b)


def test_everyone_calls_the_one_function(monkeypatch):
    """Server, cost model and validate reach the latency model only through
    ``sim.latency.iteration``'s pass functions."""
    calls = {"verify": 0, "draft": 0}
    verify, draft = iteration.verify_pass_s, iteration.draft_pass_s

    def counting_verify(*args):
        calls["verify"] += 1
        return verify(*args)

    def counting_draft(*args):
        calls["draft"] += 1
        return draft(*args)

    class Forbidden(LinearLatency):
        """Raises when called from anywhere but the iteration module's pass functions."""

        def target_verify_s(self, *args):
            assert calls["verify"] > self.seen_verify, "verify priced outside sim.latency.iteration"
            object.__setattr__(self, "seen_verify", calls["verify"])
            return super().target_verify_s(*args)

    monkeypatch.setattr(iteration, "verify_pass_s", counting_verify)
    monkeypatch.setattr(iteration, "draft_pass_s", counting_draft)
    import sim.policies.goodput as goodput
    monkeypatch.setattr(goodput, "verify_pass_s", counting_verify)
    monkeypatch.setattr(goodput, "draft_pass_s", counting_draft)
    latency = Forbidden(verify_per_context_s=1e-6)
    object.__setattr__(latency, "seen_verify", 0)
    cfg = SimConfig(kv_blocks=10_000, estimator="exact")
    res = simulate(WORKLOAD, "adaspec:8,slo=off", cfg, seed=1, latency=latency,
                   acceptance=FixedAcceptance(0.8))
    assert calls["verify"] > len(res.iterations) and calls["draft"] > 0
    predict_iterations(res.iterations, res.requests, latency, build_padding(cfg), True)


def test_engine_is_validated_once_and_recorded():
    with pytest.raises(ConfigError, match="engine must be one of"):
        SimConfig(engine="vllm-v1")
    assert SimConfig().engine == "single-pass"
    assert SimConfig(engine="vllm-0.6").to_dict()["engine"] == "vllm-0.6"


def test_bonus_rows_by_hand():
    """One request (prompt 100, output 10), k = 2, every draft accepted, batch expansion:
    the first decode has no bonus row; afterwards the request carries one in each draft step
    (a copy without the bonus token, L - 1 positions)."""
    workload = Workload((Request(0, 0.0, 100, 10),), "test", "native")
    cfg = SimConfig(kv_blocks=10_000, engine="vllm-0.6", estimator="exact", cuda_graphs=False)
    res = simulate(workload, FixedK(2), cfg, seed=0,
                   latency=LinearLatency(verify_per_context_s=1e-6),
                   acceptance=FixedAcceptance(1.0))
    dec = res.iterations[res.iterations["kind"] == "decode"]
    assert dec["context_tokens"].tolist() == [101, 104, 107]
    assert dec["verify_rows"].tolist() == [3, 3, 3]
    assert dec["kv_tokens_read"].tolist() == [306, 315, 324]  # 3 L + 0 + 1 + 2
    assert dec["draft_rows"].tolist() == ["1;1", "2;2", "2;2"]
    assert dec["draft_kv_tokens"].tolist() == ["101;102", "207;209", "213;215"]
    # LinearLatency: verify 0.020 + 1e-6 x KV read, draft steps 0.002 each
    assert dec["duration_s"].tolist() == pytest.approx([0.024306, 0.024315, 0.024324])
