"""``static:K``: every request drafts and verifies K tokens every iteration."""

from __future__ import annotations

from sim.policies.base import BatchView, Policy
from sim.policies.params import check_k


class StaticPolicy(Policy):
    """Draft exactly ``k`` tokens per request (fewer only where ``max_draft_tokens`` says so)."""

    def __init__(self, k: int) -> None:
        self.k_max = check_k(k)
        self.name = f"static:{self.k_max}"

    def begin(self, view: BatchView) -> int:
        return self.k_max
