"""vLLM-style iteration-level scheduler: FCFS admission, KV blocks, preemption, slots.

Executor-agnostic and clock-agnostic (the caller passes ``now_s``), so the simulator and the
real engine share it. Each running request owns a *slot* (0..max_num_seqs-1); the real engine
uses the slot as the row of its preallocated KV cache.

KV accounting: one pool of ``kv_blocks`` blocks of ``block_size`` tokens; a block holds the
target's *and* the draft's KV for its tokens (the pool size is computed that way). A request
holds ``ceil(tokens / block_size)`` blocks; before each decode iteration every running
request reserves room for its known tokens plus the iteration's lookahead (the policy's
``k_max`` speculative slots, as vLLM's ``num_lookahead_slots``). On shortage the most recently
admitted request is preempted by recompute: its blocks are freed and it returns to the head of
the waiting queue; on readmission its prompt plus the tokens it already emitted are prefilled
again, and that prefill emits its next token.

Per-slot state lives in numpy arrays so a decode iteration is a handful of vector operations.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from sim.errors import ConfigError
from sim.workload.request import Request


@dataclass(frozen=True)
class SchedulerConfig:
    """Engine limits. ``kv_blocks`` is the whole pool; ``watermark_blocks`` stay free at
    admission (vLLM keeps 1 %) so that admitted requests can grow without thrashing.
    ``chunked_prefill`` splits prompts longer than the token budget over several prefill
    iterations (a request's chunks run in consecutive prefill iterations); off by default.
    ``max_model_len`` is the model's context in tokens (None: unlimited); see
    :meth:`Scheduler.arrive` for the requests rejected on arrival."""

    kv_blocks: int
    max_num_seqs: int = 256
    block_size: int = 16
    max_num_batched_tokens: int = 8192
    watermark_blocks: int = 0
    chunked_prefill: bool = False
    max_model_len: int | None = None

    def __post_init__(self) -> None:
        for name in ("kv_blocks", "max_num_seqs", "block_size", "max_num_batched_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_model_len is not None and self.max_model_len < 1:
            raise ConfigError(f"max_model_len must be >= 1, got {self.max_model_len}")
        if not 0 <= self.watermark_blocks < self.kv_blocks:
            raise ConfigError("watermark_blocks must be in [0, kv_blocks)")


#: Why a request is rejected on arrival (the first word of ``FinishedRequest.reason``).
REJECT_REASONS = {
    "context": "longer than the model's context (prompt + output)",
    "prompt-budget": "with a prompt above max_num_batched_tokens (chunked prefill off)",
    "kv-pool": "needing more KV blocks than the whole pool holds",
}


def reject_reason_kind(reason: str) -> str:
    """The ``REJECT_REASONS`` key a rejection reason starts with ("" if none)."""
    kind = reason.partition(":")[0]
    return kind if kind in REJECT_REASONS else ""


@dataclass(frozen=True, slots=True)
class FinishedRequest:
    """Everything the metrics need about one request, at the moment it leaves the engine.

    ``status`` is ``"finished"`` or ``"rejected"`` (see :meth:`Scheduler.arrive`); times of a
    rejected request other than arrival are NaN, and ``reason`` starts with one of
    ``REJECT_REASONS`` and a colon.
    """

    request: Request
    status: str
    admitted_s: float
    first_token_s: float
    finish_s: float
    generated_tokens: int
    drafted_tokens: int
    verified_tokens: int
    accepted_tokens: int
    preemptions: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PrefillChunk:
    """One request's part of a prefill iteration: ``tokens`` new positions after ``cached``
    positions already in its KV; ``completes`` when this chunk ends its prefill (it then emits
    a token)."""

    slot: int
    tokens: int
    cached: int
    completes: bool


class _Seq:
    """Mutable per-request bookkeeping outside the hot arrays."""

    __slots__ = ("request", "admitted_s", "first_token_s", "preemptions", "prefilled",
                 "generated", "drafted", "verified", "accepted")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.admitted_s = float("nan")
        self.first_token_s = float("nan")
        self.preemptions = 0
        self.prefilled = 0  # tokens of the current (re)prefill already in KV
        # counters carried across a preemption (the slot arrays hold them while running)
        self.generated = 0
        self.drafted = 0
        self.verified = 0
        self.accepted = 0


def _ceil_div(a, b):
    return -(-a // b)


class Scheduler:
    """Admission, KV accounting, preemption and completion for one engine replica."""

    def __init__(self, config: SchedulerConfig, lookahead_tokens: int = 0) -> None:
        self.config = config
        self.lookahead_tokens = int(lookahead_tokens)
        n = config.max_num_seqs
        self.free_blocks = config.kv_blocks
        self.waiting: deque[_Seq] = deque()
        self.running: list[int] = []  # slots in admission order (decode-ready and prefilling)
        self._free_slots = list(range(n - 1, -1, -1))
        self._seqs: list[_Seq | None] = [None] * n
        self.prompt = np.zeros(n, dtype=np.int64)
        self.generated = np.zeros(n, dtype=np.int64)
        self.output = np.zeros(n, dtype=np.int64)
        self.blocks = np.zeros(n, dtype=np.int64)
        self.arrival = np.zeros(n, dtype=np.float64)
        self.drafted = np.zeros(n, dtype=np.int64)
        self.verified = np.zeros(n, dtype=np.int64)
        self.accepted = np.zeros(n, dtype=np.int64)
        self._decode_cache: np.ndarray | None = None
        self._prefilling: set[int] = set()
        self.preemption_count = 0

    # ----------------------------------------------------------------- arrival
    def arrive(self, request: Request, now_s: float) -> FinishedRequest | None:
        """Queue a request, or return its rejection record when it can never be served, as
        vLLM 0.6 does:

        * ``context``: prompt + output tokens exceed ``max_model_len`` (vLLM's OpenAI server
          refuses a request whose prompt plus ``max_tokens`` exceeds the context);
        * ``prompt-budget``: without chunked prefill, a prompt longer than
          ``max_num_batched_tokens`` (vLLM's scheduler ignores a prompt above
          ``min(max_model_len, max_num_batched_tokens)``, FINISHED_IGNORED, with a warning);
        * ``kv-pool``: prompt + output + the policy's lookahead need more blocks than the pool
          minus the watermark (vLLM's block manager answers AllocStatus.NEVER).
        """
        cfg = self.config
        total = request.prompt_tokens + request.output_tokens
        if cfg.max_model_len is not None and total > cfg.max_model_len:
            return self._reject(request, f"context: prompt + output = {total} tokens > the "
                                         f"model's {cfg.max_model_len}-token context")
        if not cfg.chunked_prefill and request.prompt_tokens > cfg.max_num_batched_tokens:
            return self._reject(request, f"prompt-budget: prompt of {request.prompt_tokens} "
                                         f"tokens > max_num_batched_tokens "
                                         f"{cfg.max_num_batched_tokens} (chunked prefill off)")
        need = _ceil_div(total + self.lookahead_tokens, cfg.block_size)
        if need > cfg.kv_blocks - cfg.watermark_blocks:
            return self._reject(request, f"kv-pool: needs {need} KV blocks, the pool has "
                                         f"{cfg.kv_blocks - cfg.watermark_blocks} usable")
        self.waiting.append(_Seq(request))
        return None

    @staticmethod
    def _reject(request: Request, reason: str) -> FinishedRequest:
        nan = float("nan")
        return FinishedRequest(request, "rejected", nan, nan, nan, 0, 0, 0, 0, 0, reason=reason)

    @property
    def idle(self) -> bool:
        return not self.waiting and not self.running

    @property
    def queue_len(self) -> int:
        return len(self.waiting)

    def request_at(self, slot: int) -> Request:
        seq = self._seqs[slot]
        assert seq is not None
        return seq.request

    # ----------------------------------------------------------------- prefill
    def next_prefill(self, now_s: float) -> list[PrefillChunk]:
        """Admit waiting requests FCFS (and continue chunked prefills) into one prefill
        iteration; empty when nothing can be admitted now."""
        cfg = self.config
        budget = cfg.max_num_batched_tokens
        chunks: list[PrefillChunk] = []
        for slot in sorted(self._prefilling, key=self.running.index):  # unfinished chunked prefills
            seq = self._seqs[slot]
            total = int(self.prompt[slot] + self.generated[slot])
            take = min(total - seq.prefilled, budget)
            if take <= 0:
                break
            chunks.append(PrefillChunk(slot, take, seq.prefilled, seq.prefilled + take == total))
            budget -= take
        while self.waiting and budget > 0 and len(self.running) < cfg.max_num_seqs:
            seq = self.waiting[0]
            req = seq.request
            generated = seq.generated
            total = req.prompt_tokens + generated
            if total > budget and not cfg.chunked_prefill and chunks:
                break
            take = min(total, budget) if cfg.chunked_prefill else total
            need = _ceil_div(total, cfg.block_size)
            if need > self.free_blocks - cfg.watermark_blocks:
                break
            self.waiting.popleft()
            slot = self._free_slots.pop()
            self._seqs[slot] = seq
            if seq.admitted_s != seq.admitted_s:  # NaN: first admission
                seq.admitted_s = now_s
            self.prompt[slot] = req.prompt_tokens
            self.generated[slot] = generated
            self.drafted[slot] = seq.drafted
            self.verified[slot] = seq.verified
            self.accepted[slot] = seq.accepted
            self.output[slot] = req.output_tokens
            self.arrival[slot] = req.arrival_s
            self.blocks[slot] = need
            self.free_blocks -= need
            self.running.append(slot)
            seq.prefilled = 0
            self._prefilling.add(slot)
            self._decode_cache = None
            chunks.append(PrefillChunk(slot, take, 0, take == total))
            budget -= take
        return chunks

    def finish_prefill(self, chunks: list[PrefillChunk], now_s: float) -> list[FinishedRequest]:
        """Account a completed prefill iteration: completed prefills emit one token each."""
        done: list[FinishedRequest] = []
        for chunk in chunks:
            seq = self._seqs[chunk.slot]
            seq.prefilled += chunk.tokens
            if not chunk.completes:
                continue
            self._prefilling.discard(chunk.slot)
            self._decode_cache = None
            self.generated[chunk.slot] += 1
            if seq.first_token_s != seq.first_token_s:
                seq.first_token_s = now_s
            if self.generated[chunk.slot] >= self.output[chunk.slot]:
                done.append(self._finish(chunk.slot, now_s))
        return done

    # ----------------------------------------------------------------- decode
    def decode_slots(self) -> np.ndarray:
        """Slots of the decode-ready running requests, in admission order."""
        if self._decode_cache is None:
            if self._prefilling:
                self._decode_cache = np.fromiter(
                    (s for s in self.running if s not in self._prefilling), dtype=np.int64)
            else:
                self._decode_cache = np.array(self.running, dtype=np.int64)
        return self._decode_cache

    def prepare_decode(self, lookahead_tokens: int, now_s: float) -> np.ndarray:
        """Reserve KV for every decode-ready request's known tokens plus the lookahead,
        preempting the most recently admitted requests on shortage; return the batch slots."""
        slots = self.decode_slots()
        if slots.size == 0:
            return slots
        bs = self.config.block_size
        held = self.blocks[slots]
        wanted = self.prompt[slots] + self.generated[slots]
        wanted += lookahead_tokens + bs - 1
        wanted //= bs  # blocks for the known tokens plus the lookahead
        np.maximum(wanted, held, out=wanted)  # a reservation never shrinks
        need = wanted - held
        total = sum(need.tolist())
        while total > self.free_blocks:
            victim = self.running[-1]
            self._preempt(victim)
            if victim in self._prefilling:
                self._prefilling.discard(victim)
                continue
            total -= int(need[-1])
            need = need[:-1]
            wanted = wanted[:-1]
            slots = slots[:-1]
            if slots.size == 0:
                break
        self._decode_cache = slots
        if slots.size:
            self.blocks[slots] = wanted
            self.free_blocks -= total
        return slots

    def finish_decode(self, slots: np.ndarray, emitted: np.ndarray | int,
                      drafted: np.ndarray | None, verified: np.ndarray | None,
                      accepted: np.ndarray | None, now_s: float) -> list[FinishedRequest]:
        """Account a decode iteration: request ``slots[i]`` emitted ``emitted[i]`` tokens
        (already capped at what it still needs; a scalar applies to every request) and
        drafted / verified / accepted that many (all None for a plain-decoding iteration)."""
        generated = self.generated[slots]
        generated += emitted
        self.generated[slots] = generated
        if drafted is not None:  # None: a plain-decoding iteration, nothing drafted
            add = np.add.at  # slots are distinct: the cheapest scatter-add
            add(self.drafted, slots, drafted)
            add(self.verified, slots, verified)
            add(self.accepted, slots, accepted)
        finished = slots[generated >= self.output[slots]]
        return [self._finish(s, now_s) for s in finished.tolist()] if finished.size else []

    # ----------------------------------------------------------------- internals
    def _finish(self, slot: int, now_s: float) -> FinishedRequest:
        seq = self._seqs[slot]
        record = FinishedRequest(
            seq.request, "finished", seq.admitted_s, seq.first_token_s, now_s,
            int(self.generated[slot]), int(self.drafted[slot]), int(self.verified[slot]),
            int(self.accepted[slot]), seq.preemptions)
        self._release(slot)
        return record

    def _release(self, slot: int) -> None:
        self.free_blocks += int(self.blocks[slot])
        self.blocks[slot] = 0
        self.running.remove(slot)
        self._seqs[slot] = None
        self._free_slots.append(slot)
        self._decode_cache = None

    def _preempt(self, slot: int) -> None:
        """Preempt by recompute: keep emitted tokens and counters, drop the KV."""
        seq = self._seqs[slot]
        seq.preemptions += 1
        seq.generated = int(self.generated[slot])
        seq.drafted = int(self.drafted[slot])
        seq.verified = int(self.verified[slot])
        seq.accepted = int(self.accepted[slot])
        self.preemption_count += 1
        self._release(slot)
        self.waiting.appendleft(seq)
