"""Sweep figures from the tidy table (``adaspec-sweep`` writes them to ``DIR/plots``):

* ``attainment_vs_rate``: SLO attainment against the load axis, one line per policy, one
  panel per scenario (trace x SLO scale x any other swept input), the goodput threshold dashed.
* ``attainment_vs_slo_scale``: SLO attainment against the SLO scale, one line per policy, one
  panel per scenario (trace x rate x ...).
* ``speedup``: mean-E2E (top row) and mean-TPOT (bottom row) speedup of each policy over the
  first baseline, grouped bars per rate, one column per trace (x other swept inputs); where
  more than one value remains (e.g. several SLO scales) the bar is their geometric mean.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sim.plots.common import facet_axes, facet_columns, new_figure, policy_colors, save_figure
from sim.sweep.derived import (attainment_vs_rate, attainment_vs_slo_scale, rate_axis, speedups,
                               varying_inputs)


def _title(keys: Sequence[str], values) -> str:
    values = values if isinstance(values, tuple) else (values,)
    parts = []
    for key, value in zip(keys, values):
        if key == "trace":
            parts.append(Path(str(value)).stem)
        else:
            parts.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
    return ", ".join(parts) or "all points"


def _groups(frame: pd.DataFrame, keys: list[str]):
    if not keys:
        return [((), frame)]
    return list(frame.groupby(keys, sort=False, dropna=False))


def _line_panels(frame: pd.DataFrame, x: str, panel_keys: list[str], policies: list[str],
                 xlabel: str, title: str, threshold: float | None):
    groups = _groups(frame, panel_keys)
    ncols = facet_columns(len(groups))
    nrows = -(-len(groups) // ncols)
    figure = new_figure(4.2 * ncols + 0.8, 3.2 * nrows + 0.6)
    axes = facet_axes(figure, len(groups), ncols=ncols)
    colors = policy_colors(policies)
    for ax, (values, group) in zip(axes, groups):
        for policy in policies:
            curve = group[group["policy"] == policy].sort_values(x)
            if len(curve):
                ax.plot(curve[x], 100 * curve["slo_attainment"], marker="o", markersize=3,
                        color=colors[policy], label=policy)
                if (curve["seeds"] > 1).any():  # the seeds' lowest..highest, shaded
                    ax.fill_between(curve[x], 100 * curve["slo_attainment_seed_min"],
                                    100 * curve["slo_attainment_seed_max"],
                                    color=colors[policy], alpha=0.12, linewidth=0)
        if threshold is not None:
            ax.axhline(100 * threshold, color="grey", linestyle="--", linewidth=1)
        ax.set_title(_title(panel_keys, values), fontsize="medium")
        ax.set_xlabel(xlabel)
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("SLO attainment (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right upper", fontsize="small")
    seeds = int(frame["seeds"].max()) if len(frame) else 1
    figure.suptitle(title + (f" (mean of {seeds} seeds; shaded: lowest..highest)"
                             if seeds > 1 else ""))
    return figure


def _policies(table: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(table["policy"].tolist()))


def plot_attainment_vs_rate(table: pd.DataFrame, threshold: float = 0.9):
    curves = attainment_vs_rate(table)
    panel_keys = [c for c in varying_inputs(table) if c not in ("policy", "rate")]
    _, xlabel = rate_axis(table)
    return _line_panels(curves, "rate", panel_keys, _policies(table), xlabel,
                        "SLO attainment vs load", threshold)


def plot_attainment_vs_slo_scale(table: pd.DataFrame, threshold: float = 0.9):
    curves = attainment_vs_slo_scale(table)
    panel_keys = [c for c in varying_inputs(table) if c not in ("policy", "slo_scale")]
    return _line_panels(curves, "slo_scale", panel_keys, _policies(table),
                        "SLO scale (x TTFT and TPOT SLOs)", "SLO attainment vs SLO tightness",
                        threshold)


def _geomean(values: pd.Series) -> float:
    values = values.to_numpy(dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.exp(np.log(values).mean())) if values.size else np.nan


def plot_speedup(table: pd.DataFrame, baseline: str):
    frame = speedups(table, [baseline])
    panel_keys = [c for c in varying_inputs(table) if c not in ("policy", "rate", "slo_scale")]
    policies = [p for p in _policies(table) if p != baseline]
    groups = _groups(frame, panel_keys) if len(frame) else [((), frame)]
    figure = new_figure(4.4 * len(groups) + 1.0, 6.0)
    axes = figure.subplots(2, len(groups), squeeze=False, sharey="row")
    colors = policy_colors(_policies(table))
    _, xlabel = rate_axis(table)
    width = 0.8 / max(1, len(policies))
    for col, (values, group) in enumerate(groups):
        rates = sorted(group["rate"].unique()) if len(group) else []
        for row, metric in enumerate(("e2e_speedup", "tpot_speedup")):
            ax = axes[row][col]
            for i, policy in enumerate(policies):
                mine = group[group["policy"] == policy]
                heights = [_geomean(mine[mine["rate"] == r][metric]) for r in rates]
                ax.bar(np.arange(len(rates)) + (i - (len(policies) - 1) / 2) * width, heights,
                       width=width, color=colors[policy], label=policy)
            ax.axhline(1.0, color="black", linewidth=0.8)
            ax.set_xticks(np.arange(len(rates)), [f"{r:g}" for r in rates])
            ax.grid(axis="y", alpha=0.3)
            if row == 0:
                ax.set_title(_title(panel_keys, values), fontsize="medium")
            else:
                ax.set_xlabel(xlabel)
        axes[0][0].set_ylabel(f"mean E2E speedup over {baseline}")
        axes[1][0].set_ylabel(f"mean TPOT speedup over {baseline}")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="outside right upper", fontsize="small")
    figure.suptitle(f"Speedup over {baseline} (> 1 = faster)")
    return figure


def write_sweep_plots(out_dir: str | os.PathLike, table: pd.DataFrame,
                      baselines: Sequence[str] = (), threshold: float = 0.9,
                      header: dict | None = None) -> list[Path]:
    """Write the sweep figures (PNG + SVG) under ``out_dir``; returns the paths. Nothing is
    written when no point finished."""
    if table.empty or not (table["status"] == "ok").any():
        return []
    written = []
    written += save_figure(plot_attainment_vs_rate(table, threshold), out_dir,
                           "attainment_vs_rate", header)
    written += save_figure(plot_attainment_vs_slo_scale(table, threshold), out_dir,
                           "attainment_vs_slo_scale", header)
    if baselines:
        written += save_figure(plot_speedup(table, baselines[0]), out_dir, "speedup", header)
    return written
