"""Roofline latency model: the simulator's default ground truth (no calibration files).

Each forward pass costs

    max(FLOPs / (peak * compute_eff), bytes / (bandwidth * memory_eff))
      + tensor-parallel all-reduce time + fixed per-pass overhead

per GPU, where (for T tokens in the pass, B sequences, C cached context tokens in total)

* FLOPs = 2 * (decoder matmul params) * T + 2 * (lm_head params) * (tokens needing logits)
          + 4 * layers * q_dim * (attended query-key pairs); attended pairs are
          sum n_i (n_i + 1) / 2 for a prefill and T * (C / B + (T / B + 1) / 2) for a decode or
          verification pass (each of the T / B new tokens of a sequence attends to its cached
          context and to the new tokens before it);
* bytes = all weights once + KV read (C * kv bytes/token) + KV written (T * kv bytes/token)
          + embedding rows read and logits written; activations are not counted (they stay
          small next to the weights in decode and prefill is compute-bound);
* tensor parallelism (tp ranks) divides FLOPs and weight bytes by tp (KV heads per rank as
  vLLM shards them) and adds 2 all-reduces per layer of T * hidden activations each (ring:
  2 (tp-1)/tp of the data over the interconnect, plus a fixed latency per call).

Every verification pass computes logits for all its tokens; a prefill only for the last token
of each prompt; a draft step for its one token per sequence.

Default overheads (the time a pass costs beyond its kernels' roofline): the target's covers
CUDA-graph launch, sampling/rejection sampling and vLLM 0.6's per-step scheduling and input
preparation (python), a few ms (4 ms: vicuna-7b batch-1 decode on A100 then takes ~12 ms;
AdaSpec reports 15-25 ms decode iterations for vicuna-7b + drafting on A100 at small batch).
A draft step is a full model-runner call on a small model, ~1 ms; an iteration that drafts at
all pays ``draft_overhead_s`` once more (proposer setup, draft-probability bookkeeping).

The decode calls are on the simulator's hot path: all constants are folded in ``__init__`` and
each call is a handful of float operations.
"""

from __future__ import annotations

from typing import Sequence

from sim.errors import ConfigError
from sim.latency.hardware import GpuSpec
from sim.latency.models import ModelSpec

DEFAULT_TARGET_OVERHEAD_S = 4.0e-3
DEFAULT_DRAFT_STEP_OVERHEAD_S = 1.0e-3
DEFAULT_DRAFT_OVERHEAD_S = 1.5e-3


class _PassCoefficients:
    """Per-GPU time coefficients of one model's forward pass (seconds per unit)."""

    __slots__ = ("compute_per_token_s", "compute_per_logit_s", "compute_per_pair_s",
                 "memory_fixed_s", "memory_per_token_s", "memory_per_logit_s",
                 "memory_per_context_token_s", "comm_per_token_s", "comm_fixed_s")

    def __init__(self, model: ModelSpec, gpu: GpuSpec, tp: int, compute_efficiency: float,
                 memory_efficiency: float, interconnect_bytes_per_s: float,
                 allreduce_latency_s: float) -> None:
        model.check_tp(tp)
        flops_s = gpu.peak_flops * compute_efficiency
        bytes_s = gpu.mem_bandwidth_bytes_per_s * memory_efficiency
        d = model.dtype_bytes
        self.compute_per_token_s = 2.0 * model.matmul_params_per_token / tp / flops_s
        self.compute_per_logit_s = 2.0 * model.lm_head_params / tp / flops_s
        self.compute_per_pair_s = 4.0 * model.layers * model.q_dim / tp / flops_s
        # Weights read once per pass: decoder layers, final norm and lm_head (the embedding
        # is only gathered row by row; when tied it is the lm_head matrix itself).
        streamed_weight_bytes = (model.non_embedding_params + model.lm_head_params) * d
        self.memory_fixed_s = streamed_weight_bytes / tp / bytes_s
        kv_rank = model.kv_bytes_per_token_per_rank(tp)
        # Per token: its KV written, its embedding row read (rows are replicated per rank).
        self.memory_per_token_s = (kv_rank + model.hidden * d) / bytes_s
        self.memory_per_logit_s = model.vocab * d / tp / bytes_s
        self.memory_per_context_token_s = kv_rank / bytes_s
        if tp > 1:
            ring = 2.0 * (tp - 1) / tp
            allreduces = 2 * model.layers
            self.comm_per_token_s = (allreduces * ring * model.hidden * d
                                     / interconnect_bytes_per_s)
            self.comm_fixed_s = allreduces * allreduce_latency_s
        else:
            self.comm_per_token_s = 0.0
            self.comm_fixed_s = 0.0

    def pass_s(self, tokens: float, logits: float, pairs: float, context_tokens: float,
               overhead_s: float) -> float:
        """General (slow-path) pass time; the decode calls inline the same arithmetic."""
        compute = (self.compute_per_token_s * tokens + self.compute_per_logit_s * logits
                   + self.compute_per_pair_s * pairs)
        memory = (self.memory_fixed_s + self.memory_per_token_s * tokens
                  + self.memory_per_logit_s * logits
                  + self.memory_per_context_token_s * context_tokens)
        return (compute if compute > memory else memory) + (
            self.comm_fixed_s + self.comm_per_token_s * tokens + overhead_s)


