"""``nospec``: plain autoregressive decoding, never drafts (the draft model is not loaded)."""

from __future__ import annotations

from sim.policies.base import BatchView, Policy


class NoSpecPolicy(Policy):
    """k = 0 for every request, every iteration."""

    name = "nospec"
    k_max = 0
    uses_draft = False

    def begin(self, view: BatchView) -> int:
        return 0
