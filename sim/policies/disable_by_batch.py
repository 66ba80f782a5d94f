"""``disable-by-batch:K,B``: static K while the running decode batch is smaller than B, no
speculation at B or above (the rule production engines ship, e.g. vLLM's
``speculative_disable_by_batch_size``)."""

from __future__ import annotations

from sim.policies.base import BatchView, Policy
from sim.policies.params import check_k, check_positive_int


class DisableByBatchPolicy(Policy):
    """k = K if batch size < B else 0."""

    def __init__(self, k: int, batch_threshold: int) -> None:
        self.k_max = check_k(k)
        self.batch_threshold = check_positive_int(batch_threshold, "batch threshold B")
        self.name = f"disable-by-batch:{self.k_max},{self.batch_threshold}"

    def begin(self, view: BatchView) -> int:
        return 0 if view.batch_size >= self.batch_threshold else self.k_max
