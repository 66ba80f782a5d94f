"""Drives one decode iteration through the policy protocol against any executor.

This is the only implementation of the protocol loop: the simulator's executor (drawing
confidences and outcomes from the acceptance model) and the real engine's executor (running
the draft and target models) both plug in here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sim.latency.iteration import (DEFAULT_ENGINE, VLLM_06, DecodeShape, draft_shape,
                                   expanded_kv_tokens, uniform_expanded_kv_tokens)
from sim.policies.base import BatchView, Policy


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
    generated = sched.generated[slots]
    prompt = sched.prompt[slots]
    return BatchView(now_s, prompt + generated, prompt, generated,
                     now_s - sched.arrival[slots], ttft_slo_s, tpot_slo_s, sched.queue_len,
                     np.minimum(sched.output[slots] - generated - 1, k_max), estimator,
                     padding, oracle, engine, bonus, drafter)


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
    rows under batch expansion), then verification. Shared by the simulated and the real engine."""
    batch = view.batch_size
    context = view.context_tokens
    context_sum = view.total_context_tokens
    steps = outcome.draft_steps
    drafted = outcome.drafted
    drafting = outcome.drafting  # requests in each draft step
    everyone = bool(steps) and drafting[-1] == batch  # everyone drafted every step
    if not steps:
        step_context: list[int] = []
    elif everyone:  # the common case
        step_context = [context_sum] * steps
    else:
        # step s runs for the requests with drafted > s, over their contexts so far
        stopped = np.bincount(drafted, weights=context, minlength=steps + 1).tolist()
        stopped_context = 0.0  # context of the requests that drafted <= s tokens
        step_context = []
        for s in range(steps):
            stopped_context += stopped[s]
            step_context.append(int(context_sum - stopped_context))
    verify = outcome.verify
    verify_total = sum(drafting) if verify is drafted else sum(verify.tolist())
    tokens = batch + verify_total
    if view.engine != VLLM_06:
        rows, kv = draft_shape(drafting, step_context)
        return DecodeShape(batch, context_sum, batch, tokens, context_sum, rows, kv)
    bonus_rows: list[int] = []
    bonus_context: list[int] = []
    if steps and view.bonus_rows:
        if everyone:
            bonus_rows = [view.bonus_rows] * steps
            bonus_context = [view.bonus_context_tokens] * steps
        else:  # bonus requests still drafting at each step
            mask = view.bonus
            left = np.bincount(drafted[mask], minlength=steps + 1)
            left_ctx = np.bincount(drafted[mask], weights=context[mask] - 1,
                                   minlength=steps + 1)
            rows_left = view.bonus_rows - np.cumsum(left)[:steps]
            ctx_left = view.bonus_context_tokens - np.cumsum(left_ctx)[:steps]
            bonus_rows = rows_left.tolist()
            bonus_context = [int(round(c)) for c in ctx_left.tolist()]
    rows, kv = draft_shape(drafting, step_context, bonus_rows, bonus_context)
    if verify_total == 0:
        verify_kv = context_sum
    elif everyone and verify is drafted:
        verify_kv = uniform_expanded_kv_tokens(batch, context_sum, steps)
    else:
        verify_kv = expanded_kv_tokens(context.tolist(), verify.tolist())
    return DecodeShape(batch, context_sum, tokens, tokens, verify_kv, rows, kv)


_ALL_TRUE: dict[int, np.ndarray] = {}


def _all_true(batch: int) -> np.ndarray:
    """A shared read-only all-True mask of length ``batch`` (executors must not write to it)."""
    mask = _ALL_TRUE.get(batch)
    if mask is None:
        mask = np.ones(batch, dtype=bool)
        mask.flags.writeable = False
        _ALL_TRUE[batch] = mask
    return mask
