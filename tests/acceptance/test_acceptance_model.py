"""The parametric acceptance model: levels, confidences, calibration, decay, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.acceptance.base import FixedAcceptance, accepted_prefix
from sim.acceptance.model import (
    AcceptanceParams,
    CalibrationCurve,
    CategoryProfile,
    ParametricAcceptance,
    decay_vector,
    mean_accepted_length,
)
from sim.errors import ConfigError


def _model(**kw) -> ParametricAcceptance:
    params = dict(name="t", source="test",
                  categories={"": CategoryProfile(0.6, None), "Hard": CategoryProfile(0.3, 20.0)})
    params.update(kw)
    return ParametricAcceptance(AcceptanceParams(**params))


def test_levels_follow_category_profiles_and_default():
    m = _model()
    rng = np.random.default_rng(0)
    levels = m.request_levels(["", "unknown", " HARD "] * 4000, rng)
    assert np.all(levels[0::3] == 0.6) and np.all(levels[1::3] == 0.6)  # no spread, default
    hard = levels[2::3]
    assert abs(hard.mean() - 0.3) < 0.01
    # Beta(6, 14): s.d. = sqrt(0.3 * 0.7 / 21) = 0.1
    assert abs(hard.std() - 0.1) < 0.01


def test_calibrated_acceptance_matches_level_and_confidence_is_informative():
    m = _model(calibration=CalibrationCurve(((0.0, 0.05), (0.5, 0.4), (1.0, 0.95))))
    rng = np.random.default_rng(1)
    levels = np.full(50_000, 0.5)
    conf, accept = m.draw(levels, 1, rng)
    # E[cal(p)] = level by construction of the confidence mean
    assert abs(accept.mean() - 0.5) < 0.01
    assert conf.min() > 0 and conf.max() <= 1
    low, high = accept[conf < 0.3].mean(), accept[conf > 0.7].mean()
    assert high > low + 0.3


def test_position_decay_scales_acceptance():
    m = _model(position_decay=(1.0, 0.5))
    assert decay_vector((1.0, 0.5), 4).tolist() == [1.0, 0.5, 0.5, 0.5]
    assert decay_vector((), 2).tolist() == [1.0, 1.0]
    rng = np.random.default_rng(2)
    _, accept = m.draw(np.full(40_000, 0.6), 3, rng)
    rates = accept.mean(axis=0)
    assert abs(rates[0] - 0.6) < 0.01 and abs(rates[1] - 0.3) < 0.01 and abs(rates[2] - 0.3) < 0.01


def test_closed_form_mean_accepted_length_matches_simulation():
    # point-mass level 0.6, no decay, k = 3: 1 + 0.6 + 0.36 + 0.216 = 2.176
    assert mean_accepted_length(0.6, None, 3) == pytest.approx(2.176)
    # Beta level (mean 0.6, kappa 10): E[lam^2] = 0.6 * 7/11 = 0.381818
    assert mean_accepted_length(0.6, 10.0, 2) == pytest.approx(1 + 0.6 + 0.6 * 7 / 11)
    m = _model(categories={"": CategoryProfile(0.6, 10.0)}, position_decay=(1.0, 0.9, 0.8))
    rng = np.random.default_rng(3)
    levels = m.request_levels([""] * 20_000, rng)
    _, accept = m.draw(levels, 5, rng)
    simulated = (accepted_prefix(accept, np.full(20_000, 5)) + 1).mean()
    assert simulated == pytest.approx(mean_accepted_length(0.6, 10.0, 5, (1.0, 0.9, 0.8)), abs=0.03)


def test_draws_are_seeded_and_shaped():
    m = _model()
    a = m.draw(np.array([0.2, 0.9]), 4, np.random.default_rng(7))
    b = m.draw(np.array([0.2, 0.9]), 4, np.random.default_rng(7))
    assert a[0].shape == (2, 4) and a[1].dtype == bool
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    conf, accept = m.draw(np.array([0.5]), 0, np.random.default_rng(0))
    assert conf.shape == (1, 0) and accept.shape == (1, 0)


@pytest.mark.parametrize("kw", [
    {"categories": {"x": CategoryProfile(0.5)}},                       # no default category
    {"confidence_concentration": 0.0},
    {"position_decay": (1.0, 1.5)},
])
def test_bad_params(kw):
    with pytest.raises(ConfigError):
        _model(**kw)


@pytest.mark.parametrize("make", [
    lambda: CategoryProfile(1.0),
    lambda: CategoryProfile(0.5, -1.0),
    lambda: CalibrationCurve(((0.0, 0.5), (1.0, 0.4))),             # decreasing
    lambda: CalibrationCurve(((0.1, 0.1), (1.0, 0.9))),             # does not start at 0
    lambda: CalibrationCurve(((0.0, 0.0),)),
])
def test_bad_components(make):
    with pytest.raises(ConfigError):
        make()


@pytest.mark.parametrize("model", [
    ParametricAcceptance(AcceptanceParams("t", "test", {"": CategoryProfile(0.6)},
                                          position_decay=(1.0, 0.9))),
    FixedAcceptance(0.58),
])
def test_draw_from_precomputed_keys_is_the_same_draw(model):
    """The simulator computes draw keys once per request; drawing from them must give exactly
    what draw(levels) gives with the same random numbers."""
    levels = np.linspace(0.05, 0.95, 7)
    conf_a, accept_a = model.draw(levels, 5, np.random.default_rng(9))
    conf_b, accept_b = model.draw_with_keys(model.draw_keys(levels), 5, np.random.default_rng(9))
    np.testing.assert_array_equal(conf_a, conf_b)
    np.testing.assert_array_equal(accept_a, accept_b)
    assert conf_a.shape == accept_a.shape == (7, 5)


def test_model_tables_are_shared_between_equal_models_and_read_only():
    params = AcceptanceParams("t", "test", {"": CategoryProfile(0.6)})
    a, b = ParametricAcceptance(params), ParametricAcceptance(params)
    assert a._conf_quantiles is b._conf_quantiles
    with pytest.raises(ValueError):
        a._conf_quantiles[0, 0] = 0.5


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=4, max_size=4), min_size=1, max_size=6),
       st.data())
def test_accepted_prefix_is_the_leading_run_cut_at_verify(rows, data):
    accept = np.array(rows, dtype=bool)
    verify = np.array(data.draw(st.lists(st.integers(0, 4), min_size=len(rows),
                                         max_size=len(rows))), dtype=np.int64)
    expected = []
    for row, k in zip(rows, verify):
        run = 0
        while run < k and row[run]:
            run += 1
        expected.append(run)
    got = accepted_prefix(accept, verify)
    assert got.dtype == np.int64
    assert got.tolist() == expected


def test_quantile_cell_rounds_to_the_nearest_quantile_of_the_keys_row():
    """The cell a uniform draws (``draw_cells`` and the compiled loop's prefetch use the
    same formula): row offset plus u * 512, to the nearest quantile through the key's 0.5;
    a hand-computed draw reads that cell's confidence and P(accept)."""
    from sim.acceptance.model import QUANTILE_POINTS, draw_cells, quantile_cell
    from sim.compiled.jit import compiled

    key = 3 * QUANTILE_POINTS + 0.5  # row 3
    assert quantile_cell(0.0, key) == 3 * 513
    assert quantile_cell(0.5, key) == 3 * 513 + 256
    assert quantile_cell(1.0, key) == 3 * 513 + 512
    assert quantile_cell(1.4 / 512, key) == 3 * 513 + 1  # 1.4 rounds to 1
    assert quantile_cell(1.6 / 512, key) == 3 * 513 + 2  # 1.6 rounds to 2
    cells = np.stack([np.arange(4 * 513) / 4096.0, np.full(4 * 513, 0.5)], axis=1)
    u = np.array([0.0, 0.5])
    v = np.array([0.4, 0.6])
    conf, accept = np.empty((1, 2)), np.empty((1, 2), dtype=bool)
    compiled(draw_cells)(u, v, np.array([key]), 1, 2, cells, np.ones(2), False, conf, accept,
                         0, 2)
    assert conf.tolist() == [[1539 / 4096.0, 1795 / 4096.0]]
    assert accept.tolist() == [[True, False]]
