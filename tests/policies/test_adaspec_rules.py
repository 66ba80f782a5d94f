"""AdaSpec's rules, each checked against hand-computed goodput numbers.

Estimator (policy_fakes.FakeEstimator): verify = 10 + 0.5 * tokens ms, draft step = 1 ms,
draft overhead = 0.5 ms. Batch B = 4, K = 8, cbar = 0.6 unless stated. Tests of the paper's
forms (SLO check, EMA cbar) name them; ``adaspec:8`` is slo=off, trim=token, cbar=cumulative
with decay recovery.

    T(0)        = 10 + 0.5 * 4                 = 12.0 ms   G(0) = 4 / 12.0 ms   = 333.33 tok/s
    T(1 step)   = 0.5 + 1 + 10 + 0.5 * 8       = 15.5 ms
    T(2 steps)  = 0.5 + 2 + 10 + 0.5 * 12      = 18.5 ms
    T(3 steps)  = 0.5 + 3 + 10 + 0.5 * 16      = 21.5 ms
    pre-check:  E = 4 + 4 * 0.6 = 6.4  ->  G(1) = 6.4 / 15.5 ms = 412.90 > 333.33
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_fakes import DEFAULT_PADDING, MS, FakeEstimator, ScriptedExecutor, make_view

from sim.core.speculation import run_decode_iteration
from sim.policies.adaspec import AdaSpecPolicy
from sim.policies.adaspec_nv import AdaSpecNoVerifierPolicy
from sim.policies.registry import make_policy

PAPER = "adaspec:8,slo=strict,trim=token,cbar=ema"  # the paper's SLO check and token trimming


def _conf(*columns: float, batch: int = 4) -> np.ndarray:
    """Confidence matrix whose step s gives every request ``columns[s]``."""
    return np.tile(np.array(columns, dtype=np.float64), (batch, 1))


def test_precheck_passes_and_returns_k():
    pol = make_policy("adaspec:8")
    assert pol.begin(make_view(4)) == 8
    assert pol.g0 == pytest.approx(4 / (12 * MS))          # 333.33
    assert pol.predicted == pytest.approx(6.4 / (15.5 * MS))  # 412.90


def test_precheck_falls_back_to_plain_decoding():
    # draft step 5 ms: T(1) = 0.5 + 5 + 14 = 19.5 ms, G(1) = 6.4 / 19.5 ms = 328.2 < 333.33
    pol = make_policy("adaspec:8")
    view = make_view(4, estimator=FakeEstimator(draft_step_ms=5.0))
    assert pol.begin(view) == 0
    assert pol.predicted == pytest.approx(6.4 / (19.5 * MS))
    assert pol.stats["precheck_plain"] == 1
    # with a 4 ms draft step it passes: T(1) = 18.5 ms, G(1) = 345.9 > 333.33
    assert make_policy("adaspec:8").begin(make_view(4, estimator=FakeEstimator(draft_step_ms=4.0))) == 8


def test_drafter_continues_then_stops_after_a_step_whose_real_goodput_fell():
    """Steps with confidence 0.9, 0.9, 0.5:
    after step 0: E = 4 + 4*0.9 = 7.6, G(1) = 7.6/15.5 = 490.32 >= 333.33 -> best;
       predict step 1: E = 7.6 + 4*0.9*0.6 = 9.76, G = 9.76/18.5 = 527.57 >= 490.32 -> draft
    after step 1: c = 0.81, E = 7.6 + 3.24 = 10.84, G(2) = 10.84/18.5 = 585.95 -> best;
       predict step 2: E = 10.84 + 4*0.81*0.6 = 12.784, G = 12.784/21.5 = 594.60 -> draft
    after step 2: c = 0.405, E = 10.84 + 1.62 = 12.46, G(3) = 12.46/21.5 = 579.53 < 585.95 -> stop;
       the step's tokens are kept: verify 3 each."""
    pol = make_policy("adaspec:8")
    ex = ScriptedExecutor(_conf(0.9, 0.9, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9))
    out = run_decode_iteration(pol, make_view(4), ex)
    assert out.draft_steps == 3
    assert out.verify.tolist() == [3, 3, 3, 3]
    assert pol.best == pytest.approx(10.84 / (18.5 * MS))
    assert pol.stats["stop_after_step"] == 1 and pol.stats["stop_before_step"] == 0


