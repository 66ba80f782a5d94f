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

All state lives in integer and float arrays (``SchedulerState`` and its layout, in
``sim.core.scheduler_state`` with the arrival rules) and every rule is a ``@jitable``
function over them (``rejection_kind``, ``enqueue_request``, ``next_prefill``,
``finish_prefill``, ``prepare_decode``, ``finish_decode``): the ``Scheduler`` class calls
them, and so does the compiled iteration loop (``sim.compiled.loop``), so each rule is
written once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.compiled.jit import jitable
from sim.core.scheduler_state import (  # noqa: F401 (the layout, re-exported)
    ADMIT, C_FREE, C_NFREE, C_NPREFILLING, C_NRUN, C_PREEMPTIONS, C_QHEAD, C_QLEN, G_BLOCK,
    G_BUDGET, G_CHUNKED, G_KV, G_MAXSEQS, G_WATERMARK, P_CACHED, P_COMPLETES, P_SLOT, P_TOKENS,
    R_ACCEPTED, R_DRAFTED, R_GEN, R_OUT, R_PREEMPT, R_PREFILLED, R_PROMPT, R_TAG, R_VERIFIED,
    REJECT_REASONS, RF_ADMITTED, RF_ARRIVAL, RF_FINISH, RF_FIRST, RF_KEY, S_ACCEPTED,
    S_BLOCKS, S_BONUS, S_DRAFTED, S_GEN, S_OUT, S_PREFILLING, S_PROMPT, S_REQ, S_VERIFIED,
    SF_ARRIVAL, SF_KEY, SchedulerState, reject_reason_kind, rejection_kind, rejection_reason)
from sim.core.scheduler_config import SchedulerConfig
from sim.workload.request import Request


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


@jitable
def release_slot(sc, si, running, free_slots, slot):
    """Free ``slot``: its blocks return to the pool, it leaves the running list."""
    sc[C_FREE] += si[S_BLOCKS, slot]
    si[S_BLOCKS, slot] = 0
    n = sc[C_NRUN]
    p = 0
    while running[p] != slot:
        p += 1
    for q in range(p, n - 1):
        running[q] = running[q + 1]
    sc[C_NRUN] = n - 1
    si[S_REQ, slot] = -1
    free_slots[sc[C_NFREE]] = slot
    sc[C_NFREE] += 1


@jitable
def finish_slot(sc, si, ri, rf, running, free_slots, slot, now_s):
    """The request in ``slot`` has all its tokens: its counters go to its request row, the
    slot is released; returns the request index."""
    req = si[S_REQ, slot]
    ri[R_GEN, req] = si[S_GEN, slot]
    ri[R_DRAFTED, req] = si[S_DRAFTED, slot]
    ri[R_VERIFIED, req] = si[S_VERIFIED, slot]
    ri[R_ACCEPTED, req] = si[S_ACCEPTED, slot]
    rf[RF_FINISH, req] = now_s
    release_slot(sc, si, running, free_slots, slot)
    return req


@jitable
def preempt_slot(sc, si, ri, running, free_slots, queue, slot):
    """Preempt by recompute: keep emitted tokens and counters, drop the KV; the request goes
    back to the head of the waiting queue."""
    req = si[S_REQ, slot]
    ri[R_PREEMPT, req] += 1
    ri[R_GEN, req] = si[S_GEN, slot]
    ri[R_DRAFTED, req] = si[S_DRAFTED, slot]
    ri[R_VERIFIED, req] = si[S_VERIFIED, slot]
    ri[R_ACCEPTED, req] = si[S_ACCEPTED, slot]
    sc[C_PREEMPTIONS] += 1
    if si[S_PREFILLING, slot]:
        si[S_PREFILLING, slot] = 0
        sc[C_NPREFILLING] -= 1
    release_slot(sc, si, running, free_slots, slot)
    cap = queue.shape[0]
    head = sc[C_QHEAD] - 1
    if head < 0:
        head += cap
    sc[C_QHEAD] = head
    queue[head] = req
    sc[C_QLEN] += 1


