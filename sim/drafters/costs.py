"""What a drafting step of a method costs: a ``LatencyModel`` that prices the target's passes
with a base model (the ground truth or the policies' estimator) and the method's drafter from
the target's per-op pieces (``sim.latency.pass_costs.PassCosts``), never from formulas of its
own.

A drafter pass over ``tokens`` query tokens of ``rows`` sequences whose KV holds ``kv``
positions costs, on the target's shapes (hidden h, vocabulary V, L layers):

* feature head (EAGLE family): FC (``fc_inputs`` h -> h) + ``head_layers`` x [one layer's
  non-attention kernels + one layer's attention over the head's own KV] + the target's LM
  head over every token (``PassCosts.gemm_shape_s``, ``layer_dense_s``,
  ``decode_attention_s`` / L, ``logits_s``);
* parallel heads (Medusa), step 0 only: per head ``resblocks`` h x h GEMMs + an h x V LM
  head, one row per request;
* sequential heads (Hydra), step s: the MLP head s (its first ResBlock reads the prefix and
  the s + 1 drafted tokens' embeddings: two ((s + 2) h, h) GEMMs, then ``resblocks - 1``
  h x h GEMMs) + its LM head; step 0 also runs the one-layer prefix attention over the new
  tokens;
* CPU drafters (PLD, lookahead's pool): ``cpu_iteration_s + cpu_per_request_s * rows`` in step
  0, no GPU time, no per-pass overhead;

plus, for GPU drafters, the latency model's per drafter-pass overhead (``draft_step_s`` of
``sim.latency.overhead``, 1 ms by default) and once per drafting iteration its drafting
overhead (1.5 ms). Elementwise ops of the heads (SiLU, adds, norms) are left out: under 1 %
of a head's GEMMs. The prefill of a head's own KV (EAGLE's layer, Hydra's prefix layer) runs
in the prefill iteration, priced like a one-layer prefill of the target.

The step's and the prefill's formulas are jitable functions (``drafter_step_s``,
``drafter_prefill_s``) over the method's constants (``method_ints`` / ``method_floats``) and
the token-only terms (``_head_dense_s``, ``PassCosts.layer_dense_s``, the FC's GEMM, the
target's ``logits_s``): ``DrafterCosts`` passes them from its memos, the compiled loop from
its tables (``sim.compiled.tables``), so both paths run the same arithmetic.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from sim.compiled.jit import jitable
from sim.drafters.presets import (FEATURE_HEAD, LOOKAHEAD, PARALLEL_HEADS, PROMPT_LOOKUP,
                                  SEQUENTIAL_HEADS, MethodPreset)
from sim.errors import ConfigError
from sim.latency.overhead import DEFAULT_DRAFT_OVERHEAD_S, DEFAULT_DRAFT_STEP_OVERHEAD_S
from sim.latency.pass_costs import (PassCosts, decode_attention, prefill_attention,
                                     token_counts)

#: the drafter's kind as ``method_ints`` holds it (0: the draft model, no method)
(MK_DRAFT_MODEL, MK_FEATURE_HEAD, MK_PARALLEL_HEADS, MK_SEQUENTIAL_HEADS,
 MK_CPU) = range(5)
#: ``method_ints``: kind, FEATURE_HEAD's decoder layers, SEQUENTIAL_HEADS' prefix layers,
#: the target's layers
MI_KIND, MI_HEAD_LAYERS, MI_PREFIX_LAYERS, MI_LAYERS = range(4)
METHOD_INTS = 4
#: ``method_floats``: per drafter pass and per prefill overheads; a CPU drafter's seconds
#: per iteration and per request (the drafting iteration's overhead is the latency model's
#: ``draft_overhead_s``)
MF_STEP_OVERHEAD, MF_PREFILL_OVERHEAD, MF_CPU_ITERATION, MF_CPU_REQUEST = range(4)
METHOD_FLOATS = 4
_KIND_CODES = {FEATURE_HEAD: MK_FEATURE_HEAD, PARALLEL_HEADS: MK_PARALLEL_HEADS,
               SEQUENTIAL_HEADS: MK_SEQUENTIAL_HEADS, PROMPT_LOOKUP: MK_CPU, LOOKAHEAD: MK_CPU}


@jitable
def drafter_step_s(mi, mf, a, floor_table, kv_table, head_dense, layer_dense, rows, tokens,
                   kv, step):
    """``DrafterCosts.step_s``: drafter step ``step`` over ``tokens`` (padded) query tokens of
    ``rows`` sequences reading ``kv`` positions; ``head_dense``: the step's token-only part
    at ``tokens`` (``_head_dense_s``); ``layer_dense``: ``layer_dense_s`` of ``tokens``
    (feature heads) or of ``rows`` (a sequential head's prefix layer, step 0); ``a``,
    ``floor_table``, ``kv_table``: the target's attention constants. 0 for an empty step."""
    if rows <= 0 or tokens <= 0:
        return 0.0
    kind = mi[MI_KIND]
    if kind == MK_CPU:
        return mf[MF_CPU_ITERATION] + mf[MF_CPU_REQUEST] * rows if step == 0 else 0.0
    t = head_dense
    if kind == MK_FEATURE_HEAD:
        t += mi[MI_HEAD_LAYERS] * (layer_dense + decode_attention(
            a, floor_table, kv_table, rows, tokens, kv) / mi[MI_LAYERS])
    elif kind == MK_SEQUENTIAL_HEADS and step == 0:
        t += mi[MI_PREFIX_LAYERS] * (layer_dense + decode_attention(
            a, floor_table, kv_table, rows, rows, kv) / mi[MI_LAYERS])
    return t + mf[MF_STEP_OVERHEAD]


@jitable
def drafter_prefill_s(mi, mf, a, layer_dense, fc, logits, head_dense, news, cached, n):
    """``DrafterCosts.prefill_s`` of ``n`` chunks (``news[i]`` new tokens after ``cached[i]``,
    each at least one): its own KV layer(s) over the new tokens (feature heads, a sequential
    head's prefix), or its heads on each chunk's last position (parallel heads; nothing for
    CPU drafters). ``layer_dense`` / ``fc``: ``layer_dense_s`` and the FC's GEMM at the
    tokens in all; ``logits``: the target's ``logits_s(n)``; ``head_dense``:
    ``_head_dense_s(n, 0)``."""
    kind = mi[MI_KIND]
    if n == 0 or kind == MK_CPU or kind == MK_DRAFT_MODEL:
        return 0.0
    if kind == MK_PARALLEL_HEADS:
        return head_dense + mf[MF_PREFILL_OVERHEAD]
    layers = mi[MI_HEAD_LAYERS] if kind == MK_FEATURE_HEAD else mi[MI_PREFIX_LAYERS]
    t = layers * (layer_dense + prefill_attention(a, news, cached, n) / mi[MI_LAYERS])
    if kind == MK_FEATURE_HEAD:
        t += fc
        t += logits
    return t + mf[MF_PREFILL_OVERHEAD]


class DrafterCosts:
    """Kernel seconds of one method's drafter passes, from the target's ``PassCosts``."""

    def __init__(self, method: MethodPreset, costs: PassCosts,
                 step_overhead_s: float = DEFAULT_DRAFT_STEP_OVERHEAD_S,
                 iteration_overhead_s: float = DEFAULT_DRAFT_OVERHEAD_S,
                 prefill_overhead_s: float | None = None) -> None:
        if method.is_draft_model:
            raise ConfigError("the draft-model method is priced by the latency model itself")
        self.method = method
        self.costs = costs
        self.kind = method.kind
        self.step_overhead_s = step_overhead_s if method.gpu_drafter else 0.0
        self.iteration_overhead_s = iteration_overhead_s if method.gpu_drafter else 0.0
        self.prefill_overhead_s = (self.step_overhead_s if prefill_overhead_s is None
                                   or not method.gpu_drafter else prefill_overhead_s)
        model = costs.model
        self.hidden = model.hidden
        self._memo: dict[tuple[int, int], float] = {}
        self.ints, self.floats = method_arrays(method, costs, self.step_overhead_s,
                                               self.prefill_overhead_s)

    # ---- pieces ---------------------------------------------------------------------------
    def _layer_s(self, rows: int, tokens: int, kv: float) -> float:
        """One decoder layer of the target's width over ``tokens`` query tokens of ``rows``
        sequences reading ``kv`` cached positions."""
        c = self.costs
        return c.layer_dense_s(tokens) + c.decode_attention_s(rows, tokens, kv) / c.layers

    def _head_dense_s(self, tokens: int, step: int) -> float:
        """Token-only part of step ``step`` (memoised per padded token count and step)."""
        key = (tokens, step)
        t = self._memo.get(key)
        if t is None:
            t = self._memo[key] = self._head_dense_of(tokens, step)
        return t

    def _head_dense_of(self, tokens, step: int):
        """``_head_dense_s`` of a positive count or an ``ExactArray`` of them."""
        c, m, h = self.costs, self.method, self.hidden
        if self.kind == FEATURE_HEAD:
            t = c.gemm_of(tokens, m.head_fc_inputs * h, h) if m.head_fc_inputs else 0.0
            t += c.logits_of(tokens)
        elif self.kind == PARALLEL_HEADS:
            t = m.heads * (m.head_resblocks * c.gemm_of(tokens, h, h) + c.logits_of(tokens))
        elif self.kind == SEQUENTIAL_HEADS:
            first = 2 * c.gemm_of(tokens, (step + 2) * h, h)
            t = (first + (m.head_resblocks - 1) * c.gemm_of(tokens, h, h)
                 + c.logits_of(tokens))
        else:
            t = 0.0
        return t

    def head_dense_s_at(self, tokens: np.ndarray, step: int) -> np.ndarray:
        """``_head_dense_s`` at every count of ``tokens`` (positive ints) in one numpy pass,
        the same bits as the calls one by one (``sim.latency.exact``)."""
        values = self._head_dense_of(token_counts(tokens), step)
        return np.broadcast_to(np.asarray(values, dtype=np.float64), np.shape(tokens))

    def fc_s_at(self, tokens: np.ndarray) -> np.ndarray:
        """``fc_s`` at every count of ``tokens`` (positive ints), as ``head_dense_s_at``."""
        m = self.method
        counts = token_counts(tokens)
        if not m.head_fc_inputs:
            return np.zeros(np.shape(tokens))
        return np.asarray(self.costs.gemm_of(counts, m.head_fc_inputs * self.hidden, self.hidden),
                          dtype=np.float64)

    def fc_s(self, tokens: int) -> float:
        """The feature head's FC in front of its layers, over ``tokens`` tokens (0 without)."""
        m = self.method
        return (self.costs.gemm_shape_s(tokens, m.head_fc_inputs * self.hidden, self.hidden)
                if m.head_fc_inputs else 0.0)

    # ---- passes ---------------------------------------------------------------------------
    def step_s(self, rows: int, tokens: int, kv: float, step: int) -> float:
        """Drafter step ``step`` over ``tokens`` (padded) query tokens of ``rows`` sequences,
        per-pass overhead included; 0 for an empty step (``drafter_step_s``)."""
        if rows <= 0 or tokens <= 0:
            return 0.0
        head = layer = 0.0
        if self.method.gpu_drafter:
            head = self._head_dense_s(tokens, step)
            if self.kind == FEATURE_HEAD:
                layer = self.costs.layer_dense_s(tokens)
            elif self.kind == SEQUENTIAL_HEADS and step == 0:
                layer = self.costs.layer_dense_s(rows)
        c = self.costs
        return float(drafter_step_s(self.ints, self.floats, c.attention_params, c._dec_floor,
                                    c._dec_kv, head, layer, rows, tokens, kv, step))

    def prefill_s(self, prompt_tokens: Sequence[int],
                  cached_tokens: Sequence[int] | None = None) -> float:
        """The drafter's share of a prefill iteration: its own KV layer(s) over the new
        tokens (feature heads, Hydra's prefix), or its heads on each chunk's last position
        (Medusa); nothing for CPU drafters (``drafter_prefill_s``)."""
        from sim.latency.roofline import prefill_chunks
        chunks = prefill_chunks(prompt_tokens, cached_tokens)
        if not chunks or not self.method.gpu_drafter:
            return 0.0
        c = self.costs
        tokens = sum(n for n, _ in chunks)
        rows = len(chunks)
        layer = fc = logits = head = 0.0
        if self.kind == PARALLEL_HEADS:
            head = self._head_dense_s(rows, 0)
        else:
            layer = c.layer_dense_s(tokens)
            if self.kind == FEATURE_HEAD:
                fc = self.fc_s(tokens)
                logits = c.logits_s(rows)
        return float(drafter_prefill_s(self.ints, self.floats, c.attention_params, layer, fc,
                                       logits, head, [n for n, _ in chunks],
                                       [kv for _, kv in chunks], rows))


def method_arrays(method: MethodPreset, costs: PassCosts, step_overhead_s: float,
                  prefill_overhead_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The method's constants as ``drafter_step_s`` / ``drafter_prefill_s`` read them."""
    ints = np.zeros(METHOD_INTS, dtype=np.int64)
    ints[MI_KIND] = _KIND_CODES.get(method.kind, MK_DRAFT_MODEL)
    ints[MI_HEAD_LAYERS] = method.head_layers
    ints[MI_PREFIX_LAYERS] = method.prefix_layers
    ints[MI_LAYERS] = costs.layers
    floats = np.zeros(METHOD_FLOATS)
    floats[MF_STEP_OVERHEAD] = step_overhead_s
    floats[MF_PREFILL_OVERHEAD] = prefill_overhead_s
    floats[MF_CPU_ITERATION] = method.cpu_iteration_s
    floats[MF_CPU_REQUEST] = method.cpu_per_request_s
    return ints, floats


class MethodLatency:
    """``LatencyModel`` of the target (``base``) plus a method's drafter (``drafter``).

    ``draft_step_s(B, kv)`` is a drafting step with one token per sequence;
    ``draft_tree_step_s(rows, tokens, kv, step)`` the general step the iteration-duration
    function (``sim.latency.iteration.decode_iteration_s``) calls for shapes that record
    per-step tokens.
    """

    def __init__(self, base, drafter: DrafterCosts) -> None:
        self.base = base
        self.drafter = drafter
        self.method = drafter.method

    def __repr__(self) -> str:
        return f"MethodLatency({self.method.name!r} over {self.base!r})"

    @property
    def draft_overhead_s(self) -> float:
        return self.drafter.iteration_overhead_s

    # what the run header states (sim.run_description reads these by name)
    @property
    def target_overhead_s(self):
        return getattr(self.base, "target_overhead_s", None)

    @property
    def draft_step_overhead_s(self):
        return self.drafter.step_overhead_s if self.method.gpu_drafter else None

    @property
    def target_costs(self):
        """The target's per-op costs (the base model's), which also price the drafter."""
        return self.drafter.costs

    def dense_sources(self) -> dict:
        """Where the target's dense kernels come from (the base model's statement, when it
        makes one); the drafter is priced from the target's."""
        sources = getattr(self.base, "dense_sources", None)
        return {k: v for k, v in sources().items() if k == "target"} if sources else {}

    def target_prefill_s(self, prompt_tokens: Sequence[int],
                         cached_tokens: Sequence[int] | None = None) -> float:
        return self.base.target_prefill_s(prompt_tokens, cached_tokens)

    def target_verify_s(self, batch_size: int, tokens: int, context_tokens: int) -> float:
        return self.base.target_verify_s(batch_size, tokens, context_tokens)

    def draft_prefill_s(self, prompt_tokens: Sequence[int],
                        cached_tokens: Sequence[int] | None = None) -> float:
        return self.drafter.prefill_s(prompt_tokens, cached_tokens)

    def draft_step_s(self, batch_size: int, context_tokens: int) -> float:
        return self.drafter.step_s(batch_size, batch_size, context_tokens, 0)

    def draft_tree_step_s(self, rows: int, tokens: int, context_tokens: float,
                          step: int = 0) -> float:
        return self.drafter.step_s(rows, tokens, context_tokens, step)


def method_latency(base, method: MethodPreset) -> MethodLatency:
    """Wrap a per-op latency model (``RooflineLatency``: the presets or a Vidur profile) for
    ``method``; a calibrated profile (measured passes, no per-op pieces) is refused."""
    costs = getattr(base, "target_costs", None)
    if not isinstance(costs, PassCosts):
        raise ConfigError(f"--method {method.name} prices its drafter from the target's per-op "
                          "costs, which a calibrated --profile does not have; use the presets "
                          "or a Vidur profile folder")
    drafter = DrafterCosts(
        method, costs,
        step_overhead_s=getattr(base, "draft_step_overhead_s", DEFAULT_DRAFT_STEP_OVERHEAD_S),
        iteration_overhead_s=float(getattr(base, "draft_overhead_s", DEFAULT_DRAFT_OVERHEAD_S)),
        prefill_overhead_s=getattr(base, "draft_prefill_overhead_s", None))
    return MethodLatency(base, drafter)


def head_weight_bytes(method: MethodPreset, target) -> int:
    """Bytes of the drafter's own weights (the KV-pool budget): 0 for CPU drafters."""
    return method.head_params(target.hidden, target.vocab) * target.dtype_bytes
