"""Table estimator: exact on table points, interpolated between them, monotone everywhere."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core.padding import GraphPadding
from sim.errors import ConfigError
from sim.latency.base import LatencyModel
from sim.latency.estimator import DEFAULT_CONTEXT_BUCKETS, TableEstimator
from sim.latency.presets import roofline_for

PAD = GraphPadding()
TRUTH = roofline_for("vicuna-7b", gpu="a100")
EST = TableEstimator.from_model(TRUTH, PAD)
BUCKETS = DEFAULT_CONTEXT_BUCKETS


def test_shape_and_protocol() -> None:
    assert len(EST.sizes) == 37 and EST.context_buckets == BUCKETS
    assert len(EST.verify_table) == 5 and all(len(r) == 37 for r in EST.verify_table)
    assert isinstance(EST, LatencyModel)
    assert EST.draft_overhead_s == TRUTH.draft_overhead_s
    assert EST.target_prefill_s([1000, 20]) == TRUTH.target_prefill_s([1000, 20])
    assert EST.draft_prefill_s([1000]) == TRUTH.draft_prefill_s([1000])


def test_exact_on_table_points() -> None:
    for s in PAD.sizes:
        for c in BUCKETS:
            assert EST.target_verify_s(s, s, c * s) == pytest.approx(
                TRUTH.target_verify_s(s, s, c * s), rel=1e-12)
            assert EST.draft_step_s(s, c * s) == pytest.approx(TRUTH.draft_step_s(s, c * s),
                                                               rel=1e-12)


def test_between_points_padded_and_interpolated_on_kv_read() -> None:
    # 5 tokens -> size 8; 3500 KV tokens read lies between row 8's knots 8 * 256 and 8 * 512.
    lo, hi = TRUTH.target_verify_s(8, 8, 2048), TRUTH.target_verify_s(8, 8, 4096)
    expected = lo + (3500 - 2048) / 2048 * (hi - lo)
    assert EST.target_verify_s(5, 5, 3500) == pytest.approx(expected, rel=1e-12)
    # A verification pass of 4 sequences x 8 tokens reading 4 x 2048 positions is looked up
    # at size 32 and K = 8192 = 32 x 256: a table point.
    assert EST.target_verify_s(4, 32, 4 * 2048) == pytest.approx(
        TRUTH.target_verify_s(32, 32, 32 * 256), rel=1e-12)
    # Below the smallest bucket the row is flat.
    assert EST.target_verify_s(1, 1, 0) == pytest.approx(TRUTH.target_verify_s(1, 1, 1))


def test_issue_example_is_monotone_in_k() -> None:
    """B = 64, L = 1300 (issue 10): the old floor-to-bucket lookup gave 32.8, 32.9, 27.7 ms."""
    times = [EST.target_verify_s(64, PAD.pad(64 * (k + 1)), 64 * 1300) for k in range(9)]
    assert times == sorted(times)
    assert times[0] == pytest.approx(TRUTH.target_verify_s(64, 64, 64 * 1300), rel=0.02)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 1024), per_seq=st.integers(0, 4096))
def test_error_bounded_for_decode_batches(n: int, per_seq: int) -> None:
    """Stated bound: for plain decode batches of n sequences with L cached tokens each the
    estimate is never below the truth (padding rounds the size up; a chord over the convex
    roofline lies above it) and at most 31 % above it (worst: 260 sequences padded to 288 at
    L ~ 110, interpolated across the compute/memory knee between buckets 1 and 256)."""
    for est, truth in ((EST.target_verify_s(n, n, n * per_seq),
                        TRUTH.target_verify_s(n, n, n * per_seq)),
                       (EST.draft_step_s(n, n * per_seq), TRUTH.draft_step_s(n, n * per_seq))):
        assert truth * (1 - 1e-9) <= est <= 1.31 * truth


tables = st.lists(st.lists(st.floats(0.001, 1.0), min_size=4, max_size=4), min_size=3,
                  max_size=3)


@settings(max_examples=200, deadline=None)
@given(table=tables, draft=tables, a=st.tuples(st.integers(1, 12), st.integers(0, 9000)),
       b=st.tuples(st.integers(1, 12), st.integers(0, 9000)), extrapolate=st.booleans())
def test_monotone_by_construction_on_any_table(table, draft, a, b, extrapolate) -> None:
    """Whatever the tabulated times (a noisy calibrated profile), the prediction is
    non-decreasing in the pass size and in the KV tokens read, eager sizes included."""
    est = TableEstimator(TRUTH, (1, 2, 4, 8), (0, 100, 1000), table, draft, fit_points=2,
                         extrapolate_context=extrapolate)
    (s1, k1), (s2, k2) = sorted([a, b])
    k_lo, k_hi = min(k1, k2), max(k1, k2)
    for fn in (lambda s, k: est.target_verify_s(s, s, k), est.draft_step_s):
        assert fn(s1, k_lo) <= fn(s2, k_lo) + 1e-12
        assert fn(s1, k_lo) <= fn(s1, k_hi) + 1e-12
        assert fn(s1, k_lo) <= fn(s2, k_hi) + 1e-12


def test_lines_beyond_largest_size() -> None:
    s_max = PAD.max_size
    k = 1024 * 512  # a grid knot: fixed KV read, growing eager size
    at_max = EST.target_verify_s(s_max, s_max, k)
    assert EST.target_verify_s(s_max + 1, s_max + 1, k) >= at_max
    a, b, c = (EST.target_verify_s(n, n, k) for n in (2000, 3000, 4000))
    assert at_max <= a <= b <= c and c - b >= b - a  # the upper envelope of straight lines
    for n, t in ((2000, a), (3000, b), (4000, c)):  # memory-bound, then compute-bound
        assert t == pytest.approx(TRUTH.target_verify_s(n, n, k), rel=0.05)
    assert EST.draft_step_s(2048, 2048 * 256) == pytest.approx(
        TRUTH.draft_step_s(2048, 2048 * 256), rel=0.05)


def test_context_beyond_largest_bucket() -> None:
    # Extrapolated linearly from the 1024 and 2048 buckets (the roofline is linear there).
    est, truth = EST.target_verify_s(8, 8, 8 * 6000), TRUTH.target_verify_s(8, 8, 8 * 6000)
    assert est == pytest.approx(truth, rel=0.02)
    assert EST.draft_step_s(8, 8 * 6000) == pytest.approx(TRUTH.draft_step_s(8, 8 * 6000), rel=0.02)
    assert EST.target_verify_s(2000, 2000, 2000 * 3000) == pytest.approx(
        TRUTH.target_verify_s(2000, 2000, 2000 * 3000), rel=0.05)
    clamped = TableEstimator.from_model(TRUTH, PAD, extrapolate_context=False)
    assert clamped.target_verify_s(8, 8, 8 * 6000) == pytest.approx(
        TRUTH.target_verify_s(8, 8, 8 * 2048), rel=1e-12)


def test_no_draft_model() -> None:
    est = TableEstimator.from_model(roofline_for("vicuna-7b", draft=None), PAD)
    assert est.draft_table is None
    assert est.target_verify_s(4, 4, 400) > 0
    with pytest.raises(ConfigError):
        est.draft_step_s(1, 1)


def test_custom_sizes_and_buckets() -> None:
    pad = GraphPadding(sizes=(1, 2, 4))
    est = TableEstimator.from_model(TRUTH, pad, context_buckets=(0, 100))
    t0, t400 = TRUTH.target_verify_s(4, 4, 0), TRUTH.target_verify_s(4, 4, 400)
    assert est.target_verify_s(3, 3, 150) == pytest.approx(t0 + 150 / 400 * (t400 - t0))
    assert est.target_verify_s(3, 3, 600) == pytest.approx(TRUTH.target_verify_s(4, 4, 600))
    clamped = TableEstimator.from_model(TRUTH, pad, context_buckets=(0, 100),
                                        extrapolate_context=False)
    assert clamped.target_verify_s(3, 3, 600) == pytest.approx(t400)
    with pytest.raises(ConfigError):
        TableEstimator.from_model(TRUTH, pad, context_buckets=(100, 0))
    with pytest.raises(ConfigError):
        TableEstimator(TRUTH, (1, 2), (0, 100), [[1.0, 2.0]], None)
    single = TableEstimator.from_model(TRUTH, GraphPadding(sizes=(8,)), context_buckets=(1,))
    assert single.target_verify_s(16, 16, 16) == pytest.approx(2 * TRUTH.target_verify_s(8, 8, 8))
