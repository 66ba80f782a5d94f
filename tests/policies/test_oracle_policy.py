"""The sim-only oracle picks the true best plan; hand-computed and brute-forced."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from policy_fakes import DEFAULT_PADDING, MS, FakeEstimator, ScriptedExecutor, make_view

from sim.core.speculation import run_decode_iteration
from sim.errors import ConfigError
from sim.policies.base import OracleView
from sim.policies.oracle import water_fill
from sim.policies.registry import make_policy


def _oracle_view(accept, *, padding=DEFAULT_PADDING, max_draft=8, estimator=None):
    accept = np.asarray(accept, dtype=bool)
    conf = np.full(accept.shape, 0.5)
    return make_view(accept.shape[0], max_draft=max_draft, padding=padding, estimator=estimator,
                     oracle=OracleView(conf=conf, accept=accept))


def test_oracle_is_sim_only():
    pol = make_policy("oracle:8")
    assert pol.sim_only is True and pol.needs_oracle is True
    with pytest.raises(ConfigError, match="sim-only"):
        pol.begin(make_view(2))


def test_oracle_hand_computed_choice_with_padding():
    """B = 3, true accepted prefixes [4, 2, 0], graph sizes 1, 2, 4, 8, 16, ...
    (verify = 10 + 0.5 * padded tokens ms, draft step 1 ms, overhead 0.5 ms)
      s=0: 3 tokens pad 4:                          3 / 12 ms            = 250.00
      s=1: x=2, 5 pad 8: T = 1.5 + 14 = 15.5 ms     5 / 15.5             = 322.58
      s=2: x=4, 7 pad 8: T = 2.5 + 14 = 16.5 ms     7 / 16.5             = 424.24
      s=3: x=5, 8 pad 8: T = 3.5 + 14 = 17.5 ms     8 / 17.5             = 457.14  <- best
      s=4: x=6, 9 pad 16: T = 4.5 + 18 = 22.5 ms    9 / 22.5             = 400.00
           bucket top x=5 (8 tokens): T = 4.5 + 14  8 / 18.5             = 432.43
    -> 3 steps, k = [3, 2, 0], 8 tokens emitted."""
    accept = [[1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 1, 1]]
    pol = make_policy("oracle:8")
    view = _oracle_view(accept)
    out = run_decode_iteration(pol, view, ScriptedExecutor(view.oracle.conf, view.oracle.accept))
    assert pol.best_goodput == pytest.approx(8 / (17.5 * MS))
    assert out.draft_steps == 3
    assert out.verify.tolist() == [3, 2, 0]
    assert (out.accepted + 1).sum() == 8


def test_oracle_picks_a_bucket_top_when_the_next_token_costs_a_bigger_graph():
    """B = 3, every token accepted, K = 6; draft step 0.1 ms, no overhead,
    verify = 10 + 0.5 * padded tokens. s steps give x = 3s tokens, 3 + 3s in the pass:
      s=3: 12 pad 16: T = 0.3 + 18 = 18.3 ms -> 12 / 18.3 = 655.74
      s=4: 15 pad 16: T = 0.4 + 18 = 18.4 ms -> 15 / 18.4 = 815.22
      s=5: 18 pad 32: T = 0.5 + 26 = 26.5 ms -> 18 / 26.5 = 679.25
           bucket top x = 13 (16 tokens): T = 0.5 + 18 = 18.5 ms -> 16 / 18.5 = 864.86  <- best
      s=6: 21 pad 32: T = 0.6 + 26 = 26.6 ms -> 789.47; top (16 tokens): 16 / 18.6 = 860.22
    -> 13 tokens water-filled over min(prefix, 5) = [5, 5, 5]: k = [5, 4, 4]."""
    est = FakeEstimator(draft_step_ms=0.1, overhead_ms=0.0)
    pol = make_policy("oracle:6")
    assert pol.begin(_oracle_view(np.ones((3, 8)), estimator=est)) == 5
    assert pol.best_goodput == pytest.approx(16 / (18.5 * MS))
    assert pol.verify_lengths(np.zeros((3, 5)), np.array([5, 5, 5])).tolist() == [5, 4, 4]


def _true_goodput(plan, prefix, est, padding):
    batch = len(plan)
    emitted = sum(1 + min(k, a) for k, a in zip(plan, prefix))
    steps = max(plan)
    draft = (est.overhead_ms + est.draft_step_ms * steps) if steps else 0.0
    return emitted / ((draft + est.verify_base_ms + est.verify_per_token_ms
                       * padding.pad(batch + sum(plan))) * MS)


@pytest.mark.parametrize("seed", range(6))
def test_oracle_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    batch, k = 3, 4
    accept = rng.random((batch, k)) < 0.7
    est = FakeEstimator()
    pol = make_policy(f"oracle:{k}")
    view = _oracle_view(accept, estimator=est)
    pol.begin(view)
    prefix = [int(np.logical_and.accumulate(row).sum()) for row in accept]
    best = max(_true_goodput(plan, prefix, est, DEFAULT_PADDING)
               for plan in itertools.product(range(k + 1), repeat=batch))
    mine = _true_goodput(pol._plan.tolist(), prefix, est, DEFAULT_PADDING)
    assert mine == pytest.approx(best)
    assert pol.best_goodput == pytest.approx(best)


def test_water_fill():
    assert water_fill(np.array([5, 1, 3]), 9).tolist() == [5, 1, 3]
    assert water_fill(np.array([5, 1, 3]), 5).tolist() == [2, 1, 2]
    assert water_fill(np.array([5, 1, 3]), 0).tolist() == [0, 0, 0]
