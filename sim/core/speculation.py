"""Drives one decode iteration through the policy protocol against any executor.

This is the only implementation of the protocol loop: the simulator's executor (drawing
confidences and outcomes from the acceptance model) and the real engine's executor (running
the draft and target models) both plug in here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sim.compiled.jit import compiled, inlined, jitable
from sim.core.scheduler_state import S_GEN, S_OUT, S_PROMPT
from sim.latency.iteration import DEFAULT_ENGINE, VLLM_06, DecodeShape
from sim.policies.base import BatchView, Policy, known_once


class DecodeExecutor(Protocol):
    """Runs the passes a decode iteration asks for."""

    def draft_step(self, step: int, mask: np.ndarray) -> np.ndarray:
        """Run draft step ``step`` for requests where ``mask``; return (B,) draft probabilities
        of the drafted tokens (values where ``~mask`` are ignored)."""
        ...

    def verify(self, verify_tokens: np.ndarray) -> np.ndarray:
        """Run one target pass verifying ``verify_tokens[i]`` drafted tokens of request i
        (plus its bonus position); return the accepted prefix lengths a_i <= verify_tokens[i]."""
        ...

    # Executors whose ``verify`` returns 0 <= a_i <= verify_tokens[i] by construction may set
    # ``accepted_in_range = True`` to spare the driver its check (the simulator's does).


@dataclass(frozen=True, slots=True)
class DecodeOutcome:
    """What one decode iteration did. Request i emits ``accepted[i] + 1`` tokens."""

    draft_steps: int  # draft passes actually run
    drafted: np.ndarray  # (B,) int
    verify: np.ndarray  # (B,) int
    accepted: np.ndarray  # (B,) int
    conf: np.ndarray  # (B, draft_steps) float, valid where position < drafted
    drafting: tuple[int, ...] = ()  # requests that ran each draft step (len draft_steps)


def build_batch_view(sched, slots: np.ndarray, now_s: float, k_max: int, ttft_slo_s: float,
                     tpot_slo_s: float, estimator, padding, oracle=None,
                     engine: str = DEFAULT_ENGINE, bonus: np.ndarray | None = None,
                     drafter=None) -> BatchView:
    """What an engine knows about decode batch ``slots`` of scheduler ``sched`` at ``now_s``.

    Each request may draft at most ``min(k_max, remaining output tokens - 1)`` tokens, so full
    acceptance emits exactly what it still needs. ``bonus``: per request of the batch, whether
    its previous iteration ended with a bonus token (batch expansion only). ``drafter``: a
    method's plan (``sim.drafters.plan.MethodPlan``; None for the draft model). Shared by the
    simulated and the real engine.
    """
    batch = slots.shape[0]
    context = np.empty(batch, dtype=np.int64)
    prompt = np.empty(batch, dtype=np.int64)
    generated = np.empty(batch, dtype=np.int64)
    limits = np.empty(batch, dtype=np.int64)
    elapsed = np.empty(batch)
    context_sum, least_limit = compiled(batch_view_into)(
        sched.state.si, sched.arrival, np.asarray(slots, dtype=np.int64), batch, float(now_s),
        int(k_max), context, prompt, generated, elapsed, limits)
    view = BatchView(now_s, context, prompt, generated, elapsed, ttft_slo_s, tpot_slo_s,
                     sched.queue_len, limits, estimator, padding, oracle, engine, bonus, drafter)
    # the view's computed-once sums, which the gather found on the way
    known_once(view, total_context_tokens=context_sum, least_max_draft_tokens=least_limit)
    return view


@inlined
def batch_limits_into(si, slots, batch, k_max, context, limits):
    """Per request ``slots[i]`` of a decode batch (``si``: the scheduler's per-slot ints): its
    context L_i = prompt + generated tokens and its draft limit
    ``min(output - generated - 1, k_max)`` (so full acceptance emits exactly what it still
    needs); returns (sum L_i, least limit, largest limit; zeros for no requests). The one
    gather of both paths: ``batch_view_into`` (the protocol's view) and the compiled loop's
    decode iteration."""
    context_sum = 0
    least = 0
    most = 0
    for i in range(batch):
        slot = slots[i]
        generated = si[S_GEN, slot]
        context[i] = si[S_PROMPT, slot] + generated
        context_sum += context[i]
        limit = si[S_OUT, slot] - generated - 1
        limits[i] = limit if limit < k_max else k_max
        if i == 0 or limits[i] < least:
            least = limits[i]
        if i == 0 or limits[i] > most:
            most = limits[i]
    return context_sum, least, most


@jitable
def batch_view_into(si, arrival, slots, batch, now_s, k_max, context, prompt_out,
                    generated_out, elapsed, limits):
    """``build_batch_view``'s arrays for the requests in ``slots``: per request its prompt,
    generated tokens, seconds since arrival (``arrival``: per slot), and context and draft
    limit (``batch_limits_into``); returns (sum L_i, least limit; 0 for no requests)."""
    context_sum, least, _ = batch_limits_into(si, slots, batch, k_max, context, limits)
    for i in range(batch):
        slot = slots[i]
        prompt_out[i] = si[S_PROMPT, slot]
        generated_out[i] = si[S_GEN, slot]
        elapsed[i] = now_s - arrival[slot]
    return context_sum, least


def _zeros(batch: int) -> np.ndarray:
    return np.zeros(batch, dtype=np.int64)


def run_decode_iteration(policy: Policy, view: BatchView, executor: DecodeExecutor) -> DecodeOutcome:
    """Run the protocol loop once; enforce its invariants whatever the policy returns.

    Invariants: drafting is a prefix (a request that skips a step never drafts again this
    iteration); nobody drafts past ``view.max_draft_tokens``; 0 <= k_i <= drafted_i;
    ``conf`` is 0 at positions a request did not draft.

    ``continue_drafting`` may answer with a mask or with a plain ``True`` (everyone still
    drafting continues) / ``False`` (nobody drafts this step). While every request drafts, the
    loop does no mask arithmetic at all: this loop runs once per simulated iteration.
    """
    batch = view.batch_size
    cap = view.max_draft_tokens
    k_max = int(policy.begin(view))
    if k_max < 0:
        raise ValueError(f"policy {policy.name} returned negative k_max {k_max}")
    cap_min = 0
    if k_max and batch:
        cap_min = view.least_max_draft_tokens
        if cap_min < k_max:
            k_max = min(k_max, max(cap.tolist()))
    if k_max <= 0 or batch == 0:
        verify = _zeros(batch)
        accepted = np.asarray(executor.verify(verify), dtype=np.int64)
        policy.observe(verify, accepted)
        return DecodeOutcome(0, verify, verify, accepted, np.zeros((batch, 0)))

    policy_type = type(policy)
    asks_each_step = policy_type.continue_drafting is not Policy.continue_drafting
    conf = np.zeros((batch, k_max), dtype=np.float64)
    drafted = _zeros(batch)
    alive: np.ndarray | None = None  # None: every request is still drafting
    drafting: list[int] = []
    continue_drafting = policy.continue_drafting
    draft_step = executor.draft_step
    everyone = _all_true(batch)
    for step in range(k_max):
        if asks_each_step:
            decision = continue_drafting(step, conf[:, :step], drafted)
            if decision is False:
                break
            if decision is not True:
                mask = np.asarray(decision, dtype=bool)
                alive = mask.copy() if alive is None else alive & mask
        if step >= cap_min:  # some requests have no room for this step
            room = cap > step
            alive = room if alive is None else alive & room
        if alive is None:
            conf[:, step] = draft_step(step, everyone)
            drafted += 1
            drafting.append(batch)
            continue
        n = int(np.count_nonzero(alive))
        if n == 0:
            break
        conf[:, step] = np.asarray(draft_step(step, alive), dtype=np.float64) * alive
        drafted += alive
        drafting.append(n)
    steps = len(drafting)
    conf = conf[:, :steps]
    drafted.flags.writeable = False  # policies read it; what they return is checked
    if policy_type.verify_lengths is Policy.verify_lengths:
        verify = drafted
    else:
        verify = policy.verify_lengths(conf, drafted)
        if verify is not drafted:
            verify = np.minimum(np.maximum(np.asarray(verify, dtype=np.int64), 0), drafted)
    accepted = np.asarray(executor.verify(verify), dtype=np.int64)
    if not getattr(executor, "accepted_in_range", False) and (
            (accepted > verify).any() or accepted.min(initial=0) < 0):
        raise ValueError("executor returned accepted counts outside 0..verify")
    policy.observe(verify, accepted)
    return DecodeOutcome(steps, drafted, verify, accepted, conf, tuple(drafting))


def decode_shape(view: BatchView, outcome: DecodeOutcome) -> DecodeShape:
    """The passes ``view.engine`` runs for the iteration's plan (``sim.latency.iteration``):
    draft step s over the requests with drafted > s (their contexts so far; plus the bonus
    rows under batch expansion), then verification. Shared by the simulated and the real
    engine (``decode_shape_into`` is the rule; the compiled loop calls it too)."""
    batch = view.batch_size
    steps = outcome.draft_steps
    rows = np.zeros(steps, dtype=np.int64)
    kv = np.zeros(steps, dtype=np.int64)
    expanded = view.engine == VLLM_06
    bonus = view.bonus if expanded and view.bonus is not None else _NO_BONUS
    context_sum, verify_rows, tokens, verify_kv = compiled(decode_shape_into)(
        np.asarray(view.context_tokens, dtype=np.int64), np.asarray(outcome.drafted,
                                                                    dtype=np.int64),
        np.asarray(outcome.verify, dtype=np.int64), batch,
        np.asarray(outcome.drafting, dtype=np.int64), steps, expanded,
        np.asarray(bonus, dtype=np.bool_), bonus.shape[0] > 0, rows, kv)
    return DecodeShape(batch, context_sum, verify_rows, tokens, verify_kv,
                       tuple(rows.tolist()), tuple(kv.tolist()))


_NO_BONUS = np.zeros(0, dtype=bool)


@jitable
def decode_shape_into(context, drafted, verify, batch, drafting, steps, expanded, bonus,
                      has_bonus, rows, kv):
    """The rule of ``decode_shape`` on arrays: per draft step s, ``rows[s]`` and ``kv[s]``
    (``drafting[s]`` requests, those with drafted > s, reading their contexts plus s tokens
    each; under batch expansion plus one copy row per bonus request still drafting, reading
    L_i - 1 + s); returns (sum L_i, verification rows, query tokens, KV tokens read)."""
    context_sum = 0
    verify_total = 0
    for i in range(batch):
        context_sum += context[i]
        verify_total += verify[i]
    if steps:
        # step t reads the contexts of the requests with drafted > t (and, under batch
        # expansion, L_i - 1 more for each one's bonus copy row): summed row by row into
        # rows[t] (bonus rows) and kv[t] (integers: the order cannot change a sum)
        for t in range(steps):
            rows[t] = 0
            kv[t] = 0
        for i in range(batch):
            d = drafted[i] if drafted[i] < steps else steps
            if expanded and has_bonus and bonus[i]:
                for t in range(d):
                    rows[t] += 1
                    kv[t] += 2 * context[i] - 1
            else:
                for t in range(d):
                    kv[t] += context[i]
        for t in range(steps):
            r = drafting[t] + rows[t]
            rows[t] = r
            kv[t] += t * r
    tokens = batch + verify_total
    if not expanded:
        return context_sum, batch, tokens, context_sum
    if verify_total == 0:
        return context_sum, tokens, tokens, context_sum
    verify_kv = 0
    for i in range(batch):
        k = verify[i]
        verify_kv += (k + 1) * context[i] + k * (k + 1) // 2
    return context_sum, tokens, tokens, verify_kv


_ALL_TRUE: dict[int, np.ndarray] = {}


def _all_true(batch: int) -> np.ndarray:
    """A shared read-only all-True mask of length ``batch`` (executors must not write to it)."""
    mask = _ALL_TRUE.get(batch)
    if mask is None:
        mask = np.ones(batch, dtype=bool)
        mask.flags.writeable = False
        _ALL_TRUE[batch] = mask
    return mask
