"""Transformations, synthetic arrivals, length sources, determinism and native round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import ConfigError, InputError
from sim.workload import (Request, ShareGPTLengths, SpecBenchLengths, Workload, limit,
                          load_trace, make_length_source, rate_scale, resample_arrivals,
                          synthetic_arrivals,
                          window, write_native)
from sim.workload.lengths import traces_dir
from sim.workload.spec import WorkloadSpec
from sim.workload.transforms import CV_RANGE

CONV = traces_dir() / "azure2023" / "AzureLLMInferenceTrace_conv.csv"
SPEC = traces_dir() / "spec-bench" / "origin-spec-bench.jsonl"


@pytest.fixture(scope="module")
def conv() -> Workload:
    return load_trace(CONV)


def times(w):
    return np.array([r.arrival_s for r in w.requests])


def test_rate_scale_halves_span(conv):
    w = rate_scale(conv, 2.0)
    assert w.span_s == pytest.approx(conv.span_s / 2)
    assert len(w) == len(conv) and w.transforms == ("rate_scale=2.0",)
    assert [r.prompt_tokens for r in w.requests] == [r.prompt_tokens for r in conv.requests]
    slow = rate_scale(conv, 0.5)
    assert slow.span_s == pytest.approx(conv.span_s * 2)


def test_rate_scale_keeps_first_arrival():
    w = Workload((Request(0, 72.0, 1, 1), Request(1, 74.0, 1, 1)), "x", "native")
    assert times(rate_scale(w, 4)).tolist() == [72.0, 72.5]


def test_window_and_limit_counts(conv):
    t = times(conv)
    w = window(conv, 600, 1200)
    assert len(w) == int(((t >= 600) & (t < 1200)).sum())
    assert times(w).min() >= 0 and times(w).max() < 600
    assert [r.id for r in w.requests] == list(range(len(w)))
    assert w.transforms == ("window=600.0:1200.0",)
    first = limit(conv, 100)
    assert len(first) == 100 and first.requests == conv.requests[:100]
    assert limit(first, 1000).requests == first.requests
    assert limit(window(conv, end_s=600), 5).transforms == ("window=0.0:600.0", "limit=5")


@pytest.mark.parametrize("call", [
    lambda w: rate_scale(w, 0), lambda w: rate_scale(w, -1), lambda w: rate_scale(w, float("nan")),
    lambda w: window(w, 10, 5), lambda w: window(w, -1), lambda w: window(w, 1e9),
    lambda w: limit(w, 0), lambda w: limit(w, "3"),
])
def test_bad_transform_parameters(conv, call):
    with pytest.raises(ConfigError):
        call(conv)


def test_synthetic_poisson_rate_and_cv():
    w = synthetic_arrivals(rate_per_s=5.0, n=20_000, rng=1, lengths="sharegpt")
    t = times(w)
    gaps = np.diff(t)
    assert t[0] == 0.0 and len(w) == 20_000
    assert (len(t) - 1) / t[-1] == pytest.approx(5.0, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)
    assert w.format == "synthetic" and w.sha256 is None
    assert w.transforms[0].startswith("synthetic_arrivals=poisson(rate_per_s=5.0,n=20000")


@pytest.mark.parametrize("cv", [0.5, 2.0, 4.0])
def test_synthetic_gamma_cv(cv):
    w = synthetic_arrivals(rate_per_s=10.0, n=40_000, process="gamma", cv=cv, rng=3)
    gaps = np.diff(times(w))
    assert gaps.mean() == pytest.approx(0.1, rel=0.06)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.1)


def test_synthetic_duration_and_workload_lengths(conv):
    w = synthetic_arrivals(rate_per_s=4.0, duration_s=500.0, rng=2, lengths=conv)
    t = times(w)
    assert t.max() < 500.0 and abs(len(w) - 2000) < 200
    pairs = {(r.prompt_tokens, r.output_tokens) for r in conv.requests}
    assert all((r.prompt_tokens, r.output_tokens) in pairs for r in w.requests)


def test_synthetic_bad_parameters():
    for kwargs in [dict(rate_per_s=0, n=5), dict(rate_per_s=1), dict(rate_per_s=1, n=5,
                   duration_s=3), dict(rate_per_s=1, n=5, process="weibull"),
                   dict(rate_per_s=1, n=5, cv=2.0), dict(rate_per_s=1, n=5, process="gamma",
                   cv=0), dict(rate_per_s=1, n=5, lengths="nonexistent-source")]:
        with pytest.raises(ConfigError):
            synthetic_arrivals(**kwargs)


@pytest.mark.parametrize("cv", [1e-300, 1e-4, 101.0, 1e5, float("nan"), float("inf")])
def test_gamma_cv_outside_what_the_sampler_draws_is_refused(cv):
    # 1e-300 used to end in a ZeroDivisionError (cv * cv underflows), 1e5 to put every
    # arrival at 0 (numpy's Gamma draws with shape 1e-10 are all 0)
    with pytest.raises(ConfigError, match=r"cv must be a number in \[0.001, 100\]"):
        synthetic_arrivals(rate_per_s=1, n=5, process="gamma", cv=cv)
    with pytest.raises(ConfigError, match=r"arrival CV must be a number in \[0.001, 100\]"):
        WorkloadSpec(trace="t.csv", arrivals="gamma", arrival_rate_req_per_s=1.0, arrival_cv=cv)


@pytest.mark.parametrize("cv", list(CV_RANGE))
def test_gamma_cv_at_the_ends_of_its_range_keeps_the_rate(cv):
    gaps = np.diff(synthetic_arrivals(rate_per_s=10.0, n=200_000, process="gamma", cv=cv,
                                      rng=3).requests.arrival_s)
    assert gaps.mean() == pytest.approx(0.1, rel=0.25)


def test_same_seed_same_workload():
    a = synthetic_arrivals(rate_per_s=3, n=500, process="gamma", cv=2, rng=42)
    b = synthetic_arrivals(rate_per_s=3, n=500, process="gamma", cv=2,
                           rng=np.random.default_rng(42))
    c = synthetic_arrivals(rate_per_s=3, n=500, process="gamma", cv=2, rng=43)
    assert a == b and a != c
    path = traces_dir() / "adaspec" / "conv.csv"
    assert load_trace(path, rng=5) == load_trace(path, rng=np.random.default_rng(5))
    assert load_trace(path) == load_trace(path)            # default seed 0


def test_spec_bench_lengths():
    src = SpecBenchLengths(SPEC)
    assert len(src) == 480
    p, o, c = src.sample(5000, np.random.default_rng(0))
    assert p.dtype == np.int64 and o.dtype == np.int64 and p.min() >= 1
    assert 1 <= o.min() and o.max() <= 1024
    assert set(c) == {"writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem",
                      "humanities", "translation", "summarization", "qa", "math_reasoning", "rag"}
    c = np.asarray(c)
    assert np.median(o[c == "translation"]) < np.median(o[c == "writing"])
    only = SpecBenchLengths(SPEC, categories=["qa"], output_lengths={"qa": (10, 0)})
    p, o, c = only.sample(50, np.random.default_rng(0))
    assert set(c) == {"qa"} and set(o.tolist()) == {10}
    with pytest.raises(ConfigError):
        SpecBenchLengths(SPEC, categories=["poetry"])


def test_sharegpt_lengths_and_names():
    src = make_length_source("sharegpt")
    assert isinstance(src, ShareGPTLengths) and len(src) == 30_731
    p, o, c = src.sample(100, np.random.default_rng(0))
    assert p.min() >= 1 and o.max() <= 1024 and set(c) == {""}
    assert isinstance(make_length_source(None), SpecBenchLengths)
    assert isinstance(make_length_source(str(SPEC)), SpecBenchLengths)
    with pytest.raises(ConfigError, match="spec-bench, sharegpt"):
        make_length_source("lmsys")


def test_length_source_file_errors(tmp_path):
    bad = tmp_path / "s.jsonl"
    bad.write_text('{"question_id": 1, "category": "qa", "turns": ["hi"]}\n{"category": "qa"}\n')
    with pytest.raises(InputError, match=r"line 2, column 'turns'"):
        SpecBenchLengths(bad)
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe{}\n")  # used to end in a UnicodeDecodeError traceback
    with pytest.raises(InputError, match=r"b.jsonl: cannot read the file as UTF-8 text"):
        SpecBenchLengths(binary)
    bom = tmp_path / "bom.jsonl"  # a byte-order mark is skipped, as in traces
    bom.write_bytes(b"\xef\xbb\xbf" + b'{"question_id": 1, "category": "qa", "turns": ["hi"]}\n')
    assert SpecBenchLengths(bom).categories.tolist() == ["qa"]
    csv = tmp_path / "l.csv"
    csv.write_text("num_prefill_tokens,num_decode_tokens\n5,3\n5,zero\n")
    with pytest.raises(InputError, match=r"line 3, column 'num_decode_tokens'"):
        ShareGPTLengths(csv)


def test_category_weights(conv):
    w = load_trace(CONV, categories={"qa": 3.0, "coding": 1.0}, rng=0, limit=4000)
    cats = np.array([r.category for r in w.requests])
    assert set(cats) == {"qa", "coding"}
    assert (cats == "qa").mean() == pytest.approx(0.75, abs=0.03)
    assert {r.category for r in load_trace(CONV, default_category="conv",
                                           limit=10).requests} == {"conv"}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e6, allow_nan=False), st.integers(1, 10**6),
                          st.integers(1, 10**5),
                          st.sampled_from(["", "qa", "coding", "rag", "NA", "a b"])),
                min_size=1, max_size=40))
def test_native_round_trip(tmp_path_factory, rows):
    rows = sorted(rows, key=lambda r: r[0])
    w = Workload(tuple(Request(i, *r) for i, r in enumerate(rows)), "mem", "native")
    path = tmp_path_factory.mktemp("rt") / "w.csv"
    write_native(w, path)
    back = load_trace(path)
    assert back.format == "native" and back.requests == w.requests


def test_resample_arrivals_keeps_requests(conv):
    w = resample_arrivals(conv, 20.0, process="gamma", cv=2.0, rng=9)
    assert len(w) == len(conv) and times(w)[0] == 0.0
    assert [(r.prompt_tokens, r.output_tokens) for r in w.requests] == \
        [(r.prompt_tokens, r.output_tokens) for r in conv.requests]
    gaps = np.diff(times(w))
    assert 1 / gaps.mean() == pytest.approx(20.0, rel=0.1)
    assert w.transforms == ("resample_arrivals=gamma(rate_per_s=20.0,cv=2.0)",)
    assert resample_arrivals(conv, 20.0, process="gamma", cv=2.0, rng=9) == w
    with pytest.raises(ConfigError):
        resample_arrivals(conv, 5.0, process="poisson", cv=3.0)
