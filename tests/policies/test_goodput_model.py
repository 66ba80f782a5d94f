"""The shared efficiency model: hand-computed times, expected tokens, goodput, SLO feasibility."""

from __future__ import annotations

import math

import numpy as np
import pytest
from policy_fakes import DEFAULT_PADDING, MS, NO_PADDING, FakeEstimator, make_view

from sim.policies.goodput import (
    IterationCost,
    SloMode,
    cumulative_confidence,
    expected_emitted_tokens,
    feasible,
    geometric_tokens,
    goodput,
    slo_limit_s,
)


def test_verify_time_is_padded_to_graph_size():
    cost = IterationCost(make_view(4, padding=DEFAULT_PADDING), k_max=8)
    # 5 tokens pad to 8: 10 + 0.5 * 8 = 14 ms
    assert cost.verify_s(5) == pytest.approx(14 * MS)
    # 17 tokens pad to 32: 10 + 16 = 26 ms; 16 stays 16: 10 + 8 = 18 ms
    assert cost.verify_s(17) == pytest.approx(26 * MS)
    assert cost.verify_s(16) == pytest.approx(18 * MS)
    # no padding: 17 tokens cost 10 + 8.5 = 18.5 ms
    assert IterationCost(make_view(4), 8).verify_s(17) == pytest.approx(18.5 * MS)


def test_draft_time_counts_drafting_requests_per_step_and_pads_the_batch():
    est = FakeEstimator(draft_per_batch_ms=0.1)
    view = make_view(4, max_draft=[8, 8, 1, 0], estimator=est, padding=DEFAULT_PADDING)
    cost = IterationCost(view, k_max=8)
    assert cost.draft_counts[:3] == [3, 2, 2]
    assert cost.limit_counts[:3] == [1, 1, 0] and not cost.uniform
    # step 0: 3 drafters pad to 4 -> 1 + 0.4 = 1.4 ms; step 1: 2 drafters -> 1 + 0.2 = 1.2 ms
    # plus the 0.5 ms overhead: 0.5 + 1.4 + 1.2 = 3.1 ms
    assert cost.draft_s(0) == 0.0
    assert cost.draft_s(2) == pytest.approx(3.1 * MS)
    # T(2 steps, 3 verify tokens) = 3.1 + verify(pad(4 + 3) = 8) = 3.1 + 14 = 17.1 ms
    assert cost.time_s(2, 3) == pytest.approx(17.1 * MS)
    # actual drafting [2, 1, 0, 0]: step 0 two drafters (1.2), step 1 one (1.1): 0.5 + 2.3
    assert cost.draft_s_actual(np.array([2, 1, 0, 0])) == pytest.approx(2.8 * MS)
    assert cost.draft_s_actual(np.zeros(4, dtype=np.int64)) == 0.0


def test_cumulative_confidence_and_extrapolation():
    conf = np.array([[0.9, 0.8], [0.5, 0.0]])
    drafted = np.array([2, 1])
    cum = cumulative_confidence(conf, drafted, length=4, cbar=0.5)
    # row 0: 0.9, 0.72, then extrapolated 0.36, 0.18; row 1: 0.5, 0.25, 0.125, 0.0625
    np.testing.assert_allclose(cum, [[0.9, 0.72, 0.36, 0.18], [0.5, 0.25, 0.125, 0.0625]])
    # without cbar positions past drafted_i are 0
    np.testing.assert_allclose(cumulative_confidence(conf, drafted), [[0.9, 0.72], [0.5, 0.0]])
    # E[N] for k = [3, 1]: (1 + 0.9 + 0.72 + 0.36) + (1 + 0.5) = 4.48
    assert expected_emitted_tokens(cum, np.array([3, 1])) == pytest.approx(4.48)


def test_goodput_and_geometric_tokens():
    # 6.4 tokens in 15.5 ms = 412.903 tok/s
    assert goodput(6.4, 15.5 * MS) == pytest.approx(6.4 / 0.0155)
    assert goodput(3.0, 0.0) == 0.0
    # 1 + 0.6 + 0.36 = 1.96
    assert geometric_tokens(0.6, 2) == pytest.approx(1.96)
    assert geometric_tokens(1.0, 3) == pytest.approx(4.0)


def test_slo_feasibility_forms():
    view = make_view(2, tpot_slo_s=0.040)
    assert slo_limit_s(view, SloMode.STRICT) == 0.040
    assert slo_limit_s(view, SloMode.OFF) == math.inf
    assert slo_limit_s(make_view(2), SloMode.STRICT) == math.inf  # no SLO set
    # strict: 41 ms > 40 ms is infeasible, 40 ms is feasible
    assert not feasible(0.041, 2.0, 0.040, SloMode.STRICT)
    assert feasible(0.040, 2.0, 0.040, SloMode.STRICT)
    # tokens form: 41 ms / 2 expected tokens = 20.5 ms per token <= 40 ms
    assert feasible(0.041, 2.0, 0.040, SloMode.TOKENS)
    assert not feasible(0.081, 2.0, 0.040, SloMode.TOKENS)
    # a plain-decode iteration is always feasible
    assert feasible(1.0, 1.0, 0.040, SloMode.STRICT, speculative=False)


def test_estimator_is_called_once_per_padded_size():
    calls = []

    class Counting(FakeEstimator):
        def target_verify_s(self, batch_size, tokens, context_tokens):
            calls.append(tokens)
            return super().target_verify_s(batch_size, tokens, context_tokens)

    cost = IterationCost(make_view(4, estimator=Counting(), padding=DEFAULT_PADDING), 8)
    for tokens in (5, 6, 7, 8, 9):
        cost.verify_s(tokens)
    assert calls == [8, 16]
    assert NO_PADDING.pad(9) == 9


