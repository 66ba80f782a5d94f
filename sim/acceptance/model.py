"""The parametric acceptance model (DESIGN.md §5): per-request levels, per-token confidences,
a calibration curve P(accept | confidence) and a per-position decay.

Generative story, for a request of category ``c`` and draft position ``j`` (0-based):

1. At admission the request gets a *level* ``lam ~ Beta(mean_c * kappa_c, (1 - mean_c) * kappa_c)``:
   its mean per-token acceptance probability at position 0 (``kappa_c = None``: every request
   of the category gets exactly ``mean_c``).
2. Each drafted token gets a draft confidence ``p ~ Beta(m * kappa_t, (1 - m) * kappa_t)`` whose
   mean ``m = m(lam)`` is chosen so that ``E[cal(p)] = lam``: the confidence "tracks" the level
   and is informative about acceptance token by token.
3. The target accepts the token with probability ``cal(p) * decay[j]`` (``decay[j]`` in (0, 1];
   positions past the end of the vector reuse its last value).

Levels outside what the calibration curve can produce (e.g. above cal(1)) act as the nearest
producible level.

So a request's expected accepted-prefix length at static ``k`` is
``sum_{j=1..k} lam^j * prod_{m<j} decay[m]``, and averaging over the Beta level gives a closed
form (``mean_accepted_length``: the mean over steps when every request runs equally many
steps). A workload's tokens per step is a ratio of sums with each request's last step cut at
its end; ``sim.acceptance.finite_length`` computes that one, and presets are placed with it.

Everything is vectorised over the batch and draws only from the ``numpy.random.Generator`` it is
given. The ``lam -> m`` table is built once per model (a quadrature over the Beta CDF), never at
import time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np

from sim.acceptance.table_cache import load_or_build
from sim.compiled.jit import compiled, inlined
from sim.errors import ConfigError

DEFAULT_CATEGORY = ""
_LEVEL_MIN = 1e-3
_LEVEL_MAX = 1.0 - 1e-3
_CONF_MIN = 1e-6


def normalise_category(category: str | None) -> str:
    """Category key used for lookups: stripped, lower case, ``None`` -> default ``""``."""
    return "" if category is None else str(category).strip().lower()


@dataclass(frozen=True)
class CategoryProfile:
    """Distribution of the per-request acceptance level within one category.

    ``mean`` is the category's mean level (per-token acceptance probability at position 0);
    ``concentration`` is the Beta concentration a + b of the per-request level (larger = less
    spread between requests); ``None`` gives every request exactly ``mean``.
    """

    mean: float
    concentration: float | None = 12.0

    def __post_init__(self) -> None:
        if not (isinstance(self.mean, (int, float)) and 0.0 < self.mean < 1.0):
            raise ConfigError(f"category mean level must be in (0, 1), got {self.mean!r}")
        if self.concentration is not None and not (
                isinstance(self.concentration, (int, float))
                and math.isfinite(self.concentration) and self.concentration > 0.0):
            raise ConfigError(
                f"category concentration must be a positive number or null, got {self.concentration!r}")


@dataclass(frozen=True)
class CalibrationCurve:
    """Monotone piecewise-linear P(accept | draft confidence).

    ``points`` are (confidence, probability) pairs with confidences strictly increasing from 0
    to 1 and probabilities non-decreasing in [0, 1]. The identity curve ``((0, 0), (1, 1))`` is a
    perfectly calibrated draft.
    """

    points: tuple[tuple[float, float], ...] = ((0.0, 0.0), (1.0, 1.0))

    def __post_init__(self) -> None:
        pts = self.points
        if len(pts) < 2:
            raise ConfigError("calibration curve needs at least two points")
        try:
            xs = [float(p[0]) for p in pts]
            ys = [float(p[1]) for p in pts]
            if any(len(p) != 2 for p in pts):
                raise TypeError
        except (TypeError, ValueError, IndexError):
            raise ConfigError("calibration points must be [confidence, probability] pairs") from None
        if not all(math.isfinite(v) for v in xs + ys):
            raise ConfigError("calibration points must be finite numbers")
        if xs[0] != 0.0 or xs[-1] != 1.0 or any(b <= a for a, b in zip(xs, xs[1:])):
            raise ConfigError("calibration confidences must increase strictly from 0 to 1")
        if any(not 0.0 <= y <= 1.0 for y in ys) or any(b < a for a, b in zip(ys, ys[1:])):
            raise ConfigError("calibration probabilities must be non-decreasing and within [0, 1]")
        object.__setattr__(self, "points", tuple((x, y) for x, y in zip(xs, ys)))

    @property
    def xs(self) -> np.ndarray:
        return np.array([p[0] for p in self.points])

    @property
    def ys(self) -> np.ndarray:
        return np.array([p[1] for p in self.points])

    def __call__(self, conf: np.ndarray) -> np.ndarray:
        return np.interp(conf, self.xs, self.ys)


@dataclass(frozen=True)
class AcceptanceParams:
    """Everything that defines a ``ParametricAcceptance``; what the JSON file holds.

    ``categories`` must contain the default category ``""`` (used for unknown or empty
    categories). ``confidence_concentration`` is the Beta concentration of per-token draft
    confidences around their request's mean (small = bimodal, close to 0 or 1).
    ``position_decay[j]`` multiplies the acceptance probability at draft position j.
    ``meta`` is free-form provenance (fit error, sample counts, ...) kept on round trips.
    """

    name: str
    source: str
    categories: Mapping[str, CategoryProfile]
    calibration: CalibrationCurve = field(default_factory=CalibrationCurve)
    confidence_concentration: float = 2.0
    position_decay: tuple[float, ...] = ()
    meta: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cats = {normalise_category(k): v for k, v in dict(self.categories).items()}
        if DEFAULT_CATEGORY not in cats:
            raise ConfigError('acceptance categories must include the default category ""')
        for key, prof in cats.items():
            if not isinstance(prof, CategoryProfile):
                raise ConfigError(f"category {key!r}: expected a CategoryProfile")
        object.__setattr__(self, "categories", cats)
        kt = self.confidence_concentration
        if not (isinstance(kt, (int, float)) and math.isfinite(kt) and kt > 0):
            raise ConfigError(f"confidence concentration must be a positive number, got {kt!r}")
        decay = tuple(float(d) for d in self.position_decay)
        if any(not (0.0 < d <= 1.0) for d in decay):
            raise ConfigError("position decay factors must be in (0, 1]")
        object.__setattr__(self, "position_decay", decay)


def _beta_moments(mean: float, concentration: float | None, order: int) -> np.ndarray:
    """E[lam^j] for j = 0..order under Beta(mean*kappa, (1-mean)*kappa) (kappa None: point mass)."""
    out = np.ones(order + 1)
    if concentration is None:
        out[1:] = mean ** np.arange(1, order + 1)
        return out
    a = mean * concentration
    r = np.arange(order)
    out[1:] = np.cumprod((a + r) / (concentration + r))
    return out


def decay_vector(position_decay: Sequence[float], k: int) -> np.ndarray:
    """Per-position decay factors for positions 0..k-1 (the last factor repeats; none = 1)."""
    d = np.asarray(position_decay, dtype=np.float64)
    if d.size == 0:
        return np.ones(k)
    if k <= d.size:
        return d[:k].copy()
    return np.concatenate([d, np.full(k - d.size, d[-1])])


def mean_accepted_length(mean: float, concentration: float | None, k: int,
                         position_decay: Sequence[float] = ()) -> float:
    """Expected tokens emitted per step, E[accepted + 1], at static drafting of ``k`` tokens,
    for a category with this level distribution (ignores clipping of levels near 0 and 1).

    E[1 + sum_{j=1..k} lam^j prod_{m<j} d_m] = 1 + sum_j E[lam^j] D_j.
    """
    if k <= 0:
        return 1.0
    moments = _beta_moments(mean, concentration, k)
    cum_decay = np.cumprod(decay_vector(position_decay, k))
    return float(1.0 + np.dot(moments[1:], cum_decay))


_QUANTILE_POINTS = 513
QUANTILE_POINTS = _QUANTILE_POINTS


def _beta_quantile_table(conf_means: np.ndarray, concentration: float) -> np.ndarray:
    """Quantiles of Beta(m*kappa, (1-m)*kappa) at u = 0, 1/512, ..., 1 for each grid mean m,
    clipped to [_CONF_MIN, 1] (row i belongs to ``conf_means[i]``)."""
    from scipy.special import betaincinv  # lazy: only when a model is built

    u = np.linspace(0.0, 1.0, _QUANTILE_POINTS)
    a = conf_means[:, None] * concentration
    b = (1.0 - conf_means[:, None]) * concentration
    return np.clip(betaincinv(a, b, u[None, :]), _CONF_MIN, 1.0)


def _expected_calibrated(calibration: CalibrationCurve, conf_means: np.ndarray,
                         concentration: float) -> np.ndarray:
    """E[cal(p)] for p ~ Beta(m*kappa, (1-m)*kappa), for each m in ``conf_means``.

    Integration by parts on the piecewise-linear curve: E[cal(p)] = cal(0) +
    integral_0^1 cal'(x) (1 - F(x)) dx; F is bounded, so the trapezoid rule is accurate even
    when the Beta density is singular at 0 or 1.
    """
    from scipy.special import betainc  # lazy: only when a model is built

    x = np.linspace(0.0, 1.0, 513)
    a = conf_means[:, None] * concentration
    b = (1.0 - conf_means[:, None]) * concentration
    survival = 1.0 - betainc(a, b, x[None, :])
    xs, ys = calibration.xs, calibration.ys
    seg_slope = np.diff(ys) / np.diff(xs)
    mid = 0.5 * (x[1:] + x[:-1])
    idx = np.clip(np.searchsorted(xs, mid, side="right") - 1, 0, seg_slope.size - 1)
    mid_survival = 0.5 * (survival[:, 1:] + survival[:, :-1])
    integral = (mid_survival * (seg_slope[idx] * np.diff(x))[None, :]).sum(axis=1)
    return ys[0] + integral


@lru_cache(maxsize=16)
def _draw_tables(calibration: CalibrationCurve, concentration: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(conf-mean grid, level grid, confidence quantiles, acceptance quantiles, and the last
    two paired per flat cell) of a model.

    A pure function of the calibration curve and the confidence concentration, cached in the
    process (read-only arrays) and on disk (``sim.acceptance.table_cache``) because building
    it (~128k Beta quantiles) costs more than a short simulation, and a sweep or
    ``--policy all`` builds the same model once per run.

    The level -> conf-mean table: E[cal(p) | m] is non-decreasing in m (the Beta family with a
    fixed concentration is stochastically increasing in its mean); a tiny ramp keeps it strictly
    increasing for np.interp when the curve is flat somewhere.
    """
    m_grid = np.linspace(0.002, 0.998, 250)

    def build() -> dict[str, np.ndarray]:
        expected = _expected_calibrated(calibration, m_grid, concentration)
        return {"levels": np.maximum.accumulate(expected) + 1e-12 * np.arange(m_grid.size),
                "conf_quantiles": _beta_quantile_table(m_grid, concentration)}

    key = {"calibration": [list(point) for point in calibration.points],
           "concentration": repr(float(concentration)), "grid": [0.002, 0.998, 250],
           "quantile_points": _QUANTILE_POINTS, "conf_min": _CONF_MIN}
    built = load_or_build(key, build)  # ~0.8 s of scipy work, kept on disk between runs
    levels, conf_q = built["levels"], built["conf_quantiles"]
    accept_q = np.interp(conf_q, calibration.xs, calibration.ys)
    # cell -> (confidence, P(accept)) side by side: one gather, one cache line per draw
    cells = np.stack([conf_q.ravel(), accept_q.ravel()], axis=1)
    tables = (m_grid, levels, conf_q, accept_q, cells)
    for table in tables:
        table.flags.writeable = False
    return tables


