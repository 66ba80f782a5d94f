"""``vllm-v1:K,sched=...``: vLLM V1's dynamic speculative decoding (DSD), a batch-size -> K
schedule.

Sources (vllm-project/vllm):

* PR #32374 "[V1][Spec Decode] Add Dynamic SD" (merged): ``num_speculative_tokens`` "remains
  the startup maximum used for buffer sizing, while ``num_speculative_tokens_per_batch_size``
  controls the per-step scheduled K based on the current batch size. Range keys are
  inclusive. Any batch-size gaps inherit the previous configured K, and the effective
  scheduled K is clamped to ``min(num_speculative_tokens, scheduled_k)``." No default
  schedule ships ("its hardware and category dependent").
* ``vllm/v1/spec_decode/dynamic/utils.py`` @ a6f6bb1 (``validate_and_normalize_dynamic_sd_
  schedule``, ``build_dynamic_sd_schedule_lookup``): entries ``(range_start, range_end, K)``;
  both ends >= 1, start <= end, K >= 0; sorted by start, ranges must not overlap, the first
  must start at 1 ("so every runtime batch size has a defined schedule"); a dense table
  ``dense[bs]`` for bs = 1..max_num_seqs: inside a range its K, in a gap the previous range's
  K, after the last range the last K, each clamped to ``min(num_speculative_tokens, K)``;
  ``num_speculative_tokens`` must be > 0. (Later versions, e.g. the stored copy @ 14b450c,
  add 5-item ``(bs_lo, bs_hi, ctx_lo, ctx_hi, K)`` entries with a context axis: not modelled.)
* ``vllm/v1/core/sched/scheduler.py`` (``Scheduler.schedule``): "Dynamic speculative decoding:
  compute optimal K": ``num_spec_tokens_to_schedule = self.dynamic_sd_lookup[len(num_
  scheduled_tokens)]``; the KV lookahead stays ``num_lookahead_tokens = num_spec_tokens``
  (the maximum), as the simulator's scheduler reserves ``k_max``.
* ``docs/features/speculative_decoding/dynamic_speculative_decoding.md`` @ dba5f19: the
  documented example ``num_speculative_tokens: 3`` with ``[[1, 64, 3], [65, 128, 1],
  [129, 512, 0]]`` ("K=0 will be used when the concurrency is in range [129, 512], i.e., no
  draft tokens will be produced"); it is this policy's default (vLLM has none). Limitation
  stated there: "Full Cudagraph only works with Model Runner V2. MRv1 only supports
  piece-wise cuda graph with this feature" (see ``tax=`` in ``sim.policies.engine_rules``).

Differences, stated: vLLM's batch size ``len(num_scheduled_tokens)`` counts every request
scheduled in the step, prefills included (issue #49548 names this as a thrash source); the
simulator runs prefill and decode iterations separately, so here it is the decode batch.
vLLM's scheduler decides K at the end of a step for the drafts proposed after it (verified in
the next step); here the iteration's own batch decides its K.

At k = 0 the drafter still runs its first pass (``zero=sync``, the default; see
``sim.policies.engine_rules``).

The schedule's rule (``lookup``, over ``schedule_array``'s ints) is a jitable function: the
protocol path and the compiled loop (``compiled_state``: the schedule's ints after the
engine rules' state head) call it, as they call the upkeep's rules
(``sim.policies.engine_rules``).
"""

from __future__ import annotations

import numpy as np

from sim.compiled.jit import jitable
from sim.errors import ConfigError
from sim.policies.base import BatchView
from sim.policies.engine_rules import ENGINE_RULE_INTS, EngineRulePolicy, ZeroMode
from sim.policies.params import check_k

#: The documented example (docs/features/speculative_decoding/dynamic_speculative_decoding.md).
DEFAULT_K = 3
DEFAULT_SCHEDULE = "1-64:3/65-128:1/129-512:0"

Schedule = tuple[tuple[int, int, int], ...]


