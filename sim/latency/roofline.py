"""The simulator's default ground truth: per-op kernel times fitted to (for the profiled
presets' layers: read from) real GPU profiles.

Each forward pass costs the sum of its kernels (``sim.latency.pass_costs``: GEMMs with a
fitted bandwidth-to-compute knee, elementwise ops, attention, tensor-parallel all-reduce,
with the constants of the GPU preset's fit) plus a fixed per-pass overhead
(``sim.latency.overhead``: scheduling, input preparation, sampling, launches):

* a decode/verification pass of ``B`` sequences and ``T`` tokens over ``C`` cached tokens:
  ``dense(T) + lm_head(T rows) + decode_attention(B, T, C) + target overhead`` (every
  verified token needs logits);
* a draft step: the same on the draft with ``T = B`` (one token and one logits row per
  sequence) ``+ draft-step overhead``; an iteration that drafts at all pays
  ``draft_overhead_s`` once more;
* a prefill (or chunked-prefill) pass over chunks of ``n_i`` new tokens, ``cached_i`` of the
  same prompt already in the KV cache: ``dense(sum n) + lm_head(one row per chunk) +
  prefill_attention(causal among the new tokens + over the cached prefix) + prefill
  overhead`` (defaults to the decode one).

``dense_ops`` (``sim.latency.measured``) chooses where the per-layer non-attention kernels
come from: ``"measured"`` (default) takes the real rows for a model whose layer shape was
profiled on the preset's own GPU at that TP degree (target and draft each; the closed form
for the others), ``"fitted"`` the closed form everywhere. ``compute_efficiency`` /
``memory_efficiency`` override the fitted GEMM efficiencies (so they need the closed form:
with measured rows they are an error); ``interconnect_bytes_per_s`` /
``allreduce_latency_s`` replace the fitted all-reduce by a ring over that bus.
``target_costs`` supplies the target's costs (a Vidur profile folder,
``sim.latency.vidur_profile``). The decode calls are on the simulator's hot path: the
token-only part of a pass is memoised per token count, the rest is a few float operations.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from sim.errors import ConfigError
from sim.latency.fitted_constants import ATTENTION
from sim.latency.hardware import GpuSpec
from sim.latency.measured import (DEFAULT_DENSE_OPS, LayerRows, check_dense_ops,
                                  profiled_layer_rows)
from sim.latency.models import ModelSpec
from sim.latency.ops import AllReduceFit, AttentionFit
from sim.latency.overhead import (DEFAULT_DRAFT_OVERHEAD_S, DEFAULT_DRAFT_STEP_OVERHEAD_S,
                                  DEFAULT_TARGET_OVERHEAD_S)
from sim.latency.pass_costs import PassCosts

__all__ = ["RooflineLatency", "pass_costs_for", "prefill_chunks", "DEFAULT_TARGET_OVERHEAD_S",
           "DEFAULT_DRAFT_STEP_OVERHEAD_S", "DEFAULT_DRAFT_OVERHEAD_S"]


def pass_costs_for(model: ModelSpec, gpu: GpuSpec, tp: int, *,
                   compute_efficiency: float | None = None,
                   memory_efficiency: float | None = None,
                   interconnect_bytes_per_s: float | None = None,
                   allreduce_latency_s: float | None = None,
                   layer_rows: LayerRows | None = None, attention: AttentionFit = ATTENTION,
                   dense_ops: str = DEFAULT_DENSE_OPS) -> PassCosts:
    """``PassCosts`` of ``model`` on ``gpu``'s fitted constants (with the overrides above).
    ``layer_rows`` given: those measured rows; else with ``dense_ops="measured"`` the
    generated rows for this layer shape, GPU and TP where they exist (module doc)."""
    check_dense_ops(dense_ops)
    if layer_rows is None and dense_ops == "measured":
        layer_rows = profiled_layer_rows(model, gpu, tp)
    fit = gpu.op_fit
    gemm = fit.gemm
    for label, value in (("compute_efficiency", compute_efficiency),
                         ("memory_efficiency", memory_efficiency)):
        if value is not None and not 0 < value <= 1.5:
            raise ConfigError(f"{label} must be in (0, 1.5], got {value}")
    if layer_rows is not None and (compute_efficiency, memory_efficiency) != (None, None):
        raise ConfigError(f"compute_efficiency/memory_efficiency change the closed-form GEMMs, "
                          f"but {model.name}'s layers come from measured rows "
                          f"({layer_rows.source}); use dense_ops='fitted' (--dense-ops fitted) "
                          "with them")
    if compute_efficiency is not None:
        gemm = replace(gemm, compute_efficiency=compute_efficiency)
    if memory_efficiency is not None:
        gemm = replace(gemm, memory_efficiency=memory_efficiency)
    all_reduce = gpu.all_reduce_fit(tp) if tp > 1 else None
    if tp > 1 and (interconnect_bytes_per_s is not None or allreduce_latency_s is not None):
        bus = gpu.interconnect_bytes_per_s if interconnect_bytes_per_s is None \
            else interconnect_bytes_per_s
        latency = gpu.allreduce_latency_s if allreduce_latency_s is None else allreduce_latency_s
        if not bus > 0 or latency < 0:
            raise ConfigError("interconnect_bytes_per_s must be > 0 and allreduce_latency_s >= 0")
        all_reduce = AllReduceFit(latency, bus / (2.0 * (tp - 1) / tp))
    return PassCosts(model, gpu.peak_flops, gpu.mem_bandwidth_bytes_per_s, fit, attention,
                     all_reduce, tp, gemm=gemm, layer_rows=layer_rows)


def prefill_chunks(prompt_tokens: Sequence[int], cached_tokens: Sequence[int] | None
                   ) -> list[tuple[int, int]]:
    """Validated ``(new tokens, cached tokens)`` pairs of a prefill pass (empty chunks out)."""
    news = [int(n) for n in prompt_tokens]
    if cached_tokens is None:
        cached = [0] * len(news)
    else:
        cached = [int(c) for c in cached_tokens]
        if len(cached) != len(news):
            raise ValueError(f"cached_tokens has {len(cached)} entries for {len(news)} chunks")
    out = []
    for n, c in zip(news, cached):
        if n < 0 or c < 0:
            raise ValueError(f"prompt and cached lengths must be >= 0, got {n} and {c}")
        if n:
            out.append((n, c))
    return out


class RooflineLatency:
    """Ground truth for a target and an optional draft model on one GPU type (module doc).

    Without a draft model the draft queries raise ConfigError.
    """

    def __init__(self, target: ModelSpec, draft: ModelSpec | None, gpu: GpuSpec, tp: int = 1,
                 draft_tp: int = 1, *, compute_efficiency: float | None = None,
                 memory_efficiency: float | None = None,
                 interconnect_bytes_per_s: float | None = None,
                 allreduce_latency_s: float | None = None,
                 target_overhead_s: float = DEFAULT_TARGET_OVERHEAD_S,
                 draft_step_overhead_s: float = DEFAULT_DRAFT_STEP_OVERHEAD_S,
                 draft_overhead_s: float = DEFAULT_DRAFT_OVERHEAD_S,
                 target_prefill_overhead_s: float | None = None,
                 draft_prefill_overhead_s: float | None = None,
                 target_costs: PassCosts | None = None,
                 dense_ops: str = DEFAULT_DENSE_OPS) -> None:
        if draft is None and draft_tp != 1:
            raise ConfigError("draft_tp given without a draft model")
        self.target = target
        self.draft = draft
        self.gpu = gpu
        self.tp = tp
        self.draft_tp = draft_tp
        self.dense_ops = check_dense_ops(dense_ops)
        self.target_overhead_s = target_overhead_s
        self.draft_step_overhead_s = draft_step_overhead_s
        self._draft_overhead_s = draft_overhead_s
        self.target_prefill_overhead_s = (target_overhead_s if target_prefill_overhead_s is None
                                          else target_prefill_overhead_s)
        self.draft_prefill_overhead_s = (draft_step_overhead_s if draft_prefill_overhead_s is None
                                         else draft_prefill_overhead_s)
        for label, value in (("target_overhead_s", target_overhead_s),
                             ("draft_step_overhead_s", draft_step_overhead_s),
                             ("draft_overhead_s", draft_overhead_s),
                             ("target_prefill_overhead_s", self.target_prefill_overhead_s),
                             ("draft_prefill_overhead_s", self.draft_prefill_overhead_s)):
            if not value >= 0:
                raise ConfigError(f"{label} must be >= 0, got {value}")
        overrides = dict(compute_efficiency=compute_efficiency,
                         memory_efficiency=memory_efficiency,
                         interconnect_bytes_per_s=interconnect_bytes_per_s,
                         allreduce_latency_s=allreduce_latency_s, dense_ops=dense_ops)
        self.target_costs = (target_costs if target_costs is not None
                             else pass_costs_for(target, gpu, tp, **overrides))
        self.draft_costs = (pass_costs_for(draft, gpu, draft_tp, **overrides)
                            if draft is not None else None)
        # Memo: token count -> dense + lm_head seconds of a decode-like pass (all rows logits).
        self._t_tokens: dict[int, float] = {}
        self._d_tokens: dict[int, float] = {}

    # ---- LatencyModel ---------------------------------------------------------------------
    @property
    def draft_overhead_s(self) -> float:
        return self._draft_overhead_s

    def memoize_tokens(self, target_tokens: Sequence[int], draft_batches: Sequence[int]
                       ) -> None:
        """Compute the token-only terms (dense kernels and lm_head) of target passes of
        ``target_tokens`` tokens and draft steps of ``draft_batches`` sequences in one numpy
        pass per term (``PassCosts.memoize_at``: the same bits as ``target_verify_s`` /
        ``draft_step_s`` compute one by one), before a caller asks them one by one: the
        estimator's tables ask about a thousand token counts (``TableEstimator.from_model``)."""
        self.target_costs.memoize_at(target_tokens)
        if self.draft_costs is not None:
            self.draft_costs.memoize_at(draft_batches)

    def target_verify_s(self, batch_size: int, tokens: int, context_tokens: int) -> float:
        if tokens <= 0:
            return 0.0
        costs = self.target_costs
        dense = self._t_tokens.get(tokens)
        if dense is None:
            dense = costs.dense_s(tokens) + costs.logits_s(tokens)
            self._t_tokens[tokens] = dense
        batch = batch_size if batch_size > 0 else 1
        return (dense + costs.decode_attention_s(batch, tokens, context_tokens)
                + self.target_overhead_s)

    def draft_step_s(self, batch_size: int, context_tokens: int) -> float:
        if batch_size <= 0:
            return 0.0
        costs = self.draft_costs
        if costs is None:
            raise ConfigError("draft_step_s: this latency model has no draft model")
        dense = self._d_tokens.get(batch_size)
        if dense is None:
            dense = costs.dense_s(batch_size) + costs.logits_s(batch_size)
            self._d_tokens[batch_size] = dense
        return (dense + costs.decode_attention_s(batch_size, batch_size, context_tokens)
                + self.draft_step_overhead_s)

    def target_prefill_s(self, prompt_tokens: Sequence[int],
                         cached_tokens: Sequence[int] | None = None) -> float:
        return _prefill_s(self.target_costs, prefill_chunks(prompt_tokens, cached_tokens),
                          self.target_prefill_overhead_s)

    def draft_prefill_s(self, prompt_tokens: Sequence[int],
                        cached_tokens: Sequence[int] | None = None) -> float:
        if self.draft_costs is None:
            raise ConfigError("draft_prefill_s: this latency model has no draft model")
        return _prefill_s(self.draft_costs, prefill_chunks(prompt_tokens, cached_tokens),
                          self.draft_prefill_overhead_s)

    def __repr__(self) -> str:
        draft = self.draft.name if self.draft is not None else None
        return (f"RooflineLatency(target={self.target.name!r}, draft={draft!r}, "
                f"gpu={self.gpu.name!r}, tp={self.tp}, draft_tp={self.draft_tp}, "
                f"dense_ops={self.dense_ops!r})")

    def dense_sources(self) -> dict[str, str]:
        """Where each model's per-layer non-attention kernels come from ("fitted" or the
        measured rows' source), and which closed form "fitted" is (``closed_form``: the GPU's
        fitted constants and its GEMM form), for the run header and summary.json."""
        out = {"target": self.target_costs.dense_source}
        if self.draft_costs is not None:
            out["draft"] = self.draft_costs.dense_source
        gemm = self.gpu.op_fit.gemm
        tiles = ("GEMM tile padding, " + "/".join(map(str, gemm.tile_rows)) + "-row tiles"
                 if gemm.tile_rows else "GEMM smooth knee (no tile padding)")
        out["closed_form"] = f"{self.gpu.fit} fit: {tiles}"
        return out


def _prefill_s(costs: PassCosts, chunks: list[tuple[int, int]], overhead_s: float) -> float:
    if not chunks:
        return 0.0
    tokens = sum(n for n, _ in chunks)
    return (costs.dense_s(tokens) + costs.logits_s(len(chunks))
            + costs.prefill_attention_s(chunks) + overhead_s)
