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

The routing (``route_slot``), a slot's update (``slot_update``, ``slot_recompute``) and the
policy's begin and observe (``sglang_begin``, ``sglang_observe``) are jitable functions over
the policy's state arrays (after the engine rules' head); a ``StepSlot`` is a view of one
slot's part of them. The protocol path and the compiled loop run the same code.
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np

from sim.compiled.jit import jitable
from sim.errors import ConfigError
from sim.policies.base import BatchView
from sim.policies.engine_rules import (ENGINE_RULE_FLOATS, ENGINE_RULE_INTS, EngineRulePolicy,
                                       ZeroMode, fmt)
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


# ---- one slot's state: ints (then its candidates, increasing) and floats ----------------------
SL_KEY, SL_COUNT, SL_CURRENT, SL_BATCHES, SL_INTERVAL, SL_WARMUP, SL_CANDIDATES = range(7)
SLF_EMA, SLF_UP, SLF_DOWN, SLF_CEILING, SLF_ALPHA = range(5)
SLOT_FLOATS = 5


@jitable
def slot_update(si, sf, accepted_total, batch):
    """``AdaptiveStepSlot.update`` of one verified batch of ``batch`` requests that accepted
    ``accepted_total`` draft tokens in all: while steps > 0 the EMA takes their mean; every
    batch counts; after the warm-up batches, every ``interval``-th recomputes the steps.
    True when the steps change."""
    if batch == 0:
        return False
    if si[SL_CURRENT] > 0:
        alpha = sf[SLF_ALPHA]
        sf[SLF_EMA] = (1 - alpha) * sf[SLF_EMA] + alpha * (accepted_total / batch)
    si[SL_BATCHES] += 1
    batches = si[SL_BATCHES]
    warmup = si[SL_WARMUP]
    if batches <= warmup:
        return False
    if (batches - warmup) % si[SL_INTERVAL] != 0:
        return False
    return slot_recompute(si, sf)


@jitable
def slot_recompute(si, sf):
    """``AdaptiveStepSlot._recompute``: at steps 0 probe the next candidate up (the EMA set to
    its steps - 1 if negative); else step down while ema <= prev - 0.5 + down (0.5 + down
    when prev is 0), and only if it did not move down, up while ema > current - 0.5 + up;
    with ``ceiling_coeff`` c > 0 a target not above the old steps is capped at
    max(1, ceil(c ema)). True when the steps change."""
    count = si[SL_COUNT]
    old = si[SL_CURRENT]
    idx = 0
    while si[SL_CANDIDATES + idx] != old:
        idx += 1
    old_idx = idx
    if old == 0:  # probe the smallest positive step after a nospec interval
        idx = idx + 1 if idx + 1 < count else count - 1
        target = si[SL_CANDIDATES + idx]
        if target > 0 and sf[SLF_EMA] < 0:
            sf[SLF_EMA] = float(target - 1)
        si[SL_CURRENT] = target
        return target != old
    ema = sf[SLF_EMA]
    while idx > 0:
        prev = si[SL_CANDIDATES + idx - 1]
        drop = (0.5 if prev == 0 else prev - 0.5) + sf[SLF_DOWN]
        if ema <= drop:
            idx -= 1
        else:
            break
    if idx >= old_idx:  # did not move down
        while idx < count - 1 and ema > si[SL_CANDIDATES + idx] - 0.5 + sf[SLF_UP]:
            idx += 1
    target = si[SL_CANDIDATES + idx]
    if sf[SLF_CEILING] > 0:
        ceiling = math.ceil(ema * sf[SLF_CEILING])
        if ceiling < 1:
            ceiling = 1
        if ceiling < target <= old:
            while idx > 0 and si[SL_CANDIDATES + idx] > ceiling:
                idx -= 1
            target = si[SL_CANDIDATES + idx]
    si[SL_CURRENT] = target
    return target != old


