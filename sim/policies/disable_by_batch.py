"""``disable-by-batch:K,B``: static K while the running decode batch is smaller than B, no
speculation at B or above (the rule production engines ship, e.g. vLLM's
``speculative_disable_by_batch_size``)."""

from __future__ import annotations

from sim.compiled.jit import jitable
from sim.policies.base import BatchView, Policy
from sim.policies.params import check_k, check_positive_int


class DisableByBatchPolicy(Policy):
    """k = K if batch size < B else 0."""

    def __init__(self, k: int, batch_threshold: int) -> None:
        self.k_max = check_k(k)
        self.batch_threshold = check_positive_int(batch_threshold, "batch threshold B")
        self.name = f"disable-by-batch:{self.k_max},{self.batch_threshold}"

    def begin(self, view: BatchView) -> int:
        return disable_by_batch_k(view.batch_size, self.batch_threshold, self.k_max)


@jitable
def disable_by_batch_k(batch: int, threshold: int, k: int) -> int:
    """The rule: K while the decode batch is below the threshold, else plain decoding."""
    return 0 if batch >= threshold else k
