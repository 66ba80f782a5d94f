"""``smartspec:K``: SmartSpec-style goodput argmax over a uniform draft length.

Each iteration picks k in 0..K maximising

    G(k) = sum_i (1 - alpha^(min(k, m_i) + 1)) / (1 - alpha) / T(k)

(B * (1 - alpha^(k+1)) / (1 - alpha) / T(k) when no request is capped by its ``max_draft_tokens``
m_i), with T(k) from ``sim.policies.goodput.IterationCost`` (estimator, graph padding) and a
running acceptance estimate alpha. Ties go to the smaller k.

Alpha update (``observe``): per iteration that verified drafted tokens, the maximum-likelihood
per-token acceptance of a truncated geometric,
alpha_hat = sum a_i / sum (a_i + [a_i < k_i]) (each verified position until the first rejection
is one Bernoulli trial), then alpha <- (1 - w) * alpha + w * alpha_hat with w = ``weight``
(default 0.1); alpha starts at ``alpha0`` (default 0.6).
"""

from __future__ import annotations

import numpy as np

from sim.policies.base import BatchView, Policy
from sim.policies.goodput import IterationCost, draft_limits, goodput
from sim.policies.params import check_k, check_unit


class SmartSpecPolicy(Policy):
    """Uniform-k goodput maximiser with a running i.i.d. acceptance estimate."""

    def __init__(self, k: int = 8, alpha0: float = 0.6, weight: float = 0.1) -> None:
        self.k_max = check_k(k)
        self.alpha = check_unit(alpha0, "alpha0")
        self.alpha0 = self.alpha
        self.weight = check_unit(weight, "weight", open_low=True)
        parts = [str(self.k_max)]
        if self.alpha0 != 0.6:
            parts.append(f"alpha0={self.alpha0:g}")
        if self.weight != 0.1:
            parts.append(f"weight={self.weight:g}")
        self.name = "smartspec:" + ",".join(parts)
        self._ks = np.arange(self.k_max + 1)
        self.last_goodputs: np.ndarray = np.zeros(0)

    def begin(self, view: BatchView) -> int:
        k_cap = self.k_max
        cost = IterationCost(view, k_cap)
        geo = np.cumsum(self.alpha ** self._ks)  # geo[j] = sum_{r<=j} alpha^r
        if cost.uniform:  # nobody capped below K
            tokens = view.batch_size * self._ks
            expected = view.batch_size * geo
        else:
            # per-request verify length for each candidate k: (K+1, B)
            lengths = np.minimum(self._ks[:, None], draft_limits(view, k_cap)[None, :])
            tokens = lengths.sum(axis=1)
            expected = geo[lengths].sum(axis=1)
        goodputs = np.array([goodput(e, cost.time_s(k, t)) for k, (e, t)
                             in enumerate(zip(expected.tolist(), tokens.tolist()))])
        self.last_goodputs = goodputs
        return int(np.argmax(goodputs))  # first maximum: ties go to the smaller k

    def observe(self, verify: np.ndarray, accepted: np.ndarray) -> None:
        verified = verify > 0
        if not verified.any():
            return
        acc = accepted[verified]
        trials = int(acc.sum() + np.count_nonzero(acc < verify[verified]))
        if trials == 0:
            return
        alpha_hat = float(acc.sum()) / trials
        self.alpha = (1.0 - self.weight) * self.alpha + self.weight * alpha_hat
