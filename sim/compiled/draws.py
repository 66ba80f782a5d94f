"""A decode iteration's acceptance draws in the compiled loop: the uniforms of the run's
stream computed where a draft step reads them (``sim.compiled.pcg64``, numpy's PCG64 bit for
bit), and the draws from them (``draw_cells`` / ``draw_fixed``, the protocol path's rules).

The protocol path draws, in each decode iteration that drafts, two blocks of B x k_max
uniforms (``u`` then ``v``, row-major; ``fixed:ALPHA`` one block) with ``rng.random`` and
reads position j of row i of each block when a step drafts it; an iteration that drafts
nothing draws nothing. Fewer than half of those numbers are ever read (adaspec:8 on the
Azure hour: 30.0 M drawn, at most 14.2 M read; most iterations stop after two or three of
their eight positions). The loop computes those (and the next position, whose cells it
prefetches), without an array of the others: row r of the iteration's blocks (the u rows
0..B-1, then the v rows) starts at stream index ``at + r k_max``, so ``open_block`` jumps
from row start to row start (one 128-bit multiply-add each, ``pcg64.jump``), ``columns``
steps every row's cursor to the positions a step reads, and ``draw`` moves the stream past
the blocks when the iteration drafts. No uniform is drawn ahead, no thread, no buffer of
the stream; the Python generator is set to where the loop left it (``sync_generator``)
whenever the loop returns, so it is where the protocol path would leave it.

The iteration's computed uniforms go to ``uv`` (2 B k_max floats, ``policy_work``): u row i's
position j at ``i k + j``, v's at ``B k + i k + j``, the protocol path's layout.
"""

from __future__ import annotations

import numpy as np

from sim.acceptance.base import draw_fixed
from sim.acceptance.model import draw_cells, quantile_cell
from sim.compiled import pcg64
from sim.compiled.jit import inlined, prefetch
from sim.compiled.layout import (
    A_PARAMETRIC, E_ACCEPTANCE, E_COLUMNS, E_DECAYS, E_DRAWN, G_HI, G_LO, G_NEXT_HI, G_NEXT_LO,
    G_ROW_ADD_HI, G_ROW_ADD_LO, G_ROW_MUL_HI, G_ROW_MUL_LO, G_STEP_ADD_HI, G_STEP_ADD_LO,
    G_STEP_MUL_HI, G_STEP_MUL_LO, GEN_ROWS)
from sim.core.scheduler import SF_KEY


def stream_array(rng: np.random.Generator, k_max: int, n_slots: int) -> np.ndarray:
    """The loop's ``gen`` (``sim.compiled.layout``) for ``rng`` at its present state, rows of
    ``k_max`` uniforms, batches of up to ``n_slots``. ``rng`` must be numpy's PCG64 (what
    ``numpy.random.default_rng`` makes, and every run uses)."""
    bit = rng.bit_generator
    if type(bit) is not np.random.PCG64:
        raise ValueError("the compiled loop computes numpy's PCG64 stream "
                         f"(numpy.random.default_rng); this run's generator is "
                         f"{type(bit).__name__}: use engine_path='protocol'")
    state = bit.state["state"]
    gen = np.zeros(GEN_ROWS + 4 * n_slots, dtype=np.int64)
    gen[G_HI], gen[G_LO] = pcg64.split(state["state"])
    gen[G_STEP_MUL_HI], gen[G_STEP_MUL_LO] = pcg64.split(pcg64.MULTIPLIER)
    gen[G_STEP_ADD_HI], gen[G_STEP_ADD_LO] = pcg64.split(state["inc"])
    row_mul, row_add = pcg64.jump(max(k_max, 1), state["inc"])
    gen[G_ROW_MUL_HI], gen[G_ROW_MUL_LO] = pcg64.split(row_mul)
    gen[G_ROW_ADD_HI], gen[G_ROW_ADD_LO] = pcg64.split(row_add)
    return gen


def sync_generator(gen: np.ndarray, rng: np.random.Generator) -> None:
    """Set ``rng`` to the stream's position in ``gen`` (the uniforms the loop took)."""
    bit = rng.bit_generator
    state = bit.state
    state["state"]["state"] = pcg64.join(gen[G_HI], gen[G_LO])
    bit.state = state


