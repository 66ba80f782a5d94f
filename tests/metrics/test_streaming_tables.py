"""Chunked tables: the request table and the iteration log give the same rows, CSV bytes and
summary whether they are held whole, in slices, spooled to disk or reduced to statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sim.metrics.requests as requests_module
from sim.core.scheduler import FinishedRequest
from sim.latency.iteration import DecodeShape
from sim.metrics.load import load_report
from sim.metrics.recorder import IterationLog
from sim.metrics.requests import RequestTable, requests_frame
from sim.metrics.summary import latency_stats, summarize
from sim.output import write_table
from sim.workload.request import Request

HEADER = {"schema_version": 0}


def _finished(n: int, seed: int = 0) -> list[FinishedRequest]:
    """Finish records in a shuffled order: some rejected, some one-token outputs."""
    rng = np.random.default_rng(seed)
    records = []
    for i in rng.permutation(n).tolist():
        arrival = float(i) * 0.37
        output = int(rng.integers(1, 40))
        request = Request(i, arrival, int(rng.integers(1, 900)), output,
                          ["", "code", "chat"][i % 3])
        if i % 11 == 5:
            nan = float("nan")
            records.append(FinishedRequest(request, "rejected", nan, nan, nan, 0, 0, 0, 0, 0,
                                           reason="context: too long" if i % 2 else "kv-pool: x"))
            continue
        admitted = arrival + float(rng.exponential(0.5))
        first = admitted + float(rng.exponential(0.1))
        drafted = int(rng.integers(0, 30))
        records.append(FinishedRequest(request, "finished", admitted, first,
                                       first + 0.02 * output, output, drafted, drafted,
                                       drafted // 2, int(i % 7 == 0)))
    return records


def _fill_log(log: IterationLog, rows: int, seed: int = 1) -> IterationLog:
    rng = np.random.default_rng(seed)
    t = 0.0
    for i in range(rows):
        duration = float(rng.uniform(0.01, 0.05))
        if i % 9 == 0:
            log.add_prefill(t, duration, 2, 300 + i, 2, i % 13)
        else:
            steps = int(rng.integers(0, 4))
            lengths = rng.integers(0, 12 if i % 17 == 0 else 8, size=3) if steps else None
            shape = DecodeShape(3, 900 + i, 3, 3 + steps * 3, 900 + i, (3,) * steps,
                                tuple(range(900, 900 + steps)))
            log.add_decode(t, duration, shape, 4, 8, steps * 3, 5, 2, i % 13, lengths)
        t += duration
    return log


def test_request_table_in_slices_equals_the_list_built_table(tmp_path, monkeypatch):
    records = _finished(500)
    whole = requests_frame(records, 2.0, 0.04)
    assert whole["id"].tolist() == list(range(500))
    monkeypatch.setattr(requests_module, "BUFFER_ROWS", 37)  # many small parts
    table = RequestTable(2.0, 0.04)
    for record in records[:200]:
        table.append(record)
    table.columns()  # sorted once, then more rows arrive
    table.extend(records[200:])
    assert len(table) == 500
    pd.testing.assert_frame_equal(table.frame(), whole)
    write_table(tmp_path / "a.csv", whole, HEADER)
    write_table(tmp_path / "b.csv", table.frames(rows=64), HEADER)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_iteration_log_chunked_and_spooled_equal_in_memory(tmp_path):
    whole = _fill_log(IterationLog(chunk_rows=10**6), 700).to_frame()
    chunked = _fill_log(IterationLog(chunk_rows=64), 700)
    spooled = _fill_log(IterationLog(chunk_rows=50, spool_dir=tmp_path), 700)
    assert len(list(tmp_path.glob(".iterations-*/*.chunk"))) == 14
    for log in (chunked, spooled):
        pd.testing.assert_frame_equal(log.to_frame(), whole)
    assert "11" in ";".join(whole["verify_lengths"])  # the multi-digit path is covered
    write_table(tmp_path / "a.csv", whole, HEADER)
    write_table(tmp_path / "b.csv", spooled.frames(), HEADER)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    spooled.close()
    assert not list(tmp_path.glob(".iterations-*"))


def _as_columns(frame: pd.DataFrame) -> tuple[dict, dict]:
    """Rows of an iteration table as ``IterationLog.add_columns`` takes them."""
    scalars = {k: frame[k].to_numpy() for k in frame.columns if k not in
               ("kind", "verify_lengths", "draft_rows", "draft_kv_tokens")}
    scalars["kind"] = (frame["kind"] == "decode").to_numpy().astype(np.uint8)
    ragged = {}
    for name in ("verify_lengths", "draft_rows", "draft_kv_tokens"):
        cells = [[int(v) for v in text.split(";")] if text else None for text in frame[name]]
        counts = np.array([-1 if c is None else len(c) for c in cells], dtype=np.int32)
        if name != "verify_lengths":
            counts = np.maximum(counts, 0)
        values = [v for c in cells if c for v in c]
        dtype = np.uint8 if name == "verify_lengths" else np.int64
        ragged[name] = (np.array(values, dtype=dtype), counts)
    return scalars, ragged


def test_rows_handed_over_as_columns_equal_rows_added_one_by_one(tmp_path):
    whole = _fill_log(IterationLog(chunk_rows=10**6), 700).to_frame()
    log = IterationLog(chunk_rows=128, spool_dir=tmp_path)
    _fill_log(log, 5, seed=1)  # a few tuple rows first: they stay first
    head = whole.iloc[:5]
    pd.testing.assert_frame_equal(_fill_log(IterationLog(), 5).to_frame(), head)
    for start in range(5, 700, 97):  # slices of the compiled loop's hand-overs
        log.add_columns(*_as_columns(whole.iloc[start:start + 97].reset_index(drop=True)))
    assert len(log) == 700
    pd.testing.assert_frame_equal(log.to_frame(), whole)
    write_table(tmp_path / "a.csv", whole, HEADER)
    write_table(tmp_path / "b.csv", log.frames(), HEADER)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    log.close()


def test_summary_from_streamed_tables_equals_summary_from_frames():
    records = _finished(400, seed=3)
    span = (0.0, 399 * 0.37)
    table = RequestTable(2.0, 0.04)
    table.extend(records)
    kept = _fill_log(IterationLog(chunk_rows=33), 500)
    dropped = _fill_log(IterationLog(chunk_rows=33, keep=False, arrival_span_s=span), 500)
    frames = summarize(requests_frame(records, 2.0, 0.04), kept.to_frame())
    assert summarize(table, kept) == frames  # second pass over the kept chunks
    assert summarize(table, dropped) == frames  # statistics only, no table kept
    assert frames["rejected_by_reason"] == {"context": 18, "kv-pool": 18}
    assert frames["iterations"] == 500 and len(dropped) == 500
    assert list(dropped.frames())[0].empty
    assert frames["load"] == load_report(requests_frame(records, 2.0, 0.04), kept.to_frame())


def test_percentiles_are_exact():
    values = np.random.default_rng(5).lognormal(0.0, 1.0, 100_001)
    stats = latency_stats(np.concatenate([values, [np.nan, np.inf]]))
    assert stats["p50"] == float(np.sort(values)[50_000])  # an order statistic, no sketch
    assert stats["p99"] == float(np.percentile(values, 99))
    assert stats["mean"] == float(values.mean())


@pytest.mark.parametrize("rows", [0, 1])
def test_empty_and_tiny_tables_write_their_header(tmp_path, rows):
    log = _fill_log(IterationLog(spool_dir=tmp_path), rows)
    write_table(tmp_path / "it.csv", log.frames(), HEADER)
    lines = (tmp_path / "it.csv").read_text().splitlines()
    assert lines[1].startswith("start_s,duration_s,kind") and len(lines) == 2 + rows


def test_a_finished_run_keeps_no_request_records(tmp_path):
    """Loaded workloads hold columns and the engine's sinks keep typed rows: once the run is
    over no ``Request`` or ``FinishedRequest`` object is alive; the iteration log sits in its
    spool folder until released."""
    import gc

    from sim.run import SimConfig, simulate
    from sim.workload import load_trace
    def records() -> int:
        gc.collect()
        return sum(type(o) in (Request, FinishedRequest) for o in gc.get_objects())

    trace = Path(__file__).resolve().parents[2] / "traces" / "adaspec" / "code.csv"
    before = records()  # whatever other tests left alive
    workload = load_trace(trace, limit=60, rng=0)
    assert records() == before  # the workload is columns
    result = simulate(workload, "adaspec:8", SimConfig(), spool_dir=tmp_path)
    assert records() == before
    assert len(result.request_table) == 60 and result.summary["requests"] == 60
    assert list(tmp_path.glob(".iterations-*/*.chunk"))
    assert len(result.iterations) == result.summary["iterations"]
    result.release()
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("rows", [0, 1, 700])
def test_tables_write_the_bytes_of_frames(tmp_path, rows):
    """The writer's pandas-free slices (``tables``) are the rows of ``frames``, byte for byte
    and frame for frame."""
    log = _fill_log(IterationLog(chunk_rows=64), rows)
    write_table(tmp_path / "frames.csv", log.frames(), HEADER)
    write_table(tmp_path / "tables.csv", log.tables(), HEADER)
    assert (tmp_path / "frames.csv").read_bytes() == (tmp_path / "tables.csv").read_bytes()
    if rows:
        for table, frame in zip(log.tables(), log.frames()):
            assert list(table.columns) == list(frame.columns)
            pd.testing.assert_frame_equal(table.to_frame(), frame, check_dtype=False)
    records = _finished(rows)
    requests = RequestTable(2.0, 0.04)
    requests.extend(records)
    write_table(tmp_path / "r_frames.csv", requests.frames(rows=97), HEADER)
    write_table(tmp_path / "r_tables.csv", requests.tables(rows=97), HEADER)
    assert (tmp_path / "r_frames.csv").read_bytes() == (tmp_path / "r_tables.csv").read_bytes()
    pd.testing.assert_frame_equal(next(requests.tables(rows=max(rows, 1))).to_frame(),
                                  requests.frame())


def test_spooled_chunk_round_trip(tmp_path):
    """``IterationChunk.save``/``load``: every dtype, empty arrays and lengths not a multiple
    of 8 bytes come back equal, typed and writable."""
    from sim.metrics.recorder import _SCALAR_COLUMNS, IterationChunk
    rng = np.random.default_rng(3)
    n = 7
    scalars = {k: rng.integers(0, 1000, n).astype(np.int32) for k in _SCALAR_COLUMNS}
    scalars["start_s"], scalars["duration_s"] = rng.random(n), rng.random(n)
    scalars["kind"] = np.array([0, 1, 1, 0, 1, 1, 1], np.uint8)
    ragged = {"verify_lengths": (np.array([3, 0, 2], np.uint8),
                                 np.array([-1, 3, 0, -1, 0, 0, 0], np.int32)),
              "draft_rows": (np.zeros(0, np.int64), np.zeros(n, np.int32)),
              "draft_kv_tokens": (np.array([2**40, -5], np.int64),
                                  np.array([0, 0, 0, 0, 0, 1, 1], np.int32))}
    IterationChunk(scalars, ragged).save(tmp_path / "a.chunk")
    back = IterationChunk.load(tmp_path / "a.chunk")
    for k, v in scalars.items():
        assert back.scalars[k].dtype == v.dtype and np.array_equal(back.scalars[k], v)
    for k, (flat, counts) in ragged.items():
        assert back.ragged[k][0].dtype == flat.dtype and np.array_equal(back.ragged[k][0], flat)
        assert np.array_equal(back.ragged[k][1], counts)
    back.scalars["start_s"][0] = 1.0  # writable