def test_drafter_stops_before_a_step_whose_prediction_is_below_best():
    """Steps with confidence 0.9, 0.6:
    after step 1: c = 0.54, E = 7.6 + 2.16 = 9.76, G(2) = 9.76/18.5 = 527.57 > 490.32 -> best;
       predict step 2: E = 9.76 + 4*0.54*0.6 = 11.056, G = 11.056/21.5 = 514.23 < 527.57 -> stop.
    cbar afterwards (cbar=ema, weight 0.1 per productive step): 0.9*0.6 + 0.1*0.9 = 0.63, then
    0.9*0.63 + 0.1*0.6 = 0.627."""
    pol = make_policy(PAPER)
    ex = ScriptedExecutor(_conf(0.9, 0.6, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9))
    out = run_decode_iteration(pol, make_view(4), ex)
    assert out.draft_steps == 2
    assert out.verify.tolist() == [2, 2, 2, 2]
    assert pol.predicted == pytest.approx(11.056 / (21.5 * MS))
    assert pol.stats["stop_before_step"] == 1
    assert pol.cbar == pytest.approx(0.627)


def test_first_step_below_plain_goodput_stops_and_keeps_the_tokens():
    """Step 0 confidence 0.1: E = 4.4, G(1) = 4.4/15.5 = 283.87 < G(0) = 333.33 -> stop after
    step 0; the drafted token of each request is still verified (trimming is off: no padding)."""
    pol = make_policy("adaspec:8")
    out = run_decode_iteration(pol, make_view(4), ScriptedExecutor(_conf(*[0.1] * 8)))
    assert out.draft_steps == 1
    assert out.verify.tolist() == [1, 1, 1, 1]


def test_strict_slo_excludes_a_k():
    """TPOT SLO 20 ms, strict form: same confidences as the stop-after test, but the predicted
    T(3 steps) = 21.5 ms > 20 ms makes step 2 infeasible (although its goodput 594.60 is higher),
    so drafting stops before it: 2 steps."""
    pol = make_policy(PAPER)
    ex = ScriptedExecutor(_conf(0.9, 0.9, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9))
    out = run_decode_iteration(pol, make_view(4, tpot_slo_s=20 * MS), ex)
    assert out.draft_steps == 2
    assert out.verify.tolist() == [2, 2, 2, 2]
    # tokens form: per-request T / E[N_i] = 21.5 / (1 + 0.9 + 0.81 + 0.486) = 6.7 ms <= 20 ms:
    # feasible, so it drafts the third step like the unconstrained run
    pol = make_policy("adaspec:8,slo=tokens,cbar=ema")
    out = run_decode_iteration(pol, make_view(4, tpot_slo_s=20 * MS),
                               ScriptedExecutor(_conf(0.9, 0.9, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9)))
    assert out.draft_steps == 3


def test_lost_slo_maximises_goodput_unless_lost_plain():
    """B = 4, no padding: T(0) = verify(4) = 10 + 0.5 * 4 = 12 ms > SLO 11 ms: even plain
    decoding misses the budget. lost=goodput (default) drops the constraint this iteration;
    the pre-check then compares G(1) = (4 + 0.6 * 4) / (0.5 + 1 + verify(8) = 15.5 ms) = 412.9
    with G(0) = 4 / 12 ms = 333.3 and drafts. lost=plain keeps DESIGN's literal rule: only
    k = 0 is feasible."""
    pol = make_policy("adaspec:8,slo=strict")
    assert pol.begin(make_view(4, tpot_slo_s=11 * MS)) == 8
    assert pol.stats["slo_lost"] == 1
    plain = make_policy("adaspec:8,slo=strict,lost=plain")
    assert plain.name == "adaspec:8,slo=strict,lost=plain"
    assert plain.begin(make_view(4, tpot_slo_s=11 * MS)) == 0
    # the SLO is not lost at 13 ms (T(0) = 12 ms fits) but T(1) = 15.5 ms does not: plain
    assert make_policy("adaspec:8,slo=strict").begin(make_view(4, tpot_slo_s=13 * MS)) == 0


