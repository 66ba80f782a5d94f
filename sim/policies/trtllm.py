"""``trtllm:K,sched=...|cap=N,window=W,threshold=T``: TensorRT-LLM's draft-length schedule,
its concurrency cap and the acceptance-rate gate that turns speculation off for good.

Sources (NVIDIA/TensorRT-LLM, PyTorch backend):

* Draft-length schedule, PR #10860 "Dynamic draft length on spec decode one-model path"
  (merged 2026-03-13) and ``tensorrt_llm/_torch/speculative/utils.py``
  ``get_draft_len_for_batch_size`` @ 011d093: "Keys represent specific batch sizes
  (transition points). Values represent draft_len to use for batch sizes UP TO that key.
  Example: {4: 4, 8: 2, 32: 1} ... batch size 1-4: use draft_len=4 ... 5-8: 2 ... 9-32: 1
  ... 33+: use draft_len=0 (speculation disabled, implicit)"; the lookup is ``bisect_left``
  (the first key >= batch size), and past the last key ``min_draft_len``. That floor
  (``DecodingBaseConfig.min_runtime_draft_len``, PR #16888) is 1 for one-engine algorithms,
  whose drafter state goes stale at 0, and 0 otherwise: this simulator's separate draft model
  is the two-model path, so ``floor=0`` is the default. (The older ``Drafter.
  get_draft_len_for_batch_size`` used ``bisect_right``, keys as lower bounds; superseded.)
* Schedule validation, ``tensorrt_llm/llmapi/llm_args.py`` ``DecodingBaseConfig.
  validate_draft_len_schedule_and_sort`` (stored copy id 55143598664): keys >= 1, draft
  lengths >= 0, "draft_len_schedule[smallest key] must equal max_draft_len", every length
  <= max_draft_len.
* Concurrency cap, same file ``validate_max_concurrency_and_draft_len_schedule_mutually_
  exclusive``: "max_concurrency and draft_len_schedule are mutually exclusive"; a cap becomes
  ``draft_len_schedule = {max_concurrency: max_draft_len}``. Earlier, ``Drafter.should_use_
  spec_decode`` (``tensorrt_llm/_torch/speculative/drafter.py``) turned speculation off when
  ``min(len(requests), max_batch_size, max_num_tokens // (1 + max_total_draft_tokens)) >
  max_concurrency``: the same cut at the batch size, since the other two terms are at least the
  simulator's decode batch unless ``max_num_batched_tokens < max_num_seqs * (1 + K)``.
* Acceptance-rate gate, ``tensorrt_llm/_torch/speculative/speculation_gate.py``
  ``SpeculationGate.record_acceptance_rate`` (stored copy id 56200959715) and the LLM API
  reference (``acceptance_rate_threshold``, 1.3.0rc29): "The threshold for average true
  acceptance rate (accepted_draft_tokens / drafted_tokens); speculation will be disabled
  permanently once the rolling average over the last N speculation-enabled decoding
  iterations (N = acceptance_rate_window_size) drops below this value." One sample per
  iteration that drafted: sum accepted / sum drafted over its requests that drafted (as the
  study of ``py_executor.py`` @ 4b7d719 quotes ``_update_batch_acceptance_rate``; that file
  was not read); the average is tested once at least N samples exist, strictly below the
  threshold; then ``disabled = True`` for the rest of the run. The gate exists only when both
  values are set (``if window and threshold is not None``); here giving one without the other
  is refused. Earlier versions of the gate (NVIDIA/TensorRT-LLM @ 41080dc, 42ffc26) averaged
  each *completed request's* accepted tokens per iteration instead; the policy protocol does
  not see request completions, so that form is not modelled. TensorRT-LLM has no default
  window or threshold; the values 8 / 0.5 used in the README appear in a TensorRT-LLM unit
  test (``MTPDecodingConfig(max_draft_len=4, acceptance_rate_window_size=8,
  acceptance_rate_threshold=0.5)``, stored copy id 56672441098), not as a recommendation.

Defaults here: K (``max_draft_len``) = 4 and the schedule {4: 4, 8: 2, 32: 1} of PR #10860's
description; no cap, no gate (TensorRT-LLM's defaults are None).

At draft length 0 (the band above the schedule, or above the cap) the two-model path's
drafter behaviour was not found in the sources read: ``zero=catchup`` (the draft KV is
filled by a draft prefill when drafting resumes) is the default, invented here; PR #18837
reports draft-0 steps still pay speculative per-step costs (``tax=``). After the gate closes
no drafter work is charged (the draft model still prefills new prompts: its KV stays
reserved in the simulator's pool; whether TensorRT-LLM skips that prefill was not checked).

The schedule (``scheduled_length``), the gate (``gate_record``) and the policy's begin and
observe (``trtllm_begin``, ``trtllm_observe``) are jitable functions over the policy's state
arrays (after the engine rules' head, ``sim.policies.engine_rules``): the protocol path and the
compiled loop run the same code.
"""

