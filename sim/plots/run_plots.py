"""Single-run figures (``adaspec-sim --out DIR --plot`` writes them to ``DIR/plots``):

* ``tpot_cdf``: CDF of per-request TPOT (ms), one line per policy, the TPOT SLO marked.
* ``latency_breakdown``: mean per-request time split into queueing (admitted - arrival),
  prefill (first token - admitted) and decode (finish - first token), one bar per policy.
* ``anatomy``: over time, binned: mean speculative length (mean k_i of the decode
  iterations' verify lengths; 0 for a plain-decode iteration), decode batch size, and the
  load -- waiting-queue length per policy and the arrival rate (req/s) of the workload.

Inputs are :class:`sim.run.RunResult` objects (or anything with ``policy``, ``requests`` and
``iterations``), so tables read back from CSV work as well.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from sim.plots.common import new_figure, policy_colors, save_figure

DEFAULT_BINS = 120


def mean_verify_length(verify_lengths: pd.Series) -> np.ndarray:
    """Mean k_i per iteration from the ';'-joined verify lengths (empty/NaN -> 0)."""
    out = np.zeros(len(verify_lengths))
    for i, text in enumerate(verify_lengths.tolist()):
        if isinstance(text, str) and text:
            values = np.array(text.split(";"), dtype=float)
            out[i] = values.mean()
        elif isinstance(text, (int, float)) and np.isfinite(text):
            out[i] = float(text)  # a single k read back from CSV as a number
    return out


def _bin_edges(start_s: float, end_s: float, bins: int) -> np.ndarray:
    end_s = end_s if end_s > start_s else start_s + 1.0
    return np.linspace(start_s, end_s, bins + 1)


def _binned_mean(t: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(edges) - 2)
    sums = np.bincount(idx, weights=values, minlength=len(edges) - 1)
    counts = np.bincount(idx, minlength=len(edges) - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def decode_timeline(iterations: pd.DataFrame, edges: np.ndarray) -> pd.DataFrame:
    """Per time bin: mean k_i, mean decode batch size and mean queue length (decode iterations)."""
    decode = iterations[iterations["kind"] == "decode"]
    t = decode["start_s"].to_numpy(dtype=float)
    centers = (edges[:-1] + edges[1:]) / 2
    return pd.DataFrame({
        "t_s": centers,
        "mean_k": _binned_mean(t, mean_verify_length(decode["verify_lengths"]), edges),
        "batch_size": _binned_mean(t, decode["batch_size"].to_numpy(dtype=float), edges),
        "queue_len": _binned_mean(t, decode["queue_len"].to_numpy(dtype=float), edges),
    })


def arrival_rate(requests: pd.DataFrame, edges: np.ndarray) -> np.ndarray:
    """Arrivals per second in each time bin."""
    counts, _ = np.histogram(requests["arrival_s"].to_numpy(dtype=float), bins=edges)
    return counts / np.diff(edges)


def latency_breakdown(requests: pd.DataFrame) -> dict:
    """Mean queueing, prefill and decode seconds of the finished requests."""
    done = requests[requests["status"] == "finished"]
    return {"queueing_s": float((done["admitted_s"] - done["arrival_s"]).mean()),
            "prefill_s": float((done["first_token_s"] - done["admitted_s"]).mean()),
            "decode_s": float((done["finish_s"] - done["first_token_s"]).mean())}


def plot_tpot_cdf(results: Sequence, tpot_slo_s: float | None = None):
    figure = new_figure(6.4, 4.0)
    ax = figure.add_subplot()
    colors = policy_colors([r.policy for r in results])
    for result in results:
        tpot = result.requests["tpot_s"].to_numpy(dtype=float)
        tpot = np.sort(tpot[np.isfinite(tpot)]) * 1e3
        if tpot.size:
            ax.step(tpot, np.arange(1, tpot.size + 1) / tpot.size, where="post",
                    color=colors[result.policy], label=result.policy)
    if tpot_slo_s:
        ax.axvline(tpot_slo_s * 1e3, color="grey", linestyle="--", label="TPOT SLO")
    ax.set_xlabel("TPOT (ms)")
    ax.set_ylabel("fraction of requests")
    ax.set_ylim(0, 1.02)
    ax.set_title("Per-request time per output token")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure


def plot_latency_breakdown(results: Sequence):
    figure = new_figure(6.4, 0.6 * len(results) + 1.6)
    ax = figure.add_subplot()
    parts = (("queueing_s", "queueing", "#bbbbbb"), ("prefill_s", "prefill", "#4c72b0"),
             ("decode_s", "decode", "#dd8452"))
    names = [r.policy for r in results]
    rows = [latency_breakdown(r.requests) for r in results]
    left = np.zeros(len(rows))
    for key, label, color in parts:
        values = np.nan_to_num(np.array([row[key] for row in rows]))
        ax.barh(names, values, left=left, color=color, label=label)
        left += values
    ax.invert_yaxis()
    ax.set_xlabel("mean seconds per finished request")
    # a figure title, centred on the figure: long policy names on the y axis cannot push it out
    figure.suptitle("Latency breakdown (mean E2E = queueing + prefill + decode)")
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    return figure


def plot_anatomy(results: Sequence, bins: int = DEFAULT_BINS):
    """Speculative length and batch size over time against the load, every policy overlaid."""
    starts = [r.requests["arrival_s"].min() for r in results]
    # fmax: a policy that rejected every request has no finish time (NaN), only arrivals
    ends = [np.fmax(r.requests["finish_s"].max(), r.requests["arrival_s"].max())
            for r in results]
    edges = _bin_edges(float(np.nanmin(starts)), float(np.nanmax(ends)), bins)
    figure = new_figure(8.0, 7.0)
    ax_k, ax_batch, ax_load = figure.subplots(3, 1, sharex=True)
    colors = policy_colors([r.policy for r in results])
    for result in results:
        line = decode_timeline(result.iterations, edges)
        color = colors[result.policy]
        ax_k.plot(line["t_s"], line["mean_k"], color=color, label=result.policy)
        ax_batch.plot(line["t_s"], line["batch_size"], color=color, label=result.policy)
        ax_load.plot(line["t_s"], line["queue_len"], color=color, label=result.policy)
    centers = (edges[:-1] + edges[1:]) / 2
    ax_rate = ax_load.twinx()
    ax_rate.fill_between(centers, arrival_rate(results[0].requests, edges), step="mid",
                         color="black", alpha=0.12, label="arrival rate")
    ax_rate.set_ylabel("arrivals (req/s)")
    ax_k.set_ylabel("mean k_i per iteration")
    ax_k.set_title("Speculative length, batch size and load over time")
    ax_batch.set_ylabel("decode batch size")
    ax_load.set_ylabel("waiting queue (requests)")
    ax_load.set_xlabel("time (s)")
    for ax in (ax_k, ax_batch, ax_load):
        ax.grid(alpha=0.3)
    ax_k.legend(fontsize="small", loc="upper right")
    ax_rate.legend(fontsize="small", loc="upper left")
    return figure


def _header(out_dir: Path, config) -> dict:
    try:
        with open(out_dir / "summary.json", encoding="utf-8") as handle:
            document = json.load(handle)
        document.pop("policies", None)
        return document
    except (OSError, ValueError):
        from sim.output import provenance
        return provenance(config.to_dict() if config is not None else {}, {}, None)


def write_run_plots(out_dir: str | os.PathLike, results: Sequence, config=None,
                    bins: int = DEFAULT_BINS, header: dict | None = None) -> list[Path]:
    """Write the single-run figures under ``out_dir/plots`` (PNG + SVG); returns the paths.
    Provenance: ``header`` if given (``adaspec-sim`` passes it, as the plots are written
    before ``summary.json``), else ``out_dir/summary.json`` when it exists."""
    results = list(results)
    out = Path(out_dir)
    header = header if header is not None else _header(out, config)
    plots = out / "plots"
    tpot_slo = getattr(config, "tpot_slo_s", None)
    written = []
    for stem, figure in (("tpot_cdf", plot_tpot_cdf(results, tpot_slo)),
                         ("latency_breakdown", plot_latency_breakdown(results)),
                         ("anatomy", plot_anatomy(results, bins))):
        written += save_figure(figure, plots, stem, header)
    return written


__all__ = ["arrival_rate", "decode_timeline", "latency_breakdown",
           "mean_verify_length", "plot_anatomy", "plot_latency_breakdown", "plot_tpot_cdf",
           "write_run_plots"]
