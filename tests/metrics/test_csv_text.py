"""``sim.csv_text``: the same bytes as pandas' ``to_csv(float_format="%.9g")``, or None."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.csv_text import csv_bytes
from sim.table import Table


def _pandas(frame: pd.DataFrame, header: bool = True) -> bytes:
    return frame.to_csv(index=False, header=header, lineterminator="\n",
                        float_format="%.9g").encode("utf-8")


def test_hand_computed_table():
    frame = pd.DataFrame({
        "id": np.array([0, 12], dtype=np.int64),
        "t_s": [0.1 + 0.2, np.nan],
        "kind": np.array(["decode", 'say "hi", then'], dtype=object),
        "ok": [True, False],
        "note": np.array([None, "a;b"], dtype=object),
    })
    text = csv_bytes(frame, header=True)
    assert text == (b'id,t_s,kind,ok,note\n'
                    b'0,0.3,decode,True,\n'
                    b'12,,"say ""hi"", then",False,a;b\n')
    assert text == _pandas(frame)
    assert csv_bytes(frame, header=False) == _pandas(frame, header=False)


def test_empty_table_is_its_header():
    frame = pd.DataFrame({"a": np.zeros(0, np.int64), "b": np.zeros(0)})
    assert csv_bytes(frame, header=True) == b"a,b\n" == _pandas(frame)
    assert csv_bytes(frame, header=False) == b""


def test_left_to_pandas():
    """What the fast path does not format: line breaks in text, one column, extension types,
    objects that are not text."""
    assert csv_bytes(pd.DataFrame({"a": [1], "b": ["x\ny"]}), True) is None
    assert csv_bytes(pd.DataFrame({"a": [1]}), True) is None
    assert csv_bytes(pd.DataFrame({"a": [1], "b": pd.array([1, None], dtype="Int64")[:1]}),
                    True) is None
    assert csv_bytes(pd.DataFrame({"a": [1], "b": np.array([3], dtype=object)}), True) is None


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
    assert csv_bytes(frame, header) == _pandas(frame, header)
    columns = Table({name: frame[name].to_numpy() for name in ("n", "x", "flag")}
                    | {"label": np.array(texts, dtype=object)})
    assert csv_bytes(columns, header) == _pandas(frame, header)  # the pandas-free form



def test_integers_at_the_edges():
    frame = pd.DataFrame({
        "i": np.array([0, -7, 10, 99, 100, -100, np.iinfo(np.int64).max], dtype=np.int64),
        "u": np.array([0, 1, 9, 10, 255, 256, 2**64 - 1], dtype=np.uint64),
        "small": np.array([0, -1, 1, -128, 127, 5, 6], dtype=np.int8)})
    assert csv_bytes(frame, header=True) == _pandas(frame)
    lowest = pd.DataFrame({"i": np.array([np.iinfo(np.int64).min, 3]), "j": [1, 2]})
    assert csv_bytes(lowest, header=True) == _pandas(lowest)


def _written_integers(values) -> list[str]:
    from sim.csv_text import integer_slots, rows_bytes
    slots = integer_slots(np.asarray(values))
    return rows_bytes([slots], separator=ord("\n")).decode("ascii").split("\n")[:-1]


def test_integers_from_the_digit_tables():
    """Columns of values from 10 to 9,999 are looked up (2 or 4 places, a zero first below
    1,000), the rest written digit by digit: the same text either way, every dtype."""
    from sim.csv_text import integer_slots
    assert integer_slots(np.array([10, 99, 5], np.uint8)).tolist() == [
        [ord("1"), ord("0")], [ord("9"), ord("9")], [0, ord("5")]]
    assert integer_slots(np.array([0, 999])).tolist() == [
        [0, 0, 0, ord("0")], [0, ord("9"), ord("9"), ord("9")]]
    assert integer_slots(np.array([9, 0])).shape == (2, 1)  # below 10: one place
    assert integer_slots(np.array([10**4, 7])).shape == (2, 5)  # from 10**4: digit by digit
    for values in ([10, 0, 42], [0, 100, 9999, 1000, 7], [5, 10**4 - 1], [-3, 50]):
        for dtype in (np.int16, np.int32, np.int64, np.uint16, np.uint32, np.uint64):
            if min(values) >= 0 or np.dtype(dtype).kind == "i":
                assert _written_integers(np.array(values, dtype)) == [str(v) for v in values]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10**4 + 5), min_size=1, max_size=40),
       st.sampled_from([np.int32, np.int64, np.uint16, np.uint64]))
def test_small_integers_property(values, dtype):
    assert _written_integers(np.array(values, dtype)) == [str(v) for v in values]


def test_table_left_to_pandas_like_its_frame():
    """A ``Table`` is formatted like the DataFrame of its columns, and left to pandas where
    that frame would be."""
    assert csv_bytes(Table({"a": np.array([1]), "b": np.array(["x\ny"], dtype=object)}),
                    True) is None
    assert csv_bytes(Table({"a": np.array([1])}), True) is None
    assert csv_bytes(Table({"a": np.array([1]), "b": np.array([3], dtype=object)}), True) is None
    assert csv_bytes(Table({"a": np.array([1]), "t": np.array(["2023"], dtype="datetime64[D]")}),
                    True) is None


# ---- the byte-matrix writer: floats, every column type, ragged columns ----------------------
def _python_floats(values) -> list[str]:
    return ["" if v != v else f"{v:.9g}" for v in np.asarray(values, np.float64).tolist()]


def _written_floats(values) -> list[str]:
    from sim.csv_text import float_slots, rows_bytes
    slots = float_slots(np.asarray(values))
    if not len(slots):
        return []
    return rows_bytes([slots], separator=ord("\n")).decode("ascii").split("\n")[:-1]


_EDGE_FLOATS = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 0.1 + 0.2, 0.3, 1.0, -1.0, 0.5,
                123.456, 1e5, 1e8, 1e9, 999999999.5, 999999999.4, 9999999995.0, 1e-5, 1.5e-5,
                0.0001, 0.00012345678951, 1e-4 - 1e-20, 1.23456789e-05, 1e20, 1e21, 1e22, 1e23,
                1e29, 1e30, 9.9999999999e29, 1e-14, 9.99999999e-15, 1e-300, -1e-300, 5e-324,
                2.2250738585072014e-308, 1.7976931348623157e308, 123456789012.0, 2.5, 0.125,
                1234567895.0, 1234567885.0, 0.1234567895, 12345678.95, 3502.123456789]


def test_floats_as_python_formats_them_edge_cases():
    """``float_slots``: -0.0 as "-0", inf as "inf", NaN empty, subnormals, the largest double,
    exact ties of the ninth digit (left to Python) and the scientific form of %.9g."""
    assert _written_floats(_EDGE_FLOATS) == _python_floats(_EDGE_FLOATS)
    assert _written_floats([-0.0, np.inf, 1.5e-5, 1e20, 123.0, 0.000123]) == [
        "-0", "inf", "1.5e-05", "1e+20", "123", "0.000123"]
    assert _written_floats(np.array([0.1, 2.5], np.float32)) == _python_floats(
        np.array([0.1, 2.5], np.float32))
    assert _written_floats(np.zeros(0)) == []


def test_floats_below_1e9_scaled_by_products_only():
    """A column whose values are all below 1e9 (times, durations) is scaled by products
    alone; with one larger value, by products and quotients: the same text either way."""
    below = [0.1 + 0.2, 3502.123456789, 999999999.4, 999999999.5, 1.5e-5, 0.0, -2.5, np.nan,
             0.1234567895, 12345678.95, 1e-300]
    assert _written_floats(below) == _python_floats(below)
    assert _written_floats(below + [1e20])[:-1] == _python_floats(below)


def test_floats_as_python_formats_them_many_random_doubles():
    """A million doubles: any bit pattern (every exponent, subnormals, NaNs), magnitudes of
    every decade, decimals cut at the 9th and 10th digit (ties and near-ties), and run times."""
    rng = np.random.default_rng(2026)
    batches = [
        rng.integers(0, 2**64, 300_000, dtype=np.uint64).view(np.float64),
        rng.standard_normal(200_000) * 10.0 ** rng.integers(-20, 35, 200_000),
        (rng.integers(0, 10**10, 200_000) + 0.5) / 10.0 ** rng.integers(0, 14, 200_000),
        rng.integers(10**8, 10**9, 100_000) / 10.0 ** rng.integers(-5, 12, 100_000),
        np.cumsum(rng.exponential(0.02, 200_000)),
    ]
    for values in batches:
        assert _written_floats(values) == _python_floats(values)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
                       max_size=40))
def test_floats_as_python_formats_them_property(values):
    assert _written_floats(np.array(values, dtype=np.float64)) == _python_floats(values)


def _every_type_frame() -> pd.DataFrame:
    i64 = np.iinfo(np.int64)
    return pd.DataFrame({
        "i8": np.array([0, -128, 127, -1, 5], np.int8),
        "i16": np.array([0, -32768, 32767, 10, -10], np.int16),
        "i32": np.array([0, -2**31, 2**31 - 1, 99, 100], np.int32),
        "i64": np.array([0, i64.min, i64.max, -9, 10**12], np.int64),
        "u8": np.array([0, 255, 1, 9, 10], np.uint8),
        "u32": np.array([0, 2**32 - 1, 7, 1000, 2**31], np.uint32),
        "u64": np.array([0, 2**64 - 1, 2**63, 1, 2**32], np.uint64),
        "f16": np.array([0.5, -1.5, np.nan, 65504, 0.1], np.float16),
        "f32": np.array([0.1, -np.inf, np.nan, 3.4e38, 1e-45], np.float32),
        "f64": [0.1 + 0.2, -0.0, np.nan, 1e-300, 123456789.5],
        "flag": [True, False, True, True, False],
        "text": np.array(["a", 'say "hi", then', None, "é, ü", np.nan], dtype=object),
        "empty": np.array(["", "", "", "", ""], dtype=object),
    })


def test_every_column_type_as_pandas_writes_it():
    frame = _every_type_frame()
    for rows in (slice(None), slice(0, 1), slice(0, 0), slice(3, 5)):
        part = frame.iloc[rows].reset_index(drop=True)
        for header in (True, False):
            assert csv_bytes(part, header) == _pandas(part, header)
            table = Table({name: part[name].to_numpy() for name in part.columns})
            assert csv_bytes(table, header) == _pandas(part, header)


def test_ragged_column_as_its_text():
    """A ``Ragged`` column: counts -1 and 0 both empty, single and many digits, negatives;
    written as pandas writes the column of its joined text."""
    from sim.table import Ragged
    counts = np.array([2, -1, 0, 1, 3, 0], np.int32)
    values = np.array([3, 0, 12, 7, -45, 100000], np.int64)
    text = ["3;0", "", "", "12", "7;-45;100000", ""]
    assert Ragged(values, counts).text().tolist() == text
    table = Table({"n": np.arange(6), "steps": Ragged(values, counts),
                   "last": Ragged(np.array([1, 2], np.uint8), np.array([0, 0, 2, -1, 0, 0]))})
    frame = pd.DataFrame({"n": np.arange(6), "steps": np.array(text, dtype=object),
                          "last": np.array(["", "", "1;2", "", "", ""], dtype=object)})
    assert csv_bytes(table, True) == _pandas(frame) == (
        b'n,steps,last\n0,3;0,\n1,,\n2,,1;2\n3,12,\n4,7;-45;100000,\n5,,\n')
    empty = Table({"n": np.zeros(0, np.int64), "steps": Ragged(np.zeros(0), np.zeros(0))})
    assert csv_bytes(empty, True) == b"n,steps\n"
    assert Ragged(np.zeros(0), np.zeros(0, np.int32)).text().tolist() == []
    assert Ragged(np.zeros(0), np.array([-1, 0])).text().tolist() == ["", ""]


def test_coded_column_as_its_text():
    """A ``Coded`` column: each name formatted once (quoted where it holds a comma or a
    quote, None empty, UTF-8), written as pandas writes the column of its strings; a name
    pandas must write (a line break), even one no row uses, leaves the table to pandas."""
    from sim.table import Coded
    names = np.array(["decode", 'say "hi", then', None, "prefill", "\u00e9t\u00e9"], dtype=object)
    codes = np.array([3, 0, 1, 2, 4, 0], np.int32)
    table = Table({"n": np.arange(6), "kind": Coded(codes, names)})
    assert Coded(codes, names).text().tolist() == [
        "prefill", "decode", 'say "hi", then', None, "\u00e9t\u00e9", "decode"]
    frame = pd.DataFrame({"n": np.arange(6), "kind": names[codes]})
    assert csv_bytes(table, True) == _pandas(frame) == (
        'n,kind\n0,prefill\n1,decode\n2,"say ""hi"", then"\n3,\n4,\u00e9t\u00e9\n5,decode\n'
        .encode("utf-8"))
    empty = Table({"n": np.zeros(0, np.int64), "kind": Coded(np.zeros(0, np.int32),
                                                           np.zeros(0, object))})
    assert csv_bytes(empty, True) == b"n,kind\n"
    broken = Table({"n": np.arange(2), "kind": Coded(np.array([0, 0]),
                                                     np.array(["a", "b\nc"], dtype=object))})
    assert csv_bytes(broken, True) is None


def test_zero_byte_in_text_is_left_to_pandas():
    assert csv_bytes(pd.DataFrame({"a": [1], "b": ["x\0y"]}), True) is None


@settings(max_examples=120, deadline=None)
@given(data=st.data(), n=st.integers(0, 12), header=st.booleans())
def test_random_tables_as_pandas_writes_them(data, n, header):
    """Random tables of random column types, ragged columns included, against pandas."""
    from sim.table import Coded, Ragged
    kinds = data.draw(st.lists(st.sampled_from(
        ["i64", "i32", "u64", "u8", "f64", "f32", "bool", "text", "coded", "ragged"]),
        min_size=2, max_size=6))
    table, frame = {}, {}
    for i, kind in enumerate(kinds):
        name = f"c{i}"
        if kind == "ragged":
            rows = data.draw(st.lists(st.one_of(st.none(), st.lists(
                st.integers(-10**6, 10**12), max_size=5)), min_size=n, max_size=n))
            counts = np.array([-1 if r is None else len(r) for r in rows], np.int32)
            table[name] = Ragged(np.array([v for r in rows if r for v in r], np.int64), counts)
            frame[name] = np.array(["" if r is None else ";".join(map(str, r)) for r in rows],
                                   dtype=object)
            continue
        if kind == "coded":
            names = np.array(data.draw(st.lists(st.one_of(st.none(), _text), min_size=1,
                                                max_size=4)), dtype=object)
            codes = np.array(data.draw(st.lists(st.integers(0, len(names) - 1), min_size=n,
                                                max_size=n)), np.int32)
            table[name], frame[name] = Coded(codes, names), names[codes]
            continue
        if kind == "text":
            values = np.array(data.draw(st.lists(st.one_of(st.none(), _text),
                                                 min_size=n, max_size=n)), dtype=object)
        elif kind in ("f64", "f32"):
            values = np.array(data.draw(st.lists(st.floats(width=64 if kind == "f64" else 32),
                                                 min_size=n, max_size=n)),
                              dtype=np.float64 if kind == "f64" else np.float32)
        elif kind == "bool":
            values = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
        else:
            dtype = np.dtype({"i64": np.int64, "i32": np.int32, "u64": np.uint64,
                              "u8": np.uint8}[kind])
            info = np.iinfo(dtype)
            values = np.array(data.draw(st.lists(st.integers(int(info.min), int(info.max)),
                                                 min_size=n, max_size=n)), dtype=dtype)
        table[name] = frame[name] = values
    expected = _pandas(pd.DataFrame(frame), header)
    assert csv_bytes(Table(table), header) == expected


def test_pieces_are_the_bytes_block_by_block(monkeypatch):
    """``csv_pieces``: the header, then one piece per block of rows (a last, shorter block
    included), together the bytes of ``csv_bytes`` and of pandas; None before any piece
    where pandas must write the table."""
    import sim.csv_text as csv_text
    from sim.table import Ragged
    n = 11
    table = Table({"n": np.arange(n) * 7 - 30, "x_s": np.linspace(-1, 2, n),
                   "k": Ragged(np.arange(2 * n) % 13, np.tile([2, 0, -1, 4, 1], 5)[:n] * 1)})
    expected = _pandas(table.to_frame())
    monkeypatch.setattr(csv_text, "BLOCK_BYTES", 70)  # 1 to 3 rows a block
    pieces = list(csv_text.csv_pieces(table, header=True))
    assert len(pieces) >= 1 + 4 and pieces[0] == b"n,x_s,k\n"
    assert all(piece.endswith(b"\n") for piece in pieces)
    assert b"".join(pieces) == csv_text.csv_bytes(table, True) == expected
    assert b"".join(csv_text.csv_pieces(table, header=False)) == expected.split(b"\n", 1)[1]
    assert list(csv_text.csv_pieces(Table({"a": np.zeros(0), "b": np.zeros(0)}), True)) == [
        b"a,b\n"]
    assert csv_text.csv_pieces(Table({"a": np.array([1]),
                                      "b": np.array(["x\ny"], dtype=object)}), True) is None
