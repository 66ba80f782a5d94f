"""The scheduler's state as arrays, and the arrival rules (``sim.core.scheduler`` has the rest).

Every piece of scheduler state is an integer or float array (the layout below), so that the
same ``@jitable`` rules run from the Python ``Scheduler`` and from the compiled loop
(``sim.compiled.loop``). The arrival rules live here: ``rejection_kind`` (which requests can
never be served, the rule of ``Scheduler.arrive``), ``enqueue_request`` (a new request at the
tail of the waiting queue) and ``release_request`` (its index is free again).
"""

from __future__ import annotations

import numpy as np

from sim.compiled.jit import jitable

MAX_LIMIT = 2 ** 31 - 1
"""Largest engine limit (KV blocks, block size, token budget, context): the product of any
two stays inside the int64 the state is kept in (``SchedulerConfig`` checks)."""
MAX_NUM_SEQS = 16_384
"""Most running requests (16x vLLM's widest default): each slot holds array rows (the state,
the compiled loop's scratch: memory linear in it), so a huge value ("unlimited") would run
out of memory."""

# ---- state layout ---------------------------------------------------------------------------
#: rows of the per-slot integer array ``si`` (slot = row of the real engine's KV cache)
S_PROMPT, S_GEN, S_OUT, S_BLOCKS, S_DRAFTED, S_VERIFIED, S_ACCEPTED, S_REQ, S_PREFILLING, \
    S_BONUS = range(10)
SLOT_INT_ROWS = 10
#: rows of the per-slot float array ``sf``
SF_ARRIVAL, SF_KEY = range(2)
SLOT_FLOAT_ROWS = 2
#: rows of the per-request integer array ``ri`` (request index: reused once a request left);
#: ``R_TAG`` is the caller's name for the request (the compiled loop: its arrival number)
R_PROMPT, R_OUT, R_PREEMPT, R_PREFILLED, R_GEN, R_DRAFTED, R_VERIFIED, R_ACCEPTED, \
    R_TAG = range(9)
REQ_INT_ROWS = 9
#: rows of the per-request float array ``rf``
RF_ARRIVAL, RF_ADMITTED, RF_FIRST, RF_FINISH, RF_KEY = range(5)
REQ_FLOAT_ROWS = 5
#: the scalars ``sc``: free blocks, preemptions so far, running / free-slot / waiting counts,
#: head of the waiting ring, prefilling count, free request indices (in ``free_reqs``),
#: request indices handed out so far
C_FREE, C_PREEMPTIONS, C_NRUN, C_NFREE, C_QHEAD, C_QLEN, C_NPREFILLING, C_NFREEREQ, \
    C_NEXTREQ = range(9)
SCALARS = 9
#: the configuration ``cfg`` (``G_MAX_LEN``: max_model_len, -1 when unlimited)
G_KV, G_MAXSEQS, G_BLOCK, G_BUDGET, G_WATERMARK, G_CHUNKED, G_MAX_LEN = range(7)
#: rows of a prefill plan (``next_prefill``'s output): slot, new tokens, cached, completes
P_SLOT, P_TOKENS, P_CACHED, P_COMPLETES = range(4)
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

#: ``rejection_kind``'s answers (0: the request queues); ``REJECT_KINDS[k]`` names kind k
ADMIT, REJECT_CONTEXT, REJECT_PROMPT_BUDGET, REJECT_KV_POOL = range(4)
REJECT_KINDS = ("", *REJECT_REASONS)


# ---- arrival rules --------------------------------------------------------------------------
@jitable
def rejection_kind(cfg, lookahead, prompt, output):
    """Why a request of ``prompt`` + ``output`` tokens can never be served (a ``REJECT_*``
    kind), or ``ADMIT``; the rule of ``Scheduler.arrive`` (its docstring says why each)."""
    total = prompt + output
    if cfg[G_MAX_LEN] >= 0 and total > cfg[G_MAX_LEN]:
        return REJECT_CONTEXT
    if cfg[G_CHUNKED] == 0 and prompt > cfg[G_BUDGET]:
        return REJECT_PROMPT_BUDGET
    if usable_blocks_needed(cfg, lookahead, total) > cfg[G_KV] - cfg[G_WATERMARK]:
        return REJECT_KV_POOL
    return ADMIT


def rejection_reason(kind, cfg, lookahead, prompt, output) -> str:
    """The reason of a ``rejection_kind`` (``FinishedRequest.reason``: its
    ``REJECT_REASONS`` key, a colon, the numbers)."""
    total = prompt + output
    if kind == REJECT_CONTEXT:
        return (f"context: prompt + output = {total} tokens > the model's "
                f"{int(cfg[G_MAX_LEN])}-token context")
    if kind == REJECT_PROMPT_BUDGET:
        return (f"prompt-budget: prompt of {prompt} tokens > max_num_batched_tokens "
                f"{int(cfg[G_BUDGET])} (chunked prefill off)")
    return (f"kv-pool: needs {int(usable_blocks_needed(cfg, lookahead, total))} KV blocks, "
            f"the pool has {int(cfg[G_KV] - cfg[G_WATERMARK])} usable")


