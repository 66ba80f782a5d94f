"""The latency-model interface shared by the simulator's ground truth and policy estimators.

All times are seconds of one forward pass, *including* that pass's fixed framework overhead.
``tokens`` counts every token position computed in the pass (already padded to a CUDA-graph
size by the caller where padding applies); ``context_tokens`` is the sum over the batch of
the KV-cache length each sequence attends to (its context before the pass).
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable


@runtime_checkable
class LatencyModel(Protocol):
    """Seconds for the four kinds of forward pass a speculative-decoding server runs."""

    def target_prefill_s(self, prompt_tokens: Sequence[int],
                         cached_tokens: Sequence[int] | None = None) -> float:
        """One batched target prefill over chunks of these lengths; ``cached_tokens[i]`` of
        chunk i's prompt are already in the KV cache (chunked prefill; None: none are)."""
        ...

    def draft_prefill_s(self, prompt_tokens: Sequence[int],
                        cached_tokens: Sequence[int] | None = None) -> float:
        """One batched draft prefill over chunks of these lengths (``cached_tokens`` as above)."""
        ...

    def target_verify_s(self, batch_size: int, tokens: int, context_tokens: int) -> float:
        """One target decode/verification pass: ``batch_size`` sequences, ``tokens`` positions
        in total (sum of k_i + 1, padded), attending to ``context_tokens`` cached positions."""
        ...

    def draft_step_s(self, batch_size: int, context_tokens: int) -> float:
        """One draft decode step over ``batch_size`` sequences (one token each, padded)."""
        ...

    @property
    def draft_overhead_s(self) -> float:
        """Fixed extra cost of an iteration that drafts at all (proposer setup, sampling)."""
        ...
