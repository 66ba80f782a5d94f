"""Run summary: latency percentiles, SLO attainment, throughput and speculation statistics.

All times are seconds. ``throughput_tokens_per_s`` = generated tokens / (last finish - first
arrival). ``mean_tokens_per_step`` = tokens emitted per request per decode iteration
(1.0 without speculation; the "mean accepted length" incl. the bonus token).
``acceptance_rate`` = accepted / drafted tokens sent to verification (None without any).
``rejected_by_reason`` counts the rejected requests per ``sim.core.scheduler.REJECT_REASONS``
key; ``preempted_requests`` counts requests preempted at least once (``preemptions`` counts
the preemptions); ``load`` is ``sim.metrics.load.load_report`` (is the run overloaded?).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sim.metrics.load import load_report

PERCENTILES = (50, 90, 99)


def latency_stats(values: np.ndarray) -> dict:
    """mean/p50/p90/p99 of the finite values (None when there are none)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None}
    stats = {"mean": float(values.mean())}
    for q, v in zip(PERCENTILES, np.percentile(values, PERCENTILES)):
        stats[f"p{q}"] = float(v)
    return stats


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def summarize(requests: pd.DataFrame, iterations: pd.DataFrame) -> dict:
    """The summary block of one policy's run (JSON-ready: no NaN, only None)."""
    done = requests[requests["status"] == "finished"]
    decode = iterations[iterations["kind"] == "decode"] if len(iterations) else iterations
    span = float(done["finish_s"].max() - requests["arrival_s"].min()) if len(done) else 0.0
    generated = float(done["generated_tokens"].sum())
    summary = {
        "requests": int(len(requests)),
        "finished": int(len(done)),
        "rejected": int((requests["status"] == "rejected").sum()),
        "rejected_by_reason": _rejected_by_reason(requests),
        "ttft_s": latency_stats(done["ttft_s"].to_numpy(dtype=float)),
        "tpot_s": latency_stats(done["tpot_s"].to_numpy(dtype=float)),
        "e2e_s": latency_stats(done["e2e_s"].to_numpy(dtype=float)),
        "slo_attainment": _ratio(float(requests["slo_met"].sum()), len(requests)),
        "throughput_tokens_per_s": _ratio(generated, span),
        "throughput_requests_per_s": _ratio(float(len(done)), span),
        "makespan_s": span,
        "mean_tokens_per_step": _ratio(float(decode["emitted_tokens"].sum()),
                                       float(decode["batch_size"].sum())) if len(decode) else None,
        "acceptance_rate": _ratio(float(done["accepted_tokens"].sum()),
                                  float(done["verified_tokens"].sum())),
        "mean_decode_batch": float(decode["batch_size"].mean()) if len(decode) else None,
        "mean_draft_steps": float(decode["draft_steps"].mean()) if len(decode) else None,
        "iterations": int(len(iterations)),
        "preemptions": int(requests["preemptions"].sum()),
        "preempted_requests": int((requests["preemptions"] > 0).sum()),
        "load": load_report(requests, iterations),
    }
    return _clean(summary)


def _rejected_by_reason(requests: pd.DataFrame) -> dict:
    rejected = requests[requests["status"] == "rejected"]
    if "rejected_reason" not in rejected.columns:  # a table written before the column existed
        return {"unknown": int(len(rejected))} if len(rejected) else {}
    reasons = rejected["rejected_reason"].fillna("").replace("", "unknown")
    return {str(k): int(v) for k, v in sorted(reasons.value_counts().items())}


def _clean(value):
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
