"""Fit the latency profile's per-operation curves from timing samples.

Each operation's model is linear in its physical features (``sim.latency.profile.OP_FEATURES``)
with non-negative coefficients (a pass never gets faster with more work), fitted by
``scipy.optimize.least_squares`` on *relative* residuals ``(prediction - t) / t`` so short and
long passes weigh alike (durations span orders of magnitude). Columns are scaled to unit
maximum before fitting for conditioning.

Error reporting: one sample in ``holdout_every`` (every 4th of a seeded shuffle) is held out, the model is
fitted on the rest, and the held-out mean absolute percentage error (MAPE) is reported; the
coefficients stored in the profile are then refitted on all samples (their in-sample MAPE is
reported as well).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.optimize import least_squares

from sim.errors import ConfigError
from sim.latency.profile import OP_DOMAIN_VARS, OP_FEATURES, profile_features_matrix

DEFAULT_HOLDOUT_EVERY = 4


@dataclass(frozen=True)
class OpFitResult:
    """Coefficients (seconds per feature unit, in ``features`` order) and fit errors (%)."""

    op: str
    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    mape_heldout: float | None
    mape_train: float
    max_ape: float
    n_train: int
    n_heldout: int

    def as_dict(self) -> dict[str, Any]:
        return {"features": list(self.features),
                "coefficients": dict(zip(self.features, self.coefficients)),
                "fit": {"method": "scipy.optimize.least_squares, relative residuals, "
                                  "coefficients >= 0",
                        "mape_heldout": self.mape_heldout, "mape_train": self.mape_train,
                        "max_ape": self.max_ape, "n_train": self.n_train,
                        "n_heldout": self.n_heldout}}


def fit_nonnegative(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative coefficients minimising the squared relative error of ``x @ c`` vs ``y``."""
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError("fit_nonnegative needs x of shape (n, p) and y of shape (n,)")
    if x.shape[0] == 0:
        raise ConfigError("no timing samples to fit")
    if np.any(y <= 0) or not np.all(np.isfinite(y)):
        raise ConfigError("timing samples must be positive finite seconds")
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    xs = x / scale / y[:, None]  # relative residual: (xs @ b) - 1
    ones = np.ones_like(y)
    # Start from the non-negative least-squares-like guess: all time in the intercept column.
    b0 = np.full(x.shape[1], 1e-3)
    result = least_squares(lambda b: xs @ b - ones, b0, jac=lambda b: xs,
                           bounds=(0.0, np.inf), method="trf", x_scale="jac",
                           ftol=1e-12, xtol=1e-12, gtol=1e-12, max_nfev=2000)
    return np.maximum(result.x, 0.0) / scale


def ape_percent(x: np.ndarray, y: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Absolute percentage error of each sample's prediction."""
    return np.abs(x @ coef - y) / y * 100.0


def fit_op(op: str, samples: Sequence[Mapping[str, Any]],
           holdout_every: int = DEFAULT_HOLDOUT_EVERY) -> OpFitResult:
    """Fit one operation from its samples (each has the grid variables and ``seconds_median``)."""
    if op not in OP_FEATURES:
        raise ConfigError(f"unknown latency operation {op!r}")
    x = profile_features_matrix(op, samples)
    y = np.array([float(s["seconds_median"]) for s in samples])
    n = len(samples)
    held = np.zeros(n, dtype=bool)
    if holdout_every and holdout_every > 1 and n >= 2 * len(OP_FEATURES[op]):
        # A seeded shuffle first: a plain stride over nested grid loops could hold out every
        # sample of one grid value (an extrapolation test, not an interpolation one).
        order = np.random.default_rng(0).permutation(n)
        held[order[holdout_every - 1::holdout_every]] = True
    mape_heldout = None
    if held.any():
        coef_split = fit_nonnegative(x[~held], y[~held])
        mape_heldout = float(ape_percent(x[held], y[held], coef_split).mean())
    coef = fit_nonnegative(x, y)
    ape = ape_percent(x, y, coef)
    return OpFitResult(op, OP_FEATURES[op], tuple(float(c) for c in coef), mape_heldout,
                       float(ape.mean()), float(ape.max()), int(n - held.sum()), int(held.sum()))


def measured_domain(op: str, samples: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """[min, max] of each domain variable over the samples."""
    domain = {}
    for var in OP_DOMAIN_VARS[op]:
        values = [float(s[var]) for s in samples]
        domain[var] = [min(values), max(values)]
    return domain


def fit_all(samples_by_op: Mapping[str, Sequence[Mapping[str, Any]]],
            holdout_every: int = DEFAULT_HOLDOUT_EVERY) -> dict[str, dict[str, Any]]:
    """The ``ops`` block of a profile: per operation, features, coefficients, fit, domain and
    the raw samples."""
    ops = {}
    for op in OP_FEATURES:
        samples = list(samples_by_op.get(op, ()))
        if not samples:
            raise ConfigError(f"no timing samples for {op}")
        block = fit_op(op, samples, holdout_every).as_dict()
        block["fit"]["n_samples"] = len(samples)
        block["domain"] = measured_domain(op, samples)
        block["samples"] = [dict(s) for s in samples]
        ops[op] = block
    return ops