def test_uniform_batch_needs_no_per_request_limits():
    cost = IterationCost(make_view(4, max_draft=8), k_max=8)
    assert cost.uniform and cost.limit_counts is None
    assert cost.draft_counts == [4] * 8
    # a larger K than anyone may draft is not uniform
    capped = IterationCost(make_view(4, max_draft=[8, 8, 8, 3]), k_max=8)
    assert not capped.uniform and capped.draft_counts == [4, 4, 4, 3, 3, 3, 3, 3]


def test_known_values_of_computed_once_attributes_are_kept_and_other_names_refused():
    from sim.policies.base import known_once

    view = make_view(3, max_draft=[5, 2, 7])
    known_once(view, total_context_tokens=7)  # whatever the caller says it found
    assert view.total_context_tokens == 7
    with pytest.raises(AttributeError, match="batch_size"):
        known_once(view, batch_size=3)  # a plain property, not a computed-once attribute
    with pytest.raises(AttributeError, match="no_such_sum"):
        known_once(view, no_such_sum=1)


def test_view_sums_are_computed_once_and_right():
    view = make_view(3, max_draft=[5, 2, 7])
    assert view.total_context_tokens == 300 and view.least_max_draft_tokens == 2
    assert view.__dict__["total_context_tokens"] == 300  # stored after the first access
    assert make_view(0).least_max_draft_tokens == 0


# ---- serving engines (sim.latency.iteration): hand-computed ----------------------------------
class ContextModel(FakeEstimator):
    """verify = 10 + 0.5 tokens + 0.1 rows + 0.001 KV read; draft = 1 + 0.1 rows + 0.001 KV
    (ms), so every term of an engine's pass shape shows in the result."""

    def target_verify_s(self, batch_size, tokens, context_tokens):
        return (10 + 0.5 * tokens + 0.1 * batch_size + 0.001 * context_tokens) * MS

    def draft_step_s(self, batch_size, context_tokens):
        return (1 + 0.1 * batch_size + 0.001 * context_tokens) * MS


def engine_view(engine: str, bonus=None):
    from dataclasses import replace

    view = make_view(2, estimator=ContextModel())
    return replace(view, context_tokens=np.array([100, 300]), engine=engine,
                   bonus=None if bonus is None else np.asarray(bonus, dtype=bool))


def test_single_pass_prices_one_pass_reading_each_kv_once():
    cost = IterationCost(engine_view("single-pass"), k_max=3)
    # verify: rows 2, tokens 8, KV 400 -> 10 + 4 + 0.2 + 0.4 = 14.6 ms
    assert cost.verify_s(8) == pytest.approx(14.6 * MS)
    # draft steps s = 0..2: 2 rows, KV 400 + 2 s -> 1.6, 1.602, 1.604; + 0.5 overhead
    assert cost.draft_s(3) == pytest.approx(5.306 * MS)
    assert cost.time_s(3, 6) == pytest.approx(19.906 * MS)


def test_batch_expansion_prices_expanded_rows_and_bonus_rows():
    cost = IterationCost(engine_view("vllm-0.6", bonus=[True, False]), k_max=3)
    # verify k = 3 each: 8 rows reading 4 * 400 + 2 * 3 * 4 / 2 = 1612 positions
    # -> 10 + 4 + 0.8 + 1.612 = 16.412 ms
    assert cost.verify_s(8) == pytest.approx(16.412 * MS)
    # draft: 2 rows + 1 bonus copy (L - 1 = 99), KV 499 + 3 s -> 1.799, 1.802, 1.805; + 0.5
    assert cost.draft_s(3) == pytest.approx(5.906 * MS)
    assert cost.time_s(3, 6) == pytest.approx(22.318 * MS)
    # plain decoding is the same pass under both engines: 10 + 1 + 0.2 + 0.4 = 11.6 ms
    assert cost.verify_s(2) == pytest.approx(11.6 * MS)
    # a non-uniform plan [3, 1] priced exactly: 6 rows, (4 * 100 + 6) + (2 * 300 + 1) = 1007
    assert cost.verify_plan_s(np.array([3, 1])) == pytest.approx(14.607 * MS)
    # the same total spread evenly (k = 2 each): 3 * 400 + 2 * 3 = 1206 -> 14.806 ms
    assert cost.verify_s(6) == pytest.approx(14.806 * MS)
    # single-pass: a plan costs what its total costs
    single = IterationCost(engine_view("single-pass"), k_max=3)
    assert single.verify_plan_s(np.array([3, 1])) == single.verify_s(6)


def test_cost_model_matches_the_servers_shape_for_uniform_plans():
    """time_s(k, B k) is decode_iteration_s of the shape the server builds for that plan."""
    from sim.core.speculation import DecodeOutcome, decode_shape
    from sim.latency.iteration import decode_iteration_s

    for engine, bonus in (("single-pass", None), ("vllm-0.6", [True, False]),
                          ("vllm-0.6", [False, False])):
        view = engine_view(engine, bonus)
        cost = IterationCost(view, k_max=3)
        for k in range(4):
            drafted = np.full(2, k, dtype=np.int64)
            outcome = DecodeOutcome(k, drafted, drafted, drafted, np.zeros((2, k)), (2,) * k)
            shape = decode_shape(view, outcome)
            assert cost.time_s(k, 2 * k) == pytest.approx(
                decode_iteration_s(view.estimator, view.padding, shape), rel=1e-12)


def test_clamped_limit_hand_cases():
    """A request's draft limit is clamped to 0..k_max (shared by SmartSpec's expected tokens
    and the draft-step counts)."""
    from sim.policies.goodput import clamped_limit

    assert [clamped_limit(v, 5) for v in (-3, 0, 2, 5, 9)] == [0, 0, 2, 5, 5]
    assert clamped_limit(4, 0) == 0
