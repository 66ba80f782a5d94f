"""Which draft tokens AdaSpec's verifier trims (``sim.policies.adaspec_rules``): the tokens
with the lowest cumulative confidence across the batch (``lowest_tokens``, the token trim),
or whole suffixes of the requests with the lowest final cumulative confidence
(``trim_requests_into``, the artifact's request trim). Selection only: what a trim is worth
and whether it is kept are the verifier's."""

from __future__ import annotations

import numpy as np

from sim.compiled.jit import compiled, inlined, jitable


@jitable
def _comes_first(va, ta, a, vb, tb, b):
    """Whether token (value, position, row) ``a`` goes before ``b`` in ``lowest_tokens``: the
    lower value, then the later position, then the lower row. Written without branches
    (``&``, ``|``): the tree's matches are data-dependent, and a branch on each would be
    mispredicted about half the time."""
    return (va < vb) | ((va == vb) & ((ta > tb) | ((ta == tb) & (a < b))))


TREE_FLOATS_PER_ROW, TREE_INTS_PER_ROW = 4, 8
"""Scratch a caller of ``lowest_tokens`` keeps per request for its tree, past the tokens'
``vals`` / ``rows``: one float array and two int arrays of ``tree_size(batch)`` <= 4 batch."""


@jitable
def tree_size(batch):
    """Entries of each of ``lowest_tokens``' three tree arrays a batch needs: twice the
    smallest power of two at least ``batch`` (at most ``4 * batch``)."""
    leaves = 1
    while leaves < batch:
        leaves *= 2
    return 2 * leaves


@inlined
def lowest_tokens_in(cum, drafted, steps, batch, drop, vals, rows, fscratch, iscratch, limit):
    """``lowest_tokens`` with its tree in the tails of the caller's scratch: the last
    ``tree_size(batch)`` entries of ``fscratch`` and the last two such runs of ``iscratch``
    (what ``TREE_FLOATS_PER_ROW`` / ``TREE_INTS_PER_ROW`` reserve)."""
    tree = tree_size(batch)
    return lowest_tokens(cum, drafted, steps, batch, drop, vals, rows, fscratch[-tree:],
                         iscratch[-2 * tree:-tree], iscratch[-tree:], limit)