from __future__ import annotations

import numpy as np

from sim.compiled.jit import jitable
from sim.errors import ConfigError
from sim.policies.base import BatchView
from sim.policies.engine_rules import (ENGINE_RULE_FLOATS, ENGINE_RULE_INTS, EngineRulePolicy,
                                       ZeroMode, fmt)
from sim.policies.params import check_k, check_positive_int, check_unit

DEFAULT_K = 4
DEFAULT_SCHEDULE = "4:4/8:2/32:1"


def parse_schedule(text: str, k_max: int) -> dict[int, int]:
    """``"BS:LEN/BS:LEN/..."`` -> {bs: len} sorted by bs, validated as TensorRT-LLM's
    ``validate_draft_len_schedule_and_sort`` does."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("sched must be 'BS:LEN/BS:LEN/...', e.g. 4:4/8:2/32:1, or none")
    schedule: dict[int, int] = {}
    for part in text.strip().split("/"):
        bs, colon, length = part.partition(":")
        if not colon or not bs.strip().isdigit() or not length.strip().isdigit():
            raise ConfigError(f"sched entry {part!r} must be BS:LEN with non-negative "
                              "integers (e.g. 8:2)")
        if int(bs) in schedule:
            raise ConfigError(f"sched: batch size {int(bs)} given twice")
        schedule[int(bs)] = int(length)
    for bs, length in schedule.items():
        if bs < 1:
            raise ConfigError(f"sched: batch size threshold must be >= 1, got {bs}")
        if length > k_max:
            raise ConfigError(f"sched: every draft length must be <= K (max_draft_len) = "
                              f"{k_max}, got {length} for batch size {bs}")
    smallest = min(schedule)
    if schedule[smallest] != k_max:
        raise ConfigError(f"sched: the smallest batch size's draft length must equal K "
                          f"(max_draft_len) = {k_max}, got {bs_len(smallest, schedule)}")
    return dict(sorted(schedule.items()))


def bs_len(bs: int, schedule: dict[int, int]) -> str:
    return f"{bs}:{schedule[bs]}"


def format_schedule(schedule: dict[int, int]) -> str:
    return "/".join(f"{bs}:{length}" for bs, length in schedule.items())


def schedule_ints(schedule: dict[int, int] | None) -> list[int]:
    """``schedule`` as ``scheduled_length`` reads it: [n, key_1, len_1, ..., key_n, len_n]
    (keys increasing); [-1] for no schedule."""
    if schedule is None:
        return [-1]
    return [len(schedule)] + [v for item in schedule.items() for v in item]


@jitable
def scheduled_length(schedule, batch_size, floor, k_max):
    """``get_draft_len_for_batch_size`` over ``schedule_ints``: the length of the first key
    >= batch size (``bisect_left``), at least ``floor``; past the last key ``floor``; K
    (``k_max``) without a schedule."""
    if schedule[0] < 0:
        return k_max
    for entry in range(schedule[0]):
        if schedule[1 + 2 * entry] >= batch_size:
            length = schedule[2 + 2 * entry]
            return length if length > floor else floor
    return floor


def draft_len_for_batch(schedule: dict[int, int], batch_size: int, floor: int = 0) -> int:
    """``scheduled_length`` of a parsed schedule."""
    return int(scheduled_length(np.array(schedule_ints(schedule), dtype=np.int64),
                                batch_size, floor, 0))


# ---- the gate's state: ints ``gi`` and floats ``gf`` (the rolling window as a ring) ----------
G_WINDOW, G_SAMPLES, G_DISABLED, G_DISABLED_AFTER = range(4)
GATE_INTS = 4
G_THRESHOLD, G_TOTAL, G_RING = range(3)  # G_RING: the ring's first of ``window`` places


@jitable
def gate_record(gi, gf, rate):
    """``SpeculationGate.record_acceptance_rate``: add one iteration's rate to the rolling
    sum (dropping the oldest once ``window`` are held); once at least ``window`` samples
    exist and the mean is below the threshold, disable speculation for good. True when this
    call disables it."""
    if gi[G_DISABLED]:
        return False
    window = gi[G_WINDOW]
    samples = gi[G_SAMPLES]
    at = G_RING + samples % window
    gf[G_TOTAL] += rate
    if samples >= window:  # the deque's popleft: the oldest rate leaves the sum
        gf[G_TOTAL] -= gf[at]
    gf[at] = rate
    samples += 1
    gi[G_SAMPLES] = samples
    held = samples if samples < window else window
    if samples >= window and gf[G_TOTAL] / held < gf[G_THRESHOLD]:
        gi[G_DISABLED] = 1
        gi[G_DISABLED_AFTER] = samples
        return True
    return False


class SpeculationGate:
    """``SpeculationGate``: rolling mean of the last ``window`` per-iteration acceptance rates;
    once at least ``window`` samples exist and the mean is below ``threshold``, disabled for
    good. A view over the gate's state arrays (``gate_record``); standalone, it owns them."""

    def __init__(self, window: int, threshold: float, ints: np.ndarray | None = None,
                 floats: np.ndarray | None = None) -> None:
        if ints is None:
            ints = np.zeros(GATE_INTS, dtype=np.int64)
            floats = np.zeros(G_RING + window)
        ints[G_WINDOW] = window
        floats[G_THRESHOLD] = threshold
        self.ints, self.floats = ints, floats

    window = property(lambda self: int(self.ints[G_WINDOW]))
    threshold = property(lambda self: float(self.floats[G_THRESHOLD]))
    samples = property(lambda self: int(self.ints[G_SAMPLES]))
    disabled = property(lambda self: bool(self.ints[G_DISABLED]))
    total = property(lambda self: float(self.floats[G_TOTAL]))

    @property
    def disabled_after(self) -> int | None:
        """Samples recorded when it closed (None while open)."""
        return int(self.ints[G_DISABLED_AFTER]) if self.disabled else None

    def record(self, rate: float) -> bool:
        """Record one iteration's rate in [0, 1]; True when this call disables speculation."""
        return bool(gate_record(self.ints, self.floats, rate))

    @property
    def mean(self) -> float | None:
        held = min(self.samples, self.window)
        return self.total / held if held else None


