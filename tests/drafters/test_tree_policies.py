"""Policies over token trees: AdaSpec's verifier trims whole depths to the next graph size
(hand-computed), the cost model's spread estimate is monotone, and every policy runs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core.padding import GraphPadding
from sim.drafters.plan import MethodPlan
from sim.drafters.presets import get_method
from sim.drafters.trim import trim_tree
from sim.policies.adaspec import TrimMode
from sim.policies.base import BatchView
from sim.policies.goodput import IterationCost

MS = 1e-3


class FakeTreeEstimator:
    """verify = 10 + 0.5 x padded tokens ms; a drafter step 1 ms; 0.5 ms per drafting iteration."""

    draft_overhead_s = 0.5 * MS

    def target_verify_s(self, batch_size, tokens, context_tokens):
        return (10.0 + 0.5 * tokens) * MS

    def draft_tree_step_s(self, rows, tokens, context_tokens, step=0):
        return 1.0 * MS


def _cost(batch=3, method="eagle-2", engine="single-pass"):
    plan = MethodPlan(get_method(method))
    contexts = np.full(batch, 100, dtype=np.int64)
    view = BatchView(0.0, contexts, contexts - 1, np.ones(batch, dtype=np.int64),
                     np.zeros(batch), 2.0, 0.04, 0, np.full(batch, 8), FakeTreeEstimator(),
                     GraphPadding(), engine=engine, drafter=plan)
    return IterationCost(view, 6)


class _FakeAdaSpec:
    """The state AdaSpec's verifier exposes to ``trim_tree`` (``AdaSpecPolicy.trim_state``):
    the rules' arrays (E[N] = B + sum c, no SLO, so G = E / T) and the cumulative
    confidences; the trim decision is recorded there."""

    def __init__(self, cum, trim) -> None:
        from sim.policies.adaspec_rules import AF_BUDGET_S, AF_EXPECTED, AF_SIZE, AI_SIZE
        self._cum = np.asarray(cum, dtype=float)  # (steps, B), as the rules hold it
        self._pi = np.zeros(AI_SIZE, dtype=np.int64)  # slo=off
        self._pf = np.zeros(AF_SIZE)
        self._pf[AF_BUDGET_S] = np.inf
        self._pf[AF_EXPECTED] = self._cum.shape[1] + float(self._cum.sum())
        self.trim = trim

    def trim_state(self):
        return self._pi, self._pf, self._cum

    @property
    def last_trim(self) -> str:
        from sim.policies.adaspec_rules import _TRIM_OUTCOMES, AI_LAST_TRIM
        return _TRIM_OUTCOMES[self._pi[AI_LAST_TRIM]]


def _policy(cum, trim):
    return _FakeAdaSpec(cum, trim)


CUM = [[0.9, 0.9, 0.3], [0.81, 0.45, 0.27], [0.729, 0.225, 0.243]]


def test_token_trim_removes_the_lowest_depths_until_the_pass_fits():
    cost = _cost()
    policy = _policy(CUM, TrimMode.TOKEN)
    drafted = np.array([3, 3, 3])
    # 3 + 3 x 30 = 93 positions run at 96; the next smaller graph is 64: free 29 nodes =
    # three depths of 10, the lowest cumulative confidences 0.225, 0.243, 0.27
    new = trim_tree(policy, cost, drafted, 3)
    assert new.tolist() == [3, 2, 1]
    assert policy.last_trim == "kept"
    # goodput by hand: full 7.827 / (3.5 + 58) ms, trimmed 7.089 / (3.5 + 42) ms
    assert (7.827 - 0.738) / 45.5 > 7.827 / 61.5


def test_request_trim_takes_whole_suffixes_of_the_least_confident_request():
    policy = _policy(CUM, TrimMode.REQUEST)
    new = trim_tree(policy, _cost(), np.array([3, 3, 3]), 3)
    assert new.tolist() == [3, 0, 3]


def test_nothing_to_trim_when_the_pass_is_a_graph_size():
    policy = _policy([[0.9, 0.9], [0.5, 0.5]], TrimMode.TOKEN)
    drafted = np.array([3, 3])  # 2 + 60 = 62 -> 64; next smaller 32 would free 30 nodes
    new = trim_tree(policy, _cost(batch=2), drafted, 2)
    assert policy.last_trim in ("kept", "rejected")
    assert (new <= drafted).all()


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.sampled_from(["eagle", "eagle-2", "medusa", "pld", "lookahead"]),
       st.sampled_from(["single-pass", "vllm-0.6"]))
def test_predicted_verify_time_never_falls_with_more_depth(batch, method, engine):
    cost = _cost(batch, method, engine)
    depth = get_method(method).max_depth
    times = [cost.verify_s(batch + total) for total in range(batch * depth + 1)]
    assert all(b >= a for a, b in zip(times, times[1:]))


@pytest.mark.parametrize("method", ["eagle", "medusa", "hydra", "lookahead"])
def test_every_fitting_policy_runs_on_a_tree(method):
    from sim.cli import expand_policies
    from sim.run import SimConfig, simulate
    from sim.workload.request import Request, Workload

    requests = tuple(Request(i, 0.05 * i, 60 + i, 30 + 3 * i, "writing") for i in range(12))
    workload = Workload(requests, "small", "synthetic")
    for spec in expand_policies(["all"], method):
        result = simulate(workload, spec, SimConfig(method=method), seed=1)
        assert result.summary["requests"] == 12
        decode = result.iterations[result.iterations["kind"] == "decode"]
        # accepted <= the tree's depth: a request emits at most depth + 1 tokens a step
        most = get_method(method).max_depth + 1
        assert (decode["emitted_tokens"] <= decode["batch_size"] * most).all()
        assert int(result.requests["output_tokens"].sum()) == sum(r.output_tokens for r in requests)
        # every policy runs compiled with a method (tests/compiled: the same tables)
        assert result.summary["iteration_path"] == "compiled", spec
