"""Test doubles shared by the simulator tests: a linear latency model and a fixed-k policy
(independent of ``sim.policies``); plain decoding is ``sim.policies.nospec.NoSpecPolicy``."""

from __future__ import annotations

from dataclasses import dataclass


from sim.policies.base import BatchView, Policy
from sim.policies.nospec import NoSpecPolicy as PlainPolicy

__all__ = ["FixedK", "LinearLatency", "PlainPolicy"]


@dataclass(frozen=True)
class LinearLatency:
    """prefill = a + b * tokens; verify = c + d * tokens + e * context; draft = f."""

    prefill_base_s: float = 0.010
    prefill_per_token_s: float = 0.0001
    verify_base_s: float = 0.020
    verify_per_token_s: float = 0.0
    verify_per_context_s: float = 0.0
    draft_s: float = 0.002
    draft_prefill_s_: float = 0.0
    draft_overhead_s: float = 0.0

    def target_prefill_s(self, prompt_tokens, cached_tokens=None):
        return self.prefill_base_s + self.prefill_per_token_s * sum(prompt_tokens)

    def draft_prefill_s(self, prompt_tokens, cached_tokens=None):
        return self.draft_prefill_s_

    def target_verify_s(self, batch_size, tokens, context_tokens):
        return (self.verify_base_s + self.verify_per_token_s * tokens
                + self.verify_per_context_s * context_tokens)

    def draft_step_s(self, batch_size, context_tokens):
        return self.draft_s


class FixedK(Policy):
    """Draft exactly k tokens for everyone (the static rule, independent of sim.policies)."""

    def __init__(self, k: int) -> None:
        self.k_max = k
        self.name = f"fixed-k:{k}"

    def begin(self, view: BatchView) -> int:
        return self.k_max
