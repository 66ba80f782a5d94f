"""Is a run overloaded? A definition from the waiting queue the iterations recorded.

A run is **overloaded** when the waiting queue grows through the whole trace and the backlog
is still large when the last request arrives:

* split the arrival span [first arrival, last arrival] into ``QUARTERS`` equal parts and take
  the mean waiting-queue length over the iterations that start in each part: the last part's
  mean is the largest and more than ``GROWTH`` times the first part's;
* at the last arrival (the last iteration starting at or before it) at least
  ``FINAL_QUEUE_SHARE`` of the trace's requests, and at least ``MIN_FINAL_QUEUE`` requests,
  are still waiting (a handful of queued requests in a short trace is not a backlog).

Such a run measures how a backlog drains, not how a policy serves the offered load: its
TTFT and SLO attainment depend mostly on the trace's length. A queue that builds up in a burst
and drains is not overloaded by this definition.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

QUARTERS = 4
GROWTH = 2.0
FINAL_QUEUE_SHARE = 0.05
MIN_FINAL_QUEUE = 10


def load_report(requests: pd.DataFrame, iterations: pd.DataFrame) -> dict:
    """``{"overloaded", "queue_mean_by_quarter", "final_queue", "final_queue_share"}``
    (JSON-ready; the queue means are None for a quarter without iterations)."""
    arrivals = requests["arrival_s"].to_numpy(dtype=float)
    n = int(arrivals.size)
    report = {"overloaded": False, "queue_mean_by_quarter": [None] * QUARTERS,
              "final_queue": 0, "final_queue_share": 0.0}
    if n == 0 or len(iterations) == 0:
        return report
    first, last = float(arrivals.min()), float(arrivals.max())
    start = iterations["start_s"].to_numpy(dtype=float)
    queue = iterations["queue_len"].to_numpy(dtype=float)
    before = np.flatnonzero(start <= last)
    final = int(queue[before[-1]]) if before.size else 0
    report["final_queue"] = final
    report["final_queue_share"] = final / n
    if last <= first:
        return report
    edges = np.linspace(first, last, QUARTERS + 1)
    index = np.searchsorted(edges, start, side="right") - 1
    index[start == last] = QUARTERS - 1  # the last arrival belongs to the last quarter
    means = []
    for q in range(QUARTERS):
        chosen = queue[index == q]
        means.append(float(chosen.mean()) if chosen.size else None)
    report["queue_mean_by_quarter"] = means
    growing = (None not in means and means[-1] == max(means)
               and means[-1] > GROWTH * means[0])
    report["overloaded"] = bool(growing and final >= max(FINAL_QUEUE_SHARE * n, MIN_FINAL_QUEUE))
    return report


def overload_warning(policy: str, report: dict) -> str | None:
    """One line saying why the run counts as overloaded (None if it does not)."""
    if not report.get("overloaded"):
        return None
    means = " -> ".join(f"{m:.0f}" for m in report["queue_mean_by_quarter"])
    return (f"{policy}: overloaded: the waiting queue grew through the trace (mean {means} "
            f"requests per quarter of the arrival span) and {report['final_queue']} requests "
            f"({100 * report['final_queue_share']:.0f} %) were still waiting at the last "
            "arrival; the metrics measure the backlog, not the policy (try a lower --rate-scale)")
