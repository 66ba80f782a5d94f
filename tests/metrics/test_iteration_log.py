"""The per-iteration log: verify lengths recorded as arrays, written as 'k1;k2;...' text."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.latency.iteration import DecodeShape
from sim.metrics.recorder import ITERATION_COLUMNS, IterationLog, join_lengths, split_steps


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
    spec = DecodeShape(2, 900, 2, 8, 900, (2, 2, 2, 2, 1, 1, 1), (900, 902, 904, 906, 504,
                                                                      505, 506))
    log.add_decode(0.1, 0.02, spec, 2, 8, 11, 5, 3, 5, lengths)
    lengths[:] = 7  # the caller may reuse its array: the log kept a copy
    log.add_decode(0.12, 0.01, DecodeShape(2, 905, 2, 2, 905), 2, 2, 0, 2, 0, 5, None)
    frame = log.to_frame()
    assert list(frame.columns) == list(ITERATION_COLUMNS)
    assert frame["verify_lengths"].tolist() == ["", "4;2", ""]
    assert frame["kind"].tolist() == ["prefill", "decode", "decode"]
    assert frame["draft_steps"].tolist() == [0, 7, 0]
    assert frame["drafted_tokens"].tolist() == [0, 11, 0]
    assert frame["context_tokens"].tolist() == [0, 900, 905]
    assert frame["verify_rows"].tolist() == [2, 2, 2]
    assert frame["kv_tokens_read"].tolist() == [0, 900, 905]
    assert frame["draft_rows"].tolist() == ["", "2;2;2;2;1;1;1", ""]
    assert split_steps(frame["draft_kv_tokens"][1]) == spec.draft_kv_tokens
    assert split_steps(frame["draft_rows"][0]) == () and split_steps(float("nan")) == ()
    assert len(log) == 3


def test_empty_log_frame():
    frame = IterationLog().to_frame()
    assert frame.empty and list(frame.columns) == list(ITERATION_COLUMNS)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.one_of(st.none(), st.lists(st.integers(0, 10**13), max_size=6)),
                     max_size=30))
def test_ragged_columns_are_each_rows_values_joined(rows):
    """The iteration log's ';'-joined columns (``sim.table.Ragged``: values and counts, -1
    for none) give each row's values joined by ';', single digits, many digits or negative."""
    from sim.table import Ragged

    counts = np.array([-1 if r is None else len(r) for r in rows], dtype=np.int32)
    flat = np.array([v for r in rows if r for v in r], dtype=np.int64)
    expected = ["" if r is None else ";".join(map(str, r)) for r in rows]
    assert Ragged(flat, counts).text().tolist() == expected
    assert Ragged((flat % 10).astype(np.uint8), counts).text().tolist() == [
        "" if r is None else ";".join(str(v % 10) for v in r) for r in rows]
    assert Ragged(-flat - 1, counts).text().tolist() == [
        "" if r is None else ";".join(str(-v - 1) for v in r) for r in rows]