def test_slo_makes_even_one_step_infeasible_and_off_ignores_it():
    # SLO 15 ms < T(1 step) = 15.5 ms: plain decoding (k = 0 is always feasible)
    assert make_policy("adaspec:8,slo=strict").begin(make_view(4, tpot_slo_s=15 * MS)) == 0
    # the release (and the default) ignores the SLO
    assert make_policy("adaspec:8").begin(make_view(4, tpot_slo_s=15 * MS)) == 8


# Verifier: B = 4 with max_draft = [4, 3, 3, 3] and default graph sizes (..., 8, 16, 32, ...).
# sum(k_i + 1) = 4 + 13 = 17 is just above 16; the next smaller graph size is 16: drop 1 token.
_TRIM_CONF = np.array([
    [0.9, 0.9, 0.9, 0.2],   # cum 0.9, 0.81, 0.729, 0.1458
    [0.9, 0.9, 0.9, 0.0],   # cum 0.9, 0.81, 0.729
    [0.9, 0.9, 0.9, 0.0],   # cum 0.9, 0.81, 0.729
    [0.5, 0.5, 0.5, 0.0],   # cum 0.5, 0.25, 0.125  <- lowest cumulative confidence
])
_TRIM_DRAFTED = np.array([4, 3, 3, 3])
# drafting actually run: 4 steps (one drafter on the last) -> 0.5 + 4 * 1 = 4.5 ms
# full plan:    E = 4 + 2.5848 + 2 * 2.439 + 0.875 = 12.3378;  T = 4.5 + verify(32) = 4.5 + 26 = 30.5 ms
#               G = 404.52
# token trim:   E = 12.3378 - 0.125 = 12.2128;  T = 4.5 + verify(16) = 4.5 + 18 = 22.5 ms;  G = 542.79


def _verifier(spec: str, estimator: FakeEstimator | None = None):
    pol = make_policy(spec)
    view = make_view(4, max_draft=[4, 3, 3, 3], padding=DEFAULT_PADDING, estimator=estimator)
    assert pol.begin(view) == 4  # pre-check: G(1) = 6.4 / 15.5 ms > 4 / 12 ms (pad(4) = 4)
    return pol


def test_verifier_trims_lowest_cumulative_confidence_token_to_next_graph_size():
    pol = _verifier("adaspec:8")
    verify = pol.verify_lengths(_TRIM_CONF, _TRIM_DRAFTED)
    assert verify.tolist() == [4, 3, 3, 2]
    assert pol.last_trim == "kept"


def test_verifier_rejects_trim_that_lowers_goodput():
    """Nearly flat verify cost (0.01 ms/token) and all confidences 1.0:
    full:    E = 4 + 13 = 17, T = 4.5 + 10 + 0.32 = 14.82 ms, G = 1147.1
    trimmed: (tie on 1.0: the later position goes first -> request 0 loses position 3)
             E = 16, T = 4.5 + 10 + 0.16 = 14.66 ms, G = 1091.4 < 1147.1 -> keep the full plan."""
    pol = _verifier("adaspec:8", FakeEstimator(verify_per_token_ms=0.01))
    conf = np.where(np.arange(4)[None, :] < _TRIM_DRAFTED[:, None], 1.0, 0.0)
    verify = pol.verify_lengths(conf, _TRIM_DRAFTED)
    assert verify.tolist() == [4, 3, 3, 3]
    assert pol.last_trim == "rejected"


def test_artifact_trims_exactly_the_overflow_from_the_lowest_final_confidence():
    """Final cumulative confidences 0.1458, 0.729, 0.729, 0.125: request 3 (0.125) is the
    lowest; the artifact removes exactly delta = 17 - 16 = 1 token, from its end (not the whole
    request): E = 12.3378 - 0.125 = 12.2128, T = 4.5 + verify(16) = 22.5 ms, G = 542.79."""
    pol = _verifier("adaspec:8,artifact")
    assert pol.name == "adaspec:8,artifact"
    verify = pol.verify_lengths(_TRIM_CONF, _TRIM_DRAFTED)
    assert verify.tolist() == [4, 3, 3, 2]
    assert pol.last_trim == "kept"


