"""Expected tokens per decode step of *finite* requests at static k: the last step of a request
is cut at its end, so short answers emit fewer tokens per step than the per-step mean.

What a batch-1 benchmark reports as "mean accepted tokens" (Spec-Bench) or what the simulator
reports as ``mean_tokens_per_step`` is a ratio of sums over a workload, total decode tokens /
total decode steps, and both include each answer's last, truncated step. This module computes
that ratio's expectation for the parametric acceptance model, without sampling:

* one step of a request with level ``lam`` emits ``X`` tokens, ``P(X >= j + 1) =
  lam^j * prod_{m<j} decay[m]`` for ``j = 1..k`` (the accepted prefix plus the bonus token);
* ``S(r)``, the expected number of steps to emit the ``r`` decode tokens a request still owes,
  satisfies ``S(0) = 0``, ``S(r) = 1 + sum_x P(X = x) S(max(0, r - x))`` (the simulator drafts
  at most ``r - 1`` tokens, which is the same as cutting ``X`` at ``r``);
* a request with ``N`` output tokens decodes ``N - 1`` of them (the first comes from prefill);
* the level is Beta(mean * kappa, (1 - mean) * kappa) distributed (Gauss-Legendre quadrature
  on (0, 1) against the Beta density; ``kappa = None``: a point mass). Levels beyond what the
  calibration curve can produce (above ~0.95) are not clipped here, a negligible share for
  category means around 0.4-0.7.

Pure numpy and ``math``; no scipy, no I/O.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np

from sim.acceptance.model import decay_vector
from sim.errors import ConfigError

_QUADRATURE_NODES = 32


@lru_cache(maxsize=4)
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(n)
    nodes.flags.writeable = weights.flags.writeable = False  # shared through the cache
    return nodes, weights


def _level_nodes(mean: float, concentration: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes and weights (summing to 1) of the per-request level distribution."""
    if concentration is None:
        return np.array([mean]), np.array([1.0])
    x, w = _legendre(_QUADRATURE_NODES)
    lam = 0.5 * (x + 1.0)
    a, b = mean * concentration, (1.0 - mean) * concentration
    log_pdf = ((a - 1.0) * np.log(lam) + (b - 1.0) * np.log1p(-lam)
               + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b))
    weights = 0.5 * w * np.exp(log_pdf)
    return lam, weights / weights.sum()


def emission_probabilities(levels: np.ndarray, k: int, position_decay: Sequence[float] = ()
                           ) -> np.ndarray:
    """P(X = x) for x = 1..k+1 tokens emitted by one uncut step, one row per level."""
    levels = np.asarray(levels, dtype=np.float64)
    if k <= 0:
        return np.ones((levels.size, 1))
    cum_decay = np.cumprod(decay_vector(position_decay, k))
    survive = np.ones((levels.size, k + 2))  # survive[:, j] = P(X >= j + 1); last column 0
    survive[:, 1:k + 1] = levels[:, None] ** np.arange(1, k + 1) * cum_decay
    survive[:, k + 1] = 0.0
    return survive[:, :-1] - survive[:, 1:]


def expected_steps(levels: np.ndarray, k: int, max_tokens: int,
                   position_decay: Sequence[float] = ()) -> np.ndarray:
    """E[steps to emit r tokens] for r = 0..max_tokens, one column per level: shape
    (max_tokens + 1, levels)."""
    probs = emission_probabilities(levels, k, position_decay)  # (L, k + 1)
    emit = probs.T.copy()  # (k + 1, L): row x - 1 = P(X = x)
    back = np.arange(1, emit.shape[0] + 1)
    steps = np.zeros((max_tokens + 1, probs.shape[0]))
    for r in range(1, max_tokens + 1):
        before = steps[np.maximum(r - back, 0)]  # S(max(0, r - x)) for x = 1..k+1
        steps[r] = 1.0 + np.einsum("xl,xl->l", emit, before)
    return steps


def lognormal_length_pmf(median: float, sigma: float, max_tokens: int) -> np.ndarray:
    """P(N = n) for n = 0..max_tokens of ``N = clip(round(median * exp(sigma * z)), 1,
    max_tokens)``, z standard normal (``sim.workload.lengths.SpecBenchLengths``' draw)."""
    if not (median >= 1 and sigma >= 0 and max_tokens >= 1):
        raise ConfigError(f"bad output length model ({median}, {sigma}, max {max_tokens})")
    pmf = np.zeros(max_tokens + 1)
    if sigma == 0:
        pmf[int(min(max(round(median), 1), max_tokens))] = 1.0
        return pmf
    edges = np.arange(1, max_tokens) + 0.5  # N <= n  <=>  median * exp(sigma z) < n + 0.5
    cdf = np.array([0.5 * math.erfc(-(math.log(e / median) / sigma) / math.sqrt(2.0))
                    for e in edges])
    pmf[1] = cdf[0]
    pmf[2:max_tokens] = np.diff(cdf)
    pmf[max_tokens] = 1.0 - cdf[-1]
    return pmf


