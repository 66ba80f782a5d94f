"""Fit the simulator's acceptance model (``sim.acceptance.model``) from drafted-token logs.

A log has one row per drafted token: ``request`` (id), ``category``, ``step`` (decode
iteration of that request), ``position`` (0-based draft position j), ``conf`` (the draft's
probability of its own token), ``match`` (the target's greedy token equals it, given the
drafted prefix) and ``reached`` (every earlier position of the step matched, so the token was
actually judged: the accepted prefix is the run of matches from position 0).

The model accepts position j with probability ``cal(p) * decay[j]`` independently given the
confidence, so on *reached* tokens ``E[match] = cal(p) * decay[j]``. The fit alternates:

1. calibration curve: quantile bins of confidence, mean of ``match / decay[j]`` per bin, made
   non-decreasing by weighted pool-adjacent-violators, extended flat to confidences 0 and 1;
2. position decay: ``decay[j] = sum(match_j) / sum(cal(p_j))`` on reached tokens at position
   j, normalised to ``decay[0] = 1`` and clipped to (0, 1] (positions with few samples repeat
   the previous factor).

Per request, the level (acceptance probability at position 0) is ``sum(match) / sum(decay[j])``
over its reached tokens; a category's mean is the mean level of its requests and its Beta concentration
comes from the between-request variance of levels minus their binomial sampling variance
(none left: ``concentration`` null). The confidence concentration is the method-of-moments
Beta concentration of confidences within requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.acceptance.model import (
    DEFAULT_CATEGORY,
    AcceptanceParams,
    CalibrationCurve,
    CategoryProfile,
    decay_vector,
    mean_accepted_length,
    normalise_category,
)
from sim.errors import ConfigError

LOG_COLUMNS = ("request", "category", "step", "position", "conf", "match", "reached")
MIN_BIN_SAMPLES = 20
MIN_POSITION_SAMPLES = 30
_LEVEL_CLIP = (1e-3, 1.0 - 1e-3)


@dataclass(frozen=True)
class AcceptanceFit:
    """The fitted parameters and diagnostics (observed vs fitted statistics)."""

    params: AcceptanceParams
    diagnostics: dict[str, Any]


def _pav(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted pool-adjacent-violators: the non-decreasing fit of ``y``."""
    blocks: list[list[float]] = []  # [value, weight, count]
    for value, weight in zip(y.tolist(), w.tolist()):
        blocks.append([value, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return np.concatenate([np.full(n, v) for v, _, n in blocks])


def fit_calibration(conf: np.ndarray, target: np.ndarray, bins: int = 12) -> CalibrationCurve:
    """Monotone piecewise-linear curve through binned means of ``target`` against ``conf``."""
    if conf.size == 0:
        raise ConfigError("no reached draft tokens to fit a calibration curve")
    order = np.argsort(conf, kind="stable")
    c, t = conf[order], target[order]
    n_bins = int(max(1, min(bins, c.size // MIN_BIN_SAMPLES)))
    edges = np.linspace(0, c.size, n_bins + 1).round().astype(int)
    xs, ys, ws = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:
            continue
        x = float(c[lo:hi].mean())
        if xs and x <= xs[-1] + 1e-6:  # ties in confidence: merge into the previous bin
            total = ws[-1] + (hi - lo)
            ys[-1] = (ys[-1] * ws[-1] + float(t[lo:hi].sum())) / total
            xs[-1] = (xs[-1] * ws[-1] + float(c[lo:hi].sum())) / total
            ws[-1] = total
            continue
        xs.append(x)
        ys.append(float(t[lo:hi].mean()))
        ws.append(hi - lo)
    y_fit = np.clip(_pav(np.array(ys), np.array(ws, dtype=float)), 0.0, 1.0)
    points = []
    if xs[0] > 1e-6:
        points.append((0.0, float(y_fit[0])))
    for x, y in zip(xs, y_fit):
        if x >= 1.0 - 1e-9:
            break
        points.append((max(x, 0.0) if points else 0.0, float(y)))
    points.append((1.0, float(y_fit[-1])))
    return CalibrationCurve(tuple(points))


def fit_decay(position: np.ndarray, match: np.ndarray, predicted: np.ndarray,
              positions: int) -> np.ndarray:
    """Per-position factor observed / predicted acceptance, normalised to position 0."""
    decay = np.ones(positions)
    for j in range(positions):
        at = position == j
        if at.sum() >= MIN_POSITION_SAMPLES and predicted[at].sum() > 0:
            decay[j] = match[at].sum() / predicted[at].sum()
        elif j > 0:
            decay[j] = decay[j - 1]
    if decay[0] <= 0:
        return np.ones(positions)
    return np.clip(decay / decay[0], 1e-3, 1.0)


def _category_profile(levels: np.ndarray, counts: np.ndarray) -> CategoryProfile:
    """Beta profile of per-request levels: unweighted mean (the Beta is over requests; weighting
    by reached tokens would favour high-level requests, which reach more positions) and the
    between-request variance left after the binomial noise of each request's estimate."""
    mean = float(np.clip(levels.mean(), *_LEVEL_CLIP))
    concentration = None
    if levels.size >= 3:
        var_obs = float(levels.var(ddof=1))
        clipped = np.clip(levels, *_LEVEL_CLIP)
        noise = float(np.mean(clipped * (1 - clipped) / counts))
        var_between = var_obs - noise
        if var_between > 1e-6:
            concentration = float(np.clip(mean * (1 - mean) / var_between - 1.0, 0.5, 1e4))
    return CategoryProfile(round(mean, 6), None if concentration is None else round(concentration, 4))


def confidence_concentration(log: pd.DataFrame) -> float:
    """Pooled within-request Beta concentration of draft confidences."""
    grouped = log.groupby("request")["conf"]
    n = grouped.count().to_numpy(dtype=float)
    m = grouped.mean().to_numpy(dtype=float)
    v = grouped.var(ddof=1).fillna(0.0).to_numpy(dtype=float)
    keep = n >= 3
    if not keep.any():
        return 2.0
    spread = float(np.dot(n[keep], v[keep]) / n[keep].sum())
    bern = float(np.dot(n[keep], m[keep] * (1 - m[keep])) / n[keep].sum())
    if spread <= 1e-9:
        return 1e4
    return float(np.clip(bern / spread - 1.0, 0.05, 1e4))


def check_log(log: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in LOG_COLUMNS if c not in log.columns]
    if missing:
        raise ConfigError(f"acceptance log lacks column(s) {', '.join(missing)}")
    if log.empty:
        raise ConfigError("acceptance log is empty: nothing was drafted")
    out = log.copy()
    out["category"] = out["category"].fillna("").map(normalise_category)
    out["match"] = out["match"].astype(bool)
    out["reached"] = out["reached"].astype(bool)
    return out


def fit_acceptance(log: pd.DataFrame, *, name: str, source: str, iterations: int = 4,
                   bins: int = 12, meta: dict[str, Any] | None = None) -> AcceptanceFit:
    """Fit ``AcceptanceParams`` from a drafted-token log (see the module docstring)."""
    log = check_log(log)
    reached = log[log["reached"]]
    if reached.empty:
        raise ConfigError("acceptance log has no reached draft tokens")
    conf = reached["conf"].to_numpy(dtype=float)
    match = reached["match"].to_numpy(dtype=float)
    pos = reached["position"].to_numpy(dtype=int)
    positions = int(log["position"].max()) + 1
    decay = np.ones(positions)
    for _ in range(iterations):
        curve = fit_calibration(conf, match / decay[pos], bins)
        decay = fit_decay(pos, match, curve(conf), positions)
    curve = fit_calibration(conf, match / decay[pos], bins)
    d_tok = decay[pos]

    per_req = pd.DataFrame({"request": reached["request"].to_numpy(), "match": match,
                            "decay": d_tok, "category": reached["category"].to_numpy()})
    agg = per_req.groupby("request").agg(match=("match", "sum"), decay=("decay", "sum"),
                                         n=("match", "size"), category=("category", "first"))
    agg["level"] = np.clip(agg["match"] / agg["decay"], 0.0, 1.0)
    categories = {DEFAULT_CATEGORY: _category_profile(agg["level"].to_numpy(),
                                                      agg["n"].to_numpy(dtype=float))}
    for cat, rows in agg.groupby("category"):
        if cat != DEFAULT_CATEGORY:
            categories[cat] = _category_profile(rows["level"].to_numpy(),
                                                rows["n"].to_numpy(dtype=float))
    kappa_t = confidence_concentration(log)
    params = AcceptanceParams(name=name, source=source, categories=categories,
                              calibration=curve,
                              confidence_concentration=round(kappa_t, 4),
                              position_decay=tuple(round(float(d), 6) for d in decay),
                              meta=dict(meta or {}))
    return AcceptanceFit(params, diagnostics(log, params))


def diagnostics(log: pd.DataFrame, params: AcceptanceParams) -> dict[str, Any]:
    """Observed statistics next to what the fitted model implies."""
    reached = log[log["reached"]]
    judged = log.assign(accepted=log["match"] & log["reached"])
    steps = judged.groupby(["request", "step"])
    accepted = steps["accepted"].sum()
    k_of_step = steps["position"].max() + 1
    k_mode = int(k_of_step.mode().iloc[0])
    overall = params.categories[DEFAULT_CATEGORY]
    curve = params.calibration
    decay = decay_vector(params.position_decay, int(log["position"].max()) + 1)
    pred = curve(reached["conf"].to_numpy(float)) * decay[reached["position"].to_numpy(int)]
    brier = float(np.mean((pred - reached["match"].to_numpy(float)) ** 2))
    per_position = reached.groupby("position")["match"].agg(["mean", "size"])
    return {
        "drafted_tokens": int(len(log)), "reached_tokens": int(len(reached)),
        "requests": int(log["request"].nunique()), "steps": int(len(k_of_step)),
        "k": k_mode,
        "observed_mean_accepted_length": float((accepted + 1).mean()),
        "fitted_mean_accepted_length": mean_accepted_length(overall.mean, overall.concentration,
                                                            k_mode, params.position_decay),
        "observed_acceptance_rate": float(reached["match"].mean()),
        "conditional_acceptance_by_position": {int(j): {"rate": float(r["mean"]), "n": int(r["size"])}
                                               for j, r in per_position.iterrows()},
        "brier_score": brier,
        "requests_per_category": {str(c): int(n) for c, n in
                                  log.groupby("category")["request"].nunique().items()},
    }