@inlined
def open_block(ei, gen, b, k):
    """The iteration's block at the stream's position for a batch of ``b``: each row's cursor
    at the state before its first uniform, no position computed yet, and the state past the
    block (``G_NEXT``) for ``draw``."""
    rows = 2 * b if ei[E_ACCEPTANCE] == A_PARAMETRIC else b
    mul_hi, mul_lo = gen[G_ROW_MUL_HI], gen[G_ROW_MUL_LO]
    add_hi, add_lo = gen[G_ROW_ADD_HI], gen[G_ROW_ADD_LO]
    hi, lo = gen[G_HI], gen[G_LO]
    for r in range(rows):
        gen[GEN_ROWS + 2 * r] = hi
        gen[GEN_ROWS + 2 * r + 1] = lo
        hi, lo = pcg64.lcg128(hi, lo, mul_hi, mul_lo, add_hi, add_lo)
    gen[G_NEXT_HI] = hi
    gen[G_NEXT_LO] = lo
    ei[E_COLUMNS] = 0


@inlined
def columns(ei, gen, uv, b, k, stop):
    """Every row's positions from ``E_COLUMNS`` up to ``stop - 1`` into ``uv``."""
    first = ei[E_COLUMNS]
    if stop <= first:
        return
    rows = 2 * b if ei[E_ACCEPTANCE] == A_PARAMETRIC else b
    mul_hi, mul_lo = gen[G_STEP_MUL_HI], gen[G_STEP_MUL_LO]
    add_hi, add_lo = gen[G_STEP_ADD_HI], gen[G_STEP_ADD_LO]
    for r in range(rows):
        hi, lo = gen[GEN_ROWS + 2 * r], gen[GEN_ROWS + 2 * r + 1]
        for j in range(first, stop):
            hi, lo = pcg64.lcg128(hi, lo, mul_hi, mul_lo, add_hi, add_lo)
            uv[r * k + j] = pcg64.unit_double(hi, lo)
        gen[GEN_ROWS + 2 * r] = hi
        gen[GEN_ROWS + 2 * r + 1] = lo
    ei[E_COLUMNS] = stop


@inlined
def draw(ei, gen, uv, sf, slots, b, k, cells, decay, conf, accept, keys, every):
    """Take the iteration's block (the executor's ``draw_with_keys``): the stream moves past
    it; with ``every`` compute every position now (the oracle reads them all), else
    ``draw_positions`` computes a position when a step drafts it."""
    for i in range(b):
        keys[i] = sf[SF_KEY, slots[i]]
    gen[G_HI] = gen[G_NEXT_HI]
    gen[G_LO] = gen[G_NEXT_LO]
    ei[E_DRAWN] += (2 * b * k if ei[E_ACCEPTANCE] == A_PARAMETRIC else b * k)
    if every:
        draw_positions(ei, gen, uv, b, k, cells, decay, conf, accept, keys, 0, k)


@inlined
def draw_positions(ei, gen, uv, b, k, cells, decay, conf, accept, keys, first, stop):
    """Positions ``first..stop-1`` of the block ``draw`` took."""
    columns(ei, gen, uv, b, k, stop)
    size = b * k
    if ei[E_ACCEPTANCE] == A_PARAMETRIC:
        draw_cells(uv[:size], uv[size:2 * size], keys, b, k, cells, decay, ei[E_DECAYS] != 0,
                   conf, accept, first, stop)
    else:
        draw_fixed(uv[:size], keys, b, k, conf, accept, first, stop)


@inlined
def prefetch_position(ei, gen, uv, keys, b, k, cells, j):
    """A hint, no effect on results: the cache lines of the quantile cells that position
    ``j`` of the open block will read (``draw_positions``; its uniforms are computed now),
    asked for while the policy decides whether to draft it. The table (2 MB) does not stay
    in the core's caches, and a step's draws otherwise wait on each cell in turn."""
    if ei[E_ACCEPTANCE] == A_PARAMETRIC:
        columns(ei, gen, uv, b, k, j + 1)
        for i in range(b):
            prefetch(cells, quantile_cell(uv[i * k + j], keys[i]))
