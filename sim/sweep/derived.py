"""Metrics derived from the tidy sweep table: SLO attainment curves, goodput-rate, speedups.

Only points with status "ok" enter. Seeds are averaged first: a *cell* is one combination of
inputs other than the seed, with every numeric metric averaged over its seeds (``seeds`` =
how many); the attainment curves also keep its lowest and highest over the seeds
(``slo_attainment_seed_min`` / ``_seed_max``), so a verdict within that spread is the
draw's, not the policy's. Output frames keep only the input columns that vary across the sweep (and
always ``trace``, ``policy``, ``rate`` and ``slo_scale``), so they stay readable; ``rate`` is
the load axis -- the arrival rate in req/s for sweeps with synthetic arrivals, else the
trace's rate scale (see
:func:`rate_axis`); ``workload_offered_rate_req_per_s`` is the measured request rate of the
simulated workload ((n - 1) / span).

Goodput-rate (DistServe's convention, OSDI 2024): the highest request rate at which at least
90 % of requests meet the SLO. Along the rate grid of one scenario (every other input fixed),
take the first grid point whose attainment falls below the threshold; the goodput-rate is the
linear interpolation, at the threshold, between it and the grid point before it
(``goodput_bound = "interpolated"``; with ``interpolate=False`` the last passing grid point,
``"grid"``). If every grid point passes, it is the highest grid rate and only a lower bound
(``"at_least"``); if the lowest rate already fails it is NaN (``"below_grid"``). Attainment
after the first failure is ignored (a non-monotone curve does not let a policy "recover").

Speedup of a policy over a baseline in the same scenario: baseline mean E2E / policy mean E2E
(``e2e_speedup``) and baseline mean TPOT / policy mean TPOT (``tpot_speedup``); > 1 = faster.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

# Inputs that never define a scenario: identifiers, and columns duplicated by others
# (``rate`` carries rate_scale/arrival_rate; ``slo_scale`` x base SLOs carry the scaled SLOs).
NOT_SCENARIO = ("key", "trace_sha256", "rate_scale", "arrival_rate_req_per_s", "ttft_slo_s",
                "tpot_slo_s", "seed")
ALWAYS = ("trace", "policy", "rate", "slo_scale")
SEED_SPREAD = ("slo_attainment_seed_min", "slo_attainment_seed_max")


def input_columns(table: pd.DataFrame) -> list[str]:
    """The point-input columns of a sweep table (everything before ``status``)."""
    columns = list(table.columns)
    return columns[:columns.index("status")] if "status" in columns else []


def rate_axis(table: pd.DataFrame) -> tuple[str, str]:
    """(column the ``rate`` values come from, axis label)."""
    if "arrivals" in table and (table["arrivals"] != "trace").any():
        return "arrival_rate_req_per_s", "arrival rate (req/s)"
    return "rate_scale", "rate scale (x trace request rate)"


def varying_inputs(table: pd.DataFrame) -> list[str]:
    """Scenario columns: trace, policy, rate, slo_scale and every other input with more than
    one value."""
    names = []
    for name in input_columns(table):
        if name in NOT_SCENARIO:
            continue
        if name in ALWAYS or table[name].astype(str).nunique(dropna=False) > 1:
            names.append(name)
    return names


def seed_cells(table: pd.DataFrame) -> pd.DataFrame:
    """ok points averaged over seeds: one row per combination of the varying inputs."""
    ok = table[table["status"] == "ok"] if "status" in table else table.iloc[0:0]
    keys = varying_inputs(table)
    if ok.empty:
        return pd.DataFrame(columns=keys + ["seeds"])
    metrics = [c for c in ok.columns if c not in input_columns(table)
               and c not in keys and pd.api.types.is_numeric_dtype(ok[c])]
    grouped = ok.groupby(keys, sort=False, dropna=False)
    cells = grouped[metrics].mean().reset_index()
    cells.insert(len(keys), "seeds", grouped.size().to_numpy())
    if "slo_attainment" in metrics:
        cells["slo_attainment_seed_min"] = grouped["slo_attainment"].min().to_numpy()
        cells["slo_attainment_seed_max"] = grouped["slo_attainment"].max().to_numpy()
    return cells


def _scenario(table: pd.DataFrame, exclude: Sequence[str]) -> list[str]:
    return [c for c in varying_inputs(table) if c not in exclude]


def _curves(table: pd.DataFrame, x: str, values: list[str]) -> pd.DataFrame:
    """Cells as curves along ``x``: scenarios in sweep-file order, ``x`` ascending in each."""
    cells = seed_cells(table)
    scenario = _scenario(table, (x,))
    columns = scenario + [x, "seeds"] + values
    if cells.empty:
        return pd.DataFrame(columns=columns)
    order = cells.groupby(scenario, sort=False, dropna=False).ngroup() if scenario else 0
    cells = cells.assign(_order=order).sort_values(["_order", x], kind="stable")
    return cells[columns].reset_index(drop=True)


def attainment_vs_rate(table: pd.DataFrame) -> pd.DataFrame:
    """SLO attainment per scenario and rate (one curve per policy), sorted by rate."""
    return _curves(table, "rate", ["slo_attainment", *SEED_SPREAD,
                                   "workload_offered_rate_req_per_s"])


def attainment_vs_slo_scale(table: pd.DataFrame) -> pd.DataFrame:
    """SLO attainment per scenario and SLO scale (one curve per policy), sorted by scale."""
    return _curves(table, "slo_scale", ["slo_attainment", *SEED_SPREAD])


def goodput_rate(rates: Sequence[float], attainment: Sequence[float], threshold: float = 0.9,
                 interpolate: bool = True) -> tuple[float, str, float]:
    """(goodput-rate, bound, fraction) along one sorted rate grid; see the module docstring.

    ``fraction`` locates the result between grid points i-1 and i (for interpolating other
    per-point quantities the same way): the result is rates[i-1] + fraction * (rates[i] -
    rates[i-1]) with i-1 = index of the last passing point, or NaN."""
    r = np.asarray(rates, dtype=float)
    a = np.asarray(attainment, dtype=float)
    if r.size == 0 or not a[0] >= threshold:
        return math.nan, "below_grid", math.nan
    failing = np.nonzero(~(a >= threshold))[0]
    if failing.size == 0:
        return float(r[-1]), "at_least", 0.0
    i = int(failing[0])
    if not interpolate or not np.isfinite(a[i]):
        return float(r[i - 1]), "grid", 0.0
    fraction = float((a[i - 1] - threshold) / (a[i - 1] - a[i]))
    return float(r[i - 1] + fraction * (r[i] - r[i - 1])), "interpolated", fraction


def goodput_rates(table: pd.DataFrame, threshold: float = 0.9,
                  interpolate: bool = True) -> pd.DataFrame:
    """One row per scenario (every input but the rate): its goodput-rate on the ``rate`` axis
    and the same point expressed as offered req/s."""
    curves = attainment_vs_rate(table)
    scenario = _scenario(table, ("rate",))
    axis, _ = rate_axis(table)
    rows = []
    if not curves.empty:
        for values, curve in curves.groupby(scenario, sort=False, dropna=False):
            values = values if isinstance(values, tuple) else (values,)
            rates = curve["rate"].to_numpy(dtype=float)
            offered = curve["workload_offered_rate_req_per_s"].to_numpy(dtype=float)
            rate, bound, fraction = goodput_rate(rates, curve["slo_attainment"], threshold,
                                                 interpolate)
            if bound == "below_grid":
                offered_at = math.nan
            else:
                i = int(np.searchsorted(rates, rate, side="right")) - 1
                j = min(i + 1, len(rates) - 1)
                offered_at = float(offered[i] + fraction * (offered[j] - offered[i]))
            rows.append(dict(zip(scenario, values), rate_axis=axis, threshold=threshold,
                             goodput_rate=rate, goodput_offered_req_per_s=offered_at,
                             goodput_bound=bound, grid_min=float(rates.min()),
                             grid_max=float(rates.max()), grid_points=len(rates)))
    columns = scenario + ["rate_axis", "threshold", "goodput_rate", "goodput_offered_req_per_s",
                          "goodput_bound", "grid_min", "grid_max", "grid_points"]
    return pd.DataFrame(rows, columns=columns)


def speedups(table: pd.DataFrame, baselines: Sequence[str]) -> pd.DataFrame:
    """Speedup of every policy over every baseline, per scenario (every input but the
    policy); seeds averaged before the ratio."""
    cells = seed_cells(table)
    scenario = _scenario(table, ("policy",))
    columns = scenario + ["policy", "baseline", "e2e_speedup", "tpot_speedup", "e2e_s_mean",
                          "baseline_e2e_s_mean", "tpot_s_mean", "baseline_tpot_s_mean"]
    if cells.empty:
        return pd.DataFrame(columns=columns)
    keep = scenario + ["policy", "e2e_s_mean", "tpot_s_mean"]
    frames = []
    for baseline in baselines:
        base = cells[cells["policy"] == baseline][keep].drop(columns="policy")
        base = base.rename(columns={"e2e_s_mean": "baseline_e2e_s_mean",
                                    "tpot_s_mean": "baseline_tpot_s_mean"})
        merged = cells[keep].merge(base, on=scenario, how="inner") if scenario else \
            cells[keep].merge(base, how="cross")
        merged = merged[merged["policy"] != baseline].copy()
        merged["baseline"] = baseline
        with np.errstate(divide="ignore", invalid="ignore"):
            merged["e2e_speedup"] = merged["baseline_e2e_s_mean"] / merged["e2e_s_mean"]
            merged["tpot_speedup"] = merged["baseline_tpot_s_mean"] / merged["tpot_s_mean"]
        frames.append(merged[columns])
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)