def slot_state(candidates, initial, up, down, alpha, interval, warmup, key=0, width=0,
               ceiling_coeff=0.0) -> tuple[list[int], list[float]]:
    """One slot's ints (``width`` places for candidates at least) and floats at SGLang's
    start: the launch steps if a candidate, else ``candidates[len // 2]``; EMA = steps - 1."""
    candidates = tuple(candidates)
    current = initial if initial in candidates else candidates[len(candidates) // 2]
    ints = [key, len(candidates), current, 0, interval, warmup] + list(candidates)
    ints += [0] * (width - len(candidates))
    return ints, [float(current - 1), up, down, ceiling_coeff, alpha]


class StepSlot:
    """``AdaptiveStepSlot``: one batch-size range's EMA and current steps; a view of the
    slot's state arrays (``slot_update``)."""

    def __init__(self, ints: np.ndarray, floats: np.ndarray) -> None:
        self.ints, self.floats = ints, floats

    @classmethod
    def start(cls, candidates, initial, up, down, alpha, interval, warmup) -> StepSlot:
        ints, floats = slot_state(candidates, initial, up, down, alpha, interval, warmup)
        return cls(np.array(ints, dtype=np.int64), np.array(floats, dtype=np.float64))

    @property
    def candidates(self) -> tuple[int, ...]:
        count = int(self.ints[SL_COUNT])
        return tuple(self.ints[SL_CANDIDATES:SL_CANDIDATES + count].tolist())

    current = property(lambda self: int(self.ints[SL_CURRENT]))
    batches = property(lambda self: int(self.ints[SL_BATCHES]))
    interval = property(lambda self: int(self.ints[SL_INTERVAL]))
    warmup = property(lambda self: int(self.ints[SL_WARMUP]))
    ema = property(lambda self: float(self.floats[SLF_EMA]))
    up = property(lambda self: float(self.floats[SLF_UP]))
    down = property(lambda self: float(self.floats[SLF_DOWN]))
    alpha = property(lambda self: float(self.floats[SLF_ALPHA]))
    ceiling_coeff = property(lambda self: float(self.floats[SLF_CEILING]))

    def update(self, accepted: list[int]) -> bool:
        """One verified batch's accepted draft tokens per request; True when steps change."""
        return bool(slot_update(self.ints, self.floats, sum(accepted), len(accepted)))


# ---- the policy's state after the engine rules' head: ints [pad to a graph size, slots,
# routed slot (-1: none yet), ints per slot, then each slot's ints]; floats: each slot's ----
SG_PAD = ENGINE_RULE_INTS
SG_SLOTS = SG_PAD + 1
SG_ROUTED = SG_PAD + 2
SG_STRIDE = SG_PAD + 3
SG_FIRST = SG_PAD + 4


@jitable
def route_slot(state, batch_size, padded_size):
    """``batch_size_key_for_batch``: the batch padded to a graph size (``padded_size``, when
    the policy pads), then the slot of the largest key <= it (the first slot below all)."""
    size = padded_size if state[SG_PAD] else batch_size
    stride = state[SG_STRIDE]
    chosen = 0
    for slot in range(state[SG_SLOTS]):
        if state[SG_FIRST + slot * stride + SL_KEY] > size:
            break
        chosen = slot
    return chosen


@jitable
def sglang_begin(state, batch_size, padded_size):
    """k: the current steps of the slot the batch routes to (remembered for ``observe``)."""
    slot = route_slot(state, batch_size, padded_size)
    state[SG_ROUTED] = slot
    return state[SG_FIRST + slot * state[SG_STRIDE] + SL_CURRENT]


@jitable
def sglang_observe(ints, floats, accepted, batch):
    """The routed slot's update with the batch's accepted draft tokens."""
    slot = ints[SG_ROUTED]
    if slot < 0:
        return
    taken = 0
    for i in range(batch):
        taken += accepted[i]
    at = SG_FIRST + slot * ints[SG_STRIDE]
    fat = ENGINE_RULE_FLOATS + slot * SLOT_FLOATS
    slot_update(ints[at:at + ints[SG_STRIDE]], floats[fat:fat + SLOT_FLOATS], taken, batch)


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
        self.k_max = max(max(steps) for steps, _, _ in table.values())
        if self.k_max < 1:
            raise ConfigError("slots: every candidate step is 0 (no speculation); use nospec")
        self._slot_text = None if slots is None else format_slots(
            {bs: steps for bs, (steps, _, _) in table.items()})
        self._init_upkeep(zero, tax)
        width = max(len(steps) for steps, _, _ in table.values())
        stride = SL_CANDIDATES + width
        ints = [int(self.pad is PadMode.GRAPH), len(table), -1, stride]
        floats: list[float] = []
        for bs, (steps, up, down) in table.items():
            slot_ints, slot_floats = slot_state(steps, k, up, down, self.alpha, self.interval,
                                                warmup, key=bs, width=width)
            ints += slot_ints
            floats += slot_floats
        self._init_state(ints, floats)
        self.slots = {}
        for i, bs in enumerate(table):
            at = SG_FIRST + i * stride
            fat = ENGINE_RULE_FLOATS + i * SLOT_FLOATS
            self.slots[bs] = StepSlot(self._pi[at:at + stride], self._pf[fat:fat + SLOT_FLOATS])
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
        padded_size = padding.pad(batch_size) if padding is not None else batch_size
        return self.slots[self.keys[int(route_slot(self._pi, batch_size, padded_size))]]

    def engine_rule_kind(self) -> int:
        from sim.compiled.layout import P_SGLANG
        return P_SGLANG

    def begin(self, view: BatchView) -> int:
        padded_size = view.padding.pad(view.batch_size)
        return self._plan(view, int(sglang_begin(self._pi, view.batch_size, padded_size)))

    def observe(self, verify: np.ndarray, accepted: np.ndarray) -> None:
        sglang_observe(self._pi, self._pf, accepted, accepted.shape[0])
