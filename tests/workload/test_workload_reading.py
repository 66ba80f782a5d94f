"""How trace files are read: a UTF-8 byte-order mark, Mooncake slots with timestamp jitter,
and streaming (a window/limit of a large CSV reads only the rows it needs)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.workload import load_trace
from sim.workload.mooncake import SLOT_MS, SLOT_TOLERANCE_MS, spread_slots
from sim.workload.tabular import FIRST_CHUNK_ROWS, chunk_sizes

BOM = "\ufeff"


@pytest.mark.parametrize("header, row", [
    ("TIMESTAMP,ContextTokens,GeneratedTokens", "2023-11-16 18:15:46.6805900,374,44"),
    ("arrival_s,prompt_tokens,output_tokens", "0.5,10,20"),
    ("Timestamp", "1.25"),
    ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type",
     "5,ChatGPT,10,20,30,API log"),
])
def test_a_csv_saved_with_a_byte_order_mark_is_read(tmp_path, header, row):
    text = f"{header}\n{row}\n{row}\n"
    _reads_the_same(tmp_path, text, BOM + text)
    assert (tmp_path / "variant.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def _reads_the_same(folder, plain_text: str, variant_text: str) -> None:
    """Two spellings of one trace load as the same workload."""
    plain, variant = folder / "plain.csv", folder / "variant.csv"
    plain.write_text(plain_text, encoding="utf-8")
    variant.write_text(variant_text, encoding="utf-8")
    a, b = load_trace(plain), load_trace(variant)
    assert a.format == b.format and a.requests == b.requests


@pytest.mark.parametrize("header, row", [
    ("TIMESTAMP,ContextTokens,GeneratedTokens", '"2023-11-16 18:15:46.6805900",374,44'),
    ("arrival_s,prompt_tokens,output_tokens,category", '0.5,10,20,"qa"'),
    ("Timestamp", "1.25"),
    ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type",
     '5,"ChatGPT",10,20,30,"API log"'),
])
def test_a_csv_with_quoted_names_is_read(tmp_path, header, row):
    # R's write.csv quotes every name (and text cell); the header used to keep the quotes
    # and match no format
    names = ",".join(f'"{name}"' for name in header.split(","))
    _reads_the_same(tmp_path, f"{header}\n{row.replace(chr(34), '')}\n", f"{names}\n{row}\n")


def test_a_jsonl_trace_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(BOM + json.dumps({"timestamp": 0, "input_length": 3, "output_length": 2})
                    + "\n", encoding="utf-8")
    assert len(load_trace(path)) == 1


def _mooncake(tmp_path, times_ms):
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps({"timestamp": t, "input_length": 7, "output_length": 3})
                            + "\n" for t in times_ms))
    return path


def test_jittered_mooncake_slots_are_spread_like_exact_ones(tmp_path):
    exact = [0, 0, 0, 3000, 9000, 9000]
    jittered = [2, 0, 4, 2998, 9003, 9005]  # a few ms around each slot, still sorted per slot
    jittered.sort()
    w = load_trace(_mooncake(tmp_path, jittered))
    # slots 0 (3 requests), 3000 (1), 9000 (2); spread evenly, measured from the first slot
    assert [r.arrival_s for r in w.requests] == pytest.approx([0, 1, 2, 3, 9, 10.5])
    assert w.transforms == ("mooncake_spread_slots=3000ms",)
    assert spread_slots(np.array(exact, float)).tolist() == pytest.approx(
        [0, 1000, 2000, 3000, 9000, 10500])


def test_timestamps_off_the_slots_are_kept(tmp_path):
    times = [0, 0, 40, 3000, 3000]  # 40 ms is within tolerance: quantised -> spread
    assert load_trace(_mooncake(tmp_path, times)).transforms == ("mooncake_spread_slots=3000ms",)
    far = [0, 0, SLOT_TOLERANCE_MS + 1, 3000]  # one timestamp too far from every slot
    w = load_trace(_mooncake(tmp_path, far))
    assert w.transforms == () and [r.arrival_s for r in w.requests] == [0, 0, 0.101, 3.0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.floats(-SLOT_TOLERANCE_MS, SLOT_TOLERANCE_MS)),
                min_size=2, max_size=40))
def test_spreading_keeps_order_and_each_request_inside_its_slot(slots_and_jitter):
    t = np.sort(np.array([s * SLOT_MS + j for s, j in slots_and_jitter]))
    out = spread_slots(t)
    slot = np.round(t / SLOT_MS) * SLOT_MS
    if out is t:  # nothing to spread: every slot holds one request
        assert np.all(np.diff(slot) > 0)
        return
    assert np.all(np.diff(out) >= 0)
    assert np.all((out >= slot) & (out < slot + SLOT_MS))


def _azure_with_garbage(path, good_rows: int, garbage_rows: int):
    t0 = pd.Timestamp("2024-05-10 00:00:00", tz="UTC")
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for i in range(good_rows):
        lines.append(f"{(t0 + pd.Timedelta(seconds=i)).isoformat()},{100 + i},{10 + i}")
    lines += ["not a timestamp,-1,oops"] * garbage_rows  # any read of these rows fails
    path.write_text("\n".join(lines) + "\n")
    return path


def test_window_and_limit_stop_reading_an_azure_file(tmp_path):
    """`--window 0:10 --limit 5` parses five rows, not the file: rows after them are garbage."""
    from sim.cli import build_parser
    from sim.cli_common import workload_from_args
    path = _azure_with_garbage(tmp_path / "az.csv", good_rows=20, garbage_rows=50_000)
    args = build_parser().parse_args(["--trace", str(path), "--window", "0:10", "--limit", "5"])
    w = workload_from_args(args, seed=0)
    assert [r.prompt_tokens for r in w.requests] == [100, 101, 102, 103, 104]
    assert w.transforms == ("window=0.0:10.0", "limit=5")
    # a window ending inside the good rows stops at the first row past its end
    end_only = load_trace(_azure_with_garbage(tmp_path / "b.csv", good_rows=FIRST_CHUNK_ROWS,
                                              garbage_rows=10), end_s=10.0)
    assert len(end_only) == 10
    with pytest.raises(Exception, match="cannot parse timestamp"):
        load_trace(path)  # without a window/limit the garbage is read (and refused)


def test_chunks_grow_and_never_exceed_what_a_limit_needs():
    sizes = chunk_sizes(chunk_rows=100_000, rows_wanted=lambda: None)
    first = [next(sizes) for _ in range(8)]
    assert first[0] == FIRST_CHUNK_ROWS and first[1] == 2 * FIRST_CHUNK_ROWS
    assert max(first) <= 100_000 and first[-1] == 100_000
    remaining = iter([7, 3, 1])
    capped = chunk_sizes(rows_wanted=lambda: next(remaining))
    assert [next(capped) for _ in range(3)] == [7, 3, 1]


def test_a_window_deep_into_a_large_azure_2024_file_reads_one_small_chunk_past_its_end(tmp_path):
    """A window ending at row 300,000 parses at most CHUNK_ROWS rows past its end: the rows
    from 300,000 + CHUNK_ROWS on are garbage that any read of them refuses (with the former
    million-row chunks the read reached them)."""
    from sim.workload.tabular import CHUNK_ROWS
    good = 300_000 + CHUNK_ROWS
    stamps = np.datetime_as_string(np.datetime64("2024-05-10T00:00:00", "us")
                                   + np.arange(good).astype("timedelta64[s]"), unit="us")
    path = tmp_path / "az2024.csv"
    with open(path, "w") as f:
        f.write("TIMESTAMP,ContextTokens,GeneratedTokens\n")
        f.write("".join(f"{t[:10]} {t[11:]}+00:00,{100 + i % 50},20\n"
                        for i, t in enumerate(stamps.tolist())))
        f.write("not a timestamp,-1,oops\n" * 1000)
    w = load_trace(path, start_s=299_990.0, end_s=300_000.0)
    assert len(w) == 10 and w.requests[0].arrival_s == 0.0
    assert [r.prompt_tokens for r in w.requests] == [100 + i % 50 for i in range(299_990, 300_000)]
    limited = load_trace(path, limit=3)
    assert [r.id for r in limited.requests] == [0, 1, 2]
    with pytest.raises(Exception, match="cannot parse timestamp"):
        load_trace(path, start_s=299_990.0, end_s=300_000.0 + CHUNK_ROWS + 1)


def test_loaded_workloads_hold_columns_that_read_like_request_records(tmp_path):
    from sim.workload.request import Request, RequestColumns
    w = load_trace(_azure_with_garbage(tmp_path / "a.csv", good_rows=5000, garbage_rows=0),
                   default_category="code")
    assert isinstance(w.requests, RequestColumns) and len(w.requests) == 5000
    records = tuple(w.requests)
    assert records[4096] == Request(4096, 4096.0, 4196, 4106, "code") == w.requests[4096]
    assert w.requests[-1] == records[-1] and w.requests[1:3] == records[1:3]
    assert w.requests == records and records == tuple(w.requests)
    assert w == load_trace(tmp_path / "a.csv", default_category="code")
    with pytest.raises(IndexError):
        w.requests[5000]
