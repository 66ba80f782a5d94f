"""Arrival-only traces: AdaSpec's ``benchmarks/adaspec/traces/{conv,code,mooncake}.csv``
(cerebellumking/AdaSpec, Apache-2.0; AdaSpec, SoCC 2025).

A single column ``Timestamp`` = arrival time in seconds, sorted. There are no token lengths:
:func:`sim.workload.load.load_trace` draws them from a length source (seeded). The file's own
time zero is kept (AdaSpec's code.csv starts at 72.990437 s, a window of the Azure code trace,
and that offset is part of the workload).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sim.workload.plain_csv import NotPlain, decimals, iter_plain_chunks, nondecreasing
from sim.workload.tabular import SortedCheck, check_nonnegative, iter_chunks, number_column

NAME = "arrivals"
COLUMNS = ("Timestamp",)


def load_arrivals(path: str | Path) -> np.ndarray:
    """All arrival times (float64 seconds, own zero). Raises InputError on bad rows.

    A plain file (AdaSpec's) is read without pandas (``sim.workload.plain_csv``), any other
    with pandas: the same values."""
    try:
        parts = _plain_parts(path)
    except NotPlain:
        parts = _pandas_parts(path)
    return np.concatenate(parts) if parts else np.empty(0, np.float64)


def _plain_parts(path: str | Path) -> list[np.ndarray]:
    parts: list[np.ndarray] = []
    for chunk in iter_plain_chunks(path, COLUMNS):
        t = decimals(chunk, "Timestamp")
        nondecreasing(t, parts[-1][-1] if parts else None)
        parts.append(t)
    return parts


def _pandas_parts(path: str | Path) -> list[np.ndarray]:
    check_sorted = SortedCheck(path, "Timestamp")
    parts = []
    for chunk in iter_chunks(path, COLUMNS):
        t = number_column(chunk, "Timestamp", path, "timestamp")
        check_nonnegative(t, chunk.index, path, "Timestamp", "timestamp")
        check_sorted(t, chunk.index)
        parts.append(t)
    return parts
