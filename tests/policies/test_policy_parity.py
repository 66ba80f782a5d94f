"""Parity: every policy driven through the one protocol driver with scripted and random
executors; invariants hold and documented decisions come out."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_fakes import DEFAULT_PADDING, NO_PADDING, FakeEstimator, ScriptedExecutor, make_view

from sim.core.speculation import run_decode_iteration
from sim.policies.base import OracleView
from sim.policies.registry import all_policy_specs, make_policy


def test_scripted_executor_yields_documented_adaspec_decisions():
    """The stop-after-a-step case of test_adaspec_rules, driven end to end: confidences
    0.9, 0.9, 0.5 -> 3 draft steps, masks all-True, 3 tokens verified each; with verdicts
    [T, T, F, ...] every request accepts 2 and emits 3."""
    conf = np.tile([0.9, 0.9, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9], (4, 1))
    accept = np.tile([True, True, False, True, True, True, True, True], (4, 1))
    ex = ScriptedExecutor(conf, accept)
    pol = make_policy("adaspec:8,cbar=ema")
    out = run_decode_iteration(pol, make_view(4), ex)
    assert [m.tolist() for m in ex.masks] == [[True] * 4] * 3
    assert ex.verified.tolist() == [3, 3, 3, 3]
    assert out.accepted.tolist() == [2, 2, 2, 2]
    assert out.conf.shape == (4, 3)
    # next iteration uses the updated cbar (0.6 -> 0.63 -> 0.657 -> 0.6413)
    assert abs(pol.cbar - 0.6413) < 1e-9


def test_policies_share_state_only_through_observe_and_begin():
    """Two iterations in a row on the same policy objects: no stale per-iteration state."""
    rng = np.random.default_rng(3)
    for spec in all_policy_specs():
        pol = make_policy(spec)
        for batch in (5, 2, 7):
            conf = rng.random((batch, 8))
            accept = rng.random((batch, 8)) < conf
            view = make_view(batch, padding=DEFAULT_PADDING,
                             oracle=OracleView(conf, accept) if pol.needs_oracle else None)
            out = run_decode_iteration(pol, view, ScriptedExecutor(conf, accept))
            assert out.verify.shape == (batch,)


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 40),
    seed=st.integers(0, 2**31 - 1),
    spec=st.sampled_from(all_policy_specs() + ("adaspec:8,artifact", "adaspec:6,slo=tokens",
                                                "smartspec:4,alpha0=0.95")),
    slo_ms=st.sampled_from([float("inf"), 15.0, 40.0]),
    padded=st.booleans(),
)
def test_driver_invariants_hold_for_every_policy(batch, seed, spec, slo_ms, padded):
    rng = np.random.default_rng(seed)
    conf = rng.beta(2.0, 1.0, size=(batch, 8))
    accept = rng.random((batch, 8)) < conf
    limits = rng.integers(0, 9, size=batch)
    pol = make_policy(spec)
    view = make_view(batch, max_draft=limits.tolist(), tpot_slo_s=slo_ms * 1e-3,
                     estimator=FakeEstimator(draft_per_batch_ms=0.02),
                     padding=DEFAULT_PADDING if padded else NO_PADDING,
                     oracle=OracleView(conf, accept) if pol.needs_oracle else None)
    out = run_decode_iteration(pol, view, ScriptedExecutor(conf, accept))
    assert (out.drafted <= np.minimum(limits, pol.k_max)).all()
    assert (out.verify >= 0).all() and (out.verify <= out.drafted).all()
    assert (out.accepted <= out.verify).all()
    if spec.startswith("adaspec") and (out.verify != out.drafted).any():
        # the verifier trims only to run the target pass at a smaller graph size
        assert view.padding.pad(batch + int(out.verify.sum())) \
            < view.padding.pad(batch + int(out.drafted.sum()))
    if spec.startswith("oracle"):
        # the oracle never verifies a token it knows will be rejected
        assert (out.accepted == out.verify).all()


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 24), seed=st.integers(0, 2**31 - 1), padded=st.booleans())
def test_adaspec_incremental_goodput_matches_the_reference_formula(batch, seed, padded):
    """AdaSpec's per-step bookkeeping (running sums, uniform fast path) gives the same G as
    recomputing E[N] and T from scratch with sim.policies.goodput."""
    from sim.policies.goodput import IterationCost, cumulative_confidence, expected_emitted_tokens

    rng = np.random.default_rng(seed)
    conf = rng.beta(3.0, 1.0, size=(batch, 8))
    limits = rng.integers(0, 9, size=batch) if rng.random() < 0.5 else np.full(batch, 8)
    view = make_view(batch, max_draft=limits.tolist(),
                     padding=DEFAULT_PADDING if padded else NO_PADDING,
                     estimator=FakeEstimator(verify_per_token_ms=0.05, draft_step_ms=0.4))
    pol = make_policy("adaspec-nv:8")
    out = run_decode_iteration(pol, view, ScriptedExecutor(conf))
    if out.draft_steps == 0:
        return
    stats = pol.stats
    # G at the last accepted drafting state: after a 'stop after step' it is the step before
    upto = out.draft_steps - 1 if stats["stop_after_step"] else out.draft_steps
    if stats["stop_before_step"] == 0 and stats["stop_after_step"] == 0:
        upto = out.draft_steps - 1  # ran to K: the last step is judged only by the verifier
    drafted = np.minimum(out.drafted, upto)
    cost = IterationCost(view, 8)
    expected = expected_emitted_tokens(cumulative_confidence(out.conf[:, :upto], drafted), drafted)
    time_s = cost.draft_s_actual(drafted) + cost.verify_s(batch + int(drafted.sum()))
    assert pol.best == pytest.approx(expected / time_s, rel=1e-9)
