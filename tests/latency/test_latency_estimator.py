"""Table estimator: exact on table points, bounded error between them, linear beyond."""

from __future__ import annotations

import bisect

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


def lower_bucket(per_seq: float) -> int:
    return BUCKETS[max(0, bisect.bisect_right(BUCKETS, per_seq) - 1)]


def upper_bucket(per_seq: float) -> float:
    i = bisect.bisect_right(BUCKETS, per_seq)
    return BUCKETS[i] if i < len(BUCKETS) else per_seq


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
            assert EST.target_verify_s(s, s, c * s) == TRUTH.target_verify_s(s, s, c * s)
            assert EST.draft_step_s(s, c * s) == TRUTH.draft_step_s(s, c * s)


def test_between_points_padded_and_rounded_down() -> None:
    # 5 tokens -> size 8; 700 tokens/seq -> bucket 512.
    assert EST.target_verify_s(5, 5, 5 * 700) == TRUTH.target_verify_s(8, 8, 8 * 512)
    assert EST.target_verify_s(5, 5, 5 * 700) != TRUTH.target_verify_s(5, 5, 5 * 700)
    assert EST.draft_step_s(33, 33 * 1500) == TRUTH.draft_step_s(64, 64 * 1024)
    # A verify pass of 4 sequences x 8 tokens at 2048 context each reads 8192 cached
    # positions: looked up at size 32 and 8192 / 32 = 256 per query position.
    assert EST.target_verify_s(4, 32, 4 * 2048) == TRUTH.target_verify_s(32, 32, 32 * 256)
    # Context below the smallest bucket uses it.
    assert EST.target_verify_s(1, 1, 0) == TRUTH.target_verify_s(1, 1, 1)


REL = 1e-12  # float slack on interval bounds


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 1024), per_seq=st.integers(0, 4096))
def test_error_bounded_between_points(n: int, per_seq: int) -> None:
    """Stated bound.  For plain decode batches (batch = tokens = n, per-sequence context L)
    the estimate and the truth both lie in [truth(n, min(L, lower bucket)),
    truth(pad(n), max(L, upper bucket))], so their gap is at most that interval's width.
    For vicuna-7b + 68m on A100 the relative error over n in 1..1024 and L in 0..4096 is
    within -50 % .. +80 % (worst cases: 33 sequences padded to 64 at long context, over;
    1024 sequences with L just under 256 rounded to bucket 1, under)."""
    s = PAD.pad(n)
    lo_ctx = min(per_seq, lower_bucket(per_seq))
    hi_ctx = upper_bucket(per_seq)
    est = EST.target_verify_s(n, n, n * per_seq)
    truth = TRUTH.target_verify_s(n, n, n * per_seq)
    lo = TRUTH.target_verify_s(n, n, n * lo_ctx) * (1 - REL)
    hi = TRUTH.target_verify_s(s, s, s * hi_ctx) * (1 + REL)
    assert lo <= est <= hi and lo <= truth <= hi
    assert -0.5 * truth <= est - truth <= 0.8 * truth
    d_est = EST.draft_step_s(n, n * per_seq)
    d_truth = TRUTH.draft_step_s(n, n * per_seq)
    assert TRUTH.draft_step_s(n, n * lo_ctx) * (1 - REL) <= d_est
    assert d_est <= TRUTH.draft_step_s(s, s * hi_ctx) * (1 + REL)
    assert -0.5 * d_truth <= d_est - d_truth <= 0.8 * d_truth


def test_worst_cases_of_the_stated_bound() -> None:
    over = EST.target_verify_s(33, 33, 33 * 4000) / TRUTH.target_verify_s(33, 33, 33 * 4000)
    under = EST.draft_step_s(1024, 1024 * 255) / TRUTH.draft_step_s(1024, 1024 * 255)
    assert 1.5 < over < 1.8 and 0.5 < under < 0.9


def test_linear_beyond_largest_size() -> None:
    s_max = PAD.max_size
    at_max = EST.target_verify_s(s_max, s_max, s_max * 512)
    assert EST.target_verify_s(s_max + 1, s_max + 1, (s_max + 1) * 512) >= at_max
    a = EST.target_verify_s(2000, 2000, 2000 * 512)
    b = EST.target_verify_s(3000, 3000, 3000 * 512)
    c = EST.target_verify_s(4000, 4000, 4000 * 512)
    assert b - a == pytest.approx(c - b, rel=1e-9)  # a straight line
    # The roofline is linear there too (compute-bound), so extrapolation stays close.
    assert a == pytest.approx(TRUTH.target_verify_s(2000, 2000, 2000 * 512), rel=0.05)
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
    assert clamped.target_verify_s(8, 8, 8 * 6000) == TRUTH.target_verify_s(8, 8, 8 * 2048)


def test_no_draft_model() -> None:
    est = TableEstimator.from_model(roofline_for("vicuna-7b", draft=None), PAD)
    assert est.draft_table is None
    assert est.target_verify_s(4, 4, 400) > 0
    with pytest.raises(ConfigError):
        est.draft_step_s(1, 1)


def test_custom_sizes_and_buckets() -> None:
    pad = GraphPadding(sizes=(1, 2, 4))
    est = TableEstimator.from_model(TRUTH, pad, context_buckets=(0, 100))
    assert est.target_verify_s(3, 3, 3 * 50) == TRUTH.target_verify_s(4, 4, 0)
    assert est.target_verify_s(3, 3, 3 * 150) == pytest.approx(TRUTH.target_verify_s(4, 4, 600))
    clamped = TableEstimator.from_model(TRUTH, pad, context_buckets=(0, 100),
                                        extrapolate_context=False)
    assert clamped.target_verify_s(3, 3, 3 * 150) == TRUTH.target_verify_s(4, 4, 400)
    with pytest.raises(ConfigError):
        TableEstimator.from_model(TRUTH, pad, context_buckets=(100, 0))
    single = TableEstimator.from_model(TRUTH, GraphPadding(sizes=(8,)), context_buckets=(1,))
    assert single.target_verify_s(16, 16, 16) == pytest.approx(2 * TRUTH.target_verify_s(8, 8, 8))