# B = 5, every request drafted 6 steps: 5 + 30 = 35 tokens pad to 64; the next smaller size is
# 32: drop 3 tokens. Cumulative confidences per request:
#   r0 (0.5 each):  0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625   <- lowest final value
#   r1 (0.6 each):  0.6, 0.36, 0.216, 0.1296, 0.07776, 0.046656
#   r2-r4 (0.9):    0.9, 0.81, 0.729, 0.6561, 0.59049, 0.531441
_WIDE_CONF = np.array([[0.5] * 6, [0.6] * 6, [0.9] * 6, [0.9] * 6, [0.9] * 6])


def test_token_and_request_trimming_differ_when_several_tokens_go():
    """token: the 3 lowest values overall: r0's 0.015625 and 0.03125, r1's 0.046656 -> [4, 5, 6, 6, 6].
    request: 3 tokens off the end of r0 (lowest final value) -> [3, 6, 6, 6, 6].
    Drafting 0.5 + 6 = 6.5 ms; full T = 6.5 + verify(64) = 48.5 ms, trimmed T = 6.5 + 26 = 32.5 ms,
    so both trimmed plans win (E drops by < 0.15 tokens of ~17.7)."""
    drafted = np.full(5, 6)
    for spec, expected in (("adaspec:8", [4, 5, 6, 6, 6]),
                           ("adaspec:8,trim=request", [3, 6, 6, 6, 6])):
        pol = make_policy(spec)
        assert pol.begin(make_view(5, padding=DEFAULT_PADDING)) == 8
        assert pol.verify_lengths(_WIDE_CONF, drafted).tolist() == expected
        assert pol.last_trim == "kept"


def test_request_trimming_moves_on_to_the_next_request_for_the_rest():
    """delta = 8: r0 (final 0.015625) loses all 6 tokens, the next-lowest final value
    (r1, 0.046656) its last 2. The order is by the final value at each request's own drafted
    length: with r0 drafting only 3 (final 0.125), r1 (0.046656) goes first and loses 5.
    Ties (r2..r4 below) go to the lower index first."""
    from sim.policies.trim_selection import trim_requests
    cum = np.cumprod(_WIDE_CONF, axis=1)
    new, kept = trim_requests(cum, np.full(5, 6), 8)
    assert new.tolist() == [0, 4, 6, 6, 6]
    assert kept[0] == 0.0 and kept[1] == pytest.approx(0.6 + 0.36 + 0.216 + 0.1296)
    assert kept[2] == pytest.approx(cum[2].sum())
    short = cum.copy()
    short[0, 3:] = 0.0
    assert trim_requests(short, np.array([3, 6, 6, 6, 6]), 5)[0].tolist() == [3, 1, 6, 6, 6]
    new, _ = trim_requests(np.cumprod(np.full((3, 2), 0.9), axis=1), np.array([2, 2, 2]), 3)
    assert new.tolist() == [0, 1, 2]


def test_cumulative_cbar_excludes_the_step_that_stopped_drafting():
    """cbar=cumulative, steps with confidence 0.9, 0.9, 0.5 (as in the stop-after test):
    after step 0: G(1) = 7.6 / 15.5 ms = 490.32 >= 333.33 -> fold step 0: cbar = 3.6 / 4 = 0.9,
       used at once: predict step 1 with E = 7.6 + 4 * 0.9 * 0.9 = 10.84, G = 585.95 -> draft
    after step 1: G(2) = 10.84 / 18.5 ms = 585.95 -> fold: cbar = 7.2 / 8 = 0.9;
       predict step 2: E = 10.84 + 4 * 0.81 * 0.9 = 13.756, G = 13.756 / 21.5 ms = 639.81
    after step 2: E = 12.46, G(3) = 579.53 < 585.95 -> stop; step 2 (confidence 0.5) is left out."""
    pol = make_policy("adaspec:8,cbar=cumulative")
    out = run_decode_iteration(pol, make_view(4),
                               ScriptedExecutor(_conf(0.9, 0.9, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9)))
    assert out.draft_steps == 3
    assert pol.predicted == pytest.approx(13.756 / (21.5 * MS))
    assert pol.cbar == pytest.approx(0.9)


