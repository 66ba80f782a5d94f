"""The acceptance fit recovers the model that generated a synthetic drafted-token log, and its
output is a valid acceptance file for the simulator."""

from __future__ import annotations

import numpy as np
import pytest
from calibrate_helpers import TRUE_CURVE, TRUE_DECAY, synthetic_log, true_params

from calibrate.acceptance_fit import _pav, fit_acceptance, fit_calibration
from sim.acceptance.io import load_acceptance, save_acceptance
from sim.acceptance.model import mean_accepted_length
from sim.errors import ConfigError


@pytest.fixture(scope="module")
def fitted():
    return fit_acceptance(synthetic_log(), name="synthetic", source="test")


def test_recovers_generating_curve(fitted):
    x = np.linspace(0.15, 0.95, 9)
    np.testing.assert_allclose(fitted.params.calibration(x), TRUE_CURVE(x), atol=0.05)


def test_recovers_position_decay_and_levels(fitted):
    np.testing.assert_allclose(fitted.params.position_decay, TRUE_DECAY, atol=0.04)
    truth = true_params().categories
    for cat in ("qa", "rag"):
        prof = fitted.params.categories[cat]
        assert prof.mean == pytest.approx(truth[cat].mean, abs=0.03)
        assert prof.concentration is not None and 7 < prof.concentration < 30
    assert fitted.params.confidence_concentration == pytest.approx(3.0, rel=0.15)


def test_fitted_mean_accepted_length_matches_observed(fitted):
    diag = fitted.diagnostics
    assert diag["k"] == 5
    assert diag["fitted_mean_accepted_length"] == pytest.approx(
        diag["observed_mean_accepted_length"], rel=0.03)
    truth = np.mean([mean_accepted_length(p.mean, p.concentration, 5, TRUE_DECAY)
                     for c, p in true_params().categories.items() if c])
    assert diag["observed_mean_accepted_length"] == pytest.approx(truth, rel=0.05)


def test_saved_file_loads_in_the_simulator(fitted, tmp_path):
    path = save_acceptance(fitted.params, tmp_path / "acc.json")
    model = load_acceptance(path)
    levels = model.request_levels(["qa", "rag", "unknown"], np.random.default_rng(0))
    assert levels.shape == (3,)


def test_pav_and_degenerate_inputs():
    np.testing.assert_allclose(_pav(np.array([0.1, 0.5, 0.3, 0.9]), np.ones(4)),
                               [0.1, 0.4, 0.4, 0.9])
    curve = fit_calibration(np.full(50, 1.0), np.ones(50))  # greedy drafts at confidence 1
    assert curve.points[0][0] == 0.0 and curve.points[-1] == (1.0, 1.0)
    with pytest.raises(ConfigError):
        fit_calibration(np.array([]), np.array([]))
