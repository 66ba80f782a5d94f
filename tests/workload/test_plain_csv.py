"""``sim.workload.plain_csv``: plain traces read without pandas give the pandas reader's arrays
bit for bit (real traces, random files); anything else goes to pandas, which gives the same
arrays or the same error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import InputError
from sim.workload import arrivals, azure, lengths
from sim.workload.plain_csv import (NotPlain, decimals, iter_plain_chunks, timestamps_ns,
                                    whole_numbers)

TRACES = Path(__file__).resolve().parents[2] / "traces"
AZURE_2023 = sorted((TRACES / "azure2023").glob("*.csv"))
ADASPEC = sorted((TRACES / "adaspec").glob("*.csv"))


def _refuse(*args, **kwargs):
    raise NotPlain


def _no_pandas(*args, **kwargs):
    raise AssertionError("the plain file went to the pandas reader")


def _both(monkeypatch, module, read):
    """``read()`` through the plain reader (pandas forbidden), then through pandas (the plain
    reader refusing); each an array tuple or the InputError it raised."""
    results = []
    for name, stub in (("iter_chunks", _no_pandas), ("iter_plain_chunks", _refuse)):
        with monkeypatch.context() as patch:
            patch.setattr(module, name, stub)
            try:
                results.append(read())
            except InputError as exc:
                results.append(str(exc))
    return results


def _columns(loaded) -> tuple:
    cols = loaded.columns
    return (cols.arrival_s, cols.prompt_tokens, cols.output_tokens, loaded.data_rows)


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return all(x == y if isinstance(x, int) else
               (x.dtype == y.dtype and np.array_equal(x.view(np.uint8), y.view(np.uint8)))
               for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("path", AZURE_2023, ids=lambda p: p.name)
@pytest.mark.parametrize("window", [{}, {"limit": 2500}, {"start_s": 600.0, "end_s": 1200.0},
                                    {"start_s": 3000.0, "limit": 100}])
def test_azure_2023_traces_read_as_pandas_reads_them(monkeypatch, path, window):
    plain, pandas = _both(monkeypatch, azure, lambda: _columns(azure.load(path, **window)))
    assert not isinstance(plain, str) and _same(plain, pandas)


@pytest.mark.parametrize("path", ADASPEC, ids=lambda p: p.name)
def test_adaspec_arrival_traces_read_as_pandas_reads_them(monkeypatch, path):
    plain, pandas = _both(monkeypatch, arrivals, lambda: (arrivals.load_arrivals(path),))
    assert not isinstance(plain, str) and _same(plain, pandas)
    assert plain[0].size > 700


def test_sharegpt_lengths_read_as_pandas_reads_them(monkeypatch):
    path = TRACES / "sharegpt" / "sharegpt_8k_filtered_stats_llama2_tokenizer.csv"
    plain, pandas = _both(monkeypatch, lengths, lambda: (
        lengths.ShareGPTLengths(path).prompt_tokens, lengths.ShareGPTLengths(path).output_tokens))
    assert not isinstance(plain, str) and _same(plain, pandas)


def _chunk(tmp_path, fields: list[str]):
    path = tmp_path / "one.csv"
    path.write_text("c\n" + "".join(f + "\n" for f in fields), encoding="utf-8")
    return next(iter_plain_chunks(path, ["c"]))


def test_hand_computed_values(tmp_path):
    stamps = ["2023-11-16 18:15:46.6805900", "2024-05-10 00:00:00.009930+00:00",
              "1970-01-01T00:00:00", "1970-01-02 00:00:01.5", "2024-02-29 23:59:59.999999999"]
    assert timestamps_ns(_chunk(tmp_path, stamps), "c").tolist() == [
        1_700_158_546_680_590_000, 1_715_299_200_009_930_000, 0, 86_401_500_000_000,
        1_709_251_199_999_999_999]
    assert whole_numbers(_chunk(tmp_path, ["1", "007", "123456789012345678"]), "c").tolist() \
        == [1, 7, 123456789012345678]
    assert decimals(_chunk(tmp_path, ["0", "72.99043699999993", "5.", "0.6"]), "c").tolist() \
        == [0.0, 72.99043699999993, 5.0, 0.6]


@pytest.mark.parametrize("parse, field", [
    (timestamps_ns, "2023-02-30 00:00:00"), (timestamps_ns, "2023-11-16 24:00:00"),
    (timestamps_ns, "2023-11-16 18:15:60"), (timestamps_ns, "2023-11-16 18:15:46.1234567890"),
    (timestamps_ns, "2023-11-16 18:15:46+01:00"), (timestamps_ns, "2023-11-16 18:15:46Z"),
    (timestamps_ns, "2023-11-16 18:15:46."), (timestamps_ns, "1600-01-01 00:00:00"),
    (timestamps_ns, "2023/11/16 18:15:46"), (timestamps_ns, "1700158546"),
    (whole_numbers, "0"), (whole_numbers, "1.0"), (whole_numbers, "-3"), (whole_numbers, "1e3"),
    (whole_numbers, "1234567890123456789"), (whole_numbers, " 5"),
    (decimals, "-1.5"), (decimals, ".5"), (decimals, "1e5"), (decimals, "nan"),
    (decimals, "1234567890123456789"),
])
def test_what_is_left_to_pandas(tmp_path, parse, field):
    with pytest.raises(NotPlain):
        parse(_chunk(tmp_path, ["2023-11-16 18:15:46", field]), "c")


@pytest.mark.parametrize("body", ['"1"\n', "1\n\n2\n", "1\r2\n", "1,2\n", "é\n"])
def test_files_that_are_not_plain(tmp_path, body):
    path = tmp_path / "odd.csv"
    path.write_text("c\n" + body, encoding="utf-8", newline="")
    with pytest.raises(NotPlain):
        list(iter_plain_chunks(path, ["c"]))


_ROW = st.tuples(st.integers(0, 5 * 10**9),  # gap to the previous row, ns
                 st.integers(1, 200_000), st.integers(1, 5_000),
                 st.integers(0, 9), st.booleans(), st.sampled_from(" T"))


def _azure_text(start_ns: int, rows, crlf: bool, final_break: bool) -> str:
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    t, written = start_ns, 0
    for gap, prompt, output, digits, offset, sep in rows:
        t += gap
        if t - t % 10 ** (9 - digits) < written:  # cut to fewer digits it would go back
            digits = 9
        written = t - t % 10 ** (9 - digits)
        whole = np.datetime64(t // 10**9, "s").astype(str).replace("T", sep)
        fraction = f".{t % 10**9:09d}"[:digits + 1] if digits else ""
        lines.append(f"{whole}{fraction}{'+00:00' if offset else ''},{prompt},{output}")
    end = "\r\n" if crlf else "\n"
    return end.join(lines) + (end if final_break else "")


@settings(max_examples=60, deadline=None)
@given(start_ns=st.integers(946_684_800 * 10**9, 1_900_000_000 * 10**9),
       rows=st.lists(_ROW, min_size=1, max_size=40), crlf=st.booleans(),
       final_break=st.booleans(), chunk_rows=st.integers(1, 9),
       limit=st.one_of(st.none(), st.integers(1, 50)),
       start_s=st.sampled_from([0.0, 1.0, 20.0]), end_s=st.sampled_from([np.inf, 30.0, 90.0]))
def test_random_plain_azure_files(tmp_path_factory, start_ns, rows, crlf, final_break,
                                  chunk_rows, limit, start_s, end_s):
    path = tmp_path_factory.mktemp("azure") / "trace.csv"
    path.write_bytes(_azure_text(start_ns, rows, crlf, final_break).encode())
    with pytest.MonkeyPatch.context() as monkeypatch:
        plain, pandas = _both(monkeypatch, azure, lambda: _columns(azure.load(
            path, start_s=start_s, end_s=end_s, limit=limit, chunk_rows=chunk_rows)))
    assert not isinstance(plain, str) and _same(plain, pandas)


_DEFECTS = ["", " 5", '"7"', "0", "-2", "3.0", "1,2", "x", "é"]


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_ROW, min_size=2, max_size=30), at=st.integers(0, 29),
       column=st.integers(0, 2), defect=st.sampled_from(_DEFECTS + [
           "2023-02-30 00:00:00", "2023-11-16 18:15:46+02:00", "2001-01-01 00:00:00"]),
       blank=st.booleans(), chunk_rows=st.integers(1, 9),
       limit=st.one_of(st.none(), st.integers(1, 40)))
def test_odd_files_get_the_pandas_answer(tmp_path_factory, rows, at, column, defect, blank,
                                         chunk_rows, limit):
    """A defect anywhere (a bad cell, a blank line, times out of order): the loader's answer,
    arrays or error message, is the pandas reader's."""
    lines = _azure_text(1_700_000_000 * 10**9, rows, False, True).split("\n")
    row = 1 + at % len(rows)
    cells = lines[row].split(",")
    cells[column] = defect
    lines[row] = ",".join(cells)
    if blank:
        lines.insert(row, "")
    path = tmp_path_factory.mktemp("odd") / "trace.csv"
    path.write_bytes("\n".join(lines).encode())
    load = lambda: _columns(azure.load(path, limit=limit, chunk_rows=chunk_rows))  # noqa: E731
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(azure, "iter_plain_chunks", _refuse)
        try:
            expected = load()
        except InputError as exc:
            expected = str(exc)
    try:
        got = load()
    except InputError as exc:
        got = str(exc)
    assert _same(got, expected)