def test_cumulative_cbar_checks_the_last_step_when_all_k_ran():
    """K = 2. Iteration 1, confidences 0.8, 0.7: step 0 passes (G(1) = 7.2 / 15.5 ms = 464.5),
    cbar = 0.8; step 1 is the last: checked in verify_lengths, G(2) = (7.2 + 4 * 0.56) / 18.5 ms
    = 510.3 >= 464.5 -> folded: cbar = (3.2 + 2.8) / 8 = 0.75.
    Iteration 2, confidences 0.8, 0.1: G(2) = (7.2 + 4 * 0.08) / 18.5 ms = 406.5 < 464.5 ->
    step 1 left out: cbar = (6.0 + 3.2) / 12 = 0.76667."""
    pol = make_policy("adaspec:2,cbar=cumulative")
    run_decode_iteration(pol, make_view(4), ScriptedExecutor(_conf(0.8, 0.7)))
    assert pol.cbar == pytest.approx(0.75)
    run_decode_iteration(pol, make_view(4), ScriptedExecutor(_conf(0.8, 0.1)))
    assert pol.cbar == pytest.approx(9.2 / 12)


def test_decay_recovery_lifts_cbar_back_to_drafting():
    """cbar = 0.1 (learnt from a poor request), draft step 5 ms: G(0) = 4 / 12 ms and
    G(1) = (4 + 4c) / 19.5 ms, so drafting pays only for c > 0.625.
    Prior cbar0 = 0.72, recover_after = 4: after s plain iterations the policy decides with
    0.72 - 0.62 * 2^(-s/4): s = 10 -> 0.6104 (plain), s = 11 -> 0.62784 (drafts).
    The stored cbar stays 0.1 (it learns only from drafting); recover=none never drafts."""
    view = make_view(4, estimator=FakeEstimator(draft_step_ms=5.0))
    decayed = make_policy("adaspec:8,cbar0=0.72,recover_after=4")
    stuck = make_policy("adaspec:8,cbar0=0.72,recover=none")
    decayed.cbar = stuck.cbar = 0.1
    ks = [decayed.begin(view) for _ in range(12)]
    assert ks[:11] == [0] * 11 and ks[11] == 8
    assert decayed.cbar_used == pytest.approx(0.72 - 0.62 * 2 ** (-11 / 4))
    assert decayed.cbar == 0.1
    assert decayed.begin(view) == 0  # drafting reset the streak: back to the stored 0.1
    assert all(stuck.begin(view) == 0 for _ in range(100))


def test_no_verifier_ablation_never_trims():
    pol = _verifier("adaspec-nv:8")
    assert isinstance(pol, AdaSpecNoVerifierPolicy)
    assert pol.verify_lengths(_TRIM_CONF, _TRIM_DRAFTED).tolist() == [4, 3, 3, 3]


def test_verifier_may_trim_down_to_the_bonus_tokens_but_never_below():
    # B = 4, drafted [1, 0, 0, 0]: 5 tokens pad to 8, the next smaller size is 4 = B: drop 1 token
    pol = make_policy("adaspec:8")
    assert pol.begin(make_view(4, max_draft=1, padding=DEFAULT_PADDING)) == 1
    conf = np.array([[0.2], [0.0], [0.0], [0.0]])
    # drafting 0.5 + 1 = 1.5 ms
    # full: E = 4.2, T = 1.5 + verify(8) = 15.5 ms, G = 270.97
    # trimmed: E = 4, T = 1.5 + verify(4) = 13.5 ms, G = 296.30 -> kept
    assert pol.verify_lengths(conf, np.array([1, 0, 0, 0])).tolist() == [0, 0, 0, 0]
    # B = 5, drafted [1, 0, 0, 0, 0]: 6 tokens pad to 8 and the next smaller size 4 < B = 5
    # cannot hold the five bonus positions: no trimming
    # (pre-check: G(0) = 5 / verify(8) = 5 / 14 ms = 357.1; G(1) = 8 / (1.5 + verify(16)) = 410.3)
    pol = make_policy("adaspec:8")
    assert pol.begin(make_view(5, max_draft=1, padding=DEFAULT_PADDING)) == 1
    conf = np.array([[0.2], [0.0], [0.0], [0.0], [0.0]])
    assert pol.verify_lengths(conf, np.array([1, 0, 0, 0, 0])).tolist() == [1, 0, 0, 0, 0]
    assert pol.last_trim == "none"