def parse_schedule(text: str) -> Schedule:
    """``"lo-hi:k/lo-hi:k/..."`` -> ((lo, hi, k), ...) sorted by lo, validated as vLLM's
    ``validate_and_normalize_dynamic_sd_schedule`` does; a bad one is a ConfigError."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("sched must be 'LO-HI:K/LO-HI:K/...', e.g. 1-64:3/65-128:1/129-512:0")
    entries = []
    for part in text.strip().split("/"):
        rng, colon, k = part.partition(":")
        lo, dash, hi = rng.partition("-")
        if not (colon and dash) or not all(v.strip().isdigit() for v in (lo, hi, k)):
            raise ConfigError(f"sched entry {part!r} must be LO-HI:K with non-negative integers "
                              "(e.g. 65-128:1)")
        entries.append((int(lo), int(hi), int(k)))
    for lo, hi, k in entries:
        if lo <= 0 or hi <= 0:
            raise ConfigError(f"sched: batch-size range ({lo}, {hi}) must be positive")
        if lo > hi:
            raise ConfigError(f"sched: batch-size range start must be <= end, got {lo}-{hi}")
    entries.sort()
    previous_end = 0
    for lo, hi, _ in entries:
        if lo <= previous_end:
            raise ConfigError("sched: batch-size ranges must not overlap")
        previous_end = hi
    if entries[0][0] != 1:
        raise ConfigError("sched: the first batch-size range must start at 1 so every batch "
                          "size has a defined K")
    return tuple(entries)


def format_schedule(schedule: Schedule) -> str:
    return "/".join(f"{lo}-{hi}:{k}" for lo, hi, k in schedule)


def schedule_array(schedule: Schedule) -> np.ndarray:
    """``schedule`` as ``lookup`` reads it: int64 [n, lo_1, hi_1, K_1, ..., lo_n, hi_n, K_n]
    (the compiled loop's policy ints, ``sim.compiled.run.policy_plan``)."""
    return np.array([len(schedule)] + [v for entry in schedule for v in entry], dtype=np.int64)


@jitable
def lookup(schedule, batch_size, k_max):
    """vLLM's ``dense_schedule[batch_size]`` over ``schedule_array``'s ints: the K of the
    range holding ``batch_size``; in a gap the previous range's K; after the last range the
    last K; clamped to ``k_max``. The protocol path and the compiled loop call this."""
    k = schedule[3]
    for entry in range(schedule[0]):
        at = 1 + 3 * entry
        if batch_size < schedule[at]:
            break  # a gap: the previous range's K carries forward
        k = schedule[at + 2]
        if batch_size <= schedule[at + 1]:
            break
    return k_max if k_max < k else k


@jitable
def vllm_begin(state, batch_size, k_max):
    """The rule's k over its whole state (``compiled_state``): ``lookup`` of the schedule
    that follows the engine rules' head."""
    return lookup(state[ENGINE_RULE_INTS:], batch_size, k_max)


class VllmDynamicPolicy(EngineRulePolicy):
    """k = min(K, schedule[batch size]); K is vLLM's ``num_speculative_tokens``."""

    default_zero = ZeroMode.SYNC

    def __init__(self, k: int = DEFAULT_K, sched: str = DEFAULT_SCHEDULE,
                 zero: str | None = None, tax: float = 0.0) -> None:
        self.k_max = check_k(k, "K (num_speculative_tokens)")
        self.schedule = parse_schedule(sched)
        self._init_upkeep(zero, tax)
        self._init_state(schedule_array(self.schedule), ())
        parts = [f"vllm-v1:{self.k_max}"]
        if format_schedule(self.schedule) != DEFAULT_SCHEDULE:
            parts.append(f"sched={format_schedule(self.schedule)}")
        self.name = ",".join(parts + self._upkeep_suffix())

    def k_for_batch(self, batch_size: int) -> int:
        return int(vllm_begin(self._pi, batch_size, self.k_max))

    def engine_rule_kind(self) -> int:
        from sim.compiled.layout import P_VLLM_V1
        return P_VLLM_V1

    def begin(self, view: BatchView) -> int:
        return self._plan(view, self.k_for_batch(view.batch_size))