class ParametricAcceptance:
    """The acceptance model of DESIGN.md §5; implements ``sim.acceptance.base.AcceptanceModel``."""

    def __init__(self, params: AcceptanceParams) -> None:
        self.params = params
        self.name = params.name
        self._categories = dict(params.categories)
        self._cal_x = params.calibration.xs
        self._cal_y = params.calibration.ys
        self._kappa_t = float(params.confidence_concentration)
        (self._conf_mean_grid, self._level_grid, self._conf_quantiles, self._accept_quantiles,
         self._cells) = _draw_tables(params.calibration, self._kappa_t)
        self._decay = np.asarray(params.position_decay, dtype=np.float64)
        self._decay_table = decay_vector(self._decay, 64)

    def __repr__(self) -> str:
        return f"ParametricAcceptance({self.name!r})"

    @property
    def level_range(self) -> tuple[float, float]:
        """Smallest and largest level the calibration curve can produce."""
        return float(self._level_grid[0]), float(self._level_grid[-1])

    @property
    def category_names(self) -> frozenset[str]:
        """The categories with a profile of their own (the default ``""`` excluded)."""
        return frozenset(k for k in self._categories if k != DEFAULT_CATEGORY)

    def category_profile(self, category: str) -> CategoryProfile:
        """Profile of ``category``; unknown or empty categories get the default profile."""
        return self._categories.get(normalise_category(category), self._categories[DEFAULT_CATEGORY])

    def request_levels(self, categories: Sequence[str], rng: np.random.Generator) -> np.ndarray:
        n = len(categories)
        means = np.empty(n)
        kappas = np.empty(n)
        for i, cat in enumerate(categories):
            prof = self.category_profile(cat)
            means[i] = prof.mean
            kappas[i] = np.inf if prof.concentration is None else prof.concentration
        levels = means.copy()
        spread = np.isfinite(kappas)
        if spread.any():
            levels[spread] = rng.beta(means[spread] * kappas[spread],
                                      (1.0 - means[spread]) * kappas[spread])
        return np.clip(levels, _LEVEL_MIN, _LEVEL_MAX)

    def confidence_means(self, levels: np.ndarray) -> np.ndarray:
        """Mean draft confidence of requests with these levels (the inverse of E[cal(p)])."""
        return np.interp(levels, self._level_grid, self._conf_mean_grid)

    def decay(self, k: int) -> np.ndarray:
        """Acceptance multipliers of draft positions 0..k-1."""
        if k <= self._decay_table.size:
            return self._decay_table[:k]
        return decay_vector(self._decay, k)

    def draw(self, levels: np.ndarray, k: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
        return self.draw_with_keys(self.draw_keys(levels), k, rng)

    def draw_keys(self, levels: np.ndarray) -> np.ndarray:
        """Flat offset of each request's row in the quantile tables (its confidence mean
        ``m(lam)`` rounded to the table's grid, step 0.004), plus 0.5 so that a draw rounds
        to the nearest quantile with one truncation; float64."""
        m = self.confidence_means(np.asarray(levels, dtype=np.float64))
        grid = self._conf_mean_grid
        rows = np.rint((m - grid[0]) / (grid[1] - grid[0]))
        return rows * _QUANTILE_POINTS + 0.5

    def draw_with_keys(self, keys: np.ndarray, k: int, rng: np.random.Generator
                       ) -> tuple[np.ndarray, np.ndarray]:
        batch = keys.shape[0]
        if k <= 0 or batch == 0:
            return np.zeros((batch, max(k, 0))), np.zeros((batch, max(k, 0)), dtype=bool)
        # conf ~ Beta(m*kappa, (1-m)*kappa) by inverse transform: the nearest of the 513
        # precomputed quantiles of the request's row, and P(accept | conf) from the same cell
        # of the calibrated table (``draw_cells``). About 10x cheaper than rng.beta with
        # per-row parameters, on the simulator's hot path.
        u = rng.random(batch * k)
        v = rng.random(batch * k)
        conf = np.empty((batch, k))
        accept = np.empty((batch, k), dtype=bool)
        compiled(draw_cells)(u, v, np.asarray(keys, dtype=np.float64), batch, k, self._cells,
                             self.decay(k), self._decay.size > 0, conf, accept, 0, k)
        return conf, accept


@inlined
def quantile_cell(u, key):
    """The flat quantile cell a uniform ``u`` draws in the row of ``key`` (``draw_keys``):
    ``u * 512 + key``, truncated (the key's 0.5 makes it the nearest quantile)."""
    return int(u * (QUANTILE_POINTS - 1) + key)


@inlined
def draw_cells(u, v, keys, batch, k, cells, decay, decays, conf, accept, first, stop):
    """``ParametricAcceptance.draw_with_keys`` from two blocks of B*k uniforms (row-major,
    ``u`` first, as the generator gives them): the quantile cell (``quantile_cell``), its
    confidence and P(accept) (times the position decay when ``decays``), accepted when ``v``
    is below.
    Only draft positions ``first..stop-1`` are computed (the compiled loop computes a
    position when a step drafts it; the uniforms are the same either way)."""
    for i in range(batch):
        key = keys[i]
        for j in range(first, stop):
            cell = quantile_cell(u[i * k + j], key)
            conf[i, j] = cells[cell, 0]
            p = cells[cell, 1]
            if decays:
                p = p * decay[j]
            accept[i, j] = v[i * k + j] < p
