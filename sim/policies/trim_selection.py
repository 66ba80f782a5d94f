"""Which draft tokens AdaSpec's verifier trims (``sim.policies.adaspec_rules``): the tokens
with the lowest cumulative confidence across the batch (``lowest_tokens``, the token trim),
or whole suffixes of the requests with the lowest final cumulative confidence
(``trim_requests_into``, the artifact's request trim). Selection only: what a trim is worth
and whether it is kept are the verifier's."""

from __future__ import annotations

import numpy as np

from sim.compiled.jit import compiled, jitable


@jitable
def _comes_first(va, ta, a, vb, tb, b):
    """Whether token (value, position, row) ``a`` goes before ``b`` in ``lowest_tokens``: the
    lower value, then the later position, then the lower row (scalars: no reference counts)."""
    return va < vb or (va == vb and (ta > tb or (ta == tb and a < b)))


@jitable
def lowest_tokens(cum, drafted, steps, batch, drop, vals, rows, heap_v, heap_t, heap_i,
                   limit):
    """The ``drop`` draft tokens with the lowest cumulative confidence (ties: the later
    position first, then the lower batch index): their request indices into ``rows[:drop]``
    (lowest first) and their values into ``vals[:drop]``; returns how many tokens there are,
    or -1 when fewer than all are to be taken and the values taken so far (lowest first)
    sum to more than ``limit`` (the caller's trim cannot pay then: ``adaspec_rules._trim_limit``).

    c_{i,t} never grows along t (confidences are at most 1), so each row's lowest tokens are a
    suffix: a binary min-heap of the rows' last tokens not yet taken (value, position, row in
    scratch ``heap_v``, ``heap_t``, ``heap_i`` of ``batch`` each; sifts written out: calls
    count references) merges them, O(batch + drop log batch); else every token is sorted."""
    m, grows = 0, False
    for i in range(batch):  # heap_t[i]: row i's last position, until the heap overwrites it
        d = drafted[i] if drafted[i] < steps else steps
        m += d
        heap_t[i] = d - 1
    for t in range(1, steps):  # row-major and without branches: the cheapest check
        for i in range(batch):
            grows |= (t <= heap_t[i]) & (cum[t, i] > cum[t - 1, i])
    take = drop if drop < m else m
    if not grows:
        size = 0
        for i in range(batch):  # sift row i's last token up from the heap's end (it writes
            t = heap_t[i]  # only positions <= i, whose rows were read already)
            if t >= 0:
                v = cum[t, i]
                p, q, size = size, (size - 1) // 2, size + 1
                while p > 0 and _comes_first(v, t, i, heap_v[q], heap_t[q], heap_i[q]):
                    heap_v[p], heap_t[p], heap_i[p] = heap_v[q], heap_t[q], heap_i[q]
                    p, q = q, (q - 1) // 2
                heap_v[p], heap_t[p], heap_i[p] = v, t, i
        running = 0.0
        partial = take < m  # with every token taken, the caller sums them its own way
        for j in range(take):
            v, t, i = heap_v[0], heap_t[0], heap_i[0]
            vals[j], rows[j] = v, i
            running += v
            if partial and running > limit:
                return -1
            if t == 0:  # row i is used up: the heap's last token takes its place
                size -= 1
                v, t, i = heap_v[size], heap_t[size], heap_i[size]
            else:  # row i's next token, never before its last: sifts down from the top
                v, t = cum[t - 1, i], t - 1
            p, c = 0, 1
            while c < size:
                if c + 1 < size and _comes_first(heap_v[c + 1], heap_t[c + 1], heap_i[c + 1],
                                                 heap_v[c], heap_t[c], heap_i[c]):
                    c += 1
                if not _comes_first(heap_v[c], heap_t[c], heap_i[c], v, t, i):
                    break
                heap_v[p], heap_t[p], heap_i[p] = heap_v[c], heap_t[c], heap_i[c]
                p, c = c, 2 * c + 1
            heap_v[p], heap_t[p], heap_i[p] = v, t, i
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