def steps_by_mean(means: Sequence[float], concentration: float | None, k: int, max_tokens: int,
                  position_decay: Sequence[float] = ()) -> np.ndarray:
    """E[steps to emit r tokens] for r = 0..max_tokens, averaged over the level distribution of
    each category mean in ``means``: shape (max_tokens + 1, len(means))."""
    nodes = [_level_nodes(float(m), concentration) for m in means]
    levels = np.concatenate([lam for lam, _ in nodes])
    steps = expected_steps(levels, k, max_tokens, position_decay)
    out = np.empty((max_tokens + 1, len(nodes)))
    start = 0
    for i, (lam, w) in enumerate(nodes):
        out[:, i] = steps[:, start:start + lam.size] @ w
        start += lam.size
    return out


def mixture_decode_tokens(mixture: Sequence[tuple[float, np.ndarray]]) -> float:
    """Expected decode tokens (output - 1) of a request mix of (count, output length pmf)."""
    total = 0.0
    for count, pmf in mixture:
        pmf = np.asarray(pmf, dtype=np.float64)
        total += count * float(pmf @ np.maximum(np.arange(pmf.size) - 1, 0))
    return total


def _mixture_tokens_steps(mixture: Sequence[tuple[float, np.ndarray]], steps: np.ndarray
                          ) -> tuple[float, np.ndarray]:
    """(expected decode tokens, expected steps per column of ``steps``) of a request mix:
    ``mixture`` = (number of requests, output length pmf over n = 0..max) pairs."""
    total_steps = np.zeros(steps.shape[1])
    for count, pmf in mixture:
        pmf = np.asarray(pmf, dtype=np.float64)
        total_steps += count * (pmf @ steps[np.maximum(np.arange(pmf.size) - 1, 0)])
    return mixture_decode_tokens(mixture), total_steps


def _max_decode_tokens(mixtures: Sequence[Sequence[tuple[float, np.ndarray]]]) -> int:
    return max(max(np.asarray(pmf).size for _, pmf in mix) for mix in mixtures) - 2


def workload_tokens_per_step(means: Sequence[float], concentration: float | None, k: int,
                             mixture: Sequence[tuple[float, np.ndarray]],
                             position_decay: Sequence[float] = ()) -> np.ndarray:
    """Expected tokens per decode step (total tokens / total steps) of a request mix whose
    levels all come from one category profile, for each category mean in ``means``;
    ``mixture`` = (number of requests, output length pmf over n = 0..max) pairs."""
    steps = steps_by_mean(means, concentration, k, max(_max_decode_tokens([mixture]), 0),
                          position_decay)
    tokens, total_steps = _mixture_tokens_steps(mixture, steps)
    if tokens <= 0:
        raise ConfigError("the request mix decodes no tokens")
    return tokens / total_steps


def _root_on_grid(grid: np.ndarray, values: np.ndarray, target: float) -> float:
    """Linear interpolation of the increasing ``values(grid)`` at ``target``."""
    if not values[0] < target < values[-1]:
        raise ConfigError(f"tokens per step {target:.4f} is outside what this profile reaches "
                          f"({values[0]:.4f}..{values[-1]:.4f})")
    return float(np.interp(target, values, grid))


_COARSE_MEANS = np.linspace(0.04, 0.96, 47)
_FINE_OFFSETS = np.linspace(-0.02, 0.02, 21)


def mean_for_tokens_per_step(targets: Mapping[str, tuple[float, Sequence[tuple[float, np.ndarray]]]],
                             concentration: float | None, k: int,
                             position_decay: Sequence[float] = ()) -> dict[str, float]:
    """The category mean level whose request mix reaches the target tokens per step, for each
    ``targets[name] = (tokens per step, mixture)``: a coarse grid of means (step 0.02), then a
    fine one (step 0.002) around each root, linear interpolation between its points. Two
    dynamic programmes in all, shared by every target."""
    names = list(targets)
    max_tokens = max(_max_decode_tokens([targets[n][1] for n in names]), 0)
    coarse = steps_by_mean(_COARSE_MEANS, concentration, k, max_tokens, position_decay)
    fine_grids = []
    for name in names:
        target, mixture = targets[name]
        tokens, total_steps = _mixture_tokens_steps(mixture, coarse)
        guess = _root_on_grid(_COARSE_MEANS, tokens / total_steps, target)
        fine_grids.append(np.clip(guess, 0.03, 0.97) + _FINE_OFFSETS)
    fine = steps_by_mean(np.concatenate(fine_grids), concentration, k, max_tokens,
                         position_decay)
    out: dict[str, float] = {}
    for i, name in enumerate(names):
        target, mixture = targets[name]
        cols = slice(i * _FINE_OFFSETS.size, (i + 1) * _FINE_OFFSETS.size)
        tokens, total_steps = _mixture_tokens_steps(mixture, fine[:, cols])
        out[name] = _root_on_grid(fine_grids[i], tokens / total_steps, target)
    return out
