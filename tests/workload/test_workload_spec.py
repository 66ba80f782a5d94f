"""WorkloadSpec: one validated value per workload, shared by the commands and sweep files;
built reproducibly, with the limit applied while reading (the same requests as applying it
after synthetic arrivals and the rate scale)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.cli import build_parser
from sim.cli_common import parse_arrivals, parse_window, workload_spec_from_args
from sim.errors import ConfigError
from sim.workload import limit as limit_transform
from sim.workload import load_trace, rate_scale, resample_arrivals
from sim.workload.lengths import traces_dir
from sim.workload.spec import WORKLOAD_STREAM, WorkloadSpec

CONV = str(traces_dir() / "azure2023" / "AzureLLMInferenceTrace_conv.csv")
ARRIVALS_ONLY = str(traces_dir() / "adaspec" / "code.csv")


@pytest.mark.parametrize("fields, message", [
    ({"trace": ""}, "trace must be a file path"),
    ({"window_start_s": -50.0, "window_end_s": -10.0}, "window start must be"),
    ({"window_start_s": 5.0, "window_end_s": 5.0}, "window end (5.0 s) must be after"),
    ({"window_start_s": math.nan}, "window start must be"),
    ({"window_end_s": "10"}, "window end must be a number"),
    ({"limit": 0}, "request limit must be a whole number >= 1, got 0"),
    ({"limit": 2.5}, "request limit"),
    ({"rate_scale": math.inf}, "rate scale must be a finite number > 0, got inf"),
    ({"rate_scale": 0}, "rate scale must be a finite number > 0, got 0"),
    ({"rate_scale": True}, "rate scale"),
    ({"arrivals": "uniform", "arrival_rate_req_per_s": 2.0}, "arrivals must be one of"),
    ({"arrivals": "poisson"}, "arrival rate (requests/s) must be a finite number > 0"),
    ({"arrivals": "poisson", "arrival_rate_req_per_s": 2.0, "arrival_cv": 2.0}, "CV 1"),
    ({"arrivals": "gamma", "arrival_rate_req_per_s": 2.0}, "gamma arrivals need a CV"),
    ({"arrivals": "gamma", "arrival_rate_req_per_s": 2.0, "arrival_cv": -1.0}, "arrival CV"),
    ({"arrival_rate_req_per_s": 2.0}, "needs synthetic arrivals"),
    ({"lengths": ""}, "length source"),
    ({"category": 3}, "category must be a string"),
])
def test_each_bad_value_is_one_error_naming_the_option(fields, message):
    with pytest.raises(ConfigError) as info:
        WorkloadSpec(**{"trace": CONV, **fields})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_command_line_reaches_the_same_checks():
    parser = build_parser()
    args = parser.parse_args(["--trace", CONV, "--window", "-50:-10"])  # not read as an option
    assert args.window == "-50:-10"
    with pytest.raises(ConfigError, match="window start must be a finite number >= 0"):
        workload_spec_from_args(args)
    args = parser.parse_args(["--trace", CONV, "--lengths", "nope.jsonl"])
    with pytest.raises(ConfigError, match="unknown length source 'nope.jsonl'"):
        workload_spec_from_args(args)
    assert parse_window(":600") == (None, 600.0) and parse_window("5:") == (5.0, None)
    assert parse_arrivals("poisson:2") == ("poisson", 2.0, None)
    assert parse_arrivals("gamma:2,3") == ("gamma", 2.0, 3.0)
    for text in ("poisson", "gamma:2", "uniform:2", "poisson:x"):
        with pytest.raises(ConfigError, match="--arrivals"):
            parse_arrivals(text)


def test_a_seed_is_a_whole_number_at_least_zero():
    spec = WorkloadSpec(trace=CONV, limit=3)
    # 2**63 and up used to pass, then broke the sweep's Parquet table (int64) after every
    # point had run
    for seed in (-1, 1.5, True, 2 ** 63, 10 ** 23):
        with pytest.raises(ConfigError, match=r"seed must be a whole number >= 0 and < 2\*\*63"):
            spec.build(seed)
    assert spec.build(7) == spec.build(7)
    assert len(spec.build(2 ** 63 - 1)) == 3


def test_the_length_source_is_read_only_for_traces_that_need_it(monkeypatch):
    import sim.workload.load as load

    def refuse(*args, **kwargs):
        raise AssertionError("length source read for a trace with lengths")
    monkeypatch.setattr(load, "make_length_source", refuse)
    assert len(WorkloadSpec(trace=CONV, limit=5).build(0)) == 5
    with pytest.raises(AssertionError, match="length source read"):
        WorkloadSpec(trace=ARRIVALS_ONLY, limit=5).build(0)


def _old_order(spec: WorkloadSpec, seed: int):
    """The order the commands used before (load, window, arrivals, rate scale, then limit)."""
    import numpy as np
    rng = np.random.default_rng([seed, WORKLOAD_STREAM])
    w = load_trace(spec.trace, rng=rng, start_s=spec.window_start_s, end_s=spec.window_end_s)
    if spec.arrivals != "trace":
        w = resample_arrivals(w, spec.arrival_rate_req_per_s, process=spec.arrivals,
                              cv=spec.arrival_cv or 1.0, rng=rng)
    if spec.rate_scale != 1.0:
        w = rate_scale(w, spec.rate_scale)
    return limit_transform(w, spec.limit)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 400), seed=st.integers(0, 2**32 - 1),
       arrivals=st.sampled_from([("trace", None, None), ("poisson", 3.0, None),
                                 ("gamma", 5.0, 2.5)]),
       scale=st.sampled_from([1.0, 0.5, 3.0]), start=st.sampled_from([None, 100.0]))
def test_limit_while_reading_selects_what_limit_after_the_transforms_did(n, seed, arrivals,
                                                                         scale, start):
    process, rate, cv = arrivals
    spec = WorkloadSpec(trace=CONV, window_start_s=start, limit=n, rate_scale=scale,
                        arrivals=process, arrival_rate_req_per_s=rate, arrival_cv=cv)
    assert spec.build(seed).requests == _old_order(spec, seed).requests
