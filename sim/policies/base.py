"""The speculative-decoding policy protocol (DESIGN.md §3), shared by the simulator and the
real engine. Pure Python + numpy: policies never import torch, transformers or simpy.

A decode iteration is a conversation between the core, the policy and an executor::

    k_max = policy.begin(view)                      # 0 = plain decoding this iteration
    for s in range(k_max):
        mask = policy.continue_drafting(s, conf, drafted)   # who drafts step s: mask or True/False
        conf[:, s] = executor.draft_step(s, mask)           # draft prob of each drafted token
    verify = policy.verify_lengths(conf, drafted)   # k_i, 0 <= k_i <= drafted_i
    accepted = executor.verify(verify)              # a_i, accepted prefix length
    policy.observe(verify, accepted)

``sim.core.speculation.run_decode_iteration`` runs exactly this loop; both executors
(simulated and real) plug into it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from sim.core.padding import GraphPadding
from sim.latency.base import LatencyModel
from sim.latency.iteration import DEFAULT_ENGINE


class _computed_once:
    """A lazily computed attribute of a frozen dataclass: the first access stores the value in
    the instance ``__dict__``, which then shadows this (non-data) descriptor.
    ``functools.cached_property`` does the same but takes a lock on every first access."""

    def __init__(self, compute) -> None:
        self._compute = compute
        self._name = compute.__name__
        self.__doc__ = compute.__doc__

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self._name] = self._compute(obj)
        return value


def known_once(obj, **values) -> None:
    """Record values of ``obj``'s computed-once attributes that the caller already has (e.g.
    found while gathering the arrays), so they are not computed again; only those names."""
    for name, value in values.items():
        if not isinstance(getattr(type(obj), name, None), _computed_once):
            raise AttributeError(f"{type(obj).__name__}.{name} is not a computed-once attribute")
        obj.__dict__[name] = value


@dataclass(frozen=True, slots=True)
class OracleView:
    """Sim-only ground truth for the ``oracle`` policy: for each request and draft position,
    the draft confidence and whether the target would accept that token (if reached)."""

    conf: np.ndarray  # (B, K) float
    accept: np.ndarray  # (B, K) bool


@dataclass(frozen=True)
class BatchView:
    """What a real engine knows at the start of a decode iteration.

    Arrays are indexed by position in the decode batch (admission order). The estimator is the
    policy's *own* latency estimate, not the simulator's ground truth. ``oracle`` is set only
    by the simulator and only for policies with ``needs_oracle = True``.

    ``engine`` names the serving engine whose passes the iteration runs
    (``sim.latency.iteration``); under batch expansion (``vllm-0.6``) ``bonus[i]`` says whether
    request i received a bonus token in its previous iteration (its draft batch then carries
    an extra row every step); None under single-pass engines (no such rows).
    """

    now_s: float
    context_tokens: np.ndarray  # (B,) int: prompt + generated so far (KV length before the pass)
    prompt_tokens: np.ndarray  # (B,) int
    generated_tokens: np.ndarray  # (B,) int: tokens emitted so far (>= 1 after prefill)
    elapsed_s: np.ndarray  # (B,) float: now - arrival
    ttft_slo_s: float
    tpot_slo_s: float
    queue_len: int  # requests waiting for admission
    max_draft_tokens: np.ndarray  # (B,) int: most tokens request i may draft this iteration
    estimator: LatencyModel
    padding: GraphPadding
    oracle: OracleView | None = None
    engine: str = DEFAULT_ENGINE
    bonus: np.ndarray | None = None  # (B,) bool, batch expansion only
    # a method's tree/chain tables (``sim.drafters.plan.MethodPlan``): the verify length k_i
    # is then a depth and request i verifies ``drafter.nodes[k_i]`` positions; None: the
    # draft-model method (k_i tokens)
    drafter: object | None = None

    @property
    def batch_size(self) -> int:
        return int(self.context_tokens.shape[0])

    @_computed_once
    def total_context_tokens(self) -> int:
        """Sum of ``context_tokens`` (the KV positions a pass over the whole batch reads),
        computed once per view: the engine and the policy's cost model both need it."""
        return int(sum(self.context_tokens.tolist()))  # exact; cheaper than numpy at B < ~300

    @_computed_once
    def bonus_rows(self) -> int:
        """Requests with a bonus token from their previous iteration (0 without ``bonus``)."""
        return 0 if self.bonus is None else int(np.count_nonzero(self.bonus))

    @_computed_once
    def bonus_context_tokens(self) -> int:
        """Summed KV length of the bonus rows' copies, sum (L_i - 1) over bonus requests."""
        if not self.bonus_rows:
            return 0
        return int(self.context_tokens[self.bonus].sum()) - self.bonus_rows

    @_computed_once
    def least_max_draft_tokens(self) -> int:
        """``min(max_draft_tokens)`` (0 for an empty batch): when it reaches a policy's K,
        every request may draft every step and nobody needs a per-request mask."""
        limits = self.max_draft_tokens.tolist()
        return int(min(limits)) if limits else 0


class Policy(ABC):
    """Base class of every policy. One instance serves one run (it may keep statistics).

    Subclasses set ``name`` (the canonical spec string, e.g. ``"static:5"``) and ``k_max``.
    ``uses_draft`` says whether the draft model must be loaded (and its KV reserved);
    ``needs_oracle`` marks sim-only policies that read ``BatchView.oracle``.
    """

    name: str = "policy"
    k_max: int = 0
    uses_draft: bool = True
    needs_oracle: bool = False

    @abstractmethod
    def begin(self, view: BatchView) -> int:
        """Number of draft steps this iteration may run at most (0 = plain decode)."""

    def continue_drafting(self, step: int, conf: np.ndarray, drafted: np.ndarray
                          ) -> np.ndarray | bool:
        """Boolean mask (B,) of the requests that draft step ``step`` (0-based), or ``True``
        (every request still drafting continues) / ``False`` (nobody drafts this step); the
        plain answers spare the driver all mask arithmetic.

        ``conf[i, j]`` is the draft probability of request i's token at position j for
        j < drafted[i] (undefined elsewhere). The driver keeps only requests that drafted every
        earlier step and still have room. Default: everyone who can, keeps drafting.
        """
        return True

    def verify_lengths(self, conf: np.ndarray, drafted: np.ndarray) -> np.ndarray:
        """Tokens k_i (B,) each request sends to verification; default: all it drafted.

        ``drafted`` is read-only; returning it unchanged means "verify everything drafted"."""
        return drafted

    def observe(self, verify: np.ndarray, accepted: np.ndarray) -> None:
        """Learn from the outcome: ``accepted[i]`` of ``verify[i]`` drafted tokens accepted."""
