"""The compiled loop's views of its packed arrays: the constant arenas' entries (``f1``,
``f2``, ``i1``, ``i2``: ``sim.compiled.run`` packs them, ``sim.compiled.layout`` names them)
and the adaptive policies' scratch (``policy_work``, sized by ``policy_work_sizes``)."""

from __future__ import annotations

from sim.compiled.jit import jitable
from sim.compiled.layout import FLOAT_ENTRIES
from sim.policies.trim_selection import TREE_FLOATS_PER_ROW, TREE_INTS_PER_ROW


@jitable
def f1(cf, ci, e):
    """Entry ``e`` of the float arena, 1-D."""
    at = ci[3 * e]
    return cf[at:at + ci[3 * e + 1] * max(ci[3 * e + 2], 1)]


@jitable
def f2(cf, ci, e):
    """Entry ``e`` of the float arena, 2-D."""
    at = ci[3 * e]
    rows, cols = ci[3 * e + 1], ci[3 * e + 2]
    return cf[at:at + rows * cols].reshape((rows, cols))


@jitable
def i1(ci, e):
    """Entry ``e`` of the int arena (after the header), 1-D."""
    h = 3 * (FLOAT_ENTRIES + e)
    at = ci[h]
    return ci[at:at + ci[h + 1] * max(ci[h + 2], 1)]


@jitable
def i2(ci, e):
    """Entry ``e`` of the int arena, 2-D."""
    h = 3 * (FLOAT_ENTRIES + e)
    at = ci[h]
    rows, cols = ci[h + 1], ci[h + 2]
    return ci[at:at + rows * cols].reshape((rows, cols))


def policy_work_sizes(n_slots: int, k_max: int) -> tuple[int, int]:
    """Float and int scratch the adaptive policies' rules need (``policy_work``)."""
    kk = max(k_max, 1)
    floats = (kk * n_slots + 3 * n_slots + 3 * (kk + 1) + 2 * (kk + 1) * n_slots
              + TREE_FLOATS_PER_ROW * n_slots + 8)
    ints = (kk + 2 * (kk + 1) + n_slots + 3 * (kk + 1) * n_slots + n_slots
            + TREE_INTS_PER_ROW * n_slots + 8)
    return floats, ints


@jitable
def policy_work(pwf, pwi, n_slots, k_max):
    """Views of the scratch arrays: (cum, sum_c, gain, prices_v, prices_d, float scratch,
    goodputs, counts, hist, tokens_cum, new verify lengths, int scratch)."""
    kk = k_max if k_max > 0 else 1
    at = 0
    cum = pwf[at:at + kk * n_slots].reshape((kk, n_slots))
    at += kk * n_slots
    sum_c = pwf[at:at + n_slots]
    at += n_slots
    gain = pwf[at:at + n_slots]
    at += n_slots
    prices_v = pwf[at:at + kk + 1]
    at += kk + 1
    prices_d = pwf[at:at + kk + 1]
    at += kk + 1
    goodputs = pwf[at:at + kk + 1]
    at += kk + 1
    keys = pwf[at:at + n_slots]
    at += n_slots
    fscratch = pwf[at:]
    at = 0
    counts = pwi[at:at + kk]
    at += kk
    hist = pwi[at:at + kk + 1]
    at += kk + 1
    tokens_cum = pwi[at:at + kk + 1]
    at += kk + 1
    new = pwi[at:at + n_slots]
    at += n_slots
    iscratch = pwi[at:]
    return (cum, sum_c, gain, prices_v, prices_d, fscratch, goodputs, counts, hist, tokens_cum,
            new, iscratch, keys)