# ---- the policy's state after the engine rules' head ----------------------------------------
T_FLOOR = ENGINE_RULE_INTS
T_GATE = T_FLOOR + 1  # GATE_INTS ints; G_WINDOW 0: no gate
T_SCHEDULE = T_GATE + GATE_INTS  # ``schedule_ints``
T_GATE_F = ENGINE_RULE_FLOATS  # the gate's floats


@jitable
def trtllm_speculation_off(state):
    """Whether the gate has closed (no drafting, no drafter work, no tax from now on)."""
    return state[T_GATE + G_DISABLED] != 0


@jitable
def trtllm_begin(state, batch_size, k_max):
    """k: 0 once the gate has closed, else the schedule's length for the batch size."""
    if trtllm_speculation_off(state):
        return 0
    return scheduled_length(state[T_SCHEDULE:], batch_size, state[T_FLOOR], k_max)


@jitable
def trtllm_observe(ints, floats, verify, accepted, batch):
    """One sample per iteration that drafted: its requests' accepted / drafted tokens."""
    if ints[T_GATE + G_WINDOW] == 0 or ints[T_GATE + G_DISABLED]:
        return
    drafted = 0
    taken = 0
    for i in range(batch):
        drafted += verify[i]
        taken += accepted[i]
    if drafted > 0:  # only speculation-enabled iterations are samples
        gate_record(ints[T_GATE:T_GATE + GATE_INTS], floats[T_GATE_F:], taken / drafted)