@jitable
def lowest_tokens(cum, drafted, steps, batch, drop, vals, rows, tree_v, tree_t, tree_i,
                   limit):
    """The ``drop`` draft tokens with the lowest cumulative confidence (ties: the later
    position first, then the lower batch index): their request indices into ``rows[:drop]``
    (lowest first) and their values into ``vals[:drop]``; returns how many tokens there are,
    or -1 when fewer than all are to be taken and the values taken so far (lowest first)
    sum to more than ``limit`` (the caller's trim cannot pay then: ``adaspec_rules._trim_limit``).

    c_{i,t} never grows along t (confidences are at most 1), so each row's lowest tokens are a
    suffix, and a tournament (loser) tree merges them: leaf ``L + i`` (``L`` the smallest
    power of two at least ``batch``) holds row i's last token not yet taken (value, position,
    row in scratch ``tree_v``, ``tree_t``, ``tree_i``, ``tree_size(batch)`` entries each; +inf
    once the row is used up, and for the leaves past the batch), each node above holds the
    loser of the match between its children's winners, and the winner is kept aside. Taking
    it, its row's next token replays the matches on the path from its leaf to the root, the
    same number each time and each without a branch (``_comes_first``): O(batch + drop log
    batch), as a heap, without a heap's mispredicted sift branches. Else (a row grows) every
    token is sorted."""
    m, grows = 0, False
    leaves = tree_size(batch) // 2
    for i in range(batch):  # tree_t[leaves + i]: row i's last position
        d = drafted[i] if drafted[i] < steps else steps
        m += d
        tree_t[leaves + i] = d - 1
    for t in range(1, steps):  # row-major and without branches: the cheapest check
        for i in range(batch):
            grows |= (t <= tree_t[leaves + i]) & (cum[t, i] > cum[t - 1, i])
    take = drop if drop < m else m
    if not grows:
        for i in range(leaves):
            t = tree_t[leaves + i] if i < batch else -1
            tree_t[leaves + i] = t
            tree_i[leaves + i] = i
            tree_v[leaves + i] = cum[t, i] if t >= 0 else np.inf
        for n in range(leaves - 1, 0, -1):  # each node: its children's winner, bottom-up
            a, b = 2 * n, 2 * n + 1
            w = a if _comes_first(tree_v[a], tree_t[a], tree_i[a],
                                  tree_v[b], tree_t[b], tree_i[b]) else b
            tree_v[n], tree_t[n], tree_i[n] = tree_v[w], tree_t[w], tree_i[w]
        v, t, i = tree_v[1], tree_t[1], tree_i[1]  # the first token
        for n in range(1, leaves):  # each node: the loser instead, top-down (its children
            lost = 2 * n + 1 if tree_i[2 * n] == tree_i[n] else 2 * n  # hold winners still)
            tree_v[n], tree_t[n], tree_i[n] = tree_v[lost], tree_t[lost], tree_i[lost]
        running = 0.0
        partial = take < m  # with every token taken, the caller sums them its own way
        for j in range(take):
            vals[j], rows[j] = v, i
            running += v
            if partial and running > limit:
                return -1
            t -= 1  # row i's next token, never before its last (+inf: the row is used up)
            v = cum[t, i] if t >= 0 else np.inf
            n = (leaves + i) >> 1
            while n >= 1:  # its matches up to the root: the loser stays, the winner goes on
                vn, tn, rn = tree_v[n], tree_t[n], tree_i[n]
                up = _comes_first(vn, tn, rn, v, t, i)
                tree_v[n] = v if up else vn
                tree_t[n] = t if up else tn
                tree_i[n] = i if up else rn
                v = vn if up else v
                t = tn if up else t
                i = rn if up else i
                n >>= 1
        return m
    n = 0
    for t in range(steps - 1, -1, -1):  # stable sort by value of (t desc, i asc) order
        for i in range(batch):
            if t < drafted[i]:
                vals[n] = cum[t, i]
                rows[n] = i
                n += 1
    idx = np.argsort(vals[:n], kind="mergesort")
    picked_vals = np.empty(take)
    picked_rows = np.empty(take, dtype=np.int64)
    for j in range(take):
        picked_vals[j] = vals[idx[j]]
        picked_rows[j] = rows[idx[j]]
    for j in range(take):
        vals[j] = picked_vals[j]
        rows[j] = picked_rows[j]
    return m


@jitable
def trim_requests_into(cum, drafted, batch, steps, drop, new, kept, order):
    """The artifact's request trimming: remove exactly ``drop`` tokens, whole suffixes first
    from the request with the lowest final cumulative confidence, then the next (ties: lower
    batch index), the last one only partly. ``cum`` is (steps, B), 0 past ``drafted``; the new
    verify lengths go to ``new`` and each request's kept sum of cumulative confidences to
    ``kept``."""
    m = 0
    finals = np.empty(batch)
    for i in range(batch):
        if drafted[i] > 0:
            order[m] = i
            finals[m] = cum[drafted[i] - 1, i]
            m += 1
    idx = np.argsort(finals[:m], kind="mergesort")
    for i in range(batch):
        new[i] = drafted[i]
    before = 0
    for j in range(m):
        i = order[idx[j]]
        length = drafted[i]
        cut = drop - before
        if cut < 0:
            cut = 0
        if cut > length:
            cut = length
        new[i] = length - cut
        before += length
    for i in range(batch):
        if new[i] > 0:
            total = 0.0
            for t in range(new[i]):
                total += cum[t, i]
            kept[i] = total
        else:
            kept[i] = 0.0


def trim_requests(cum: np.ndarray, drafted: np.ndarray, drop: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``trim_requests_into`` on a (B, steps) ``cum``: (new verify lengths, kept sums)."""
    batch, steps = cum.shape
    new = np.empty(batch, dtype=np.int64)
    kept = np.empty(batch)
    compiled(trim_requests_into)(np.ascontiguousarray(cum.T), np.asarray(drafted, dtype=np.int64),
                                 batch, steps, drop, new, kept, np.empty(batch, dtype=np.int64))
    return new, kept
