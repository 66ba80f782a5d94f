"""The per-iteration log: verify lengths recorded as arrays, written as 'k1;k2;...' text."""

from __future__ import annotations

import numpy as np

from sim.metrics.recorder import ITERATION_COLUMNS, IterationLog, join_lengths


def test_join_lengths_single_and_multi_digit():
    rows = [None, np.array([3, 0, 2]), np.array([], dtype=np.uint8), np.array([1]), None]
    assert join_lengths(rows) == ["", "3;0;2", "", "1", ""]
    # any value >= 10 takes the row-by-row path, with the same format
    assert join_lengths([np.array([12, 0]), None, np.array([9])]) == ["12;0", "", "9"]
    assert join_lengths([]) == []


def test_log_frame_has_every_column_and_the_lengths_of_each_decode():
    log = IterationLog()
    log.add_prefill(0.0, 0.1, 2, 300, 2, 5)
    lengths = np.array([4, 2], dtype=np.int64)
    log.add_decode(0.1, 0.02, 2, 2, 4, 8, 8, 8, 5, 3, 5, lengths)
    lengths[:] = 7  # the caller may reuse its array: the log kept a copy
    log.add_decode(0.12, 0.01, 2, 2, 0, 0, 2, 2, 2, 0, 5, None)
    frame = log.to_frame()
    assert list(frame.columns) == list(ITERATION_COLUMNS)
    assert frame["verify_lengths"].tolist() == ["", "4;2", ""]
    assert frame["kind"].tolist() == ["prefill", "decode", "decode"]
    assert len(log) == 3


def test_empty_log_frame():
    frame = IterationLog().to_frame()
    assert frame.empty and list(frame.columns) == list(ITERATION_COLUMNS)