def test_adaspec_parameters_and_names():
    pol = AdaSpecPolicy(k=6, slo="tokens", trim="request", cbar0=0.5)
    assert pol.name == "adaspec:6,slo=tokens,trim=request,cbar0=0.5"
    assert make_policy(pol.name).name == pol.name
    assert make_policy("adaspec").name == "adaspec:8"
    assert make_policy("adaspec:K=8,slo=off,trim=token,cbar=cumulative").name == "adaspec:8"
    assert make_policy(PAPER).name == "adaspec:8,slo=strict,cbar=ema"
    # the exact artifact configuration is named by its flag; keywords override the flag's values
    assert make_policy("adaspec:8,trim=request,recover=none").name == "adaspec:8,artifact"
    assert make_policy("adaspec:8,artifact,slo=strict").name == \
        "adaspec:8,slo=strict,trim=request,recover=none"
    assert make_policy("adaspec:8,recover=probe,recover_after=16").name == \
        "adaspec:8,recover=probe,recover_after=16"


def test_prediction_leaves_out_requests_that_reached_their_draft_limit():
    """max_draft [8, 8, 8, 1]: request 3 may draft one token only. Confidences 0.9 per step.
    after step 0: c = 0.9 each, E = 4 + 3.6 = 7.6; T(1 step, 4 tokens) = 15.5 ms, G = 490.32.
    predict step 1: only requests 0-2 draft it: E = 7.6 + 3 * 0.9 * 0.6 = 9.22 (not 9.76),
    T = 0.5 + 2 + 10 + 0.5 * (4 + 4 + 3) = 18.0 ms, G = 9.22 / 18.0 ms = 512.22."""
    pol = make_policy(PAPER)
    view = make_view(4, max_draft=[8, 8, 8, 1])
    assert pol.begin(view) == 8
    conf = _conf(0.9)
    assert pol.continue_drafting(0, conf[:, :0], np.zeros(4, dtype=np.int64)) is True
    assert pol.continue_drafting(1, conf, np.ones(4, dtype=np.int64)) is True
    assert pol.best == pytest.approx(7.6 / (15.5 * MS))
    assert pol.predicted == pytest.approx(9.22 / (18.0 * MS))


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 40), steps=st.integers(1, 8), seed=st.integers(0, 2**31 - 1))
def test_uniform_request_trimming_fast_path_matches_the_general_rule(batch, steps, seed):
    """When everyone drafted the same number of steps, verify_lengths takes a shortcut; it must
    remove exactly the overflow and agree with the general rule (trim_requests)."""
    from sim.policies.trim_selection import trim_requests
    conf = np.random.default_rng(seed).beta(2.0, 1.0, size=(batch, steps))
    pol = make_policy(f"adaspec:{steps},trim=request")
    view = make_view(batch, padding=DEFAULT_PADDING,
                     estimator=FakeEstimator(verify_per_token_ms=0.5, draft_step_ms=0.01))
    if pol.begin(view) == 0:
        return
    drafted = np.full(batch, steps)
    verify = pol.verify_lengths(conf, drafted)
    if pol.last_trim != "kept":
        return
    total = batch * (steps + 1)
    drop = total - DEFAULT_PADDING.next_smaller(total)
    assert int(verify.sum()) == batch * steps - drop
    assert verify.tolist() == trim_requests(np.cumprod(conf, axis=1), drafted, drop)[0].tolist()


