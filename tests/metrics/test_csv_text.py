"""``sim.csv_text``: the same bytes as pandas' ``to_csv(float_format="%.9g")``, or None."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.csv_text import csv_text
from sim.table import Table


def _pandas(frame: pd.DataFrame, header: bool = True) -> str:
    return frame.to_csv(index=False, header=header, lineterminator="\n", float_format="%.9g")


def test_hand_computed_table():
    frame = pd.DataFrame({
        "id": np.array([0, 12], dtype=np.int64),
        "t_s": [0.1 + 0.2, np.nan],
        "kind": np.array(["decode", 'say "hi", then'], dtype=object),
        "ok": [True, False],
        "note": np.array([None, "a;b"], dtype=object),
    })
    text = csv_text(frame, header=True)
    assert text == ('id,t_s,kind,ok,note\n'
                    '0,0.3,decode,True,\n'
                    '12,,"say ""hi"", then",False,a;b\n')
    assert text == _pandas(frame)
    assert csv_text(frame, header=False) == _pandas(frame, header=False)


def test_empty_table_is_its_header():
    frame = pd.DataFrame({"a": np.zeros(0, np.int64), "b": np.zeros(0)})
    assert csv_text(frame, header=True) == "a,b\n" == _pandas(frame)
    assert csv_text(frame, header=False) == ""


def test_left_to_pandas():
    """What the fast path does not format: line breaks in text, one column, extension types,
    objects that are not text."""
    assert csv_text(pd.DataFrame({"a": [1], "b": ["x\ny"]}), True) is None
    assert csv_text(pd.DataFrame({"a": [1]}), True) is None
    assert csv_text(pd.DataFrame({"a": [1], "b": pd.array([1, None], dtype="Int64")[:1]}),
                    True) is None
    assert csv_text(pd.DataFrame({"a": [1], "b": np.array([3], dtype=object)}), True) is None


_text = st.text(alphabet=st.sampled_from(list('ab,;" 1.')), max_size=6)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(-2**40, 2**40),
                               st.floats(allow_nan=True, allow_infinity=True),
                               st.booleans(), st.one_of(st.none(), _text)),
                     max_size=20),
       header=st.booleans())
def test_same_bytes_as_pandas(rows, header):
    ints, floats, flags, texts = (list(c) for c in zip(*rows)) if rows else ([], [], [], [])
    frame = pd.DataFrame({
        "n": np.array(ints, dtype=np.int64),
        "x": np.array(floats, dtype=np.float64),
        "flag": np.array(flags, dtype=bool),
        "label": np.array(texts, dtype=object),
    })
    assert csv_text(frame, header) == _pandas(frame, header)
    columns = Table({name: frame[name].to_numpy() for name in ("n", "x", "flag")}
                    | {"label": np.array(texts, dtype=object)})
    assert csv_text(columns, header) == _pandas(frame, header)  # the pandas-free form



def test_integers_at_the_edges():
    frame = pd.DataFrame({
        "i": np.array([0, -7, 10, 99, 100, -100, np.iinfo(np.int64).max], dtype=np.int64),
        "u": np.array([0, 1, 9, 10, 255, 256, 2**64 - 1], dtype=np.uint64),
        "small": np.array([0, -1, 1, -128, 127, 5, 6], dtype=np.int8)})
    assert csv_text(frame, header=True) == _pandas(frame)
    lowest = pd.DataFrame({"i": np.array([np.iinfo(np.int64).min, 3]), "j": [1, 2]})
    assert csv_text(lowest, header=True) == _pandas(lowest)


def test_table_left_to_pandas_like_its_frame():
    """A ``Table`` is formatted like the DataFrame of its columns, and left to pandas where
    that frame would be."""
    assert csv_text(Table({"a": np.array([1]), "b": np.array(["x\ny"], dtype=object)}),
                    True) is None
    assert csv_text(Table({"a": np.array([1])}), True) is None
    assert csv_text(Table({"a": np.array([1]), "b": np.array([3], dtype=object)}), True) is None
    assert csv_text(Table({"a": np.array([1]), "t": np.array(["2023"], dtype="datetime64[D]")}),
                    True) is None
