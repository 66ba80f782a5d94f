"""Roofline latency: hand-computed passes on a tiny model, regimes, tp, overheads, presets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import ConfigError
from sim.latency.base import LatencyModel
from sim.latency.hardware import GpuSpec, get_gpu
from sim.latency.models import ModelSpec, get_model
from sim.latency.presets import roofline_for
from sim.latency.roofline import RooflineLatency

# Tiny shapes, hand-derived below.  Target: 2 layers, hidden 64, 4 heads (head_dim 16),
# 2 KV heads (kv_dim 32), ffn 128, vocab 256, fp32.
#   attention params/layer = 64*64 + 2*64*32 + 64*64 = 12288; mlp = 3*64*128 = 24576
#   params/layer = 12288 + 24576 + 2*64 (norms) = 36992
#   non-embedding = 2*36992 + 64 = 74048; lm_head = embedding = 256*64 = 16384
#   streamed weight bytes = (74048 + 16384) * 4 = 361728
#   matmul params/token = 2*(12288 + 24576) = 73728
#   FLOPs/token in verification = 2*73728 + 2*16384 = 180224; FLOPs/attended pair = 4*2*64 = 512
#   bytes/token in verification = KV 512 + embedding row 256 + logits 1024 = 1792
#   bytes/context token = KV 512
TARGET = ModelSpec("t", 2, 64, 4, 2, 128, 256, dtype_bytes=4)
# Draft: the same with 1 layer: non-embedding 37056; matmul params/token 36864;
#   FLOPs per sequence = 2*36864 + 2*16384 = 106496, per pair 4*1*64 = 256;
#   streamed bytes = (37056 + 16384) * 4 = 213760; bytes/seq = 256 + 256 + 1024 = 1536;
#   bytes/context token = 256.
DRAFT = ModelSpec("d", 1, 64, 4, 2, 128, 256, dtype_bytes=4)
# 1 GFLOP/s and 1 GB/s, so FLOPs and bytes read directly as nanoseconds.
GPU = GpuSpec("toy", peak_flops=1e9, mem_bandwidth_bytes_per_s=1e9, memory_bytes=10_000_000,
              interconnect_bytes_per_s=1e9, allreduce_latency_s=1e-6, compute_efficiency=1.0,
              memory_efficiency=1.0)
US = 1e-6


def toy(**kw) -> RooflineLatency:
    kw.setdefault("target_overhead_s", 0.0)
    kw.setdefault("draft_step_overhead_s", 0.0)
    kw.setdefault("draft_overhead_s", 0.0)
    return RooflineLatency(TARGET, DRAFT, GPU, **kw)


def test_model_spec_derived_sizes() -> None:
    assert TARGET.params_per_layer == 36992
    assert TARGET.non_embedding_params == 74048
    assert TARGET.params_count == 74048 + 2 * 16384
    assert TARGET.weight_bytes == 4 * (74048 + 2 * 16384)
    assert TARGET.matmul_params_per_token == 73728
    assert TARGET.kv_bytes_per_token == 512
    tied = ModelSpec("tied", 2, 64, 4, 2, 128, 256, dtype_bytes=4, tie_word_embeddings=True)
    assert tied.params_count == 74048 + 16384


def test_memory_bound_decode_hand_computed() -> None:
    # batch 1, 1 token, no context: 1 pair -> compute 180736 ns < memory 361728 + 1792 ns.
    assert toy().target_verify_s(1, 1, 0) == pytest.approx(363.520 * US, rel=1e-12)
    # batch 2, 2 tokens, 1000 context: pairs = 2*(500 + 1) = 1002 -> compute 873472 ns;
    # memory 361728 + 2*1792 + 1000*512 = 877312 ns (still memory-bound).
    assert toy().target_verify_s(2, 2, 1000) == pytest.approx(877.312 * US, rel=1e-12)


def test_compute_bound_verify_hand_computed() -> None:
    # batch 8, 8 tokens, no context: pairs 8 -> compute 8*180224 + 8*512 = 1445888 ns
    # versus memory 361728 + 8*1792 = 376064 ns.
    assert toy().target_verify_s(8, 8, 0) == pytest.approx(1445.888 * US, rel=1e-12)
    # batch 2 verifying 4 tokens each (k=3): pairs = 8*(0 + (4+1)/2) = 20 -> 1441792 + 10240.
    assert toy().target_verify_s(2, 8, 0) == pytest.approx(1452.032 * US, rel=1e-12)


def test_efficiency_scales_the_bound_term() -> None:
    half = toy(memory_efficiency=0.5, compute_efficiency=0.5)
    assert half.target_verify_s(1, 1, 0) == pytest.approx(2 * 363.520 * US, rel=1e-12)
    assert half.target_verify_s(8, 8, 0) == pytest.approx(2 * 1445.888 * US, rel=1e-12)


def test_overheads_are_added() -> None:
    m = toy(target_overhead_s=4e-3, draft_step_overhead_s=1e-3, draft_overhead_s=1.5e-3)
    assert m.target_verify_s(1, 1, 0) == pytest.approx(363.520 * US + 4e-3, rel=1e-12)
    assert m.draft_step_s(4, 40) == pytest.approx(437.248 * US + 1e-3, rel=1e-12)
    assert m.draft_overhead_s == 1.5e-3
    # Prefill overheads default to the decode ones and can be set apart.
    assert m.target_prefill_s([3, 5]) == pytest.approx(1255.936 * US + 4e-3, rel=1e-12)
    m2 = toy(target_prefill_overhead_s=0.01, draft_prefill_overhead_s=0.02)
    assert m2.target_prefill_s([3, 5]) == pytest.approx(1255.936 * US + 0.01, rel=1e-12)
    assert m2.draft_prefill_s([8]) > 0.02


def test_draft_step_hand_computed() -> None:
    # batch 4, context 40: pairs = 40 + 4 -> compute 4*106496 + 44*256 = 437248 ns;
    # memory 213760 + 4*1536 + 40*256 = 230144 ns.
    assert toy().draft_step_s(4, 40) == pytest.approx(437.248 * US, rel=1e-12)
    # batch 1, context 10: compute 106496 + 11*256 = 109312; memory 213760 + 1536 + 2560.
    assert toy().draft_step_s(1, 10) == pytest.approx(217.856 * US, rel=1e-12)


def test_prefill_hand_computed() -> None:
    # prompts 3 and 5: 8 tokens, 2 logits rows, pairs 6 + 15 = 21:
    # compute 2*73728*8 + 2*16384*2 + 512*21 = 1255936 ns; memory 361728 + 8*768 + 2*1024.
    assert toy().target_prefill_s([3, 5]) == pytest.approx(1255.936 * US, rel=1e-12)
    assert toy().target_prefill_s([5, 0, 3]) == toy().target_prefill_s([3, 5])
    assert toy().target_prefill_s([]) == 0.0
    with pytest.raises(ValueError):
        toy().target_prefill_s([-1])


def test_tensor_parallel_hand_computed() -> None:
    # tp=2: weights/2 = 180864 B; per token KV 256 (1 KV head per rank) + row 256 + logits 512;
    # comm: 2 all-reduces x 2 layers, ring factor 2*(2-1)/2 = 1, 64*4 B each -> 1024 ns/token,
    # plus 4 x 1 us latency.  batch 1, 1 token: memory 181888 ns (compute 90368).
    m = toy(tp=2)
    assert m.target_verify_s(1, 1, 0) == pytest.approx((181.888 + 1.024 + 4.0) * US, rel=1e-12)
    # Compute-bound pass halves its compute, gains the comm term.
    one, two = toy(), toy(tp=2)
    assert two.target_verify_s(64, 64, 0) == pytest.approx(
        one.target_verify_s(64, 64, 0) / 2 + (64 * 1.024 + 4.0) * US, rel=1e-12)
    # Interconnect and latency overrides.
    m3 = toy(tp=2, interconnect_bytes_per_s=2e9, allreduce_latency_s=0.0)
    assert m3.target_verify_s(1, 1, 0) == pytest.approx((181.888 + 0.512) * US, rel=1e-12)


def test_invalid_configurations() -> None:
    with pytest.raises(ConfigError):
        toy(tp=3)  # 4 heads do not split over 3
    with pytest.raises(ConfigError):
        toy(compute_efficiency=0.0)
    with pytest.raises(ConfigError):
        toy(memory_efficiency=1.5)
    with pytest.raises(ConfigError):
        toy(target_overhead_s=-1.0)
    no_draft = RooflineLatency(TARGET, None, GPU)
    with pytest.raises(ConfigError):
        no_draft.draft_step_s(1, 1)
    with pytest.raises(ConfigError):
        no_draft.draft_prefill_s([3])


def test_zero_sized_passes_are_free() -> None:
    assert toy().target_verify_s(0, 0, 0) == 0.0
    assert toy().draft_step_s(0, 0) == 0.0


def test_implements_protocol() -> None:
    assert isinstance(toy(), LatencyModel)


# ---- presets ------------------------------------------------------------------------------

def test_vicuna_7b_a100_plausible() -> None:
    m = RooflineLatency(get_model("vicuna-7b"), get_model("vicuna-68m"), get_gpu("A100-80G"))
    # 13.5 GB of weights / (2.04 TB/s * 0.81) = 8.2 ms + 4 ms overhead.
    assert 10e-3 <= m.target_verify_s(1, 1, 512) <= 14e-3
    assert 1e-3 <= m.draft_step_s(1, 512) <= 2e-3
    assert m.target_verify_s(1, 1, 512) < m.target_verify_s(32, 32, 32 * 512) < \
        m.target_verify_s(256, 256, 256 * 512)
    # A 1000-token prefill is compute-bound: 2 * 6.6e9 * 1000 / (312e12 * 0.63) ~ 67 ms.
    assert 50e-3 <= m.target_prefill_s([1000]) <= 100e-3


def test_preset_param_counts() -> None:
    assert get_model("vicuna-7b").params_count == pytest.approx(6.74e9, rel=0.01)
    assert get_model("vicuna-68m").params_count == pytest.approx(68e6, rel=0.01)
    assert get_model("llama-3.3-70b").params_count == pytest.approx(70.55e9, rel=0.01)
    assert get_model("llama-3.2-1b").params_count == pytest.approx(1.236e9, rel=0.01)
    assert get_model("qwen2.5-coder-1.5b").params_count == pytest.approx(1.54e9, rel=0.01)
    assert get_model("qwen2.5-coder-0.5b").params_count == pytest.approx(0.494e9, rel=0.01)
    assert get_model("vicuna-7b").weight_bytes == pytest.approx(13.5e9, rel=0.01)


def test_big_pairs_build_with_tp() -> None:
    m = roofline_for("llama-3.3-70b", gpu="h100", tp=4)
    assert 10e-3 < m.target_verify_s(1, 1, 1024) < 30e-3
    assert roofline_for("tiny-llama", gpu="l40").draft_step_s(1, 1) > 0
    assert roofline_for("vicuna-7b", draft=None).draft is None
    with pytest.raises(ConfigError):
        roofline_for("vicuna-68m")  # no default draft for a draft model


PRESET_MODELS = [roofline_for(t, gpu=g) for t, g in
                 (("vicuna-7b", "a100"), ("vicuna-33b", "h200"), ("qwen2.5-coder-1.5b", "l40"))]
PRESET_MODELS.append(roofline_for("llama-3.3-70b", gpu="h100", tp=4))
PRESET_MODELS.append(toy(tp=2, target_overhead_s=1e-3))


@settings(max_examples=300, deadline=None)
@given(m=st.sampled_from(PRESET_MODELS), batch=st.integers(1, 512), per_seq=st.integers(1, 9),
       ctx_per_seq=st.integers(0, 4096), extra_tokens=st.integers(0, 600),
       extra_ctx=st.integers(0, 200_000))
def test_more_tokens_or_context_never_faster(m, batch, per_seq, ctx_per_seq, extra_tokens,
                                             extra_ctx) -> None:
    tokens, ctx = batch * per_seq, batch * ctx_per_seq
    base = m.target_verify_s(batch, tokens, ctx)
    assert base > 0
    assert m.target_verify_s(batch, tokens + extra_tokens, ctx) >= base
    assert m.target_verify_s(batch, tokens, ctx + extra_ctx) >= base
    assert m.target_verify_s(batch, tokens + extra_tokens, ctx + extra_ctx) >= base
    d = m.draft_step_s(batch, ctx)
    assert m.draft_step_s(batch, ctx + extra_ctx) >= d
    # More sequences with the same per-sequence context: never faster either.
    assert m.draft_step_s(batch + extra_tokens, (batch + extra_tokens) * ctx_per_seq) >= d


@settings(max_examples=100, deadline=None)
@given(m=st.sampled_from(PRESET_MODELS),
       prompts=st.lists(st.integers(1, 4096), min_size=1, max_size=8),
       extra=st.integers(1, 2048))
def test_prefill_monotone(m, prompts, extra) -> None:
    base = m.target_prefill_s(prompts)
    assert m.target_prefill_s(prompts + [extra]) >= base
    assert m.target_prefill_s([prompts[0] + extra] + prompts[1:]) >= base
    assert m.draft_prefill_s(prompts + [extra]) >= m.draft_prefill_s(prompts)
