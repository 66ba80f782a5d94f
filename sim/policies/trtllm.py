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
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque

import numpy as np

from sim.errors import ConfigError
from sim.policies.base import BatchView
from sim.policies.engine_rules import EngineRulePolicy, ZeroMode, fmt
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


def draft_len_for_batch(schedule: dict[int, int], batch_size: int, floor: int = 0) -> int:
    """``get_draft_len_for_batch_size``: the value of the first key >= batch size, at least
    ``floor``; past the last key, ``floor``."""
    keys = list(schedule)
    i = bisect_left(keys, batch_size)
    if i < len(keys):
        return max(schedule[keys[i]], floor)
    return floor


class SpeculationGate:
    """``SpeculationGate``: rolling mean of the last ``window`` per-iteration acceptance rates;
    once at least ``window`` samples exist and the mean is below ``threshold``, disabled for
    good."""

    def __init__(self, window: int, threshold: float) -> None:
        self.window = window
        self.threshold = threshold
        self.history: deque[float] = deque()
        self.total = 0.0
        self.samples = 0
        self.disabled = False
        self.disabled_after: int | None = None  # samples recorded when it closed

    def record(self, rate: float) -> bool:
        """Record one iteration's rate in [0, 1]; True when this call disables speculation."""
        if self.disabled:
            return False
        self.history.append(rate)
        self.total += rate
        if len(self.history) > self.window:
            self.total -= self.history.popleft()
        self.samples += 1
        if self.samples >= self.window and self.total / len(self.history) < self.threshold:
            self.disabled = True
            self.disabled_after = self.samples
            return True
        return False

    @property
    def mean(self) -> float | None:
        return self.total / len(self.history) if self.history else None


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
        self.gate: SpeculationGate | None = None
        if window is not None:
            self.gate = SpeculationGate(check_positive_int(window, "window"),
                                        check_unit(threshold, "threshold"))
        self._init_upkeep(zero, tax)
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
        return self.gate is not None and self.gate.disabled

    def k_for_batch(self, batch_size: int) -> int:
        if self.schedule is None:
            return self.k_max
        return draft_len_for_batch(self.schedule, batch_size, self.floor)

    def begin(self, view: BatchView) -> int:
        if self.disabled:
            return self._plan(view, 0, configured=False)
        return self._plan(view, self.k_for_batch(view.batch_size))

    def observe(self, verify: np.ndarray, accepted: np.ndarray) -> None:
        if self.gate is None or self.gate.disabled:
            return
        drafted = int(verify.sum())
        if drafted > 0:  # only speculation-enabled iterations are samples
            self.gate.record(int(accepted.sum()) / drafted)
