"""AdaSpec's verifier on a token tree: trim whole depths so the verification pass fits the
next smaller graph size.

A chain frees one position per trimmed token; a tree frees ``widths[t]`` nodes when a
request gives up depth t + 1 (and everything deeper). The rule is the chain's, in tree units:
the pass of B + sum nodes(k_i) positions runs at its padded size; remove the lowest
cumulative-confidence depths (ties: the deeper one first, then the lower batch index; since
cumulative confidences never grow with depth, each request loses a suffix) until the pass
fits ``GraphPadding.next_smaller``; ``trim=request`` takes whole suffixes from the requests
with the lowest final cumulative confidence instead. The trimmed plan is kept only if its
predicted goodput is not lower, exactly as for chains (``sim.policies.adaspec``).

The selection (``tree_trim_select``) and the decision (``tree_trim_keeps``) are jitable
functions: ``trim_tree`` (the protocol path) and the compiled loop (``sim.compiled.engine``)
call them, with the prices of the two plans from the policy's cost model.
"""

from __future__ import annotations

import numpy as np

from sim.compiled.jit import compiled, jitable
from sim.policies.adaspec_rules import (AF_EXPECTED, AI_SLO, SLO_TOKENS, _record_trim,
                                        _row_sum, _score)
from sim.policies.goodput import pairwise_sum


@jitable
def tree_trim_select(cum, drafted, batch, steps, nodes, drop, by_request, new, removed_conf):
    """The depths to give up so that ``drop`` tree positions are freed (module doc):
    ``cum[t, i]``: request i's cumulative confidence at depth t + 1 (0 past what it drafted);
    ``nodes``: the tree's nodes per verify depth (depth t + 1 frees ``nodes[t + 1] -
    nodes[t]``). Writes the trimmed verify depths to ``new`` and, per request, the sum of
    the cumulative confidences it gives up (summed in the order they are taken, as
    ``np.bincount``) to ``removed_conf``."""
    deepest = nodes.shape[0] - 1
    m = 0
    for i in range(batch):
        m += drafted[i] if drafted[i] < steps else steps
    rows = np.empty(m, dtype=np.int64)
    cols = np.empty(m, dtype=np.int64)
    vals = np.empty(m, dtype=np.float64)
    j = 0
    for i in range(batch):  # the candidates in row-major order (``np.nonzero``)
        for t in range(steps):
            if t < drafted[i]:
                rows[j] = i
                cols[j] = t
                vals[j] = cum[t, i]
                j += 1
    # a stable sort per key, the least significant first (``np.lexsort``)
    order = np.argsort(-cols, kind="mergesort")  # deeper first (rows stay ascending)
    if by_request:  # the requests with the lowest final cumulative confidence first
        final = np.empty(batch, dtype=np.float64)
        for i in range(batch):
            d = drafted[i] - 1
            final[i] = cum[d if d > 0 else 0, i]
        rank = np.argsort(final, kind="mergesort")
        position = np.empty(batch, dtype=np.int64)
        for r in range(batch):
            position[rank[r]] = r
        key = np.empty(m, dtype=np.int64)
        for r in range(m):
            key[r] = position[rows[order[r]]]
        order = order[np.argsort(key, kind="mergesort")]
    else:  # the lowest value first
        key_f = np.empty(m, dtype=np.float64)
        for r in range(m):
            key_f[r] = vals[order[r]]
        order = order[np.argsort(key_f, kind="mergesort")]
    count = m  # the candidates taken: up to the first whose freed positions reach ``drop``
    freed = 0
    for r in range(m):
        t = cols[order[r]]
        freed += nodes[t + 1] - nodes[t] if t < deepest else 0
        if freed >= drop:
            count = r + 1
            break
    for i in range(batch):
        new[i] = drafted[i]
        removed_conf[i] = 0.0
    for r in range(count):
        j = order[r]
        new[rows[j]] -= 1
        removed_conf[rows[j]] += vals[j]


@jitable
def tree_trim_keeps(pi, pf, cum, removed_conf, batch, steps, draft_s, verify_full_s,
                    verify_trimmed_s):
    """Whether AdaSpec keeps the trimmed plan: its goodput (expected tokens less the removed
    cumulative confidences, over the drafting time plus the trimmed plan's verification) is
    not below the full plan's; under ``slo=tokens`` each plan's least expected tokens per
    request bound its time. Records the decision (``_record_trim``)."""
    full_min = 0.0
    kept_min = 0.0
    for i in range(batch):
        row = _row_sum(cum, i, steps, batch)  # numpy's ``cum.T.sum(axis=1)``
        if i == 0 or row < full_min:
            full_min = row
        if i == 0 or row - removed_conf[i] < kept_min:
            kept_min = row - removed_conf[i]
    tokens_mode = pi[AI_SLO] == SLO_TOKENS
    expected = pf[AF_EXPECTED]
    full = _score(pi, pf, expected, draft_s + verify_full_s,
                  1.0 + full_min if tokens_mode else 1.0)
    trimmed = _score(pi, pf, expected - pairwise_sum(removed_conf, 0, batch),
                     draft_s + verify_trimmed_s, 1.0 + kept_min if tokens_mode else 1.0)
    kept = trimmed >= full
    _record_trim(pi, kept)
    return kept


def trim_tree(policy, cost, drafted: np.ndarray, steps: int) -> np.ndarray:
    """The verify depths AdaSpec's verifier keeps for a tree method (module doc). ``policy``
    is the ``AdaSpecPolicy`` mid-iteration (its cumulative confidences absorbed)."""
    plan = cost.tree
    batch = cost.batch
    nodes = plan.nodes[np.minimum(drafted, plan.max_depth)]
    total = batch + int(nodes.sum())
    target = cost._pad.next_smaller(total)
    if target < batch or target >= total:
        return drafted
    pi, pf, cum = policy.trim_state()
    new = np.empty(batch, dtype=np.int64)
    removed_conf = np.empty(batch, dtype=np.float64)
    compiled(tree_trim_select)(cum, np.asarray(drafted, dtype=np.int64), batch, steps,
                               plan.nodes, total - target, policy.trim.value == "request",
                               new, removed_conf)
    kept = compiled(tree_trim_keeps)(pi, pf, cum, removed_conf, batch, steps,
                                     cost.draft_s(steps), cost.verify_plan_s(drafted),
                                     cost.verify_plan_s(new))
    return new if kept else drafted
