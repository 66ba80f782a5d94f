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

from sim.acceptance.base import accepted_prefix_into
from sim.compiled.jit import compiled, jitable
from sim.errors import ConfigError
from sim.policies.base import BatchView, Policy
from sim.policies.goodput import IterationCost
from sim.policies.params import check_k


def water_fill(avail: np.ndarray, total: int) -> np.ndarray:
    """Integer k_i <= avail_i with sum k_i = total (<= sum avail) and the smallest max k_i."""
    avail = np.asarray(avail, dtype=np.int64)
    out = np.empty_like(avail)
    water_fill_into(avail, avail.shape[0], int(total), out)
    return out


@jitable
def water_fill_into(avail, batch, total, out):
    """``water_fill`` of ``avail[:batch]`` into ``out``."""
    have = 0
    top = 0
    for i in range(batch):
        have += avail[i]
        if avail[i] > top:
            top = avail[i]
    if total >= have:
        for i in range(batch):
            out[i] = avail[i]
        return
    lo, hi = 0, top
    while lo < hi:  # largest level L with sum min(avail, L) <= total
        mid = (lo + hi + 1) // 2
        level = 0
        for i in range(batch):
            level += avail[i] if avail[i] < mid else mid
        if level <= total:
            lo = mid
        else:
            hi = mid - 1
    rest = total
    for i in range(batch):
        out[i] = avail[i] if avail[i] < lo else lo
        rest -= out[i]
    for i in range(batch):
        if rest <= 0:
            break
        if avail[i] > lo:
            out[i] += 1
            rest -= 1


@jitable
def oracle_queries(accept, k_cap, max_draft, batch, prefix, useful, avail):
    """The first half of the oracle's rule: each request's true useful length a_i (its
    accepted prefix, capped at its draft limit) into ``prefix``, ``useful[t]`` = requests
    with a_i > t (who drafts step t) and ``avail[s]`` = sum_i min(a_i, s); returns the
    longest a_i. The caller prices drafting ``useful[s-1]`` requests at step s - 1 and
    verifying B + x tokens for the candidates x of ``oracle_choose``."""
    limits = np.empty(batch, dtype=np.int64)
    for i in range(batch):
        limit = max_draft[i] if max_draft[i] < k_cap else k_cap
        limits[i] = limit if limit > 0 else 0
    accepted_prefix_into(accept[:, :k_cap], limits, batch, prefix)
    top = 0
    for i in range(batch):
        if prefix[i] > top:
            top = prefix[i]
    for t in range(top):
        n = 0
        for i in range(batch):
            if prefix[i] > t:
                n += 1
        useful[t] = n
    avail[0] = 0
    for s in range(1, top + 1):
        avail[s] = avail[s - 1] + useful[s - 1]
    return top


@jitable
def oracle_choose(batch, top, avail, sizes, n_sizes, verify0, size_prices, avail_prices,
                  draft_overhead, draft_prices, best):
    """The second half: the best (goodput, steps, tokens) over s = 1..top steps and the
    candidate token counts x (the top of each smaller padded size, then all useful tokens;
    ties: fewer steps, then fewer tokens), given the prices (``size_prices[j]``: verifying
    ``sizes[j]`` tokens, ``avail_prices[s]``: B + avail[s] tokens, ``draft_prices[s]``: draft
    step s - 1 over ``useful[s - 1]`` requests). Writes ``best`` = (goodput, steps, tokens)."""
    best[0] = batch / verify0
    best[1] = 0.0
    best[2] = 0.0
    draft_s = draft_overhead
    for steps in range(1, top + 1):
        draft_s += draft_prices[steps]
        for j in range(n_sizes):
            size = sizes[j]
            if batch < size < batch + avail[steps]:
                x = size - batch
                g = (batch + x) / (draft_s + size_prices[j])
                if g > best[0]:
                    best[0], best[1], best[2] = g, steps, x
        x = avail[steps]
        g = (batch + x) / (draft_s + avail_prices[steps])
        if g > best[0]:
            best[0], best[1], best[2] = g, steps, x


class OraclePolicy(Policy):
    """Best true goodput per iteration; simulator only (rules: ``oracle_queries``,
    ``oracle_choose``, ``water_fill_into``)."""

    needs_oracle = True
    sim_only = True

    def __init__(self, k: int = 8) -> None:
        self.k_max = check_k(k)
        self.name = f"oracle:{self.k_max}"
        self._plan = np.zeros(0, dtype=np.int64)
        self.best_goodput = 0.0

    def compiled_state(self):
        """(policy kind, int state, float state, asks every step) for the compiled loop."""
        from sim.compiled.layout import P_ORACLE
        return P_ORACLE, np.array([self.k_max], dtype=np.int64), np.zeros(1), True

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
        prefix = np.zeros(batch, dtype=np.int64)
        useful = np.zeros(k_cap + 1, dtype=np.int64)
        avail = np.zeros(k_cap + 1, dtype=np.int64)
        max_draft = np.asarray(view.max_draft_tokens, dtype=np.int64)
        top = int(compiled(oracle_queries)(accept, k_cap, max_draft, batch, prefix, useful,
                                           avail))
        limits = np.maximum(np.minimum(max_draft, k_cap), 0)
        cost = IterationCost(view, k_cap, limits)
        sizes = np.asarray(view.padding.sizes if view.padding.enabled else (), dtype=np.int64)
        size_prices = np.array([cost.verify_s(int(size))
                                if batch < size < batch + avail[top] else 0.0
                                for size in sizes.tolist()])
        avail_prices = np.array([cost.verify_s(batch + int(x)) for x in avail[:top + 1]])
        draft_prices = np.zeros(top + 1)
        for steps in range(1, top + 1):
            draft_prices[steps] = cost.draft_step_s(int(useful[steps - 1]), steps - 1)
        best = np.zeros(3)
        compiled(oracle_choose)(batch, top, avail, sizes, sizes.shape[0],
                                cost.verify_s(batch), size_prices, avail_prices,
                                cost.draft_overhead_s, draft_prices, best)
        self.best_goodput = float(best[0])
        steps, tokens = int(best[1]), int(best[2])
        if steps == 0:
            return 0
        water_fill_into(np.minimum(prefix, steps), batch, tokens, self._plan)
        return int(self._plan.max())

    def continue_drafting(self, step: int, conf: np.ndarray, drafted: np.ndarray) -> np.ndarray:
        return self._plan > step

    def verify_lengths(self, conf: np.ndarray, drafted: np.ndarray) -> np.ndarray:
        return np.minimum(self._plan, drafted)
