"""Per-position acceptance rates as an input of the parametric model (``positions:...``):
the decays solved by hand, the model's mean accepted length 1 + sum S_j, sampled rates, and
bad inputs refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.acceptance.model import ParametricAcceptance, mean_accepted_length
from sim.acceptance.presets import make_acceptance, per_position_params
from sim.errors import ConfigError

ISSUE_EXAMPLE = (0.66, 0.36, 0.17)


def test_point_mass_decays_by_hand():
    """Every request at level 0.66: S_j = 0.66^j * prod decay -> decays 1, 0.36 / 0.66^2,
    0.17 / (0.36 * 0.66)."""
    p = per_position_params(ISSUE_EXAMPLE, None)
    assert p.categories[""].mean == 0.66 and p.categories[""].concentration is None
    assert p.position_decay == pytest.approx((1.0, 0.36 / 0.66 ** 2, 0.17 / (0.36 * 0.66)))


def test_spread_levels_decays_by_hand():
    """Beta(0.66 * 12, 0.34 * 12): E[lam] = 0.66, E[lam^2] = 0.66 * 8.92 / 13,
    E[lam^3] = E[lam^2] * 9.92 / 14."""
    m2 = 0.66 * 8.92 / 13
    m3 = m2 * 9.92 / 14
    p = per_position_params(ISSUE_EXAMPLE)
    assert p.position_decay == pytest.approx((1.0, 0.36 / m2, (0.17 / m3) / (0.36 / m2)))


@pytest.mark.parametrize("kappa", [None, 12.0, 40.0])
def test_mean_accepted_length_is_one_plus_the_rates(kappa):
    p = per_position_params(ISSUE_EXAMPLE, kappa)
    prof = p.categories[""]
    assert mean_accepted_length(prof.mean, prof.concentration, 3, p.position_decay) == \
        pytest.approx(1 + sum(ISSUE_EXAMPLE))


@st.composite
def _rates(draw):
    n = draw(st.integers(1, 6))
    first = draw(st.floats(0.05, 0.95))
    ratios = draw(st.lists(st.floats(0.05, 1.0), min_size=n - 1, max_size=n - 1))
    rates = [first]
    for r in ratios:  # conditional rates no higher than the first: feasible for a point mass
        rates.append(rates[-1] * min(r, first))
    return [v for v in rates if v > 1e-6]


@settings(max_examples=100, deadline=None)
@given(rates=_rates())
def test_any_decreasing_rates_fit_a_point_mass_exactly(rates):
    p = per_position_params(rates, None)
    assert all(0.0 < d <= 1.0 for d in p.position_decay)
    prof = p.categories[""]
    assert mean_accepted_length(prof.mean, None, len(rates), p.position_decay) == \
        pytest.approx(1 + sum(rates), rel=1e-9)


@pytest.mark.parametrize("spec", ["positions:0.66/0.36/0.17", "positions:0.66/0.36/0.17,none"])
def test_sampled_per_position_rates_match(spec):
    model = make_acceptance(spec)
    assert isinstance(model, ParametricAcceptance)
    rng = np.random.default_rng(7)
    levels = model.request_levels([""] * 100_000, rng)
    _, accept = model.draw(levels, 3, rng)
    rates = np.cumprod(accept, axis=1).mean(axis=0)
    np.testing.assert_allclose(rates, ISSUE_EXAMPLE, atol=0.006)


def test_names_round_trip():
    for spec, name in [("positions:0.66/0.36/0.17", "positions:0.66/0.36/0.17"),
                       ("POSITIONS: 0.660/0.36/0.17 ,None", "positions:0.66/0.36/0.17,none"),
                       ("positions:0.8/0.6,30", "positions:0.8/0.6,30")]:
        model = make_acceptance(spec)
        assert model.name == name
        assert make_acceptance(model.name).params == model.params


@pytest.mark.parametrize("spec", ["positions:", "positions:0.5/x", "positions:0.3/0.4",
                                  "positions:1.0/0.5", "positions:0.5/0", "positions:0.5,-2",
                                  "positions:0.5,abc", "positions:0.5/0.49,2",
                                  "positions:" + "/".join(["0.9"] * 65)])
def test_bad_rates_are_refused(spec):
    """Non-numbers, rates rising with the position, rates outside (0, 1), a bad spread, rates
    that fall more slowly than the level spread allows (0.5 -> 0.49 at concentration 2), more
    than 64 positions."""
    with pytest.raises(ConfigError):
        make_acceptance(spec)