@pytest.mark.parametrize("stamp", ["-2", "0001-01-01 00:00:00", "2262-04-12 00:00:00"])
@pytest.mark.parametrize("chunk_rows", [1, 9])
def test_a_time_outside_nanosecond_range_is_refused_by_both_readers(tmp_path, stamp,
                                                                    chunk_rows):
    """A time nanosecond timestamps cannot hold is an unparsable timestamp for the pandas
    reader too (it used to escape as pandas' OutOfBoundsDatetime when a chunk held nothing
    else), with the plain reader's words."""
    path = tmp_path / "trace.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                    f"2023-11-16 18:15:46.6805900,10,5\n{stamp},10,5\n")
    said = f"line 3, column 'TIMESTAMP': cannot parse timestamp {stamp!r}"
    with pytest.raises(InputError, match=said):
        azure.load(path, chunk_rows=chunk_rows)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(azure, "iter_plain_chunks", _refuse)
        with pytest.raises(InputError, match=said):
            azure.load(path, chunk_rows=chunk_rows)


_DECIMAL = st.builds(lambda whole, frac, dot: whole + ("." + frac if dot else ""),
                     st.text("0123456789", min_size=1, max_size=12),
                     st.text("0123456789", max_size=14), st.booleans())


@settings(max_examples=60, deadline=None)
@given(fields=st.lists(_DECIMAL, min_size=1, max_size=30))
def test_random_decimals_parse_as_pandas_parses_them(tmp_path_factory, fields):
    values = sorted(fields, key=float)  # arrival files are sorted
    path = tmp_path_factory.mktemp("arrivals") / "t.csv"
    path.write_text("Timestamp\n" + "\n".join(values) + "\n")
    with pytest.MonkeyPatch.context() as monkeypatch:
        plain, pandas = _both(monkeypatch, arrivals,
                              lambda: (arrivals.load_arrivals(path),))
    assert not isinstance(plain, str) and _same(plain, pandas)