@jitable
def next_prefill(cfg, sc, si, sf, ri, rf, running, free_slots, queue, now_s, plan):
    """Admit waiting requests FCFS (and continue chunked prefills) into one prefill
    iteration, written to ``plan`` (rows P_*); returns the number of chunks (0: nothing
    can be admitted now)."""
    budget = cfg[G_BUDGET]
    chunked = cfg[G_CHUNKED] != 0
    block = cfg[G_BLOCK]
    n = 0
    if sc[C_NPREFILLING] > 0:  # unfinished chunked prefills, in admission order
        for p in range(sc[C_NRUN]):
            slot = running[p]
            if not si[S_PREFILLING, slot]:
                continue
            done = ri[R_PREFILLED, si[S_REQ, slot]]
            total = si[S_PROMPT, slot] + si[S_GEN, slot]
            take = min(total - done, budget)
            if take <= 0:
                break
            plan[P_SLOT, n] = slot
            plan[P_TOKENS, n] = take
            plan[P_CACHED, n] = done
            plan[P_COMPLETES, n] = 1 if done + take == total else 0
            n += 1
            budget -= take
    cap = queue.shape[0]
    while sc[C_QLEN] > 0 and budget > 0 and sc[C_NRUN] < cfg[G_MAXSEQS]:
        req = queue[sc[C_QHEAD]]
        generated = ri[R_GEN, req]
        total = ri[R_PROMPT, req] + generated
        if total > budget and not chunked and n > 0:
            break
        take = min(total, budget) if chunked else total
        need = -(-total // block)
        if need > sc[C_FREE] - cfg[G_WATERMARK]:
            break
        head = sc[C_QHEAD] + 1
        sc[C_QHEAD] = head if head < cap else 0
        sc[C_QLEN] -= 1
        sc[C_NFREE] -= 1
        slot = free_slots[sc[C_NFREE]]
        si[S_REQ, slot] = req
        if rf[RF_ADMITTED, req] != rf[RF_ADMITTED, req]:  # NaN: first admission
            rf[RF_ADMITTED, req] = now_s
        si[S_PROMPT, slot] = ri[R_PROMPT, req]
        si[S_GEN, slot] = generated
        si[S_DRAFTED, slot] = ri[R_DRAFTED, req]
        si[S_VERIFIED, slot] = ri[R_VERIFIED, req]
        si[S_ACCEPTED, slot] = ri[R_ACCEPTED, req]
        si[S_OUT, slot] = ri[R_OUT, req]
        sf[SF_ARRIVAL, slot] = rf[RF_ARRIVAL, req]
        si[S_BLOCKS, slot] = need
        sc[C_FREE] -= need
        running[sc[C_NRUN]] = slot
        sc[C_NRUN] += 1
        ri[R_PREFILLED, req] = 0
        si[S_PREFILLING, slot] = 1
        sc[C_NPREFILLING] += 1
        plan[P_SLOT, n] = slot
        plan[P_TOKENS, n] = take
        plan[P_CACHED, n] = 0
        plan[P_COMPLETES, n] = 1 if take == total else 0
        n += 1
        budget -= take
    return n


@jitable
def finish_prefill(sc, si, ri, rf, running, free_slots, plan, n, now_s, finished):
    """Account a completed prefill iteration of ``n`` chunks: completed prefills emit one
    token each. Requests that are done go to ``finished`` (request indices, in chunk order);
    returns how many."""
    count = 0
    for c in range(n):
        slot = plan[P_SLOT, c]
        req = si[S_REQ, slot]
        ri[R_PREFILLED, req] += plan[P_TOKENS, c]
        if not plan[P_COMPLETES, c]:
            continue
        si[S_PREFILLING, slot] = 0
        sc[C_NPREFILLING] -= 1
        si[S_GEN, slot] += 1
        if rf[RF_FIRST, req] != rf[RF_FIRST, req]:
            rf[RF_FIRST, req] = now_s
        if si[S_GEN, slot] >= si[S_OUT, slot]:
            finished[count] = finish_slot(sc, si, ri, rf, running, free_slots, slot, now_s)
            count += 1
    return count


@jitable
def decode_slots(sc, si, running, slots):
    """The decode-ready running requests' slots, in admission order, into ``slots``;
    returns how many."""
    b = 0
    for p in range(sc[C_NRUN]):
        slot = running[p]
        if not si[S_PREFILLING, slot]:
            slots[b] = slot
            b += 1
    return b


@jitable
def prepare_decode(cfg, sc, si, ri, running, free_slots, queue, lookahead, slots, wanted):
    """Reserve KV for every decode-ready request's known tokens plus ``lookahead``,
    preempting the most recently admitted requests on shortage. The batch's slots go to
    ``slots``; returns its size (``wanted``: (2, n) scratch)."""
    b = decode_slots(sc, si, running, slots)
    if b == 0:
        return 0
    block = cfg[G_BLOCK]
    total = 0
    for i in range(b):
        slot = slots[i]
        held = si[S_BLOCKS, slot]
        want = (si[S_PROMPT, slot] + si[S_GEN, slot] + lookahead + block - 1) // block
        if want < held:  # a reservation never shrinks
            want = held
        wanted[0, i] = want
        wanted[1, i] = want - held
        total += want - held
    while total > sc[C_FREE]:
        victim = running[sc[C_NRUN] - 1]
        prefilling = si[S_PREFILLING, victim]
        preempt_slot(sc, si, ri, running, free_slots, queue, victim)
        if prefilling:
            continue
        b -= 1
        total -= wanted[1, b]
        if b == 0:
            break
    if b:
        for i in range(b):
            si[S_BLOCKS, slots[i]] = wanted[0, i]
        sc[C_FREE] -= total
    return b


@jitable
def finish_decode(sc, si, ri, rf, running, free_slots, slots, b, emitted, drafted, verified,
                  accepted, speculated, now_s, finished):
    """Account a decode iteration: request ``slots[i]`` emitted ``emitted[i]`` tokens
    (already capped at what it still needs) and, when ``speculated``, drafted / verified /
    accepted that many. Finished requests go to ``finished``; returns how many."""
    for i in range(b):
        si[S_GEN, slots[i]] += emitted[i]
    if speculated:
        for i in range(b):
            slot = slots[i]
            si[S_DRAFTED, slot] += drafted[i]
            si[S_VERIFIED, slot] += verified[i]
            si[S_ACCEPTED, slot] += accepted[i]
    count = 0
    for i in range(b):
        slot = slots[i]
        if si[S_GEN, slot] >= si[S_OUT, slot]:
            finished[count] = finish_slot(sc, si, ri, rf, running, free_slots, slot, now_s)
            count += 1
    return count


@jitable
def context_sum(si, slots, b):
    """Sum of the KV lengths (prompt + generated tokens) of the requests in ``slots[:b]``."""
    total = 0
    for i in range(b):
        slot = slots[i]
        total += si[S_PROMPT, slot] + si[S_GEN, slot]
    return total


def _kernels():
    from sim.compiled.jit import compiled
    return (compiled(next_prefill), compiled(finish_prefill), compiled(prepare_decode),
            compiled(finish_decode), compiled(context_sum))


class Scheduler:
    """Admission, KV accounting, preemption and completion for one engine replica.

    A thin Python face over ``SchedulerState`` and the rules above (compiled): the real
    engine and the protocol path use it; the compiled loop calls the same rules directly.
    """

    def __init__(self, config: SchedulerConfig, lookahead_tokens: int = 0,
                 expected_requests: int = 64) -> None:
        self.config = config
        self.lookahead_tokens = int(lookahead_tokens)
        self.state = SchedulerState(config, expected_requests)
        st = self.state
        self.prompt = st.si[S_PROMPT]
        self.generated = st.si[S_GEN]
        self.output = st.si[S_OUT]
        self.blocks = st.si[S_BLOCKS]
        self.drafted = st.si[S_DRAFTED]
        self.verified = st.si[S_VERIFIED]
        self.accepted = st.si[S_ACCEPTED]
        self.arrival = st.sf[SF_ARRIVAL]
        self._requests: dict[int, Request] = {}  # requests in the queue or the engine
        n = config.max_num_seqs
        self._plan = np.zeros((4, n), dtype=np.int64)
        self._finished = np.zeros(n, dtype=np.int64)
        self._wanted = np.zeros((2, n), dtype=np.int64)
        self._slots = np.zeros(n, dtype=np.int64)
        self._ones = np.ones(n, dtype=np.int64)  # plain decoding's emitted counts (read only)
        (self._next_prefill, self._finish_prefill, self._prepare_decode, self._finish_decode,
         self._context_sum) = _kernels()

    # ----------------------------------------------------------------- arrival
    def arrive(self, request: Request, now_s: float, key: float = 0.0
               ) -> FinishedRequest | None:
        """Queue a request, or return its rejection record when it can never be served, as
        vLLM 0.6 does:

        * ``context``: prompt + output tokens exceed ``max_model_len`` (vLLM's OpenAI server
          refuses a request whose prompt plus ``max_tokens`` exceeds the context);
        * ``prompt-budget``: without chunked prefill, a prompt longer than
          ``max_num_batched_tokens`` (vLLM's scheduler ignores a prompt above
          ``min(max_model_len, max_num_batched_tokens)``, FINISHED_IGNORED, with a warning);
        * ``kv-pool``: prompt + output + the policy's lookahead need more blocks than the pool
          minus the watermark (vLLM's block manager answers AllocStatus.NEVER).

        ``key``: the request's acceptance draw key (kept for the simulator's compiled loop).
        """
        rejected = self.rejection(request)
        if rejected is not None:
            return rejected
        req = self.state.enqueue(request.prompt_tokens, request.output_tokens,
                                 request.arrival_s, key, request.id)
        self._requests[req] = request
        return None

    def rejection(self, request: Request) -> FinishedRequest | None:
        """The rejection record ``arrive`` would return for ``request`` (None: it queues);
        the rule is ``rejection_kind``, which the compiled loop calls too."""
        args = (self.state.cfg, self.lookahead_tokens, request.prompt_tokens,
                request.output_tokens)
        kind = rejection_kind(*args)
        return None if kind == ADMIT else self._reject(request, rejection_reason(kind, *args))

    @staticmethod
    def _reject(request: Request, reason: str) -> FinishedRequest:
        nan = float("nan")
        return FinishedRequest(request, "rejected", nan, nan, nan, 0, 0, 0, 0, 0, reason=reason)

    @property
    def idle(self) -> bool:
        sc = self.state.sc
        return not sc[C_QLEN] and not sc[C_NRUN]

    @property
    def queue_len(self) -> int:
        return int(self.state.sc[C_QLEN])

    @property
    def free_blocks(self) -> int:
        return int(self.state.sc[C_FREE])

    @property
    def preemption_count(self) -> int:
        return int(self.state.sc[C_PREEMPTIONS])

    @property
    def running(self) -> list[int]:
        """Slots in admission order (decode-ready and prefilling)."""
        return self.state.running[:self.state.sc[C_NRUN]].tolist()

    def request_at(self, slot: int) -> Request:
        req = int(self.state.si[S_REQ, slot])
        assert req >= 0
        return self._requests[req]

    def key_at(self, slot: int) -> float:
        """The acceptance draw key the request in ``slot`` arrived with (``arrive``)."""
        req = int(self.state.si[S_REQ, slot])
        assert req >= 0
        return float(self.state.rf[RF_KEY, req])

    def finished_record(self, req: int) -> FinishedRequest:
        """The finish record of request index ``req`` (after a rule reported it done); the
        index is free again afterwards."""
        st = self.state
        ri, rf = st.ri, st.rf
        record = FinishedRequest(
            self._requests.pop(req), "finished", float(rf[RF_ADMITTED, req]),
            float(rf[RF_FIRST, req]), float(rf[RF_FINISH, req]), int(ri[R_GEN, req]),
            int(ri[R_DRAFTED, req]), int(ri[R_VERIFIED, req]), int(ri[R_ACCEPTED, req]),
            int(ri[R_PREEMPT, req]))
        st.release(req)
        return record

    # ----------------------------------------------------------------- prefill
    def next_prefill(self, now_s: float) -> list[PrefillChunk]:
        """Admit waiting requests FCFS (and continue chunked prefills) into one prefill
        iteration; empty when nothing can be admitted now."""
        st = self.state
        if not st.sc[C_QLEN] and not st.sc[C_NPREFILLING]:
            return []  # nothing waiting, no chunked prefill to continue
        plan = self._plan
        n = self._next_prefill(st.cfg, st.sc, st.si, st.sf, st.ri, st.rf, st.running,
                               st.free_slots, st.queue, float(now_s), plan)
        if not n:
            return []
        rows = plan[:, :n].T.tolist()
        return [PrefillChunk(slot, tokens, cached, bool(done)) for slot, tokens, cached, done
                in rows]

    def finish_prefill(self, chunks: list[PrefillChunk], now_s: float) -> list[FinishedRequest]:
        """Account a completed prefill iteration: completed prefills emit one token each."""
        st = self.state
        plan = np.array([[c.slot, c.tokens, c.cached, int(c.completes)] for c in chunks],
                        dtype=np.int64).reshape(-1, 4).T.copy()
        count = self._finish_prefill(st.sc, st.si, st.ri, st.rf, st.running, st.free_slots,
                                     plan, len(chunks), float(now_s), self._finished)
        return [self.finished_record(r) for r in self._finished[:count].tolist()]

    # ----------------------------------------------------------------- decode
    def decode_slots(self) -> np.ndarray:
        """Slots of the decode-ready running requests, in admission order."""
        st = self.state
        running = st.running[:st.sc[C_NRUN]]
        return running[st.si[S_PREFILLING, running] == 0]

    def prepare_decode(self, lookahead_tokens: int, now_s: float) -> np.ndarray:
        """Reserve KV for every decode-ready request's known tokens plus the lookahead,
        preempting the most recently admitted requests on shortage; return the batch slots."""
        st = self.state
        slots = self._slots
        b = self._prepare_decode(st.cfg, st.sc, st.si, st.ri, st.running, st.free_slots,
                                 st.queue, int(lookahead_tokens), slots, self._wanted)
        return slots[:b].copy()

    def context_tokens(self, slots: np.ndarray) -> int:
        """Sum of the KV lengths (prompt + generated tokens) of the requests in ``slots``
        (a batch from ``prepare_decode``)."""
        return self._context_sum(self.state.si, slots, slots.shape[0])

    def finish_decode(self, slots: np.ndarray, emitted: np.ndarray | int,
                      drafted: np.ndarray | None, verified: np.ndarray | None,
                      accepted: np.ndarray | None, now_s: float) -> list[FinishedRequest]:
        """Account a decode iteration: request ``slots[i]`` emitted ``emitted[i]`` tokens
        (already capped at what it still needs; a scalar applies to every request) and
        drafted / verified / accepted that many (all None for a plain-decoding iteration)."""
        st = self.state
        slots = np.asarray(slots, dtype=np.int64)
        b = slots.shape[0]
        if isinstance(emitted, np.ndarray):
            emitted = emitted.astype(np.int64, copy=False)
        elif emitted == 1:  # plain decoding: one token each
            emitted = self._ones[:b]
        else:  # a scalar for every request
            emitted = np.full(b, emitted, dtype=np.int64)
        speculated = drafted is not None
        if not speculated:
            drafted = verified = accepted = emitted
        else:
            drafted = np.asarray(drafted, dtype=np.int64)
            verified = np.asarray(verified, dtype=np.int64)
            accepted = np.asarray(accepted, dtype=np.int64)
        count = self._finish_decode(
            st.sc, st.si, st.ri, st.rf, st.running, st.free_slots, slots, b, emitted, drafted,
            verified, accepted, speculated, float(now_s), self._finished)
        if not count:
            return []
        return [self.finished_record(r) for r in self._finished[:count].tolist()]
