"""One model's forward pass on one GPU type, assembled from per-operation kernel times.

A pass of ``T`` tokens (``R`` of them needing logits) costs

    emb(T) + final_norm(T) + lm_head(R)
      + layers * [norm(T) + qkv(T) + rope(T) + attention + o_proj(T) + norm(T)
                  + gate_up(T) + silu_mul(T) + down(T) + add(T) + 2 all-reduces(T) if tp > 1]

with the operation formulas of ``sim.latency.ops`` and the shapes of one tensor-parallel rank
(vLLM's sharding: heads, KV heads and the MLP width divided by ``tp``; KV heads replicated
when fewer than ``tp``). This is the op list of Vidur's profiles (one ``add`` per layer as
profiled). Everything but attention depends on ``T`` alone (``dense_s``); it is memoised per
``T`` so the simulator's decode calls cost a dict lookup plus the attention arithmetic.

With measured rows (``layer_rows``, ``sim.latency.measured``: the preset's own GPU profiled
this layer shape at this TP degree, or a user's Vidur folder) the nine per-layer ops in the
brackets, norms to residual add, are the rows interpolated instead of their closed forms;
attention, the all-reduces, the embedding, the final norm and the lm_head stay closed forms.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from sim.compiled.jit import jitable
from sim.latency.exact import ExactArray, exact, total
from sim.latency.measured import LayerRows, MeasuredLayer
from sim.latency.models import ModelSpec
from sim.latency.ops import (AllReduceFit, AttentionFit, GemmFit, GpuFit, all_reduce_s,
                             causal_fraction, elementwise_s, gemm_s, kv_fraction,
                             prefix_fraction)


def layer_gemm_shapes(model: ModelSpec, tp: int) -> dict[str, tuple[int, int]]:
    """(K, N) of each GEMM of one layer on one rank (the names of Vidur's mlp.csv)."""
    q_rank = model.heads // tp * model.head_dim
    kv_rank = model.kv_heads_per_rank(tp) * model.head_dim
    return {"attn_pre_proj": (model.hidden, q_rank + 2 * kv_rank),
            "attn_post_proj": (q_rank, model.hidden),
            "mlp_up_proj": (model.hidden, 2 * (model.ffn // tp)),
            "mlp_down_proj": (model.ffn // tp, model.hidden)}


def elementwise_bytes_per_token(model: ModelSpec, tp: int) -> dict[str, int]:
    """Bytes each elementwise op moves per token on one rank (reads plus writes)."""
    d = model.dtype_bytes
    h = model.hidden
    q_rank = model.heads // tp * model.head_dim
    kv_rank = model.kv_heads_per_rank(tp) * model.head_dim
    return {"emb": 2 * h * d, "input_layernorm": 2 * h * d, "post_attention_layernorm": 2 * h * d,
            "attn_rope": 2 * (q_rank + kv_rank) * d, "mlp_act": 3 * (model.ffn // tp) * d,
            "add": 3 * h * d}


DECODE_TABLE_SIZE = 1025  # batch sizes whose decode-attention constants are tabulated

#: Per-layer elementwise ops (``emb`` runs once per pass, the final norm like an input norm).
LAYER_ELEMENTWISE = ("input_layernorm", "attn_rope", "post_attention_layernorm", "mlp_act",
                     "add")


class PassCosts:
    """Kernel seconds of ``model``'s passes on one GPU at tensor-parallel degree ``tp``.

    ``layer_rows`` (optional) replaces the fitted per-layer non-attention time by measured
    rows (``sim.latency.measured``: the next row up between them, the closed form scaled to
    the last row beyond it); the attention, lm_head, embedding and all-reduce terms stay the fitted
    formulas. ``dense_source`` says which: "fitted" or the rows' source.
    """

    def __init__(self, model: ModelSpec, peak_flops: float, bytes_per_s: float, fit: GpuFit,
                 attention: AttentionFit, all_reduce: AllReduceFit | None, tp: int = 1,
                 gemm: GemmFit | None = None, layer_rows: LayerRows | None = None) -> None:
        model.check_tp(tp)
        self.model = model
        self.tp = tp
        self.peak_flops = peak_flops
        self.bytes_per_s = bytes_per_s
        self.fit = fit
        self.gemm = gemm if gemm is not None else fit.gemm
        self.attention = attention
        self.all_reduce = all_reduce if tp > 1 else None
        self._shapes = layer_gemm_shapes(model, tp)
        self._bytes = elementwise_bytes_per_token(model, tp)
        self.measured_layer_s = (
            None if layer_rows is None
            else MeasuredLayer(dict(zip(layer_rows.tokens, layer_rows.seconds)),
                               extend=self.fitted_layer_dense_s))
        self.dense_source = "fitted" if layer_rows is None else layer_rows.source
        self._dense: dict[int, float] = {}
        self._layer: dict[int, float] = {}  # layer_dense_s memo (drafters call it per step)
        self._logits: dict[int, float] = {}
        d = model.dtype_bytes
        q_rank = model.heads // tp * model.head_dim
        kv_layer_rank = 2 * model.kv_heads_per_rank(tp) * model.head_dim * d
        self.layers = model.layers
        self.flops_per_pair = 4.0 * q_rank  # QK^T and PV for one query-key pair, one layer
        self.kv_bytes_per_token_layer = kv_layer_rank
        a = attention
        # Decode attention, whole pass, folded per batch size for the hot path:
        # floor = layers * (fixed + per_seq * batch); KV read s/token = layers * kv / (bw * f(b)).
        self._dec_pair_s = model.layers * self.flops_per_pair / peak_flops
        self._dec_pair_small_s = self._dec_pair_s / a.prefix_small_fraction
        self._prefix_small_tokens = a.prefix_small_tokens
        self._dec_floor = [model.layers * (a.decode_fixed_s + a.decode_per_seq_s * b)
                           for b in range(DECODE_TABLE_SIZE)]
        self._dec_kv = [model.layers * kv_layer_rank / (bytes_per_s * a.kv_fraction(max(b, 1)))
                        for b in range(DECODE_TABLE_SIZE)]
        self.attention_params = (
            model.layers, a.decode_fixed_s, a.decode_per_seq_s, kv_layer_rank, bytes_per_s,
            a.decode_kv_fraction_batch1, a.decode_kv_fraction_batch128, self._dec_pair_small_s,
            self._dec_pair_s, a.prefix_small_tokens, a.prefix_small_fraction,
            a.prefix_large_tokens, a.prefix_large_fraction, self.flops_per_pair,
            a.prefill_fixed_s, peak_flops, a.causal_ref_tokens, a.causal_ref_fraction,
            a.causal_exponent, a.causal_cap, DECODE_TABLE_SIZE)

    # ---- token-only terms -----------------------------------------------------------------
    def layer_op_s(self, op: str, tokens: int) -> float:
        """Fitted seconds of one op of one layer (a GEMM or an elementwise op's name)."""
        if op in self._shapes:
            k, n = self._shapes[op]
            return gemm_s(tokens, k, n, self.model.dtype_bytes, self.peak_flops,
                          self.bytes_per_s, self.gemm)
        return elementwise_s(tokens, self._bytes[op], self.bytes_per_s, self.fit.elementwise[op])

    def fitted_layer_dense_s(self, tokens):
        """Fitted seconds of one layer's non-attention kernels (no all-reduce); ``tokens``
        a count or an ``ExactArray`` of positive counts (``sim.latency.exact``)."""
        return (total([self.layer_op_s(op, tokens) for op in self._shapes])
                + total([self.layer_op_s(op, tokens) for op in LAYER_ELEMENTWISE]))

    def all_reduce_layer_s(self, tokens: int) -> float:
        """Two all-reduces of the hidden activations per layer (0 at tp = 1)."""
        if self.all_reduce is None:
            return 0.0
        return 2.0 * all_reduce_s(tokens * self.model.hidden * self.model.dtype_bytes,
                                  self.all_reduce)

    def layer_dense_s(self, tokens: int) -> float:
        """One layer's non-attention kernels (measured when a profile gives them, else
        fitted) plus its all-reduces: what a one-layer drafter of this model's width costs
        besides attention (``sim.drafters``)."""
        cached = self._layer.get(tokens)
        if cached is not None:
            return cached
        if tokens <= 0:
            return 0.0
        t = self._layer_dense_of(tokens)
        self._layer[tokens] = t
        return t

    def _layer_dense_of(self, tokens):
        """``layer_dense_s`` of a positive count or an ``ExactArray`` of them."""
        layer = (self.measured_layer_s(tokens) if self.measured_layer_s is not None
                 else self.fitted_layer_dense_s(tokens))
        return layer + self.all_reduce_layer_s(tokens)

    def layer_dense_s_at(self, tokens: np.ndarray) -> np.ndarray:
        """``layer_dense_s`` at every count of ``tokens`` (positive ints), as ``dense_s_at``."""
        return np.asarray(self._layer_dense_of(token_counts(tokens)), dtype=np.float64)

    def gemm_shape_s(self, tokens: int, k: int, n: int) -> float:
        """A GEMM of ``tokens`` rows by a (k, n) weight on this GPU's fitted constants (the
        formula every projection of the pass uses; for drafter heads' FCs and ResBlocks)."""
        if tokens <= 0:
            return 0.0
        return self.gemm_of(tokens, k, n)

    def gemm_of(self, tokens, k: int, n: int):
        """``gemm_shape_s`` of a positive count or an ``ExactArray`` of them."""
        return gemm_s(tokens, k, n, self.model.dtype_bytes, self.peak_flops, self.bytes_per_s,
                      self.gemm)

    def dense_s(self, tokens: int) -> float:
        """Every non-attention kernel of a ``tokens``-token pass except the lm_head."""
        cached = self._dense.get(tokens)
        if cached is not None:
            return cached
        if tokens <= 0:
            return 0.0
        t = self._dense_of(tokens)
        self._dense[tokens] = t
        return t

    def _dense_of(self, tokens):
        return (self.layers * self._layer_dense_of(tokens)
                + elementwise_s(tokens, self._bytes["emb"], self.bytes_per_s,
                                self.fit.elementwise["emb"])
                + elementwise_s(tokens, self._bytes["input_layernorm"], self.bytes_per_s,
                                self.fit.elementwise["input_layernorm"]))

    def logits_s(self, rows: int) -> float:
        """The lm_head GEMM over ``rows`` tokens (a GEMM like the others; vocab split by tp)."""
        cached = self._logits.get(rows)
        if cached is not None:
            return cached
        t = self.logits_of(rows)
        self._logits[rows] = t
        return t

    def logits_of(self, rows):
        """``logits_s`` of a count or an ``ExactArray`` of counts (not memoised)."""
        m = self.model
        return gemm_s(rows, m.hidden, -(-m.vocab // self.tp), m.dtype_bytes, self.peak_flops,
                      self.bytes_per_s, self.gemm)

    def dense_s_at(self, tokens: np.ndarray) -> np.ndarray:
        """``dense_s`` at every count of ``tokens`` (positive ints) in one numpy pass, the
        same bits as the calls one by one (``sim.latency.exact``); not memoised."""
        return np.asarray(self._dense_of(token_counts(tokens)), dtype=np.float64)

    def logits_s_at(self, rows: np.ndarray) -> np.ndarray:
        """``logits_s`` at every count of ``rows`` (positive ints), as ``dense_s_at``."""
        return np.asarray(self.logits_of(token_counts(rows)), dtype=np.float64)

    def memoize_at(self, tokens) -> None:
        """Put ``dense_s`` and ``logits_s`` of every positive count of ``tokens`` not memoised
        yet into their memos, in one numpy pass each (``dense_s_at`` / ``logits_s_at``: the
        same bits as the calls one by one): for a caller about to ask many counts one by one
        (the estimator's tables, ``RooflineLatency.memoize_tokens``)."""
        for memo, at in ((self._dense, self.dense_s_at), (self._logits, self.logits_s_at)):
            counts = sorted({int(t) for t in tokens if t > 0 and int(t) not in memo})
            if counts:
                memo.update(zip(counts, at(np.array(counts, dtype=np.int64)).tolist()))

    # ---- attention --------------------------------------------------------------------------
    def decode_attention_s(self, batch: int, tokens: int, context_tokens: float) -> float:
        """All layers' attention of a decode/verification pass: ``batch`` sequences, ``tokens``
        query positions, ``context_tokens`` cached positions in total."""
        return decode_attention(self.attention_params, self._dec_floor, self._dec_kv, batch,
                                tokens, context_tokens)

    def prefill_attention_s(self, chunks: Sequence[tuple[int, int]]) -> float:
        """All layers' attention of one prefill pass over ``(new tokens, cached tokens)``
        chunks: causal attention among the new tokens plus attention over the cached prefix."""
        news = [c for c, _ in chunks]
        return prefill_attention(self.attention_params, news, [kv for _, kv in chunks],
                                 len(news))


def token_counts(tokens) -> ExactArray:
    """Token counts as an int64 ``ExactArray``; ValueError unless all are positive (the
    number path answers 0 at 0 tokens without its formulas)."""
    counts = np.asarray(tokens, dtype=np.int64)
    if counts.ndim != 1 or (counts.size and counts.min() < 1):
        raise ValueError("token counts must be a 1-d array of positive integers")
    return exact(counts)


# Attention parameters as one tuple (an array in compiled code): positions of each constant.
(A_LAYERS, A_DEC_FIXED, A_DEC_PER_SEQ, A_KV_BYTES, A_BYTES_PER_S, A_KV_BATCH1, A_KV_BATCH128,
 A_PAIR_SMALL, A_PAIR, A_PREFIX_SMALL_TOKENS, A_PREFIX_SMALL, A_PREFIX_LARGE_TOKENS,
 A_PREFIX_LARGE, A_FLOPS_PER_PAIR, A_PREFILL_FIXED, A_PEAK_FLOPS, A_CAUSAL_TOKENS,
 A_CAUSAL_FRACTION, A_CAUSAL_EXPONENT, A_CAUSAL_CAP, A_TABLE_SIZE) = range(21)


@jitable
def decode_attention(a, floor_table, kv_table, batch, tokens, context_tokens):
    """``PassCosts.decode_attention_s`` with the constants ``a`` (``attention_params``) and
    the per-batch tables."""
    if batch < a[A_TABLE_SIZE]:
        floor = floor_table[batch]
        kv_read = kv_table[batch] * (context_tokens + tokens)
    else:
        floor = a[A_LAYERS] * (a[A_DEC_FIXED] + a[A_DEC_PER_SEQ] * batch)
        kv_read = (a[A_LAYERS] * a[A_KV_BYTES] * (context_tokens + tokens)
                   / (a[A_BYTES_PER_S] * kv_fraction(a[A_KV_BATCH1], a[A_KV_BATCH128], batch)))
    per_seq = tokens / batch
    pairs = tokens * (context_tokens / batch + (per_seq + 1.0) * 0.5)
    if per_seq <= a[A_PREFIX_SMALL_TOKENS]:
        compute = pairs * a[A_PAIR_SMALL]
    else:
        compute = pairs * (a[A_PAIR] / prefix_fraction(
            a[A_PREFIX_SMALL_TOKENS], a[A_PREFIX_LARGE_TOKENS], a[A_PREFIX_SMALL],
            a[A_PREFIX_LARGE], per_seq))
    return floor + (kv_read if kv_read > compute else compute)


@jitable
def prefill_attention(a, news, cached, n):
    """``PassCosts.prefill_attention_s`` over ``n`` chunks of ``news[i]`` new tokens after
    ``cached[i]`` cached ones, with the constants ``a``."""
    flops_s = 0.0
    pair = a[A_FLOPS_PER_PAIR]
    for i in range(n):
        c = news[i]
        kv = cached[i]
        if c <= 0:
            continue
        flops_s += pair * c * (c + 1) / 2.0 / causal_fraction(
            a[A_CAUSAL_FRACTION], a[A_CAUSAL_TOKENS], a[A_CAUSAL_EXPONENT], a[A_CAUSAL_CAP], c)
        if kv > 0:
            flops_s += pair * c * kv / prefix_fraction(
                a[A_PREFIX_SMALL_TOKENS], a[A_PREFIX_LARGE_TOKENS], a[A_PREFIX_SMALL],
                a[A_PREFIX_LARGE], c)
    if flops_s == 0.0:
        return 0.0
    return a[A_LAYERS] * (a[A_PREFILL_FIXED] + flops_s / a[A_PEAK_FLOPS])
