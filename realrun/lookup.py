"""Prompt lookup without torch: the methods the real engine drafts with, the lookup itself, the
confidence it reports and the latency view that prices its drafting. ``realrun.ngram`` has the
executor and the full description (sources, confidence rule); ``calibrate.validate`` and the
CLIs import this module without loading torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sim.errors import ConfigError

METHOD_DRAFT_MODEL = "draft-model"
METHOD_NGRAM = "ngram"
METHODS = (METHOD_DRAFT_MODEL, METHOD_NGRAM)
MAX_NGRAM = 16


@dataclass(frozen=True)
class NgramConfig:
    """Lookup options: n-gram lengths ``min_n`` .. ``max_n`` (vLLM's ``prompt_lookup_min`` /
    ``prompt_lookup_max``) and the Beta(a, b) prior of the confidence estimate."""

    min_n: int = 1
    max_n: int = 3
    prior_accept: float = 1.0
    prior_reject: float = 1.0

    def __post_init__(self) -> None:
        for name in ("min_n", "max_n"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_NGRAM:
                raise ConfigError(f"ngram {name} must be an integer in 1..{MAX_NGRAM}, got {value!r}")
        if self.min_n > self.max_n:
            raise ConfigError(f"ngram min_n {self.min_n} exceeds max_n {self.max_n}")
        if not (self.prior_accept > 0 and self.prior_reject > 0):
            raise ConfigError("the confidence prior's counts must be positive")

    def to_dict(self) -> dict:
        return {"min_n": self.min_n, "max_n": self.max_n,
                "confidence": "empirical per (n, position), "
                              f"Beta({self.prior_accept:g}, {self.prior_reject:g}) prior"}


def propose(tokens: Sequence[int] | np.ndarray, k: int, min_n: int = 1,
            max_n: int = 3) -> tuple[np.ndarray, int]:
    """(proposal, n): up to ``k`` tokens following the earliest earlier occurrence of the
    longest suffix n-gram (n in ``max_n`` .. ``min_n``) of ``tokens``; (empty, 0) when none
    occurs or ``k`` <= 0 (module doc)."""
    t = np.asarray(tokens, dtype=np.int64)
    length = int(t.size)
    if k <= 0 or length < 2:
        return t[:0], 0
    for n in range(min(max_n, length - 1), min_n - 1, -1):
        suffix = t[length - n:]
        # occurrences t[i:i+n] ending before the last token: i = 0 .. length-1-n
        windows = np.lib.stride_tricks.sliding_window_view(t[:length - 1], n)
        hits = np.flatnonzero((windows == suffix).all(axis=1))
        if hits.size:
            start = int(hits[0]) + n
            return t[start:start + k].copy(), n
    return t[:0], 0


class NgramConfidence:
    """Running per-(n, position) acceptance of judged draft tokens (module doc)."""

    def __init__(self, max_n: int, positions: int = 64, prior_accept: float = 1.0,
                 prior_reject: float = 1.0) -> None:
        self.accepted = np.zeros((max_n + 1, positions), dtype=np.float64)
        self.judged = np.zeros((max_n + 1, positions), dtype=np.float64)
        self.a = float(prior_accept)
        self.b = float(prior_reject)

    def value(self, n: int, position: int) -> float:
        return float((self.accepted[n, position] + self.a)
                     / (self.judged[n, position] + self.a + self.b))

    def observe(self, n: int, verified: int, accepted: int) -> None:
        """``verified`` tokens of an n-gram proposal went to verification, the first
        ``accepted`` were accepted: positions 0..min(accepted, verified - 1) were judged."""
        if n <= 0 or verified <= 0:
            return
        judged = min(accepted + 1, verified)
        self.judged[n, :judged] += 1
        self.accepted[n, :accepted] += 1


class LookupDraftLatency:
    """A latency model whose drafting costs no accelerator time: the target's passes as
    ``base`` prices them; draft prefill, draft steps and the per-iteration drafting overhead
    are 0 s (prompt lookup runs on the host CPU between passes; the real engine measures that
    time and logs it as ``draft_cpu_s``, inside each iteration's duration). Used for the
    policies' estimator of an n-gram run and by ``adaspec-validate`` to re-simulate one."""

    def __init__(self, base) -> None:
        self.base = base

    def __getattr__(self, name: str):  # profile extras (warned_ops, ...) come from the base
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def target_prefill_s(self, prompt_tokens, cached_tokens=None) -> float:
        return self.base.target_prefill_s(prompt_tokens, cached_tokens)

    def target_verify_s(self, batch_size: int, tokens: int, context_tokens: int) -> float:
        return self.base.target_verify_s(batch_size, tokens, context_tokens)

    def draft_prefill_s(self, prompt_tokens, cached_tokens=None) -> float:
        return 0.0

    def draft_step_s(self, batch_size: int, context_tokens: int) -> float:
        return 0.0

    @property
    def draft_overhead_s(self) -> float:
        return 0.0
