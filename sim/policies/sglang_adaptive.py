"""``sglang:K,slots=...``: SGLang's batch-size-aware adaptive ``speculative_num_steps``
(``--speculative-adaptive``).

Sources (sgl-project/sglang):

* ``python/sglang/srt/speculative/adaptive_spec_params.py`` @ 015c872
  (``DEFAULT_ADAPTIVE_CONFIG``, ``AdaptiveStepSlot``, ``AdaptiveSpeculativeParams``) and
  ``adaptive_step_router.py`` @ a12239f (``AdaptiveStepRouter``); the design in PR #21599
  ("add adaptive speculative_num_steps for EAGLE topk=1") and PR #24055 ("batchsize-aware
  support": "each BS range has its own EMA tracker, candidate steps, and hysteresis
  thresholds").
* Routing (``batch_size_key_for_batch``): the batch size is first padded up to the smallest
  captured CUDA-graph batch size >= it (unchanged above the largest), then mapped to the
  largest slot key <= it (``bisect_right - 1``, the smallest key below all keys).
* Default slots, ``DEFAULT_ADAPTIVE_CONFIG``: key 1: steps [1, 3, 5, 7], up 0.0, down -0.25;
  key 8: [0, 1, 3], up 0.0, down 0.0; key 32: [0, 1], 0.0 / 0.0; key 64: [0], 0.0 / 0.0;
  ``ceiling_coeff`` 0 (off) everywhere. Globals (``AdaptiveStepSlot`` defaults): ``ema_alpha``
  0.2, ``update_interval`` 5, ``warmup_batches`` 10; a slot without its own hysteresis takes
  up 0.0, down -0.25. (PR #24055's description shows an earlier default: [1, 64) -> [1, 3, 7],
  [64, 128) -> [1, 2, 5], [128, inf) -> [1, 2, 6], without 0.)
* A slot starts at the launch ``speculative_num_steps`` if it is one of its candidates, else
  at ``candidates[len // 2]``; its EMA starts at steps - 1.
* ``AdaptiveStepSlot.update`` (once per verified decode batch, fed the batch's accepted draft
  tokens per request): while steps > 0, ``ema = (1 - alpha) ema + alpha * mean(accepted)``;
  every batch counts; nothing changes during the first ``warmup_batches``, then every
  ``update_interval``-th batch recomputes: at steps 0 it probes the next candidate up (and
  sets the EMA to that step - 1 if it was negative); otherwise it steps down while
  ``ema <= prev - 0.5 + down`` (``0.5 + down`` when prev is 0), and only if it did not move
  down, up while ``ema > current - 0.5 + up``; with ``ceiling_coeff`` c > 0 a target not above
  the old steps is capped at ``max(1, ceil(c * ema))``.
* With EAGLE top-k 1 the verified tokens are ``speculative_num_draft_tokens = steps + 1``, so
  k = steps here. The KV reservation is the largest candidate (PR #24055, "the pre-computed
  max across all candidate steps so the allocation stays constant"): ``k_max``.

Differences, stated: SGLang's captured graph batch sizes are its own list; here the
simulator's graph sizes (``--graph-max-size``; none with ``--no-cuda-graphs``) pad the batch
(``pad=none`` turns the padding off). The adaptive controller supports EAGLE/EAGLE3 (STANDALONE,
a separate draft model as simulated here, is PR #23519, open). Whether ``update`` is also
called for batches run at steps 0 was read from the unit test ``test_zero_step_mixed_slot_
drops_probes_and_rechecks`` (it is), not from the worker. At steps 0 the draft extend still
runs (``zero=sync``, ``sim.policies.engine_rules``).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from enum import Enum

import numpy as np

from sim.errors import ConfigError
from sim.policies.base import BatchView
from sim.policies.engine_rules import EngineRulePolicy, ZeroMode, fmt
from sim.policies.params import MAX_DRAFT_TOKENS, check_enum, check_positive_int, check_unit

DEFAULT_K = 3
#: DEFAULT_ADAPTIVE_CONFIG @ 015c872: key -> (candidate steps, up, down hysteresis).
DEFAULT_SLOTS: dict[int, tuple[tuple[int, ...], float, float]] = {
    1: ((1, 3, 5, 7), 0.0, -0.25),
    8: ((0, 1, 3), 0.0, 0.0),
    32: ((0, 1), 0.0, 0.0),
    64: ((0,), 0.0, 0.0),
}
DEFAULT_UP, DEFAULT_DOWN = 0.0, -0.25  # AdaptiveStepSlot defaults for slots given by the user
DEFAULT_EMA, DEFAULT_INTERVAL, DEFAULT_WARMUP = 0.2, 5, 10


class PadMode(str, Enum):
    """Whether the batch is padded to a captured graph size before routing."""

    GRAPH = "graph"
    NONE = "none"


def parse_slots(text: str) -> dict[int, tuple[int, ...]]:
    """``"BS:S+S+S/BS:S/..."`` -> {bs: sorted unique steps}."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("slots must be 'BS:STEPS/...' with STEPS like 1+3+7, "
                          "e.g. 1:1+3+7/8:0+1+3")
    slots: dict[int, tuple[int, ...]] = {}
    for part in text.strip().split("/"):
        bs, colon, steps = part.partition(":")
        values = steps.split("+")
        if not colon or not bs.strip().isdigit() or not all(v.strip().isdigit() for v in values):
            raise ConfigError(f"slots entry {part!r} must be BS:STEPS with non-negative integers "
                              "joined by + (e.g. 8:0+1+3)")
        key = int(bs)
        if key < 1:
            raise ConfigError(f"slots: batch size key must be >= 1, got {key}")
        if key in slots:
            raise ConfigError(f"slots: batch size {key} given twice")
        candidates = tuple(sorted({int(v) for v in values}))
        if candidates[-1] > MAX_DRAFT_TOKENS:
            raise ConfigError(f"slots: steps must be <= {MAX_DRAFT_TOKENS}, got {candidates[-1]}")
        slots[key] = candidates
    return dict(sorted(slots.items()))


