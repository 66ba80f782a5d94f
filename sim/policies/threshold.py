"""``threshold:T,K``: draft up to K steps; stop after the step whose batch-mean draft confidence
(over the requests that drafted it) falls below T. The paper's baseline uses T=0.6, K=8."""

from __future__ import annotations

import numpy as np

from sim.compiled.jit import compiled, jitable
from sim.policies.base import BatchView, Policy
from sim.policies.goodput import array_sum
from sim.policies.params import check_k, check_unit


class ThresholdPolicy(Policy):
    """Confidence-threshold early stop, batch-wide; every drafted token is verified."""

    def __init__(self, threshold: float = 0.6, k: int = 8) -> None:
        self.threshold = check_unit(threshold, "threshold T")
        self.k_max = check_k(k)
        self.name = f"threshold:{self.threshold:g},{self.k_max}"

    def begin(self, view: BatchView) -> int:
        return self.k_max

    def continue_drafting(self, step: int, conf: np.ndarray, drafted: np.ndarray) -> bool:
        if step == 0:
            return True
        batch = drafted.shape[0]
        return bool(compiled(threshold_continue)(self.threshold, step, conf, drafted, batch,
                                                 np.empty(batch)))

    def compiled_state(self):
        """(policy kind, int state, float state, asks every step) for the compiled loop."""
        from sim.compiled.layout import P_THRESHOLD
        return P_THRESHOLD, np.zeros(1, dtype=np.int64), np.array([self.threshold]), True


@jitable
def threshold_continue(threshold, step, conf, drafted, batch, scratch):
    """1: everyone still drafting continues; 0: the batch-mean confidence of step - 1 over the
    requests that drafted it fell below the threshold, nobody drafts step ``step``."""
    if step == 0:
        return 1
    n = 0
    for i in range(batch):
        if drafted[i] >= step:  # requests that drafted step - 1
            scratch[n] = conf[i, step - 1]
            n += 1
    if n and array_sum(scratch, n) / n < threshold:
        return 0
    return 1
