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
"""

from __future__ import annotations

import numpy as np


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
    drop = total - target
    cum = policy.cumulative_confidences(steps)  # (B, steps); 0 past drafted
    widths = np.asarray(plan.tree.widths + (0,) * max(0, steps - plan.max_depth),
                        dtype=np.int64)[:steps]
    valid = np.arange(steps)[None, :] < drafted[:, None]
    rows, cols = np.nonzero(valid)
    vals = cum[rows, cols]
    if policy.trim.value == "request":
        final = cum[np.arange(batch), np.maximum(drafted - 1, 0)]
        rank = np.argsort(final, kind="stable")  # lowest final confidence first
        position = np.empty(batch, dtype=np.int64)
        position[rank] = np.arange(batch)
        order = np.lexsort((-cols, position[rows]))
    else:
        order = np.lexsort((rows, -cols, vals))  # lowest value, deeper, lower batch index
    freed = np.cumsum(widths[cols[order]])
    count = int(np.searchsorted(freed, drop)) + 1  # positions to remove
    removed = order[:count]
    new = drafted - np.bincount(rows[removed], minlength=batch)
    removed_conf = np.bincount(rows[removed], weights=vals[removed], minlength=batch)
    row_sums = cum.sum(axis=1)
    kept_sums = row_sums - removed_conf
    tokens_mode = policy.slo.value == "tokens"
    draft_time = cost.draft_s(steps)
    expected = policy.expected_tokens
    full = policy.score(expected, draft_time + cost.verify_plan_s(drafted),
                         1.0 + float(row_sums.min()) if tokens_mode else 1.0)
    trimmed = policy.score(expected - float(removed_conf.sum()),
                            draft_time + cost.verify_plan_s(new),
                            1.0 + float(kept_sums.min()) if tokens_mode else 1.0)
    kept = trimmed >= full
    policy.record_trim(kept)
    return new if kept else drafted
