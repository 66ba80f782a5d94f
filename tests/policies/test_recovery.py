"""sim.policies.recovery: the value an adaptive policy decides with, hand-computed, and its
invariants (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.errors import ConfigError
from sim.policies.recovery import Recovery


def _after_plain(rule: Recovery, n: int) -> Recovery:
    for _ in range(n):
        rule.drafted(False)
    return rule


def test_none_keeps_the_estimate():
    rule = _after_plain(Recovery("none", 0.6, None), 1000)
    assert rule.value(0.1) == 0.1 and not rule.recovering


def test_reset_is_the_smartspec_artifact_rule():
    """Below 0.3 the estimate is replaced by 0.65, whatever the streak; 0.3 itself stays."""
    rule = Recovery("reset", 0.7, None)
    assert rule.value(0.29) == 0.65 and rule.recovering
    assert rule.value(0.3) == 0.3 and not rule.recovering
    assert rule.value(0.9) == 0.9


def test_probe_uses_the_prior_after_n_plain_iterations_until_one_drafts():
    rule = Recovery("probe", 0.6, 3)
    rule = _after_plain(rule, 2)
    assert rule.value(0.1) == 0.1
    rule.drafted(False)  # third plain iteration
    assert rule.value(0.1) == 0.6 and rule.recovering
    rule.drafted(False)  # the prior still said plain (e.g. under load): keep probing
    assert rule.value(0.1) == 0.6
    rule.drafted(True)
    assert rule.value(0.1) == 0.1


def test_decay_halves_the_gap_every_n_plain_iterations():
    """prior 0.6, estimate 0.2, half-life 4: after 4 plain iterations 0.6 - 0.4 / 2 = 0.4,
    after 8: 0.6 - 0.1 = 0.5; an estimate above the prior decays down the same way."""
    rule = _after_plain(Recovery("decay", 0.6, 4), 4)
    assert rule.value(0.2) == pytest.approx(0.4)
    assert rule.value(0.8) == pytest.approx(0.7)
    _after_plain(rule, 4)
    assert rule.value(0.2) == pytest.approx(0.5)
    rule.drafted(True)
    assert rule.value(0.2) == 0.2 and not rule.recovering


@pytest.mark.parametrize("mode, after", [("none", 5), ("reset", 5), ("decay", 0), ("probe", -1),
                                         ("maybe", None), ("decay", 2.5)])
def test_bad_settings_are_config_errors(mode, after):
    with pytest.raises(ConfigError):
        Recovery(mode, 0.6, after)


@given(prior=st.floats(0, 1), estimate=st.floats(0, 1), after=st.integers(1, 500),
       streak=st.integers(0, 2000))
def test_decay_moves_monotonically_from_the_estimate_to_the_prior(prior, estimate, after, streak):
    rule = _after_plain(Recovery("decay", prior, after), streak)
    now = rule.value(estimate)
    low, high = min(prior, estimate), max(prior, estimate)
    assert low - 1e-12 <= now <= high + 1e-12
    rule.drafted(False)
    later = rule.value(estimate)
    assert abs(later - prior) <= abs(now - prior) + 1e-12
