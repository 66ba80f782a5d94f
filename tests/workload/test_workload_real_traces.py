"""Every loader on the shipped trace files: counts, first/last values, provenance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.workload import Request, load_trace
from sim.workload.arrays import file_sha256
from sim.workload.lengths import traces_dir

TRACES = traces_dir()
CONV = TRACES / "azure2023" / "AzureLLMInferenceTrace_conv.csv"
CODE = TRACES / "azure2023" / "AzureLLMInferenceTrace_code.csv"


def arrivals(w):
    return np.array([r.arrival_s for r in w.requests])


def test_azure_conv():
    w = load_trace(CONV)
    assert w.format == "azure" and len(w) == 19_366
    assert w.requests[0] == Request(0, 0.0, 374, 44, "")
    assert w.requests[1].arrival_s == pytest.approx(4.314579, abs=1e-9)
    assert w.span_s == pytest.approx(3501.721937, abs=1e-6)
    assert [r.id for r in w.requests] == list(range(19_366))
    assert w.sha256 == "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8"
    assert np.all(np.diff(arrivals(w)) >= 0)
    prompts = np.array([r.prompt_tokens for r in w.requests])
    assert prompts.mean() == pytest.approx(1154.70, abs=0.01)


def test_azure_code_and_small_chunks_agree():
    w = load_trace(CODE)
    assert len(w) == 8_819 and w.requests[0].prompt_tokens == 4808
    assert w.span_s == pytest.approx(3435.948056, abs=1e-6)
    from sim.workload import azure
    small = azure.load(CODE, chunk_rows=1000).columns
    np.testing.assert_array_equal(small.arrival_s, arrivals(w))


def test_window_reproduces_adaspec_code():
    w = load_trace(CODE, start_s=3000)
    ada = pd.read_csv(TRACES / "adaspec" / "code.csv")["Timestamp"].to_numpy()
    assert len(w) == 719 and w.transforms == ("window=3000.0:inf",)
    np.testing.assert_allclose(arrivals(w), ada, atol=1e-9)


def test_window_reproduces_adaspec_conv():
    w = load_trace(CONV, end_s=600)
    ada = pd.read_csv(TRACES / "adaspec" / "conv.csv")["Timestamp"].to_numpy()
    assert len(w) == 2_867
    np.testing.assert_allclose(arrivals(w), ada, atol=1e-9)


def test_adaspec_arrivals_keep_own_zero_and_draw_spec_bench_lengths():
    w = load_trace(TRACES / "adaspec" / "code.csv", rng=7)
    assert w.format == "arrivals" and len(w) == 719
    assert w.requests[0].arrival_s == pytest.approx(72.990437)
    assert w.requests[-1].arrival_s == pytest.approx(435.948056)
    assert all(r.category for r in w.requests)
    assert w.transforms == ("lengths=spec-bench:origin-spec-bench.jsonl",)
    assert load_trace(TRACES / "adaspec" / "code.csv", rng=7) == w
    assert load_trace(TRACES / "adaspec" / "code.csv", rng=8) != w


def test_adaspec_conv_and_mooncake_arrivals():
    conv = load_trace(TRACES / "adaspec" / "conv.csv", length_source="sharegpt")
    assert len(conv) == 2_867 and conv.span_s == pytest.approx(599.971336)
    assert {r.category for r in conv.requests} == {""}
    moon = load_trace(TRACES / "adaspec" / "mooncake.csv", default_category="chat")
    assert len(moon) == 1_077 and moon.span_s == pytest.approx(600.0)


def test_mooncake_synthetic_unchanged_by_slot_spreading():
    w = load_trace(TRACES / "mooncake" / "synthetic_trace.jsonl")
    assert w.format == "mooncake" and len(w) == 3_993 and w.transforms == ()
    assert w.requests[0] == Request(0, 0.0, 40160, 6, "")
    assert w.requests[1].arrival_s == 0.0          # an exact tie in the file, kept
    assert w.requests[2].arrival_s == pytest.approx(0.040)
    assert w.span_s == pytest.approx(1022.025)


def test_burstgpt_sample_drops_failed_rows():
    w = load_trace(TRACES / "samples" / "burstgpt_sample.csv")
    assert w.format == "burstgpt" and len(w) == 25
    assert w.transforms == ("burstgpt_dropped_failed=5",)
    assert all(r.output_tokens > 0 for r in w.requests)
    assert w.requests[0].arrival_s == 0.0 and w.span_s == 635.0


def test_shipped_file_hashes_match_readme():
    text = (TRACES / "README.md").read_text()
    block = text.split("sha256 (paths relative to `traces/`):\n```\n", 1)[1].split("```", 1)[0]
    rows = [line.split() for line in block.strip().splitlines()]
    assert len(rows) == 9
    for digest, rel in rows:
        assert file_sha256(TRACES / rel) == digest, rel


def test_load_limit_and_window_at_load_time_match_transforms():
    from sim.workload import limit, window
    full = load_trace(CONV)
    a = load_trace(CONV, start_s=100, end_s=200, limit=50)
    b = limit(window(full, 100, 200), 50)
    assert a.requests == b.requests
    assert a.transforms == ("window=100.0:200.0", "limit=50") == b.transforms
