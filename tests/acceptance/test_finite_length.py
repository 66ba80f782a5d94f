"""Expected tokens per step of finite requests: hand-computed cases, a Monte Carlo check
against the parametric model's own draws, monotonicity, and the level solver."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.acceptance.base import accepted_prefix
from sim.acceptance.finite_length import (
    emission_probabilities,
    expected_steps,
    lognormal_length_pmf,
    mean_for_tokens_per_step,
    mixture_decode_tokens,
    workload_tokens_per_step,
)
from sim.acceptance.model import (
    AcceptanceParams,
    CategoryProfile,
    ParametricAcceptance,
    mean_accepted_length,
)
from sim.errors import ConfigError


def test_emission_probabilities_by_hand():
    # level 0.5, k = 2, decay (1, 0.8): P(X>=2) = 0.5, P(X>=3) = 0.25 * 0.8 = 0.2
    probs = emission_probabilities(np.array([0.5]), 2, (1.0, 0.8))
    assert probs[0] == pytest.approx([0.5, 0.3, 0.2])
    assert emission_probabilities(np.array([0.3, 0.9]), 0).tolist() == [[1.0], [1.0]]


def test_expected_steps_by_hand():
    # k = 1, level 0.5: a step emits 1 or 2 tokens with probability 1/2 each.
    # S(1) = 1; S(2) = 1 + S(1)/2 + S(0)/2 = 1.5; S(3) = 1 + S(2)/2 + S(1)/2 = 2.25
    steps = expected_steps(np.array([0.5]), 1, 3)
    assert steps[:, 0] == pytest.approx([0.0, 1.0, 1.5, 2.25])
    # always accepted (level 1, k = 3): ceil(r / 4) steps
    steps = expected_steps(np.array([1.0]), 3, 9)
    assert steps[:, 0] == pytest.approx([0, 1, 1, 1, 1, 2, 2, 2, 2, 3])


def test_lognormal_pmf_matches_the_length_source_draw():
    pmf = lognormal_length_pmf(40.0, 0.5, 1024)
    assert pmf.sum() == pytest.approx(1.0) and pmf[0] == 0.0
    z = np.random.default_rng(0).standard_normal(400_000)
    drawn = np.clip(np.rint(40.0 * np.exp(0.5 * z)), 1, 1024).astype(int)
    empirical = np.bincount(drawn, minlength=1025) / drawn.size
    assert np.abs(np.cumsum(empirical) - np.cumsum(pmf)).max() < 0.003
    # the clip at the maximum collects the upper tail
    assert lognormal_length_pmf(400.0, 0.6, 1024)[1024] == pytest.approx(0.0589, abs=1e-3)
    point = lognormal_length_pmf(7.0, 0.0, 16)
    assert point[7] == 1.0 and point.sum() == 1.0
    with pytest.raises(ConfigError):
        lognormal_length_pmf(0.5, 0.2, 10)


def test_long_requests_approach_the_per_step_mean():
    pmf = np.zeros(1025)
    pmf[1024] = 1.0
    value = workload_tokens_per_step([0.6], None, 5, [(1.0, pmf)], (1.0, 0.9))[0]
    per_step = mean_accepted_length(0.6, None, 5, (1.0, 0.9))
    assert value == pytest.approx(per_step, rel=0.002) and value < per_step


def test_ratio_of_sums_weights_slow_requests():
    # with spread between requests the workload ratio (harmonic) is below the per-step mean
    pmf = np.zeros(1025)
    pmf[1024] = 1.0
    spread = workload_tokens_per_step([0.6], 12.0, 5, [(1.0, pmf)])[0]
    assert spread < mean_accepted_length(0.6, 12.0, 5) - 0.1


def _monte_carlo(model, category: str, k: int, outputs: np.ndarray, seed: int) -> float:
    """Tokens per decode step of requests with these output lengths, stepped like the
    simulator: draft min(k, remaining - 1), emit accepted prefix + 1."""
    rng = np.random.default_rng(seed)
    levels = model.request_levels([category] * outputs.size, rng)
    remaining = outputs - 1
    tokens = int(remaining.sum())
    steps = 0
    while (active := remaining > 0).any():
        idx = np.flatnonzero(active)
        verify = np.minimum(k, remaining[idx] - 1)
        _, accept = model.draw(levels[idx], k, rng)
        remaining[idx] -= accepted_prefix(accept, verify) + 1
        steps += idx.size
    return tokens / steps


def test_matches_the_model_draws():
    params = AcceptanceParams("t", "test", {"": CategoryProfile(0.6, 12.0)},
                              position_decay=(1.0, 0.95, 0.9))
    model = ParametricAcceptance(params)
    pmf = lognormal_length_pmf(60.0, 0.6, 1024)
    outputs = np.random.default_rng(1).choice(pmf.size, size=30_000, p=pmf)
    simulated = _monte_carlo(model, "", 5, outputs, seed=2)
    expected = workload_tokens_per_step([0.6], 12.0, 5, [(1.0, pmf)], params.position_decay)[0]
    assert simulated == pytest.approx(expected, rel=0.01)


@settings(max_examples=25, deadline=None)
@given(low=st.floats(0.05, 0.9), step=st.floats(0.01, 0.09), k=st.integers(1, 7),
       median=st.floats(2.0, 300.0))
def test_tokens_per_step_rises_with_level_and_k(low, step, k, median):
    mixture = [(1.0, lognormal_length_pmf(median, 0.5, 512))]
    low_high = workload_tokens_per_step([low, low + step], 12.0, k, mixture)
    assert low_high[0] < low_high[1]
    more_k = workload_tokens_per_step([low], 12.0, k + 1, mixture)[0]
    assert more_k >= low_high[0] - 1e-12
    assert 1.0 <= low_high[0] <= k + 1


def test_solver_inverts_and_rejects_the_unreachable():
    mix_short = [(80.0, lognormal_length_pmf(40.0, 0.5, 1024))]
    mix_long = [(10.0, lognormal_length_pmf(400.0, 0.6, 1024)),
                (80.0, lognormal_length_pmf(120.0, 0.4, 1024))]
    levels = mean_for_tokens_per_step({"short": (1.7, mix_short), "long": (2.4, mix_long)},
                                      12.0, 5, (1.0, 0.95))
    for name, mix, target in (("short", mix_short, 1.7), ("long", mix_long, 2.4)):
        got = workload_tokens_per_step([levels[name]], 12.0, 5, mix, (1.0, 0.95))[0]
        assert got == pytest.approx(target, rel=1e-4)
    assert mixture_decode_tokens(mix_short) == pytest.approx(
        80 * float(lognormal_length_pmf(40.0, 0.5, 1024) @ np.maximum(np.arange(1025) - 1, 0)))
    with pytest.raises(ConfigError):
        mean_for_tokens_per_step({"x": (6.5, mix_short)}, 12.0, 5)  # more than k + 1
