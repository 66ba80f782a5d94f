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

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

QUARTERS = 4
GROWTH = 2.0
FINAL_QUEUE_SHARE = 0.05
MIN_FINAL_QUEUE = 10


def load_report(requests: pd.DataFrame, iterations: pd.DataFrame) -> dict:
    """``{"overloaded", "queue_mean_by_quarter", "final_queue", "final_queue_share"}``
    (JSON-ready; the queue means are None for a quarter without iterations)."""
    arrivals = requests["arrival_s"].to_numpy(dtype=float)
    if arrivals.size == 0:
        return QueueLoad(0.0, 0.0).report(0)
    load = QueueLoad(float(arrivals.min()), float(arrivals.max()))
    load.add(iterations["start_s"].to_numpy(dtype=float),
             iterations["queue_len"].to_numpy(dtype=float))
    return load.report(int(arrivals.size))


class QueueLoad:
    """``load_report`` fed with the iterations chunk by chunk, in start order (the sums are
    of whole numbers, so the means equal those of the whole table)."""

    def __init__(self, first_s: float, last_s: float) -> None:
        self.first_s, self.last_s = float(first_s), float(last_s)
        self._edges = np.linspace(self.first_s, self.last_s, QUARTERS + 1)
        self._sums = [0] * QUARTERS
        self._counts = [0] * QUARTERS
        self._rows = 0
        self._final: float | None = None  # queue of the last iteration starting <= last_s

    def add(self, start_s: np.ndarray, queue_len: np.ndarray) -> None:
        start = np.asarray(start_s, dtype=float)
        queue = np.asarray(queue_len)
        self._rows += int(start.size)
        before = np.flatnonzero(start <= self.last_s)
        if before.size:
            self._final = queue[before[-1]]
        index = np.searchsorted(self._edges, start, side="right") - 1
        index[start == self.last_s] = QUARTERS - 1  # the last arrival belongs to the last quarter
        for q in range(QUARTERS):
            chosen = queue[index == q]
            self._sums[q] += int(chosen.sum()) if chosen.dtype.kind in "iu" else chosen.sum()
            self._counts[q] += int(chosen.size)

    def report(self, requests: int) -> dict:
        """The report for a trace of ``requests`` requests."""
        n = int(requests)
        report = {"overloaded": False, "queue_mean_by_quarter": [None] * QUARTERS,
                  "final_queue": 0, "final_queue_share": 0.0}
        if n == 0 or self._rows == 0:
            return report
        final = int(self._final) if self._final is not None else 0
        report["final_queue"] = final
        report["final_queue_share"] = final / n
        if self.last_s <= self.first_s:
            return report
        means = [float(s / c) if c else None for s, c in zip(self._sums, self._counts)]
        report["queue_mean_by_quarter"] = means
        growing = (None not in means and means[-1] == max(means)
                   and means[-1] > GROWTH * means[0])
        report["overloaded"] = bool(growing and final >= max(FINAL_QUEUE_SHARE * n,
                                                             MIN_FINAL_QUEUE))
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
