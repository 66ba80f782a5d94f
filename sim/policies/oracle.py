"""``oracle:K``: the sim-only upper bound. It reads ``view.oracle`` (each request's draft
confidences and the target's accept verdicts, drawn before drafting) and picks the iteration's
draft steps s and per-request verify lengths k_i maximising the TRUE goodput

    G = sum_i (1 + min(k_i, a_i)) / T(s, sum_i k_i),   k_i <= min(s, m_i)

with a_i the request's true accepted-prefix length, m_i its ``max_draft_tokens`` and T the
estimator's predicted time (``sim.policies.goodput.IterationCost``, graph padding included).

Why the search is exact: verifying a token past the accepted prefix never emits more
(the correction token comes either way), and every accepted token is worth exactly one emitted
token, so for s steps the plan is "x accepted tokens, x <= A_s = sum_i min(a_i, s, m_i)" and
G(s, x) = (B + x) / T(s, x). Within one padded size T is flat, so the best x is A_s or the top of
a padded bucket below it; the oracle enumerates those for every s in 0..K and takes the best
(ties: fewer steps, then fewer tokens). The x tokens are spread water-filling style (shortest
max k_i). Drafting time for s steps counts, at step t, the requests whose useful length
min(a_i, s) exceeds t (only they need to draft). No SLO constraint: this is a throughput upper
bound.

The real engine must refuse it: ``sim_only = True`` and ``needs_oracle = True``.
"""

from __future__ import annotations

import numpy as np

from sim.acceptance.base import accepted_prefix
from sim.errors import ConfigError
from sim.policies.base import BatchView, Policy
from sim.policies.goodput import IterationCost, draft_limits
from sim.policies.params import check_k


def water_fill(avail: np.ndarray, total: int) -> np.ndarray:
    """Integer k_i <= avail_i with sum k_i = total (<= sum avail) and the smallest max k_i."""
    avail = np.asarray(avail, dtype=np.int64)
    if total >= int(avail.sum()):
        return avail.copy()
    lo, hi = 0, int(avail.max(initial=0))
    while lo < hi:  # largest level L with sum min(avail, L) <= total
        mid = (lo + hi + 1) // 2
        if int(np.minimum(avail, mid).sum()) <= total:
            lo = mid
        else:
            hi = mid - 1
    out = np.minimum(avail, lo)
    rest = total - int(out.sum())
    if rest > 0:
        room = np.nonzero(avail > lo)[0][:rest]
        out[room] += 1
    return out


class OraclePolicy(Policy):
    """Best true goodput per iteration; simulator only."""

    needs_oracle = True
    sim_only = True

    def __init__(self, k: int = 8) -> None:
        self.k_max = check_k(k)
        self.name = f"oracle:{self.k_max}"
        self._plan = np.zeros(0, dtype=np.int64)
        self.best_goodput = 0.0

    def begin(self, view: BatchView) -> int:
        if view.oracle is None:
            raise ConfigError("the oracle policy is sim-only: it needs the simulator's "
                              "acceptance outcomes (BatchView.oracle)")
        batch = view.batch_size
        accept = np.asarray(view.oracle.accept, dtype=bool)
        k_cap = min(self.k_max, accept.shape[1]) if accept.ndim == 2 else 0
        self._plan = np.zeros(batch, dtype=np.int64)
        if batch == 0 or k_cap == 0:
            return 0
        limits = draft_limits(view, k_cap)
        prefix = accepted_prefix(accept[:, :k_cap], limits)  # a_i capped at m_i
        cost = IterationCost(view, k_cap, limits)
        sizes = np.asarray(view.padding.sizes if view.padding.enabled else (), dtype=np.int64)
        best = (batch / cost.verify_s(batch), 0, 0)  # (goodput, steps, tokens)
        top = int(prefix.max(initial=0))
        # requests whose useful length exceeds t draft step t: n_t = #(a_i > t)
        useful = (batch - np.cumsum(np.bincount(prefix, minlength=top + 1))[:top]).tolist()
        draft_s = cost.draft_overhead_s
        avail = 0
        for steps in range(1, top + 1):
            n = useful[steps - 1]
            draft_s += cost.draft_step_s(n, steps - 1)
            avail += n  # sum_i min(a_i, steps)
            # the top of each smaller padded bucket, then all useful tokens (ties: fewer tokens)
            candidates = [avail]
            if sizes.size:
                candidates = (sizes[(sizes > batch) & (sizes < batch + avail)] - batch).tolist() \
                    + candidates
            for x in candidates:
                g = (batch + x) / (draft_s + cost.verify_s(batch + x))
                if g > best[0]:
                    best = (g, steps, int(x))
        self.best_goodput, steps, tokens = best
        if steps == 0:
            return 0
        self._plan = water_fill(np.minimum(prefix, steps), tokens)
        return int(self._plan.max())

    def continue_drafting(self, step: int, conf: np.ndarray, drafted: np.ndarray) -> np.ndarray:
        return self._plan > step

    def verify_lengths(self, conf: np.ndarray, drafted: np.ndarray) -> np.ndarray:
        return np.minimum(self._plan, drafted)