# ---- the token trim's selection (lowest_tokens) -----------------------------------------------
def _select(cum, drafted, drop, compiled_code=False, limit=math.inf):
    """Run ``lowest_tokens`` (plain or compiled) with room for every token in ``vals`` /
    ``rows`` and ``tree_size(batch)`` entries of tree scratch: (vals[:take], rows[:take], token
    count; -1 when it stopped past ``limit``)."""
    from sim.compiled.jit import compiled
    from sim.policies.trim_selection import lowest_tokens, tree_size
    fn = compiled(lowest_tokens) if compiled_code else lowest_tokens
    steps, batch = cum.shape
    vals = np.full(steps * batch + 1, np.nan)
    rows = np.full(steps * batch + 1, -1, dtype=np.int64)
    size = tree_size(batch)
    assert size <= 4 * batch and size >= 2 * batch
    tree_v, tree_t, tree_i = np.zeros(size), np.zeros(size, np.int64), np.zeros(size, np.int64)
    m = fn(cum, np.asarray(drafted, dtype=np.int64), steps, batch, drop, vals, rows, tree_v,
           tree_t, tree_i, limit)
    if m < 0:
        return None, None, m
    take = min(drop, m)
    return vals[:take].tolist(), rows[:take].tolist(), m


def _sorted_reference(cum, drafted, drop):
    """Every drafted token sorted by (value, -position, row): the lowest ``drop`` of them."""
    steps, batch = cum.shape
    tokens = sorted((cum[t, i], -t, i) for i in range(batch) for t in range(min(drafted[i], steps)))
    picked = tokens[:drop]
    return [v for v, _, _ in picked], [i for _, _, i in picked], len(tokens)


def testlowest_tokens_hand_computed_ties():
    """cum (steps 3, batch 3), drafted [3, 2, 3]; row 1's 0.125 lies past its drafted tokens.
    The 0.25s go first, later positions first and lower rows among equal positions:
    (t2: r0, r2), (t1: r0, r1, r2), (t0: r2), then the 0.5s (t0: r0, r1)."""
    cum = np.array([[0.5, 0.5, 0.25],
                    [0.25, 0.25, 0.25],
                    [0.25, 0.125, 0.25]])
    for compiled_code in (False, True):
        vals, rows, m = _select(cum, [3, 2, 3], 7, compiled_code)
        assert (vals, rows, m) == ([0.25] * 6 + [0.5], [0, 2, 0, 1, 2, 2, 0], 8)
        vals, rows, m = _select(cum, [3, 2, 3], 10, compiled_code)
        assert rows == [0, 2, 0, 1, 2, 2, 0, 1] and m == 8
        assert _select(cum, [0, 0, 0], 3, compiled_code) == ([], [], 0)


@st.composite
def _trim_inputs(draw, monotone):
    """A cum matrix whose values come from a small set (ties happen), each column
    non-increasing over its drafted tokens when ``monotone``; junk past them; drafted lengths
    from 0 to past ``steps``."""
    steps = draw(st.integers(1, 8))
    batch = draw(st.integers(1, 40))
    levels = [1.0, 0.75, 0.5, 0.5, 0.25, 0.125, 0.0]
    drafted = draw(st.lists(st.integers(0, steps + 2), min_size=batch, max_size=batch))
    cum = np.full((steps, batch), -1.0)  # junk past drafted, lower than any drafted value
    for i in range(batch):
        d = min(drafted[i], steps)
        column = draw(st.lists(st.sampled_from(levels), min_size=d, max_size=d))
        cum[:d, i] = sorted(column, reverse=True) if monotone else column
    drop = draw(st.integers(1, steps * batch + 3))
    return cum, drafted, drop


@settings(max_examples=300, deadline=None)
@given(inputs=_trim_inputs(monotone=True), compiled_code=st.booleans())
def testlowest_tokens_tree_merge_equals_sorting_every_token(inputs, compiled_code):
    """The tournament tree's merge of the rows' suffixes picks the same tokens in the same order as
    sorting every token by (value, -position, row), ties included, plain and compiled."""
    cum, drafted, drop = inputs
    assert _select(cum, drafted, drop, compiled_code) == _sorted_reference(cum, drafted, drop)


@settings(max_examples=100, deadline=None)
@given(inputs=_trim_inputs(monotone=False))
def testlowest_tokens_fallback_for_growing_rows_equals_sorting_every_token(inputs):
    cum, drafted, drop = inputs
    assert _select(cum, drafted, drop) == _sorted_reference(cum, drafted, drop)


