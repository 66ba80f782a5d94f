"""The one iteration-duration function and the two serving engines: hand-computed shapes,
monotone truth and estimator (hypothesis), the engine name's one validation."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core.padding import GraphPadding
from sim.errors import ConfigError
from sim.latency.estimator import TableEstimator
from sim.latency.iteration import (DEFAULT_ENGINE, ENGINES, DecodeShape, check_engine,
                                   decode_iteration_s, draft_shape, draft_step_rows,
                                   expanded_kv_tokens, prefill_iteration_s, verify_shape)
from sim.latency.presets import roofline_for

PAD = GraphPadding()
NO_PAD = GraphPadding(enabled=False)
# The closed-form truth (smooth, monotone in the tokens); the measured truth, whose layer
# time dips where cuBLAS picks a faster kernel for more tokens, is checked on its own below.
ROOF = roofline_for("vicuna-7b", gpu="A100-80G", dense_ops="fitted")
ROOF_70B = roofline_for("llama-3.3-70b", gpu="H100", tp=4, dense_ops="fitted")
MEASURED = {"measured 7b": roofline_for("vicuna-7b", gpu="A100-80G"),
            "measured 70b tp4": roofline_for("llama-3.3-70b", gpu="H100", tp=4)}
PROFILE = Path(__file__).parents[2] / "calibrate/profiles/cpu-2core-qwen2.5-coder-1.5b-0.5b.json"


def _profile_and_estimator():
    from sim.latency.profile import load_profile
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # outside its CPU-measured domain
        profile = load_profile(PROFILE)
        return profile, TableEstimator.from_model(profile, PAD)


MODELS = {"roofline 7b": ROOF, "roofline 70b tp4": ROOF_70B,
          "estimator over 7b": TableEstimator.from_model(ROOF, PAD),
          "estimator over 70b tp4": TableEstimator.from_model(ROOF_70B, PAD)}
MODELS["calibrated profile"], MODELS["estimator over profile"] = _profile_and_estimator()


def test_engine_names_and_default():
    assert ENGINES == ("single-pass", "vllm-0.6") and DEFAULT_ENGINE == "single-pass"
    assert check_engine("vllm-0.6") == "vllm-0.6"
    with pytest.raises(ConfigError, match="single-pass, vllm-0.6"):
        check_engine("vllm")


def test_verify_shapes_by_hand():
    # 3 requests, contexts 10, 20, 30, k = 2 each
    assert verify_shape("single-pass", 3, 60, 6) == (3, 9, 60)
    # batch expansion: 9 rows reading 3 * 60 + 3 * (2 * 3 / 2) = 189 positions
    assert verify_shape("vllm-0.6", 3, 60, 6) == (9, 9, 189)
    assert expanded_kv_tokens([10, 20, 30], [2, 2, 2]) == 189
    # non-uniform [2, 0, 1]: (3 * 10 + 3) + 20 + (2 * 30 + 1) = 114
    assert verify_shape("vllm-0.6", 3, 60, 3, [10, 20, 30], [2, 0, 1]) == (6, 6, 114)
    with pytest.raises(ValueError):
        verify_shape("vllm-0.6", 3, 60, 4)
    # plain decoding is the same pass for both
    assert verify_shape("vllm-0.6", 3, 60, 0) == verify_shape("single-pass", 3, 60, 0)


def test_draft_shapes_by_hand():
    # 3 steps: 4, 4, 2 requests over contexts 400, 400, 250; the draft KV grows a token a step
    assert draft_shape([4, 4, 2], [400, 400, 250]) == ((4, 4, 2), (400, 404, 254))
    # batch expansion: 1 bonus copy (L - 1 = 99) in the first two steps
    assert draft_shape([4, 4, 2], [400, 400, 250], [1, 1, 0], [99, 99, 0]) == (
        (5, 5, 2), (499, 504, 254))
    assert draft_step_rows(1, 4, 400, 1, 99) == (5, 504)


class Linear:
    """ms: verify = 10 + 0.5 tokens + 0.1 rows + 0.001 KV; draft = 1 + 0.1 rows + 0.001 KV."""

    draft_overhead_s = 0.5e-3

    def target_verify_s(self, batch_size, tokens, context_tokens):
        return (10 + 0.5 * tokens + 0.1 * batch_size + 0.001 * context_tokens) * 1e-3

    def draft_step_s(self, batch_size, context_tokens):
        return (1 + 0.1 * batch_size + 0.001 * context_tokens) * 1e-3

    def target_prefill_s(self, prompt_tokens, cached_tokens=None):
        return 0.01 * sum(prompt_tokens) * 1e-3

    def draft_prefill_s(self, prompt_tokens, cached_tokens=None):
        return 0.001 * sum(prompt_tokens) * 1e-3


def test_decode_iteration_by_hand_with_padding():
    shape = DecodeShape(3, 60, 3, 9, 60, (3, 3), (60, 63))
    # draft: 0.5 + (1 + 0.4 + 0.06) + (1 + 0.4 + 0.063) [3 rows pad to 4];
    # verify: 9 tokens pad to 16: 10 + 8 + 0.3 + 0.06
    expected = 0.5 + 1.46 + 1.463 + 18.36
    assert decode_iteration_s(Linear(), PAD, shape) == pytest.approx(expected * 1e-3)
    # eager: no padding anywhere
    expected = 0.5 + 1.36 + 1.363 + (10 + 4.5 + 0.3 + 0.06)
    assert decode_iteration_s(Linear(), NO_PAD, shape) == pytest.approx(expected * 1e-3)
    # no draft steps: no draft overhead
    plain = DecodeShape(3, 60, 3, 3, 60)
    assert decode_iteration_s(Linear(), NO_PAD, plain) == pytest.approx(11.86e-3)
    assert prefill_iteration_s(Linear(), [100, 50], True) == pytest.approx(1.65e-3)
    assert prefill_iteration_s(Linear(), [100, 50], False) == pytest.approx(1.5e-3)


def uniform_iteration_s(model, engine: str, batch: int, context: int, k: int) -> float:
    """One iteration of ``batch`` requests with ``context`` cached tokens each, drafting and
    verifying k tokens each (the shape the server builds for that plan)."""
    rows, tokens, kv = verify_shape(engine, batch, batch * context, batch * k)
    draft_rows, draft_kv = draft_shape([batch] * k, [batch * context] * k)
    return decode_iteration_s(model, PAD, DecodeShape(batch, batch * context, rows, tokens, kv,
                                                      draft_rows, draft_kv))


# Padding slots count as query tokens in the roofline's attention pairs (T (C/B + (T/B+1)/2)),
# so a real request replacing a padding slot can make a compute-bound pass ~1e-7 faster.
REL = 1e-6


# the CPU profile is asked far outside its measured domain on purpose (it used to pass only
# because building its estimator above had used up the profile's warnings)
@pytest.mark.filterwarnings("ignore::sim.latency.domain.OutsideDomainWarning")
@pytest.mark.parametrize("name", list(MODELS))
@settings(max_examples=150, deadline=None)
@given(engine=st.sampled_from(ENGINES), batch=st.integers(1, 300), context=st.integers(1, 4000),
       k=st.integers(0, 8))
def test_iteration_time_is_monotone(name, engine, batch, context, k):
    """Non-decreasing in k, batch and context; a k > 0 plan never beats plain decoding."""
    model = MODELS[name]
    t = uniform_iteration_s(model, engine, batch, context, k)
    assert uniform_iteration_s(model, engine, batch, context, k + 1) >= t * (1 - REL)
    assert uniform_iteration_s(model, engine, batch + 1, context, k) >= t * (1 - REL)
    assert uniform_iteration_s(model, engine, batch, context + 1, k) >= t * (1 - REL)
    assert t >= uniform_iteration_s(model, engine, batch, context, 0) * (1 - REL)


@pytest.mark.parametrize("name", list(MEASURED))
@settings(max_examples=150, deadline=None)
@given(engine=st.sampled_from(ENGINES), batch=st.integers(1, 300), context=st.integers(1, 4000),
       k=st.integers(0, 8))
def test_measured_truth_monotone_in_context(name, engine, batch, context, k):
    """Over the measured truth: non-decreasing in the context (attention is a closed form);
    in k and the batch only up to the measured dips (not asserted)."""
    model = MEASURED[name]
    t = uniform_iteration_s(model, engine, batch, context, k)
    assert uniform_iteration_s(model, engine, batch, context + 1, k) >= t * (1 - REL)


@settings(max_examples=150, deadline=None)
@given(batch=st.integers(1, 300), context=st.integers(1, 4000), k=st.integers(0, 8))
def test_batch_expansion_never_cheaper_than_single_pass(batch, context, k):
    # At tiny contexts the roofline's two attention-pair counts (padding slots counted as
    # query tokens per sequence vs per row) differ by ~1e-5 of a compute-bound pass.
    for model in (ROOF, MODELS["estimator over 7b"]):
        single = uniform_iteration_s(model, "single-pass", batch, context, k)
        assert uniform_iteration_s(model, "vllm-0.6", batch, context, k) >= single * (1 - 1e-4)


def test_estimator_estimate_close_to_truth_on_the_issue_example():
    """B = 64, L = 1300 (single pass, A100-80G vicuna-7b, closed form): the truth rises 38.71 -> 69.45 ms
    over k = 0..8 (in uneven steps: the GEMMs pad the 64 (k + 1) tokens to 128-row tiles, so
    k = 1 -> 2 (128 -> 192 tokens) costs more than k = 2 -> 3 (192 -> 256)); the estimator is
    within 1 % (the token row's one-sequence pass carries its own causal attention, a little
    more than 64 x (k + 1) tokens need) and never falls. The estimator that compared rows at
    equal total KV gave 45.11 .. 87.51 ms (+15 % .. +27 % of the smooth closed form's
    39.33 .. 68.96 ms)."""
    est = MODELS["estimator over 7b"]
    truth = [ROOF.target_verify_s(64, PAD.pad(64 * (k + 1)), 64 * 1300) for k in range(9)]
    guess = [est.target_verify_s(64, PAD.pad(64 * (k + 1)), 64 * 1300) for k in range(9)]
    assert guess == sorted(guess)
    assert [round(t * 1e3, 2) for t in truth] == [38.71, 41.08, 44.99, 47.70, 52.77, 55.11,
                                                  61.02, 62.82, 69.45]
    assert all(abs(g / t - 1) < 0.01 for g, t in zip(guess, truth))
