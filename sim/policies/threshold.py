"""``threshold:T,K``: draft up to K steps; stop after the step whose batch-mean draft confidence
(over the requests that drafted it) falls below T. The paper's baseline uses T=0.6, K=8."""

from __future__ import annotations

import numpy as np

from sim.policies.base import BatchView, Policy
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
        if step > 0:
            last = drafted >= step  # requests that drafted step - 1
            if last.any() and conf[last, step - 1].mean() < self.threshold:
                return False  # nobody drafts this step
        return True  # everyone still drafting continues
