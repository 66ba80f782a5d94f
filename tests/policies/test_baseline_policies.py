"""nospec, static, threshold, disable-by-batch and smartspec: hand-computed decisions, driven
through the one protocol driver (sim.core.speculation.run_decode_iteration)."""

from __future__ import annotations

import numpy as np
import pytest
from policy_fakes import MS, FakeEstimator, ScriptedExecutor, make_view

from sim.core.speculation import run_decode_iteration
from sim.policies.registry import make_policy


def test_nospec_never_drafts():
    pol = make_policy("nospec")
    assert pol.uses_draft is False and pol.k_max == 0
    out = run_decode_iteration(pol, make_view(3), ScriptedExecutor(np.ones((3, 8))))
    assert out.draft_steps == 0 and out.verify.tolist() == [0, 0, 0]


def test_static_drafts_k_for_everyone_within_their_limits():
    pol = make_policy("static:5")
    ex = ScriptedExecutor(np.full((3, 8), 0.5))
    out = run_decode_iteration(pol, make_view(3, max_draft=[8, 2, 5]), ex)
    assert out.draft_steps == 5
    assert out.verify.tolist() == [5, 2, 5]


def test_threshold_stops_after_the_step_whose_mean_confidence_of_drafters_is_below_t():
    """T = 0.6. Request 3 may draft only 1 token.
    step 0: mean(0.9, 0.5, 0.7, 0.6) = 0.675 >= 0.6 -> continue
    step 1: drafters 0..2: mean(0.7, 0.5, 0.65) = 0.6167 >= 0.6 -> continue
            (averaging request 3's unused 0.0 in would give 0.4625 and stop here)
    step 2: mean(0.5, 0.5, 0.6) = 0.5333 < 0.6 -> stop after this step; its tokens are verified."""
    conf = np.array([
        [0.9, 0.7, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9],
        [0.5, 0.5, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9],
        [0.7, 0.65, 0.6, 0.9, 0.9, 0.9, 0.9, 0.9],
        [0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    ])
    pol = make_policy("threshold:0.6,8")
    out = run_decode_iteration(pol, make_view(4, max_draft=[8, 8, 8, 1]), ScriptedExecutor(conf))
    assert out.draft_steps == 3
    assert out.verify.tolist() == [3, 3, 3, 1]
    # default parameters are the paper's T = 0.6, K = 8
    assert make_policy("threshold").name == "threshold:0.6,8"


def test_threshold_runs_to_k_when_confident():
    pol = make_policy("threshold:0.6,4")
    out = run_decode_iteration(pol, make_view(2), ScriptedExecutor(np.full((2, 8), 0.95)))
    assert out.draft_steps == 4


def test_disable_by_batch_switches_at_b():
    pol = make_policy("disable-by-batch:5,4")
    assert pol.begin(make_view(3)) == 5
    assert pol.begin(make_view(4)) == 0
    assert pol.begin(make_view(5)) == 0
    out = run_decode_iteration(pol, make_view(4), ScriptedExecutor(np.ones((4, 8))))
    assert out.draft_steps == 0


def test_smartspec_argmax_with_initial_alpha():
    """B = 4, alpha = 0.6, no padding. G(k) = 4 * sum_{r<=k} 0.6^r / T(k),
    T(0) = 12 ms, T(k>0) = 0.5 + k + 10 + 0.5 * (4 + 4k) = 12.5 + 3k ms:
      k=0: 4 / 12 = 333.33     k=1: 6.4 / 15.5 = 412.90    k=2: 7.84 / 18.5 = 423.78
      k=3: 8.704 / 21.5 = 404.84   k=4: 9.2224 / 24.5 = 376.42   -> k = 2"""
    pol = make_policy("smartspec:8")
    assert pol.begin(make_view(4)) == 2
    assert pol.last_goodputs[:5] == pytest.approx(
        [4 / (12 * MS), 6.4 / (15.5 * MS), 7.84 / (18.5 * MS), 8.704 / (21.5 * MS),
         9.2224 / (24.5 * MS)])


def test_smartspec_argmax_with_high_alpha():
    """alpha = 0.9: k=5: 4 * 4.68559 / 27.5 = 681.54; k=6: 4 * 5.217031 / 30.5 = 684.20;
    k=7: 4 * 5.6953279 / 33.5 = 680.04 -> k = 6"""
    pol = make_policy("smartspec:8,alpha0=0.9")
    assert pol.begin(make_view(4)) == 6
    assert pol.last_goodputs[6] == pytest.approx(4 * 5.217031 / (30.5 * MS))


def test_smartspec_ema_alpha_update():
    """verify [2, 2, 2, 2], accepted [2, 0, 1, 2]: accepted tokens 5, rejections 2
    (requests 1 and 2 stopped short) -> alpha_hat = 5/7 = 0.7142857;
    alpha = 0.9 * 0.6 + 0.1 * 0.7142857 = 0.6114286. Nothing verified: unchanged."""
    pol = make_policy("smartspec:8,rate=ema")
    pol.observe(np.array([2, 2, 2, 2]), np.array([2, 0, 1, 2]))
    assert pol.alpha == pytest.approx(0.9 * 0.6 + 0.1 * 5 / 7)
    pol.observe(np.zeros(4, dtype=np.int64), np.zeros(4, dtype=np.int64))
    assert pol.alpha == pytest.approx(0.9 * 0.6 + 0.1 * 5 / 7)


def test_smartspec_cumulative_rate_is_the_default():
    """All accepted / all trials since the start: 5 of 7 (as above), then verify [3, 0, 0, 0],
    accepted [1, 0, 0, 0] (1 accepted, 1 rejection) -> (5 + 1) / (7 + 2) = 0.6667.
    alpha0 holds until the first verified token."""
    pol = make_policy("smartspec:8")
    pol.observe(np.zeros(4, dtype=np.int64), np.zeros(4, dtype=np.int64))
    assert pol.alpha == 0.6
    pol.observe(np.array([2, 2, 2, 2]), np.array([2, 0, 1, 2]))
    assert pol.alpha == pytest.approx(5 / 7)
    pol.observe(np.array([3, 0, 0, 0]), np.array([1, 0, 0, 0]))
    assert pol.alpha == pytest.approx(6 / 9)


def test_smartspec_plain_bias_favours_plain_decoding():
    """Draft step 4 ms, alpha 0.6: T(k) = 0.5 + 4k + 10 + 0.5 * (4 + 4k) = 12.5 + 6k ms.
    k=0: 333.33 (x 1.1 = 366.67); k=1: 6.4 / 18.5 = 345.95; k=2: 7.84 / 24.5 = 320.0.
    Unbiased: k = 1; with the artifact's 1.1 on G(0): k = 0."""
    view = make_view(4, estimator=FakeEstimator(draft_step_ms=4.0))
    assert make_policy("smartspec:8").begin(view) == 1
    biased = make_policy("smartspec:8,plain_bias=1.1")
    assert biased.begin(view) == 0
    assert biased.last_goodputs[0] == pytest.approx(1.1 * 4 / (12 * MS))


def test_smartspec_artifact_form():
    """artifact: alpha0 0.7, x1.1 on G(0), cumulative rate, reset below 0.3 to 0.65.
    alpha 0.7: k=0: 366.67; k=1: 4 * 1.7 / 15.5 = 438.71; k=2: 4 * 2.19 / 18.5 = 473.51;
    k=3: 4 * 2.533 / 21.5 = 471.26 -> k = 2.
    After verify [2, 2, 2, 2] with nothing accepted the rate is 0 / 4 = 0 < 0.3: the decision
    uses 0.65: k=2: 4 * 2.0725 / 18.5 = 448.11 beats k=1 (425.81) and k=3 (4 * 2.347125 / 21.5
    = 436.67) -> k = 2 again, where a stuck estimate of 0 would decode plainly."""
    pol = make_policy("smartspec:8,artifact")
    assert pol.name == "smartspec:8,artifact"
    assert pol.begin(make_view(4)) == 2
    assert pol.last_goodputs[:4] == pytest.approx(
        [1.1 * 4 / (12 * MS), 6.8 / (15.5 * MS), 8.76 / (18.5 * MS), 10.132 / (21.5 * MS)])
    pol.observe(np.array([2, 2, 2, 2]), np.zeros(4, dtype=np.int64))
    assert pol.alpha == 0.0
    assert pol.begin(make_view(4)) == 2
    assert pol.last_goodputs[2] == pytest.approx(4 * 2.0725 / (18.5 * MS))
    assert make_policy("smartspec:8,recover=none").name == "smartspec:8,recover=none"


def test_smartspec_decay_recovers_from_a_low_estimate():
    """Cumulative alpha 0 after a fully rejected start; prior 0.6, half-life 2 plain
    iterations: decided value 0.6 * (1 - 2^(-s/2)). k = 1 pays when G(1) = 4(1 + a) / 15.5 ms
    > 333.33, i.e. a > 0.29167: s = 0: 0, s = 1: 0.1757, s = 2: 0.3 -> the third iteration drafts."""
    pol = make_policy("smartspec:8,recover_after=2")
    pol.observe(np.array([2, 2, 2, 2]), np.zeros(4, dtype=np.int64))
    assert [pol.begin(make_view(4)) for _ in range(3)] == [0, 0, 1]
    assert pol.last_goodputs[1] == pytest.approx(4 * 1.3 / (15.5 * MS))
    stuck = make_policy("smartspec:8,recover=none")
    stuck.observe(np.array([2, 2, 2, 2]), np.zeros(4, dtype=np.int64))
    assert all(stuck.begin(make_view(4)) == 0 for _ in range(50))


def test_smartspec_respects_request_limits():
    """Request limits [8, 0, 0, 0] at alpha 0.6: only request 0 can draft.
    k=1: E = 3 + 1.6 = 4.6, T = 0.5 + 1 + 10 + 0.5 * 5 = 14 ms -> 328.57 < G(0) = 333.33;
    more steps only get worse (each adds 1.5 ms for <= 0.36 token) -> k = 0."""
    pol = make_policy("smartspec:8")
    assert pol.begin(make_view(4, max_draft=[8, 0, 0, 0])) == 0
    assert pol.last_goodputs[1] == pytest.approx(4.6 / (14 * MS))
