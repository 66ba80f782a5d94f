"""``sim.table``: a table as numpy columns, its DataFrame view and telling DataFrames apart."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.table import Coded, Table, is_dataframe


def test_table_length_and_frame():
    table = Table({"id": np.array([3, 1]), "kind": np.array(["a", "b"], dtype=object),
                   "t_s": np.array([0.5, np.nan])})
    assert len(table) == 2 and len(Table({})) == 0
    frame = table.to_frame()
    assert list(frame.columns) == ["id", "kind", "t_s"]
    assert frame["id"].tolist() == [3, 1] and frame["kind"].tolist() == ["a", "b"]
    assert np.isnan(frame["t_s"].iloc[1])


def test_is_dataframe():
    assert is_dataframe(pd.DataFrame({"a": [1]}))
    assert not is_dataframe(Table({"a": np.array([1])}))
    assert not is_dataframe(pd.Series([1])) and not is_dataframe(None)


def test_coded_column():
    """A ``Coded`` column is its names picked by code, in ``text`` and in ``to_frame``."""
    kind = Coded(np.array([1, 0, 1], np.uint8), np.array(["prefill", "decode"], dtype=object))
    assert len(kind) == 3 and kind.text().tolist() == ["decode", "prefill", "decode"]
    frame = Table({"id": np.arange(3), "kind": kind}).to_frame()
    assert frame["kind"].tolist() == ["decode", "prefill", "decode"]
    assert len(Coded(np.zeros(0, np.int32), np.zeros(0, object)).text()) == 0
