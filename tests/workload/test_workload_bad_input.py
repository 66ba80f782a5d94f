"""Malformed trace files: one InputError naming the file, the line and the column."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import ConfigError, InputError
from sim.workload import load_trace

AZ_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
AZ_ROWS = ["2023-11-16 18:15:46.6805900,374,44\n", "2023-11-16 18:15:50.9951690,396,109\n",
           "2023-11-16 18:15:51.0000000,10,5\n"]
BURST_HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def error_of(path, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        load_trace(path, **kwargs)
    return info.value


def check(err: InputError, path, line, column, *words):
    text = str(err)
    assert text.startswith(str(path)), text
    if line is not None:
        assert f"line {line}" in text, text
        assert err.line == line
    if column is not None:
        assert f"column '{column}'" in text, text
        assert err.column == column
    for w in words:
        assert w in text, text
    assert "\n" not in text


def azure(tmp_path, rows):
    return write(tmp_path, "az.csv", AZ_HEADER + "".join(rows))


@pytest.mark.parametrize("row, column, words", [
    ("2023-11-16 18:15:52.0,abc,5\n", "ContextTokens", ["'abc'", "not a finite number"]),
    ("2023-11-16 18:15:52.0,12,0\n", "GeneratedTokens", [">= 1", "got 0"]),
    ("2023-11-16 18:15:52.0,-3,4\n", "ContextTokens", [">= 1", "got -3"]),
    ("2023-11-16 18:15:52.0,3.5,4\n", "ContextTokens", ["whole number", "'3.5'"]),
    ("2023-11-16 18:15:52.0,,4\n", "ContextTokens", ["missing"]),
    ("2023-11-16 25:99:00.0,3,4\n", "TIMESTAMP", ["cannot parse timestamp"]),
    ("NaN,3,4\n", "TIMESTAMP", ["timestamp"]),
    ("2023-11-16 18:15:00.0,3,4\n", "TIMESTAMP", ["not sorted"]),
])
def test_azure_bad_cell(tmp_path, row, column, words):
    p = azure(tmp_path, AZ_ROWS + [row])
    check(error_of(p), p, 5, column, *words)


def test_azure_misnamed_column_lists_expected(tmp_path):
    p = write(tmp_path, "az.csv", "TIMESTAMP,ContextTokens,GenTokens\n" + AZ_ROWS[0])
    check(error_of(p), p, 1, "GeneratedTokens", "TIMESTAMP,ContextTokens,GeneratedTokens",
          "missing column")


def test_azure_2024_offsets_parse(tmp_path):
    p = write(tmp_path, "az24.csv", AZ_HEADER + "2024-05-10 00:00:00.009930+00:00,10,2\n"
              "2024-05-10 00:00:01.509930+00:00,11,3\n")
    w = load_trace(p)
    assert [r.arrival_s for r in w.requests] == [0.0, 1.5]


def test_blank_lines_keep_line_numbers(tmp_path):
    p = azure(tmp_path, [AZ_ROWS[0], "\n", "\n", AZ_ROWS[1], "2023-11-16 18:15:52.0,x,4\n"])
    check(error_of(p), p, 6, "ContextTokens")
    ok = azure(tmp_path, [AZ_ROWS[0], "\n", AZ_ROWS[1], "\n"])
    assert len(load_trace(ok)) == 2


def test_extra_field_is_a_malformed_row(tmp_path):
    p = azure(tmp_path, AZ_ROWS[:2] + ["2023-11-16 18:15:52.0,3,4,9\n"])
    check(error_of(p), p, 4, None, "malformed CSV row")
    q = azure(tmp_path, ["2023-11-16 18:15:52.0,3,4,9\n"] + AZ_ROWS[:2])
    check(error_of(q), q, 2, None, "more fields than the header")


@pytest.mark.parametrize("header, column", [
    ("arrival_s,arrival_s,prompt_tokens,output_tokens", "arrival_s"),      # used the first
    ("arrival_s,prompt_tokens,output_tokens, prompt_tokens", "prompt_tokens"),  # traceback
    ("arrival_s,prompt_tokens,output_tokens,category,category", "category"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens,GeneratedTokens", "GeneratedTokens")])
def test_a_column_named_twice_is_an_error(tmp_path, header, column):
    row = ("2023-11-16 18:15:46.6805900,1,2,3" if header.startswith("TIMESTAMP")
           else "0.5,10,2,3" + (",a" if header.endswith("category") else ""))
    p = write(tmp_path, "d.csv", f"{header}\n{row}\n")
    check(error_of(p), p, 1, column, "times in the header")
    assert load_trace(write(tmp_path, "x.csv", "arrival_s,prompt_tokens,output_tokens,x,x\n"
                            "0.5,10,2,3,4\n")).requests[0].prompt_tokens == 10  # unused: fine


def test_empty_and_header_only(tmp_path):
    empty = write(tmp_path, "empty.csv", "")
    check(error_of(empty), empty, 1, None, "empty file")
    header_only = write(tmp_path, "h.csv", AZ_HEADER)
    check(error_of(header_only), header_only, 2, None, "no data rows")
    blank_rows = write(tmp_path, "b.csv", AZ_HEADER + "\n\n")
    check(error_of(blank_rows), blank_rows, None, None, "no data rows")


def test_unknown_format_and_missing_file(tmp_path):
    p = write(tmp_path, "x.csv", "a,b,c\n1,2,3\n")
    check(error_of(p), p, 1, None, "unknown trace format", "azure", "mooncake", "burstgpt",
          "arrivals", "native")
    q = write(tmp_path, "x.parquet", "whatever")
    check(error_of(q), q, None, None, "unknown trace format", "'.parquet'")
    missing = tmp_path / "nope.csv"
    check(error_of(missing), missing, None, None, "no such file")
    with pytest.raises(ConfigError, match="unknown format"):
        load_trace(p, format="parquet")


def test_mooncake_errors(tmp_path):
    good = {"timestamp": 10, "input_length": 10, "output_length": 2, "hash_ids": [0]}
    cases = [
        ({"timestamp": 15, "input_length": 10}, "output_length", "missing field"),
        ({"timestamp": 15, "input_length": "ten", "output_length": 2}, "input_length", "'ten'"),
        ({"timestamp": 15, "input_length": 10, "output_length": 0}, "output_length", ">= 1"),
        ({"timestamp": 5, "input_length": 10, "output_length": 1}, "timestamp", "not sorted"),
        ({"timestamp": -5, "input_length": 10, "output_length": 1}, "timestamp", ">= 0"),
        ({"timestamp": None, "input_length": 10, "output_length": 1}, "timestamp", "None"),
    ]
    for obj, column, word in cases:
        p = write(tmp_path, "m.jsonl", json.dumps(good) + "\n\n" + json.dumps(obj) + "\n")
        check(error_of(p), p, 3, column, word)
    bad_json = write(tmp_path, "j.jsonl", json.dumps(good) + "\n{oops\n")
    check(error_of(bad_json), bad_json, 2, None, "not valid JSON")
    empty = write(tmp_path, "e.jsonl", "\n")
    check(error_of(empty), empty, None, None, "empty file")


@pytest.mark.parametrize("cell", ["9000000000000000000",     # int64, but 2 of them wrap
                                  "10000000000000000000",    # pandas: uint64
                                  "99999999999999999999",    # pandas: float
                                  "1e30", "1000000000000000000.0"])
def test_token_counts_past_max_tokens_are_located(tmp_path, cell):
    # they used to wrap to -9223372036854775808 (">= 1, got -9223...") or, as int64, pass
    # and overflow prompt + output in the compiled engine
    for header, row, column in [
            (AZ_HEADER, "2023-11-16 18:15:52.0,{},4\n", "ContextTokens"),
            ("arrival_s,prompt_tokens,output_tokens\n", "5.0,3,{}\n", "output_tokens")]:
        first = AZ_ROWS[0] if header == AZ_HEADER else "0.5,10,2\n"
        p = write(tmp_path, "t.csv", header + first + row.format(cell))
        check(error_of(p), p, 3, column, "at most 999999999999999999 tokens")
    ok = write(tmp_path, "ok.csv", "arrival_s,prompt_tokens,output_tokens\n"
               "0.5,999999999999999999,999999999999999999\n")
    assert load_trace(ok).requests[0].prompt_tokens == 10 ** 18 - 1


@pytest.mark.parametrize("value", [10 ** 18, 10 ** 23, 1e20])
def test_mooncake_token_counts_past_max_tokens_are_located(tmp_path, value):
    # they used to end in an OverflowError traceback (np.asarray(..., np.int64))
    good = {"timestamp": 10, "input_length": 10, "output_length": 2}
    bad = {"timestamp": 15, "input_length": value, "output_length": 2}
    p = write(tmp_path, "m.jsonl", json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    check(error_of(p), p, 2, "input_length", "at most 999999999999999999 tokens")


def test_mooncake_gz_that_cannot_be_read_is_located(tmp_path):
    import gzip
    line = json.dumps({"timestamp": 10, "input_length": 10, "output_length": 2}) + "\n"
    plain = write(tmp_path, "plain.jsonl.gz", line)          # not gzip at all
    cut = tmp_path / "cut.jsonl.gz"                            # gzip cut short
    cut.write_bytes(gzip.compress(line.encode() * 50)[:30])
    for p, word in [(plain, "Not a gzipped file"), (cut, "ended before")]:
        check(error_of(p), p, None, None, "cannot read the file as UTF-8 text", word)
        check(error_of(p, format="mooncake"), p, None, None, word)


@pytest.mark.parametrize("header, row", [
    ("arrival_s,prompt_tokens,output_tokens\n", "{:.1f},100,50\n"),
    (AZ_HEADER, "2023-11-16 18:15:46.{:07.0f},100,50\n"),
    ("Timestamp\n", "{:.1f}\n")])
def test_csv_gz_cut_short_is_located(tmp_path, header, row):
    # an interrupted download: the header reads, the rows end mid-stream (used to end in an
    # EOFError traceback from the CSV reader)
    import gzip
    data = gzip.compress((header + "".join(row.format(i * 0.1) for i in range(20_000))).encode())
    p = tmp_path / "cut.csv.gz"
    p.write_bytes(data[:len(data) // 2])
    check(error_of(p), p, None, None, "cannot read the file as UTF-8 text", "ended before")


def test_mooncake_quantised_slots_are_spread(tmp_path):
    rows = [0, 0, 0, 3000, 9000, 9000]
    p = write(tmp_path, "q.jsonl", "".join(
        json.dumps({"timestamp": t, "input_length": 5, "output_length": 1}) + "\n" for t in rows))
    w = load_trace(p)
    assert [r.arrival_s for r in w.requests] == pytest.approx([0, 1, 2, 3, 9, 10.5])
    assert w.transforms == ("mooncake_spread_slots=3000ms",)


def test_burstgpt_errors(tmp_path):
    p = write(tmp_path, "b.csv", BURST_HEADER + "1,ChatGPT,5,5,10,API log\n"
              "2,ChatGPT,-1,5,4,API log\n")
    check(error_of(p), p, 3, "Request tokens", ">= 1")
    q = write(tmp_path, "c.csv", BURST_HEADER + "1,ChatGPT,5,5,10,API log\nsoon,GPT-4,5,5,10,x\n")
    check(error_of(q), q, 3, "Timestamp", "'soon'")
    r = write(tmp_path, "d.csv", "Timestamp,Model,Request tokens,Response tokns\n1,a,2,3\n")
    check(error_of(r), r, 1, "Response tokens", "missing column")


def test_burstgpt_with_only_failed_rows_says_so(tmp_path):
    # used to read "no requests ... fall inside the window [0.0 s, inf s)" with no window
    p = write(tmp_path, "f.csv", BURST_HEADER + "1,ChatGPT,5,0,5,API log\n"
              "2,ChatGPT,7,0,7,API log\n")
    for kwargs in ({}, {"start_s": 1.5}, {"limit": 1}):
        check(error_of(p, **kwargs), p, None, "Response tokens", "no requests left",
              "all 2 data rows are failed requests")


def test_arrivals_errors(tmp_path):
    for body, line, column, word in [
            ("0.5\n0.4\n", 3, "Timestamp", "not sorted"), ("0.5\nnan\n", 3, "Timestamp", "'nan'"),
            ("-1\n", 2, "Timestamp", ">= 0"), ("1\nfoo\n", 3, "Timestamp", "'foo'"),
            ("0.5\n1,2\n", 3, None, "Expected 1 fields"), ("\n\n", None, None, "no data")]:
        p = write(tmp_path, "a.csv", "Timestamp\n" + body)
        check(error_of(p), p, line, column, word)


@pytest.mark.parametrize("header, rows, words", [
    ("Timestamp\n", "1.0\n0.5\n", "timestamps are not sorted: 0.5 comes after 1.0 ("),
    ("Timestamp\n", "-1.5\n", "timestamp must be >= 0, got -1.5"),
    ("arrival_s,prompt_tokens,output_tokens\n", "-2.0,3,4\n", "must be >= 0, got -2.0"),
    (BURST_HEADER, "3,a,5,5,10,x\n2,a,5,5,10,x\n", "not sorted: 2.0 comes after 3.0 ("),
    (AZ_HEADER, AZ_ROWS[1] + AZ_ROWS[0],
     "2023-11-16 18:15:46.680590 comes after 2023-11-16 18:15:50.995169")])
def test_values_in_messages_read_as_written_numbers(tmp_path, header, rows, words):
    # numpy scalars used to print as np.float64(0.5) (numpy >= 2 reprs)
    p = write(tmp_path, "v.csv", header + rows)
    text = str(error_of(p))
    assert words in text and "np." not in text, text


def test_native_errors_and_categories(tmp_path):
    p = write(tmp_path, "n.csv", "arrival_s,prompt_tokens,output_tokens,category\n"
              "0.5,10,2,NA\n1.0,0,3,\n")
    check(error_of(p), p, 3, "prompt_tokens", ">= 1")
    ok = write(tmp_path, "ok.csv", "arrival_s,prompt_tokens,output_tokens,category\n"
               "0.5,10,2,NA\n1.0,4,3,\n")
    w = load_trace(ok, default_category="chat")
    assert [r.category for r in w.requests] == ["NA", "chat"]
    assert w.requests[0].arrival_s == 0.5          # own zero kept
    q = write(tmp_path, "m.csv", "arrival_s,prompt_tokens\n0,1\n")
    check(error_of(q), q, 1, "output_tokens", "arrival_s,prompt_tokens,output_tokens,[category]")


def test_bad_parameters_are_config_errors(tmp_path):
    p = azure(tmp_path, AZ_ROWS)
    for kwargs in [dict(start_s=-1), dict(start_s=5, end_s=5), dict(limit=0),
                   dict(limit=2.5), dict(start_s=100), dict(categories=[]),
                   dict(categories={"a": -1.0}), dict(rng="seed")]:
        with pytest.raises(ConfigError):
            load_trace(p, **kwargs)


@settings(max_examples=25, deadline=None)
@given(n_rows=st.integers(1, 30), data=st.data())
def test_any_bad_cell_is_located(tmp_path_factory, n_rows, data):
    bad_row = data.draw(st.integers(0, n_rows - 1))
    column = data.draw(st.sampled_from(["arrival_s", "prompt_tokens", "output_tokens"]))
    bad_value = data.draw(st.sampled_from(["x", "", "-2", "inf"] if column == "arrival_s"
                                          else ["x", "", "0", "-2", "1.5"]))
    lines = []
    for i in range(n_rows):
        cells = {"arrival_s": str(i * 0.5), "prompt_tokens": "7", "output_tokens": "3"}
        if i == bad_row:
            cells[column] = bad_value
        lines.append(",".join(cells.values()))
    p = tmp_path_factory.mktemp("h") / "n.csv"
    p.write_text("arrival_s,prompt_tokens,output_tokens\n" + "\n".join(lines) + "\n")
    check(error_of(p), p, bad_row + 2, column)
