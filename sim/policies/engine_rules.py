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

The upkeep's rules (``upkeep_step``: what runs at this k, and catch-up's count of k = 0
iterations; ``catchup_into``: who catches up on how many tokens) are jitable functions over
the head of each engine rule's state arrays (``ENGINE_RULE_INTS`` ints: the zero mode and
that count; ``ENGINE_RULE_FLOATS`` floats: the tax), so the protocol path (``_plan``) and the
compiled loop (``sim.compiled.engine``) run the same code; each rule's own state follows.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from enum import Enum

import numpy as np

from sim.compiled.jit import jitable
from sim.errors import ConfigError
from sim.latency.iteration import DrafterUpkeep
from sim.policies.base import BatchView, Policy


class ZeroMode(str, Enum):
    """What the configured drafter does while the engine's rule chooses k = 0."""

    SYNC = "sync"
    CATCHUP = "catchup"
    FREE = "free"


#: ``ZeroMode`` as the state arrays hold it (``R_ZERO``).
Z_SYNC, Z_CATCHUP, Z_FREE = range(3)
ZERO_CODES = {ZeroMode.SYNC: Z_SYNC, ZeroMode.CATCHUP: Z_CATCHUP, ZeroMode.FREE: Z_FREE}
#: The head of every engine rule's int state: its zero mode, and the k = 0 iterations since
#: the last that drafted (``zero=catchup`` counts them); of its float state: the tax.
R_ZERO, R_OFF = range(2)
ENGINE_RULE_INTS = 2
R_TAX = 0
ENGINE_RULE_FLOATS = 1
#: ``upkeep_step``'s answer for the proposer and one draft pass over the batch.
UPKEEP_SYNC = -1

MAX_TAX = 10.0


def check_tax(tax: object) -> float:
    if isinstance(tax, bool) or not isinstance(tax, (int, float)) or not (
            math.isfinite(tax) and 0.0 <= tax <= MAX_TAX):
        raise ConfigError(f"tax must be a number in [0, {MAX_TAX:g}], got {tax!r}")
    return float(tax)


def fmt(x: float) -> str:
    """A number as the canonical spec writes it (``0.19``, ``2``)."""
    return f"{x:g}"


@jitable
def upkeep_step(state, k):
    """The drafter upkeep of an iteration whose rule chose ``k`` (``state``: an engine rule's
    ints, whose head ``R_ZERO`` / ``R_OFF`` this reads and updates): ``UPKEEP_SYNC`` for the
    proposer and one draft pass over the batch (k <= 0 under ``zero=sync``); n > 0 for a
    draft prefill of what the batch generated during the n iterations at k = 0 before this
    one (k > 0 under ``zero=catchup``, ``catchup_into``); 0 for no drafter work (the tax
    still applies). Catch-up counts its k = 0 iterations here."""
    if k <= 0:
        if state[R_ZERO] == Z_SYNC:
            return UPKEEP_SYNC
        if state[R_ZERO] == Z_CATCHUP:
            state[R_OFF] += 1
        return 0
    off = state[R_OFF]
    state[R_OFF] = 0
    return off


@jitable
def catchup_into(off, context, generated, limits, batch, news, cached):
    """Catch-up after ``off`` iterations at k = 0: request i (of ``batch``) missed
    min(generated_i - 1, off) tokens (its first generated token came from its prefill, which
    the draft model ran too); requests that may not draft (``limits`` <= 0) never catch up.
    Writes each catching-up request's missed tokens and its draft KV already there
    (context - missed) to ``news`` / ``cached``; returns how many requests catch up."""
    n = 0
    for i in range(batch):
        missing = generated[i] - 1
        if missing > off:
            missing = off
        if missing > 0 and limits[i] > 0:
            news[n] = missing
            cached[n] = context[i] - missing
            n += 1
    return n


class EngineRulePolicy(Policy):
    """Base of the engine rules: k chosen by the subclass, drafter upkeep recorded here. The
    state arrays ``_pi`` / ``_pf`` (``_init_state``) are what the compiled loop runs on."""

    default_zero: ZeroMode = ZeroMode.SYNC

    def _init_upkeep(self, zero: str | ZeroMode | None, tax: float) -> None:
        from sim.policies.params import check_enum

        self.zero = self.default_zero if zero is None else check_enum(ZeroMode, zero, "zero")
        self.tax = check_tax(tax)
        self._upkeep: DrafterUpkeep | None = None

    def _init_state(self, ints, floats) -> None:
        """The state arrays: the shared head (zero mode, k = 0 count; tax), then the rule's
        own ``ints`` / ``floats``."""
        self._pi = np.array([ZERO_CODES[self.zero], 0] + [int(v) for v in ints],
                            dtype=np.int64)
        self._pf = np.array([self.tax] + [float(v) for v in floats], dtype=np.float64)

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
        tax = self.tax
        # the rule's k = 0 (requests too close to their end do not count: the simulator
        # charges no drafter work for them under any policy)
        action = upkeep_step(self._pi, k)
        if action == UPKEEP_SYNC:
            self._upkeep = DrafterUpkeep(True, view.batch_size, view.total_context_tokens,
                                         tax=tax)
            return k
        tokens: tuple[int, ...] = ()
        cached: tuple[int, ...] = ()
        if action > 0:
            batch = view.batch_size
            news = np.zeros(batch, dtype=np.int64)
            kv = np.zeros(batch, dtype=np.int64)
            n = catchup_into(int(action), view.context_tokens, view.generated_tokens,
                             view.max_draft_tokens, batch, news, kv)
            tokens = tuple(news[:n].tolist())
            cached = tuple(kv[:n].tolist())
        self._upkeep = DrafterUpkeep(catchup_tokens=tokens, catchup_cached=cached, tax=tax) \
            if tokens or tax else None
        return k

    def compiled_state(self):
        """(kind, int state, float state, asks each step) for the compiled loop: the rule's
        kind (``engine_rule_kind``) and its state arrays, which the loop updates in place."""
        return self.engine_rule_kind(), self._pi, self._pf, False

    @abstractmethod
    def engine_rule_kind(self) -> int:
        """The rule's policy kind in ``sim.compiled.layout``."""
