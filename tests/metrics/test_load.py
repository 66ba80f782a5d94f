"""The overload definition (sim.metrics.load) on hand-made queues."""

from __future__ import annotations

import pandas as pd
import pytest

from sim.metrics.load import load_report, overload_warning


def _frames(n_requests: int, queue_by_time: list[tuple[float, int]], last_arrival_s: float = 8.0):
    arrivals = [last_arrival_s * i / (n_requests - 1) for i in range(n_requests)]
    requests = pd.DataFrame({"arrival_s": arrivals})
    iterations = pd.DataFrame({"start_s": [t for t, _ in queue_by_time],
                               "queue_len": [q for _, q in queue_by_time]})
    return requests, iterations


def test_growing_queue_with_a_large_final_backlog_is_overloaded():
    # quarters [0,2) [2,4) [4,6) [6,8]: means 1, 3, 2, 10; 10 of 100 requests wait at t=8
    requests, iterations = _frames(100, [(0.5, 1), (2.5, 3), (4.5, 2), (6.5, 10), (8.0, 10)])
    report = load_report(requests, iterations)
    assert report["queue_mean_by_quarter"] == [1.0, 3.0, 2.0, 10.0]
    assert report["final_queue"] == 10 and report["final_queue_share"] == pytest.approx(0.1)
    assert report["overloaded"]
    line = overload_warning("nospec", report)
    assert line.startswith("nospec: overloaded") and "1 -> 3 -> 2 -> 10" in line and "10 %" in line


@pytest.mark.parametrize("queue, why", [
    ([(0.5, 1), (2.5, 3), (4.5, 12), (6.5, 10), (8.0, 10)], "last quarter not the largest"),
    ([(0.5, 6), (2.5, 6), (4.5, 7), (6.5, 10), (8.0, 10)], "grew less than twofold"),
    ([(0.5, 0), (2.5, 1), (4.5, 2), (6.5, 3), (8.0, 4)], "final backlog below 5 %"),
    ([(0.5, 0), (6.5, 30), (8.0, 30)], "a quarter without iterations"),
])
def test_not_overloaded(queue, why):
    report = load_report(*_frames(100, queue))
    assert not report["overloaded"], why
    assert overload_warning("p", report) is None


def test_final_backlog_needs_five_percent_and_ten_requests():
    growing = [(0.5, 0), (2.5, 1), (4.5, 2), (6.5, 9)]
    requests, iterations = _frames(100, growing + [(8.0, 9)])
    assert not load_report(requests, iterations)["overloaded"]  # 9 < 10 requests
    requests, iterations = _frames(100, growing + [(8.0, 10)])
    assert load_report(requests, iterations)["overloaded"]
    requests, iterations = _frames(400, growing + [(8.0, 19)])
    assert not load_report(requests, iterations)["overloaded"]  # 19 < 5 % of 400


def test_degenerate_inputs():
    same_time = pd.DataFrame({"arrival_s": [0.0, 0.0]})
    report = load_report(same_time, pd.DataFrame({"start_s": [0.0], "queue_len": [1]}))
    assert not report["overloaded"] and report["final_queue"] == 1
    assert not load_report(same_time, pd.DataFrame({"start_s": [], "queue_len": []}))["overloaded"]