class TrtllmPolicy(EngineRulePolicy):
    """k = the schedule's draft length for the batch size (or K below the cap, 0 above it),
    0 for good once the acceptance-rate gate closes."""

    default_zero = ZeroMode.CATCHUP

    def __init__(self, k: int = DEFAULT_K, sched: str | None = None, cap: int | None = None,
                 window: int | None = None, threshold: float | None = None, floor: int = 0,
                 zero: str | None = None, tax: float = 0.0) -> None:
        self.k_max = check_k(k, "K (max_draft_len)")
        if cap is not None and sched is not None:
            raise ConfigError("cap (max_concurrency) and sched (draft_len_schedule) are "
                              "mutually exclusive")
        self.cap = None if cap is None else check_positive_int(cap, "cap (max_concurrency)")
        self._sched_text = sched
        if cap is not None:
            self.schedule: dict[int, int] | None = {self.cap: self.k_max}
        elif sched is None:
            self.schedule = parse_schedule(DEFAULT_SCHEDULE, self.k_max) \
                if self.k_max == DEFAULT_K else None
            if self.schedule is None:
                raise ConfigError(f"the default sched {DEFAULT_SCHEDULE} needs K = {DEFAULT_K} "
                                  f"(its smallest batch size's length must equal K); give "
                                  f"sched= for K = {self.k_max}, or sched=none")
        elif sched.strip().lower() == "none":
            self.schedule = None
        else:
            self.schedule = parse_schedule(sched, self.k_max)
        if isinstance(floor, bool) or not isinstance(floor, int) or not 0 <= floor <= self.k_max:
            raise ConfigError(f"floor (min_runtime_draft_len) must be an integer in "
                              f"0..{self.k_max}, got {floor!r}")
        self.floor = floor
        if (window is None) != (threshold is None):
            raise ConfigError("window (acceptance_rate_window_size) and threshold "
                              "(acceptance_rate_threshold) go together")
        if window is not None:
            window = check_positive_int(window, "window")
            threshold = check_unit(threshold, "threshold")
        self._init_upkeep(zero, tax)
        self._init_state([floor] + [0] * GATE_INTS + schedule_ints(self.schedule),
                         [0.0] * (G_RING + (window or 0)))
        self.gate: SpeculationGate | None = None
        if window is not None:
            self.gate = SpeculationGate(window, threshold,
                                        self._pi[T_GATE:T_GATE + GATE_INTS],
                                        self._pf[T_GATE_F:])
        self.name = self._canonical_name()

    def _canonical_name(self) -> str:
        parts = [f"trtllm:{self.k_max}"]
        if self.cap is not None:
            parts.append(f"cap={self.cap}")
        elif self.schedule is None:
            parts.append("sched=none")
        elif format_schedule(self.schedule) != DEFAULT_SCHEDULE:
            parts.append(f"sched={format_schedule(self.schedule)}")
        if self.gate is not None:
            parts.append(f"window={self.gate.window},threshold={fmt(self.gate.threshold)}")
        if self.floor:
            parts.append(f"floor={self.floor}")
        return ",".join(parts + self._upkeep_suffix())

    @property
    def disabled(self) -> bool:
        """Whether the acceptance-rate gate has turned speculation off for good."""
        return bool(trtllm_speculation_off(self._pi))

    def k_for_batch(self, batch_size: int) -> int:
        """The schedule's draft length for ``batch_size`` (K without a schedule)."""
        return int(scheduled_length(self._pi[T_SCHEDULE:], batch_size, self.floor, self.k_max))

    def engine_rule_kind(self) -> int:
        from sim.compiled.layout import P_TRTLLM
        return P_TRTLLM

    def begin(self, view: BatchView) -> int:
        k = int(trtllm_begin(self._pi, view.batch_size, self.k_max))
        return self._plan(view, k, configured=not self.disabled)

    def observe(self, verify: np.ndarray, accepted: np.ndarray) -> None:
        trtllm_observe(self._pi, self._pf, verify, accepted, verify.shape[0])