def testlowest_tokens_stops_once_the_taken_sum_passes_the_limit():
    """The same cum as above: the lowest 7 tokens are six 0.25s and a 0.5 (sum 2.0); taking
    them, the running sum passes 1.2 at the fifth (1.25), so a limit of 1.2 stops there
    (-1); a limit of 2.0 is never passed (2.0 is not above it); taking every token (drop 8
    or more) never stops, whatever the limit (the caller sums all tokens its own way)."""
    cum = np.array([[0.5, 0.5, 0.25],
                    [0.25, 0.25, 0.25],
                    [0.25, 0.125, 0.25]])
    for compiled_code in (False, True):
        assert _select(cum, [3, 2, 3], 7, compiled_code, limit=1.2)[2] == -1
        vals, rows, m = _select(cum, [3, 2, 3], 7, compiled_code, limit=2.0)
        assert (vals, rows, m) == ([0.25] * 6 + [0.5], [0, 2, 0, 1, 2, 2, 0], 8)
        assert _select(cum, [3, 2, 3], 8, compiled_code, limit=0.1)[2] == 8
        assert _select(cum, [3, 2, 3], 20, compiled_code, limit=0.1)[2] == 8


@settings(max_examples=300, deadline=None)
@given(inputs=_trim_inputs(monotone=True), compiled_code=st.booleans(),
       limit=st.sampled_from([-1.0, 0.0, 0.1, 0.125, 0.3, 0.5, 1.0, 2.5, math.inf]))
def testlowest_tokens_stops_exactly_when_a_running_sum_passes_the_limit(inputs, compiled_code,
                                                                          limit):
    """-1 exactly when fewer than all tokens are taken and the running sum of the lowest
    (in order, from 0.0) passes ``limit`` at some token, the first one included; otherwise
    the same tokens as sorting."""
    cum, drafted, drop = inputs
    vals, rows, m = _sorted_reference(cum, drafted, drop)
    running, passes = 0.0, False
    for v in vals:
        running += v
        passes |= running > limit
    expected = -1 if passes and len(vals) < m else m
    got = _select(cum, drafted, drop, compiled_code, limit=limit)
    assert got[2] == expected
    if expected >= 0:
        assert got == (vals, rows, m)


@settings(max_examples=300, deadline=None)
@given(expected=st.floats(1.0, 200.0), removed_share=st.floats(0.0, 1.0),
       draft_s=st.floats(0.0, 0.05), v_total_s=st.floats(1e-3, 0.1),
       v_share=st.floats(0.01, 1.0), budget=st.sampled_from([math.inf, 0.02, 0.08]))
def test_trim_limit_never_rejects_a_trim_that_pays(expected, removed_share, draft_s, v_total_s,
                                                   v_share, budget):
    """Whatever the prices and the budget: a removed sum above ``_trim_limit`` is rejected
    by ``_trim_pays`` (so stopping there changes no decision), and one at most a millionth
    below the exact break-even point is kept (the limit is close enough to stop early)."""
    from sim.policies.adaspec_rules import (AF_BUDGET_S, AF_EXPECTED, AF_SIZE, AI_SIZE,
                                            _trim_limit, _trim_pays)
    pi, pf = np.zeros(AI_SIZE, dtype=np.int64), np.zeros(AF_SIZE)
    pf[AF_EXPECTED], pf[AF_BUDGET_S] = expected, budget
    v_target_s = v_total_s * v_share
    limit = _trim_limit(pi, pf, draft_s, v_total_s, v_target_s)
    removed = removed_share * expected
    if removed > limit:
        assert not _trim_pays(pi, pf, removed, draft_s, v_total_s, v_target_s)
    if draft_s + v_total_s <= budget and draft_s + v_target_s <= budget:
        break_even = expected * (v_total_s - v_target_s) / (draft_s + v_total_s)
        assert limit >= break_even
        assert limit <= break_even * (1 + 2e-6) + 2e-9 * expected
        if removed < break_even * (1 - 1e-6):
            assert _trim_pays(pi, pf, removed, draft_s, v_total_s, v_target_s)
    elif draft_s + v_total_s > budget:
        assert limit == math.inf  # the full plan scores -inf: any trim is kept
