"""What the production engines' adaptive rules share (issue 14): a configured draft model
whose draft length the engine sets per iteration, and what having it configured costs when
that length is 0.

The rules themselves live beside their sources: ``sim.policies.vllm_dynamic`` (vLLM V1
dynamic speculative decoding), ``sim.policies.trtllm`` (TensorRT-LLM draft-length schedule,
concurrency cap and acceptance-rate gate) and ``sim.policies.sglang_adaptive`` (SGLang's
batch-size-aware adaptive steps). Each of them chooses k in ``begin`` and calls
:meth:`EngineRulePolicy._plan`, which records the iteration's *drafter upkeep*
(``sim.latency.iteration.DrafterUpkeep``): the draft-model work the iteration runs besides its
drafting steps. The simulated server adds its time to the iteration (``drafter_upkeep``; the
real engine ignores it).

``zero=`` says what the drafter does while k = 0:

* ``sync``: the drafter still processes each iteration's new token, so its KV stays in sync:
  the proposer is called (``draft_overhead_s``) and runs one draft pass over the B one-token
  rows. vLLM V1: ``vllm/v1/spec_decode/llm_base_proposer.py`` ``propose()`` runs the draft
  forward before it checks K ("No draft tokens requested (e.g. Dynamic SD decided K=0). The
  prefill forward pass above already ran to keep the drafter KV cache in sync, so just return
  an empty tensor."), quoted in vllm-project/vllm issue #49548 (comment of 2026-08-08) and
  kept by PR #51575 for the V2 runner ("For K=0, run draft prefill to keep the draft KV cache
  synchronized"). SGLang: PR #13376 reports that disabling EAGLE3 speculation by batch size
  still needs "the required draft extend step after each decode".
* ``catchup``: nothing runs while k = 0; when drafting resumes, each request's draft KV is
  filled for the tokens it generated meanwhile by one draft prefill over them (the lazy
  variant of vllm-project/vllm-metal PR #734: "record the earliest missing draft-KV position
  during K=0 without running the draft model, then lazily ingest the complete missing range
  before the next K>0 proposal"). A request in the batch through n consecutive k = 0
  iterations misses min(n, generated - 1) tokens besides the one the first draft step reads
  anyway (a request admitted during the stretch: everything after its prefill); requests that
  finish before drafting resumes never pay. A request preempted and re-prefilled during the
  stretch is charged as if it had not been (its re-prefill already rebuilt the draft KV).
* ``free``: neither (the draft KV is assumed current at no cost; an optimistic bound, and the
  behaviour of engines that skip the drafter at k = 0 and lose acceptance afterwards,
  vllm-metal PR #716 and TensorRT-LLM PR #16888, without the lost acceptance).

``tax=F`` adds a fraction F of every decode iteration's time while speculation is configured
(default 0): what users report about an engine's graph mode and per-step speculative work,
which the latency model has no term for. Reported magnitudes: vLLM issue #49548, dynamic SD
forces ``cudagraph_mode`` FULL_AND_PIECEWISE -> PIECEWISE, "~14% single-stream (59.6 -> 50.0
tok/s)" (19 % more time per token; Qwen3.5-122B MTP on GB10); TensorRT-LLM PR #18837, draft-0
steps "still treat[ed] as speculative steps" (block offsets staged at full ``max_seq_len``
width; no number); vllm-ascend issue #16638, MTP step cost ~2.5x at decode batch >= 9 with
K = 0 scheduled (Ascend). None of these is the simulator's hardware, so 0 is the default
(invented here) and the README shows the measurement with the vLLM number.
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np

from sim.errors import ConfigError
from sim.latency.iteration import DrafterUpkeep
from sim.policies.base import BatchView, Policy


class ZeroMode(str, Enum):
    """What the configured drafter does while the engine's rule chooses k = 0."""

    SYNC = "sync"
    CATCHUP = "catchup"
    FREE = "free"


MAX_TAX = 10.0


def check_tax(tax: object) -> float:
    if isinstance(tax, bool) or not isinstance(tax, (int, float)) or not (
            math.isfinite(tax) and 0.0 <= tax <= MAX_TAX):
        raise ConfigError(f"tax must be a number in [0, {MAX_TAX:g}], got {tax!r}")
    return float(tax)


def fmt(x: float) -> str:
    """A number as the canonical spec writes it (``0.19``, ``2``)."""
    return f"{x:g}"


class EngineRulePolicy(Policy):
    """Base of the engine rules: k chosen by the subclass, drafter upkeep recorded here."""

    default_zero: ZeroMode = ZeroMode.SYNC

    def _init_upkeep(self, zero: str | ZeroMode | None, tax: float) -> None:
        from sim.policies.params import check_enum

        self.zero = self.default_zero if zero is None else check_enum(ZeroMode, zero, "zero")
        self.tax = check_tax(tax)
        self._off = 0  # consecutive iterations with k = 0 (zero=catchup)
        self._upkeep: DrafterUpkeep | None = None

    def _upkeep_suffix(self) -> list[str]:
        parts = []
        if self.zero is not self.default_zero:
            parts.append(f"zero={self.zero.value}")
        if self.tax:
            parts.append(f"tax={fmt(self.tax)}")
        return parts

    def drafter_upkeep(self) -> DrafterUpkeep | None:
        """The draft work of the iteration the last ``begin`` planned (read by the server)."""
        return self._upkeep

    def _plan(self, view: BatchView, k: int, configured: bool = True) -> int:
        """Record the upkeep of an iteration that drafts up to ``k`` tokens; returns ``k``.
        ``configured=False``: speculation is off for good (no drafter work, no tax)."""
        if not configured:
            self._upkeep = None
            return k
        batch = view.batch_size
        tax = self.tax
        if k <= 0:  # the rule's k = 0 (requests too close to their end do not count: the
            # simulator charges no drafter work for them under any policy)
            if self.zero is ZeroMode.SYNC:
                self._upkeep = DrafterUpkeep(True, batch, view.total_context_tokens, tax=tax)
                return k
            if self.zero is ZeroMode.CATCHUP:
                self._off += 1
            self._upkeep = DrafterUpkeep(tax=tax) if tax else None
            return k
        tokens: tuple[int, ...] = ()
        cached: tuple[int, ...] = ()
        if self._off:
            missing = np.minimum(view.generated_tokens - 1, self._off)
            missing[view.max_draft_tokens <= 0] = 0  # they never draft again
            keep = missing > 0
            if keep.any():
                tokens = tuple(missing[keep].tolist())
                cached = tuple((view.context_tokens[keep] - missing[keep]).tolist())
            self._off = 0
        self._upkeep = DrafterUpkeep(catchup_tokens=tokens, catchup_cached=cached, tax=tax) \
            if tokens or tax else None
        return k