class RooflineLatency:
    """Roofline ground truth for a target model and an optional draft model on one GPU type.

    ``compute_efficiency``/``memory_efficiency`` default to the GPU preset's (see
    ``sim.latency.hardware``); ``interconnect_bytes_per_s``/``allreduce_latency_s`` likewise.
    Prefill overheads default to the decode ones (target pass / draft step).
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
                 draft_prefill_overhead_s: float | None = None) -> None:
        self.target = target
        self.draft = draft
        self.gpu = gpu
        self.tp = tp
        self.draft_tp = draft_tp
        self.compute_efficiency = (gpu.compute_efficiency if compute_efficiency is None
                                   else compute_efficiency)
        self.memory_efficiency = (gpu.memory_efficiency if memory_efficiency is None
                                  else memory_efficiency)
        self.interconnect_bytes_per_s = (gpu.interconnect_bytes_per_s
                                         if interconnect_bytes_per_s is None
                                         else interconnect_bytes_per_s)
        self.allreduce_latency_s = (gpu.allreduce_latency_s if allreduce_latency_s is None
                                    else allreduce_latency_s)
        self.target_overhead_s = target_overhead_s
        self.draft_step_overhead_s = draft_step_overhead_s
        self._draft_overhead_s = draft_overhead_s
        self.target_prefill_overhead_s = (target_overhead_s if target_prefill_overhead_s is None
                                          else target_prefill_overhead_s)
        self.draft_prefill_overhead_s = (draft_step_overhead_s if draft_prefill_overhead_s is None
                                         else draft_prefill_overhead_s)
        for label, value in (("compute_efficiency", self.compute_efficiency),
                             ("memory_efficiency", self.memory_efficiency)):
            if not 0 < value <= 1:
                raise ConfigError(f"{label} must be in (0, 1], got {value}")
        if not self.interconnect_bytes_per_s > 0:
            raise ConfigError("interconnect_bytes_per_s must be > 0")
        for label, value in (("allreduce_latency_s", self.allreduce_latency_s),
                             ("target_overhead_s", target_overhead_s),
                             ("draft_step_overhead_s", draft_step_overhead_s),
                             ("draft_overhead_s", draft_overhead_s),
                             ("target_prefill_overhead_s", self.target_prefill_overhead_s),
                             ("draft_prefill_overhead_s", self.draft_prefill_overhead_s)):
            if value < 0:
                raise ConfigError(f"{label} must be >= 0, got {value}")
        if draft is None and draft_tp != 1:
            raise ConfigError("draft_tp given without a draft model")

        args = (self.compute_efficiency, self.memory_efficiency, self.interconnect_bytes_per_s,
                self.allreduce_latency_s)
        t = _PassCoefficients(target, gpu, tp, *args)
        self._target = t
        # Verification: every token needs logits, so per-token costs include the lm_head.
        self._t_c_tok = t.compute_per_token_s + t.compute_per_logit_s
        self._t_c_pair = t.compute_per_pair_s
        self._t_m_fixed = t.memory_fixed_s
        self._t_m_tok = t.memory_per_token_s + t.memory_per_logit_s
        self._t_m_ctx = t.memory_per_context_token_s
        self._t_fixed = t.comm_fixed_s + target_overhead_s
        self._t_comm_tok = t.comm_per_token_s

        if draft is not None:
            d = _PassCoefficients(draft, gpu, draft_tp, *args)
            self._draft: _PassCoefficients | None = d
            # A draft step: one token per sequence, logits for each, pairs = C + B.
            self._d_c_seq = d.compute_per_token_s + d.compute_per_logit_s + d.compute_per_pair_s
            self._d_c_ctx = d.compute_per_pair_s
            self._d_m_fixed = d.memory_fixed_s
            self._d_m_seq = d.memory_per_token_s + d.memory_per_logit_s
            self._d_m_ctx = d.memory_per_context_token_s
            self._d_fixed = d.comm_fixed_s + draft_step_overhead_s
            self._d_comm_seq = d.comm_per_token_s
        else:
            self._draft = None

    # ---- LatencyModel ---------------------------------------------------------------------
    @property
    def draft_overhead_s(self) -> float:
        return self._draft_overhead_s

    def target_verify_s(self, batch_size: int, tokens: int, context_tokens: int) -> float:
        if tokens <= 0:
            return 0.0
        per_seq = tokens / batch_size if batch_size > 0 else float(tokens)
        pairs = tokens * ((context_tokens / batch_size if batch_size > 0 else context_tokens)
                          + (per_seq + 1.0) * 0.5)
        compute = self._t_c_tok * tokens + self._t_c_pair * pairs
        memory = self._t_m_fixed + self._t_m_tok * tokens + self._t_m_ctx * context_tokens
        return (compute if compute > memory else memory) + self._t_comm_tok * tokens + self._t_fixed

    def draft_step_s(self, batch_size: int, context_tokens: int) -> float:
        if batch_size <= 0:
            return 0.0
        if self._draft is None:
            raise ConfigError("draft_step_s: this latency model has no draft model")
        compute = self._d_c_seq * batch_size + self._d_c_ctx * context_tokens
        memory = self._d_m_fixed + self._d_m_seq * batch_size + self._d_m_ctx * context_tokens
        return ((compute if compute > memory else memory) + self._d_comm_seq * batch_size
                + self._d_fixed)

    def target_prefill_s(self, prompt_tokens: Sequence[int]) -> float:
        return _prefill_s(self._target, prompt_tokens, self.target_prefill_overhead_s)

    def draft_prefill_s(self, prompt_tokens: Sequence[int]) -> float:
        if self._draft is None:
            raise ConfigError("draft_prefill_s: this latency model has no draft model")
        return _prefill_s(self._draft, prompt_tokens, self.draft_prefill_overhead_s)

    def __repr__(self) -> str:
        draft = self.draft.name if self.draft is not None else None
        return (f"RooflineLatency(target={self.target.name!r}, draft={draft!r}, "
                f"gpu={self.gpu.name!r}, tp={self.tp}, draft_tp={self.draft_tp})")


def _prefill_s(coef: _PassCoefficients, prompt_tokens: Sequence[int], overhead_s: float) -> float:
    tokens = 0
    pairs = 0
    sequences = 0
    for n in prompt_tokens:
        n = int(n)
        if n < 0:
            raise ValueError(f"prompt length must be >= 0, got {n}")
        if n:
            tokens += n
            pairs += n * (n + 1) // 2
            sequences += 1
    if tokens == 0:
        return 0.0
    return coef.pass_s(tokens, sequences, pairs, 0, overhead_s)