@jitable
def usable_blocks_needed(cfg, lookahead, total):
    """KV blocks a request of ``total`` tokens needs at its longest (with the lookahead)."""
    block = cfg[G_BLOCK]
    return (total + lookahead + block - 1) // block


@jitable
def enqueue_request(sc, ri, rf, queue, free_reqs, prompt, output, arrival_s, key, tag):
    """Queue a new request at the tail of the waiting queue; returns its index, or -1 when
    every index is taken (the caller reserves more, ``SchedulerState.reserve``, and retries)."""
    n_free = sc[C_NFREEREQ]
    if n_free > 0:
        req = free_reqs[n_free - 1]
        sc[C_NFREEREQ] = n_free - 1
    else:
        req = sc[C_NEXTREQ]
        if req >= ri.shape[1]:
            return -1
        sc[C_NEXTREQ] = req + 1
    for row in range(ri.shape[0]):
        ri[row, req] = 0
    for row in range(rf.shape[0]):
        rf[row, req] = np.nan
    ri[R_PROMPT, req] = prompt
    ri[R_OUT, req] = output
    ri[R_TAG, req] = tag
    rf[RF_ARRIVAL, req] = arrival_s
    rf[RF_KEY, req] = key
    cap = queue.shape[0]
    queue[(sc[C_QHEAD] + sc[C_QLEN]) % cap] = req
    sc[C_QLEN] += 1
    return req


@jitable
def release_request(sc, free_reqs, req):
    """Request index ``req`` is free again (its finish record was taken)."""
    free_reqs[sc[C_NFREEREQ]] = req
    sc[C_NFREEREQ] += 1


class SchedulerState:
    """The arrays of one scheduler (see the layout above); shared by ``Scheduler`` and the
    compiled loop. A request index names a request from its arrival until its finish record
    is taken (``release``); indices are then reused, so the per-request rows hold the
    requests in the engine and in the queue, not every request of a run."""

    def __init__(self, config, requests: int = 64) -> None:
        n = config.max_num_seqs
        self.cfg = np.array([config.kv_blocks, n, config.block_size,
                             config.max_num_batched_tokens, config.watermark_blocks,
                             int(config.chunked_prefill),
                             -1 if config.max_model_len is None else config.max_model_len],
                            dtype=np.int64)
        self.sc = np.zeros(SCALARS, dtype=np.int64)
        self.sc[C_FREE] = config.kv_blocks
        self.sc[C_NFREE] = n
        self.si = np.zeros((SLOT_INT_ROWS, n), dtype=np.int64)
        self.si[S_REQ] = -1
        self.sf = np.zeros((SLOT_FLOAT_ROWS, n), dtype=np.float64)
        self.running = np.zeros(n, dtype=np.int64)
        self.free_slots = np.arange(n - 1, -1, -1, dtype=np.int64)  # pops slot 0 first
        self.ri = np.zeros((REQ_INT_ROWS, 0), dtype=np.int64)
        self.rf = np.zeros((REQ_FLOAT_ROWS, 0), dtype=np.float64)
        self.queue = np.zeros(0, dtype=np.int64)
        self.free_reqs = np.zeros(0, dtype=np.int64)  # a stack of free request indices
        self.reserve(requests)

    def reserve(self, requests: int) -> None:
        """Room for ``requests`` requests at once: the per-request rows and a waiting ring
        that also holds every running request (preemptions push them back)."""
        have = self.ri.shape[1]
        if requests > have:
            size = max(requests, 2 * have)
            ri = np.zeros((REQ_INT_ROWS, size), dtype=np.int64)
            rf = np.full((REQ_FLOAT_ROWS, size), np.nan)
            free_reqs = np.zeros(size, dtype=np.int64)
            ri[:, :have] = self.ri
            rf[:, :have] = self.rf
            free_reqs[:have] = self.free_reqs
            self.ri, self.rf, self.free_reqs = ri, rf, free_reqs
        need = self.ri.shape[1] + self.si.shape[1] + 1
        cap = self.queue.shape[0]
        if need > cap:
            size = max(need, 2 * cap)
            head, length = int(self.sc[C_QHEAD]), int(self.sc[C_QLEN])
            queue = np.zeros(size, dtype=np.int64)
            queue[:length] = self.queue[(head + np.arange(length)) % cap] if cap else []
            self.queue = queue
            self.sc[C_QHEAD] = 0

    def enqueue(self, prompt: int, output: int, arrival_s: float, key: float = 0.0,
                tag: int = -1) -> int:
        """Queue a new request at the tail of the waiting queue; returns its index."""
        req = enqueue_request(self.sc, self.ri, self.rf, self.queue, self.free_reqs, prompt,
                              output, arrival_s, key, tag)
        if req < 0:
            self.reserve(self.ri.shape[1] + 1)
            req = enqueue_request(self.sc, self.ri, self.rf, self.queue, self.free_reqs,
                                  prompt, output, arrival_s, key, tag)
        return int(req)

    def release(self, req: int) -> None:
        """Request index ``req`` is free again (its finish record was taken)."""
        release_request(self.sc, self.free_reqs, req)