def format_slots(slots: dict[int, tuple[int, ...]]) -> str:
    return "/".join(f"{bs}:{'+'.join(map(str, steps))}" for bs, steps in slots.items())


@dataclass
class StepSlot:
    """``AdaptiveStepSlot``: one batch-size range's EMA and current steps."""

    candidates: tuple[int, ...]
    up: float
    down: float
    alpha: float
    interval: int
    warmup: int
    current: int
    ema: float
    ceiling_coeff: float = 0.0
    batches: int = 0

    @classmethod
    def start(cls, candidates, initial, up, down, alpha, interval, warmup) -> StepSlot:
        current = initial if initial in candidates else candidates[len(candidates) // 2]
        return cls(tuple(candidates), up, down, alpha, interval, warmup, current,
                   float(current - 1))

    def update(self, accepted: list[int]) -> bool:
        """One verified batch's accepted draft tokens per request; True when steps change."""
        if not accepted:
            return False
        if self.current > 0:
            self.ema = (1 - self.alpha) * self.ema + self.alpha * (sum(accepted) / len(accepted))
        self.batches += 1
        if self.batches <= self.warmup:
            return False
        if (self.batches - self.warmup) % self.interval != 0:
            return False
        return self._recompute()

    def _recompute(self) -> bool:
        cand = self.candidates
        old = self.current
        idx = old_idx = cand.index(old)
        if old == 0:  # probe the smallest positive step after a nospec interval
            idx = min(idx + 1, len(cand) - 1)
            target = cand[idx]
            if target > 0 and self.ema < 0:
                self.ema = float(target - 1)
            return self._apply(target)
        while idx > 0:
            prev = cand[idx - 1]
            drop = (0.5 if prev == 0 else prev - 0.5) + self.down
            if self.ema <= drop:
                idx -= 1
            else:
                break
        if idx >= old_idx:  # did not move down
            while idx < len(cand) - 1 and self.ema > cand[idx] - 0.5 + self.up:
                idx += 1
        target = cand[idx]
        if self.ceiling_coeff > 0:
            ceiling = max(1, math.ceil(self.ema * self.ceiling_coeff))
            if ceiling < target <= old:
                while idx > 0 and cand[idx] > ceiling:
                    idx -= 1
                target = cand[idx]
        return self._apply(target)

    def _apply(self, target: int) -> bool:
        changed = target != self.current
        self.current = target
        return changed


class SglangAdaptivePolicy(EngineRulePolicy):
    """k = the current steps of the slot the (padded) batch size routes to; each slot adapts
    its steps to its own EMA of accepted draft tokens."""

    default_zero = ZeroMode.SYNC

    def __init__(self, k: int = DEFAULT_K, slots: str | None = None,
                 ema: float = DEFAULT_EMA, interval: int = DEFAULT_INTERVAL,
                 warmup: int = DEFAULT_WARMUP, pad: str | PadMode = PadMode.GRAPH,
                 zero: str | None = None,
                 tax: float = 0.0) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_DRAFT_TOKENS:
            raise ConfigError(f"K (speculative_num_steps at launch) must be an integer in "
                              f"0..{MAX_DRAFT_TOKENS}, got {k!r}")
        self.initial_steps = k
        if slots is None:
            table = {bs: (steps, up, down) for bs, (steps, up, down) in DEFAULT_SLOTS.items()}
        else:
            table = {bs: (steps, DEFAULT_UP, DEFAULT_DOWN)
                     for bs, steps in parse_slots(slots).items()}
        self.alpha = check_unit(ema, "ema (ema_alpha)", open_low=True)
        self.interval = check_positive_int(interval, "interval (update_interval)")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ConfigError(f"warmup (warmup_batches) must be an integer >= 0, got {warmup!r}")
        self.warmup = warmup
        self.pad = check_enum(PadMode, pad, "pad")
        self.keys = list(table)
        self.slots = {bs: StepSlot.start(steps, k, up, down, self.alpha, self.interval, warmup)
                      for bs, (steps, up, down) in table.items()}
        self.k_max = max(max(s.candidates) for s in self.slots.values())
        if self.k_max < 1:
            raise ConfigError("slots: every candidate step is 0 (no speculation); use nospec")
        self._slot_text = None if slots is None else format_slots(
            {bs: steps for bs, (steps, _, _) in table.items()})
        self._routed: StepSlot | None = None
        self._init_upkeep(zero, tax)
        self.name = self._canonical_name()

    def _canonical_name(self) -> str:
        parts = [f"sglang:{self.initial_steps}"]
        if self._slot_text is not None and self._slot_text != format_slots(
                {bs: steps for bs, (steps, _, _) in DEFAULT_SLOTS.items()}):
            parts.append(f"slots={self._slot_text}")
        if self.alpha != DEFAULT_EMA:
            parts.append(f"ema={fmt(self.alpha)}")
        if self.interval != DEFAULT_INTERVAL:
            parts.append(f"interval={self.interval}")
        if self.warmup != DEFAULT_WARMUP:
            parts.append(f"warmup={self.warmup}")
        if self.pad is not PadMode.GRAPH:
            parts.append(f"pad={self.pad.value}")
        return ",".join(parts + self._upkeep_suffix())

    def route(self, batch_size: int, padding=None) -> StepSlot:
        """``batch_size_key_for_batch``: pad to a graph size, then the largest key <= it."""
        if padding is not None and self.pad is PadMode.GRAPH and padding.enabled:
            sizes = padding.sizes
            i = bisect_left(sizes, batch_size)
            if i < len(sizes):
                batch_size = sizes[i]
        i = bisect_right(self.keys, batch_size) - 1
        return self.slots[self.keys[max(0, i)]]

    def begin(self, view: BatchView) -> int:
        slot = self.route(view.batch_size, view.padding)
        self._routed = slot
        return self._plan(view, slot.current)

    def observe(self, verify: np.ndarray, accepted: np.ndarray) -> None:
        if self._routed is not None:
            self._routed.update(accepted.tolist())

