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


def test_view_sums_are_computed_once_and_right():
    view = make_view(3, max_draft=[5, 2, 7])
    assert view.total_context_tokens == 300 and view.least_max_draft_tokens == 2
    assert view.__dict__["total_context_tokens"] == 300  # stored after the first access
    assert make_view(0).least_max_draft_tokens == 0
