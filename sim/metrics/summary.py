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

from sim.metrics.recorder import IterationStats
from sim.table import is_dataframe

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


def summarize(requests, iterations) -> dict:
    """The summary block of one policy's run (JSON-ready: no NaN, only None).

    ``requests``: the per-request table (a DataFrame or a ``RequestTable``); ``iterations``:
    the iteration table (a DataFrame) or the run's ``IterationLog`` (its running statistics:
    exact, and available when the table itself was not kept)."""
    req = _request_columns(requests)
    arrival = req["arrival_s"]
    span_s = (float(arrival.min()), float(arrival.max())) if arrival.size else (0.0, 0.0)
    stats = _iteration_stats(iterations, span_s)
    done = req["finished"]
    finish = req["finish_s"][done]
    span = float(finish.max() - arrival.min()) if finish.size else 0.0
    generated = float(req["generated_tokens"][done].sum())
    n = int(arrival.size)
    decode = stats.decode
    summary = {
        "requests": n,
        "finished": int(done.sum()),
        "rejected": int(req["rejected"].sum()),
        "rejected_by_reason": _rejected_by_reason(req["rejected_reason"]),
        "ttft_s": latency_stats(req["ttft_s"][done]),
        "tpot_s": latency_stats(req["tpot_s"][done]),
        "e2e_s": latency_stats(req["e2e_s"][done]),
        "slo_attainment": _ratio(float(req["slo_met"].sum()), n),
        "throughput_tokens_per_s": _ratio(generated, span),
        "throughput_requests_per_s": _ratio(float(done.sum()), span),
        "makespan_s": span,
        "mean_tokens_per_step": _ratio(float(stats.decode_emitted),
                                       float(stats.decode_batch)) if decode else None,
        "acceptance_rate": _ratio(float(req["accepted_tokens"][done].sum()),
                                  float(req["verified_tokens"][done].sum())),
        "mean_decode_batch": stats.decode_batch / decode if decode else None,
        "mean_draft_steps": stats.decode_draft_steps / decode if decode else None,
        "iterations": int(stats.iterations),
        "preemptions": int(req["preemptions"].sum()),
        "preempted_requests": int((req["preemptions"] > 0).sum()),
        "load": stats.load.report(n),
    }
    return _clean(summary)


def _request_columns(requests) -> dict[str, np.ndarray]:
    """The per-request columns the summary reads, sorted by id, from a table or a frame;
    ``rejected_reason`` holds the reasons of the rejected rows only ("" = unknown)."""
    if is_dataframe(requests):
        status = requests["status"].to_numpy()
        rejected = status == "rejected"
        out = {name: requests[name].to_numpy(dtype=float)
               for name in ("arrival_s", "finish_s", "ttft_s", "tpot_s", "e2e_s")}
        for name in ("generated_tokens", "accepted_tokens", "verified_tokens", "preemptions",
                     "slo_met"):
            out[name] = requests[name].to_numpy()
        if "rejected_reason" in requests.columns:
            reasons = requests["rejected_reason"][rejected].fillna("").to_numpy()
        else:  # a table written before the column existed
            reasons = np.full(int(rejected.sum()), "", dtype=object)
        out.update(finished=status == "finished", rejected=rejected, rejected_reason=reasons)
        return out
    cols = requests.columns()
    metrics = requests.metrics()
    status = requests.names("status")[cols["status"]] if len(cols["id"]) else np.zeros(0, object)
    rejected = status == "rejected"
    out = {name: cols[name] for name in ("arrival_s", "finish_s", "generated_tokens",
                                         "accepted_tokens", "verified_tokens", "preemptions")}
    out.update(metrics, finished=status == "finished", rejected=rejected,
               rejected_reason=requests.names("rejected_reason")[cols["rejected_reason"][rejected]])
    return out


def _iteration_stats(iterations, span_s: tuple[float, float]) -> IterationStats:
    if is_dataframe(iterations):
        return IterationStats.of_frame(iterations, span_s)
    iterations.flush()
    stats = iterations.stats
    load = stats.load
    if load is None or (load.first_s, load.last_s) != span_s:  # a second pass over the table
        if not iterations.keep:
            raise ValueError("the iteration log kept neither its rows nor the arrival span")
        stats = IterationStats(span_s)
        for chunk in iterations.chunks():
            s = chunk.scalars
            stats.add(s["start_s"], s["kind"], s["batch_size"], s["emitted_tokens"],
                      s["draft_steps"], s["queue_len"])
    return stats


def _rejected_by_reason(reasons: np.ndarray) -> dict:
    counts: dict[str, int] = {}
    for reason in reasons.tolist():
        key = reason if isinstance(reason, str) and reason else "unknown"
        counts[key] = counts.get(key, 0) + 1
    return {k: counts[k] for k in sorted(counts)}


def _clean(value):
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
