"""Per-op kernel formulas: hand-computed cases, and each modelled op against real GPU rows
(tests/data/vidur: a few rows of Vidur's A100/H100 profiles, MIT, see its README)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import ConfigError
from sim.latency.fitted_constants import ATTENTION, FITS
from sim.latency.hardware import get_gpu
from sim.latency.models import get_model
from sim.latency.ops import (AllReduceFit, ElementwiseFit, GemmFit, all_reduce_s,
                             elementwise_s, gemm_s)
from sim.latency.roofline import pass_costs_for
from sim.latency.vidur_csv import ELEMENTWISE_OPS, GEMM_OPS, read_all_reduce_csv, read_mlp_csv

DATA = Path(__file__).resolve().parents[1] / "data" / "vidur"
A100_7B = read_mlp_csv(DATA / "a100/Llama-2-7b-hf/mlp.csv")
H100_70B = read_mlp_csv(DATA / "h100/Llama-2-70b-hf/mlp.csv")


# ---- hand-computed formulas ---------------------------------------------------------------
def test_gemm_additive_knee_hand_computed() -> None:
    # 1 GFLOP/s, 1 GB/s, p = 1 (the two bounds add), launch 1 us.
    fit = GemmFit(1.0, 1.0, 1.0, 1e-6)
    # M=2, K=3, N=4, 2 bytes: bytes (12 + 2*7) * 2 = 52 -> 52 ns; FLOPs 2*2*3*4 = 48 -> 48 ns.
    assert gemm_s(2, 3, 4, 2, 1e9, 1e9, fit) == pytest.approx(1e-6 + 100e-9, rel=1e-12)
    # p = 2: sqrt(52^2 + 48^2) = 70.767 ns.
    fit2 = GemmFit(1.0, 1.0, 2.0, 0.0)
    assert gemm_s(2, 3, 4, 2, 1e9, 1e9, fit2) == pytest.approx((52**2 + 48**2) ** 0.5 * 1e-9)
    # Halving the efficiencies doubles both bounds.
    half = GemmFit(0.5, 0.5, 2.0, 0.0)
    assert gemm_s(2, 3, 4, 2, 1e9, 1e9, half) == pytest.approx(2 * gemm_s(2, 3, 4, 2, 1e9, 1e9, fit2))
    assert gemm_s(0, 3, 4, 2, 1e9, 1e9, fit) == 0.0


def test_gemm_tile_padding_hand_computed() -> None:
    # 1 GFLOP/s, 1 GB/s, p = 1, no launch; K=3, N=4, 2 bytes: bytes (12 + 7 M) * 2 ns,
    # FLOPs 24 ns per row. One 4-row tile: M = 2 pays 4 rows (96 ns) + 52 ns of bytes.
    four = GemmFit(1.0, 1.0, 1.0, 0.0, tile_rows=(4,), tile_relative_efficiency=(1.0,))
    assert gemm_s(2, 3, 4, 2, 1e9, 1e9, four) == pytest.approx(148e-9, rel=1e-12)
    # M = 5 pays 8 rows: 192 ns + (12 + 35) * 2 = 94 ns.
    assert gemm_s(5, 3, 4, 2, 1e9, 1e9, four) == pytest.approx(286e-9, rel=1e-12)
    # A second, 1-row tile at 0.8 of the efficiency: the faster of the two per M.
    two = GemmFit(1.0, 1.0, 1.0, 0.0, tile_rows=(4, 1), tile_relative_efficiency=(1.0, 0.8))
    # M = 5: 4-row tile 192 ns, 1-row tile 120 / 0.8 = 150 ns -> 150 + 94.
    assert gemm_s(5, 3, 4, 2, 1e9, 1e9, two) == pytest.approx(244e-9, rel=1e-12)
    # M = 8: 4-row tile 192 ns, 1-row tile 192 / 0.8 = 240 ns -> 192 + (12 + 56) * 2.
    assert gemm_s(8, 3, 4, 2, 1e9, 1e9, two) == pytest.approx(328e-9, rel=1e-12)
    # No tiles: the smooth knee, M = 5 -> 120 + 94 ns.
    assert gemm_s(5, 3, 4, 2, 1e9, 1e9, GemmFit(1.0, 1.0, 1.0, 0.0)) == pytest.approx(214e-9)


def test_gemm_tile_padding_is_a_staircase() -> None:
    # Compute-bound (bytes free): every M in one 128-row tile costs the same; M = 129 pays
    # a second tile.
    fit = GemmFit(1.0, 1.0, 20.0, 0.0, tile_rows=(128,), tile_relative_efficiency=(1.0,))
    times = [gemm_s(m, 4096, 4096, 2, 1e12, 1e30, fit) for m in (1, 64, 128, 129, 256, 257)]
    assert times[0] == times[1] == times[2] == pytest.approx(2 * 128 * 4096 * 4096 / 1e12)
    assert times[3] == times[4] == pytest.approx(2 * times[0])
    assert times[5] == pytest.approx(3 * times[0])


def test_sharp_knee_tends_to_the_plain_roofline() -> None:
    sharp = GemmFit(1.0, 1.0, 20.0, 0.0)
    assert gemm_s(2, 3, 4, 2, 1e9, 1e9, sharp) == pytest.approx(52e-9, rel=0.01)


def test_elementwise_and_all_reduce_hand_computed() -> None:
    assert elementwise_s(10, 100, 1e9, ElementwiseFit(2e-6, 0.5)) == pytest.approx(4e-6)  # p = 1
    # p = 2: sqrt(2^2 + 2^2) us.
    assert elementwise_s(10, 100, 1e9, ElementwiseFit(2e-6, 0.5, 2.0)) == pytest.approx(8 ** 0.5 * 1e-6)
    assert elementwise_s(0, 100, 1e9, ElementwiseFit(2e-6, 0.5)) == 0.0
    assert all_reduce_s(1e6, AllReduceFit(30e-6, 1e11)) == pytest.approx(40e-6)


def test_bad_gemm_constants_rejected() -> None:
    with pytest.raises(ConfigError):
        GemmFit(0.0, 0.7, 2.0, 0.0)
    with pytest.raises(ConfigError):
        GemmFit(0.8, 0.7, 0.5, 0.0)
    with pytest.raises(ConfigError):
        GemmFit(0.8, 0.7, 2.0, -1.0)
    with pytest.raises(ConfigError, match="same length"):
        GemmFit(0.8, 0.7, 2.0, 0.0, tile_rows=(128, 64), tile_relative_efficiency=(1.0,))
    with pytest.raises(ConfigError, match="tile_rows"):
        GemmFit(0.8, 0.7, 2.0, 0.0, tile_rows=(0,), tile_relative_efficiency=(1.0,))
    with pytest.raises(ConfigError, match="tile_relative_efficiency"):
        GemmFit(0.8, 0.7, 2.0, 0.0, tile_rows=(64,), tile_relative_efficiency=(0.0,))


@settings(max_examples=200, deadline=None)
@given(m=st.integers(1, 8192), extra=st.integers(1, 4096), k=st.integers(64, 16384),
       n=st.integers(64, 32768), gpu=st.sampled_from(sorted(FITS)))
def test_gemm_time_grows_with_tokens(m, extra, k, n, gpu) -> None:
    fit = FITS[gpu].gemm
    assert fit.tile_rows  # the committed fits pad to tiles: a staircase, never decreasing
    assert gemm_s(m + extra, k, n, 2, 312e12, 2e12, fit) >= gemm_s(m, k, n, 2, 312e12, 2e12, fit)


@settings(max_examples=300, deadline=None)
@given(m=st.integers(1, 5000), extra=st.integers(1, 300), k=st.integers(1, 20000),
       n=st.integers(1, 60000),
       tiles=st.lists(st.tuples(st.integers(1, 256), st.floats(0.05, 2.0)), min_size=1,
                      max_size=4, unique_by=lambda t: t[0]),
       sharpness=st.floats(1.0, 30.0), launch=st.floats(0.0, 1e-4))
def test_any_tile_set_is_non_decreasing_in_tokens(m, extra, k, n, tiles, sharpness,
                                                  launch) -> None:
    fit = GemmFit(0.9, 0.7, sharpness, launch, tuple(h for h, _ in tiles),
                  tuple(r for _, r in tiles))
    before, after = (gemm_s(t, k, n, 2, 989e12, 3.35e12, fit) for t in (m, m + extra))
    assert after >= before * (1 - 1e-12)


# ---- the attention constants reproduce the profiles' README fits (A100 Llama-2-7B) ---------
def _a100_7b_costs():
    return pass_costs_for(get_model("llama-2-7b"), get_gpu("a100"), 1)


def test_decode_attention_matches_the_known_fit() -> None:
    costs = _a100_7b_costs()
    for batch, length, k_ms in ((1, 1024, 1.19e-5), (128, 512, 7.6e-6)):
        fit_ms = 0.008 + 0.0012 * batch + k_ms * batch * length
        # Per layer; the model also writes the new token's KV (one more position per row).
        model_ms = costs.decode_attention_s(batch, batch, batch * length) / 32 * 1e3
        assert model_ms == pytest.approx(fit_ms, rel=0.01)


def test_prefill_attention_matches_the_known_fit() -> None:
    costs = _a100_7b_costs()
    for c in (512, 960, 2048):
        fit_ms = 0.012 + 0.232 * (c / 960) ** 1.58
        assert costs.prefill_attention_s([(c, 0)]) / 32 * 1e3 == pytest.approx(fit_ms, rel=0.01)
    # 2,048 tokens: about 0.77 ms per layer (the figure, ~44 TFLOP/s).
    assert costs.prefill_attention_s([(2048, 0)]) / 32 == pytest.approx(0.77e-3, rel=0.03)
    # A chunk over a cached prefix: beta(c) * c * kv at the two ends of beta's range.
    for c, beta in ((256, 1.6e-7), (4096, 1.05e-7)):
        extra_ms = (costs.prefill_attention_s([(c, 10_000)])
                    - costs.prefill_attention_s([(c, 0)])) / 32 * 1e3
        assert extra_ms == pytest.approx(beta * c * 10_000, rel=0.01)


def test_long_prompt_attention_is_quadratic_once_capped() -> None:
    costs = _a100_7b_costs()
    # Beyond ~40k tokens the causal efficiency reaches its cap: time grows as c**2.
    t64k, t128k = (costs.prefill_attention_s([(c, 0)]) for c in (65_536, 131_072))
    assert t128k / t64k == pytest.approx(4.0, rel=0.01)
    # Below it the efficiency still grows: less than quadratic.
    t1k, t2k = (costs.prefill_attention_s([(c, 0)]) for c in (1024, 2048))
    assert 2.5 < t2k / t1k < 3.5
    assert ATTENTION.causal_fraction(1e9) == ATTENTION.causal_cap


# ---- each modelled op against real rows ---------------------------------------------------
def _errors(rows, gpu: str, op: str, model: str, tokens=lambda t: True):
    out = []
    for r in rows:
        if not tokens(r.num_tokens):
            continue
        costs = pass_costs_for(get_model(model), get_gpu(gpu), r.tp)
        out.append(costs.layer_op_s(op, r.num_tokens) / r.seconds(op) - 1)
    return out


def _outside_knee(tokens: int) -> bool:
    return tokens <= 64 or tokens >= 1024


@pytest.mark.parametrize("op", GEMM_OPS)
@pytest.mark.parametrize("rows,gpu,model", [(A100_7B, "a100", "llama-2-7b"),
                                            (H100_70B, "h100", "llama-2-70b")])
def test_gemms_against_real_rows(op: str, rows, gpu: str, model: str) -> None:
    e = _errors(rows, gpu, op, model)
    assert abs(statistics.median(e)) <= 0.12
    # Every row within 28 % (the smooth knee without tile padding: 40 %, its worst rows in the
    # knee, 37 % on these rows). The worst now: H100 Llama-2-70B TP8 o-projection at 1 token,
    # +27 % (an ~8 us kernel timed to 1 us; the fitted launch + weight stream of the small
    # shapes is 2-3 us high on H100); the others within 24 %.
    assert max(map(abs, e)) <= 0.28
    assert max(map(abs, _errors(rows, gpu, op, model, _outside_knee))) <= 0.28


@pytest.mark.parametrize("op", [o for o in ELEMENTWISE_OPS if o != "emb"])
def test_elementwise_ops_against_real_rows(op: str) -> None:
    e = _errors(A100_7B, "a100", op, "llama-2-7b")
    assert abs(statistics.median(e)) <= 0.2
    # Microsecond-resolution timings at small num_tokens: only the big ones are tight.
    big = _errors(A100_7B, "a100", op, "llama-2-7b", lambda t: t >= 512)
    assert max(map(abs, big)) <= 0.25


def test_embedding_against_real_rows() -> None:
    for r in A100_7B:
        if r.num_tokens >= 256:
            costs = pass_costs_for(get_model("llama-2-7b"), get_gpu("a100"), r.tp)
            emb_row = costs.model.hidden * 2 * 2
            model_s = elementwise_s(r.num_tokens, emb_row, 2.039e12, FITS["a100"].elementwise["emb"])
            assert model_s == pytest.approx(r.seconds("emb"), rel=0.2)


def test_whole_layer_against_real_rows() -> None:
    for rows, gpu, model in ((A100_7B, "a100", "llama-2-7b"), (H100_70B, "h100", "llama-2-70b")):
        for r in rows:
            measured = sum(seconds for op, seconds in r.op_s if op != "emb")
            modelled = pass_costs_for(get_model(model), get_gpu(gpu), r.tp).fitted_layer_dense_s(
                r.num_tokens)
            assert modelled == pytest.approx(measured, rel=0.25), (gpu, r.tp, r.num_tokens)


def test_all_reduce_against_real_rows() -> None:
    rows = read_all_reduce_csv(DATA / "network/a100_dgx/all_reduce.csv")
    for r in rows:
        if r.size_bytes >= 3_000_000:  # bandwidth-dominated: close
            model_s = all_reduce_s(r.size_bytes, FITS["a100"].all_reduce[r.workers])
            assert model_s == pytest.approx(r.seconds, rel=0.25), (r.workers, r.size_bytes)
    # Small messages are latency-bound and noisy (10-60 us from one size to the next): the
    # median over many sizes is what the fit matches.
    for workers in (2, 8):
        small = [r for r in rows if r.workers == workers and r.size_bytes < 200_000]
        e = [all_reduce_s(r.size_bytes, FITS["a100"].all_reduce[workers]) / r.seconds - 1
             for r in small]
        assert len(e) >= 20 and abs(statistics.median(e)) <= 0.25
