"""The run generator's uniforms, computed in the compiled loop where a draw reads them.

The run's ``numpy.random.Generator`` is numpy's PCG64: a 128-bit linear congruential state
``s -> s * M + inc (mod 2**128)``, each step giving one 64-bit output (XSL-RR: the state's
two halves xored, rotated right by its top six bits) and ``random()`` that output's top 53
bits times 2**-53. The protocol path draws an iteration's (B, k) block of uniforms for the
acceptance test (``u``, then ``v`` for the parametric model) with ``rng.random``; the
compiled loop reads the same numbers, but computes only the positions a step drafts (about
a third of them under adaspec:8: most rows stop before ``k``). Position ``i k + j`` of a
block that starts at stream offset ``a`` is the output of the state ``a + i k + j + 1``
steps after the stream's start, and d steps of the LCG are one multiply-add ``s -> A s + C``
whose coefficients depend on d only (``jump_table`` holds those of B k steps, B = 0..n), so
a draft step's column of uniforms is one multiply-add per row: row to row a jump of ``k``,
column to column one step.

Before this (to 2026-12-02) the loop read the whole stream from a pool that a helper thread
filled with ``rng.random`` (30 M uniforms for the Azure hour under adaspec:8, of which 8.6 M
were read); that cost the loop as much as drawing them itself, the two threads sharing a
core's resources. The numbers, and so every table, are the same (``tests/compiled/
test_stream.py`` checks the stream against numpy's bit for bit, jumps and strides included).

The state lives in the loop's integers ``ei`` (``E_RNG_*``, each 128-bit value a pair of
int64 words holding its bits, high word first); ``load_stream`` copies the generator's state
in, ``store_stream`` hands the state after the last block a draw took back to the generator
(so the generator ends where the protocol path's would). The jumps of B k steps, B = 0..n,
are a table of the run's (``jump_table``, the int arena's ``CI_RNG_JUMPS``).
"""

from __future__ import annotations

import numpy as np

from sim.compiled.jit import inlined
from sim.compiled.layout import (E_RNG_COLS, E_RNG_HI, E_RNG_INC_HI, E_RNG_INC_LO, E_RNG_LO,
                                 E_RNG_NEXT_HI, E_RNG_NEXT_LO, E_RNG_U_HI, E_RNG_U_LO,
                                 E_RNG_V_HI, E_RNG_V_LO, E_RNG_VCOLS)

M_HI, M_LO = 2549297995355413924, 4865540595714422341  # PCG's multiplier's words (< 2**63)
MULTIPLIER = (M_HI << 64) | M_LO
_MASK64 = (1 << 64) - 1
_MASK128 = (1 << 128) - 1


def _signed(word: int) -> int:
    """A 64-bit word's bits as a signed int64 value (how ``ei`` holds it)."""
    word &= _MASK64
    return word - (1 << 64) if word >> 63 else word


def _join(hi, lo) -> int:
    return ((int(hi) & _MASK64) << 64) | (int(lo) & _MASK64)


def muladd128(a_hi, a_lo, b_hi, b_lo, c_hi, c_lo):
    """``a * b + c (mod 2**128)`` of 128-bit values given as (high, low) int64 words of their
    bits; returns (high, low). Compiled: one LLVM ``i128`` multiply and add."""
    r = (_join(a_hi, a_lo) * _join(b_hi, b_lo) + _join(c_hi, c_lo)) & _MASK128
    return _signed(r >> 64), _signed(r)


def pcg_uniform(hi, lo):
    """``random()`` of the PCG64 state (hi, lo) just stepped to: the XSL-RR output's top 53
    bits times 2**-53. Compiled: a rotate and a conversion."""
    h, x = int(hi) & _MASK64, (int(hi) ^ int(lo)) & _MASK64
    rot = h >> 58
    out = ((x >> rot) | (x << ((64 - rot) & 63))) & _MASK64
    return (out >> 11) * (1.0 / 9007199254740992.0)


def register_compiled() -> None:
    """The compiled forms of ``muladd128`` and ``pcg_uniform`` (``sim.compiled.jit.setup``)."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic, overload

    i64, i128 = ir.IntType(64), ir.IntType(128)

    def _wide(builder, hi, lo):
        return builder.or_(builder.shl(builder.zext(hi, i128), i128(64)), builder.zext(lo, i128))

    @intrinsic
    def _muladd(typingctx, a_hi, a_lo, b_hi, b_lo, c_hi, c_lo):
        def codegen(context, builder, signature, args):
            a, b, c = (_wide(builder, args[0], args[1]), _wide(builder, args[2], args[3]),
                       _wide(builder, args[4], args[5]))
            r = builder.add(builder.mul(a, b), c)
            hi = builder.trunc(builder.lshr(r, i128(64)), i64)
            return context.make_tuple(builder, signature.return_type,
                                      (hi, builder.trunc(r, i64)))
        return types.UniTuple(types.int64, 2)(*(types.int64,) * 6), codegen

    @intrinsic
    def _uniform(typingctx, hi, lo):
        def codegen(context, builder, signature, args):
            x = builder.xor(args[0], args[1])
            rot = builder.lshr(args[0], i64(58))
            fshr = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(i64, [i64, i64, i64]), "llvm.fshr.i64")
            out = builder.call(fshr, [x, x, rot])  # rotate right
            top = builder.sitofp(builder.lshr(out, i64(11)), ir.DoubleType())  # < 2**53
            return builder.fmul(top, ir.Constant(ir.DoubleType(), 1.0 / 9007199254740992.0))
        return types.float64(types.int64, types.int64), codegen

    def _ints(*args):
        return all(isinstance(a, types.Integer) for a in args)

    @overload(muladd128)
    def _muladd128(a_hi, a_lo, b_hi, b_lo, c_hi, c_lo):
        if _ints(a_hi, a_lo, b_hi, b_lo, c_hi, c_lo):
            return lambda a_hi, a_lo, b_hi, b_lo, c_hi, c_lo: _muladd(
                np.int64(a_hi), np.int64(a_lo), np.int64(b_hi), np.int64(b_lo),
                np.int64(c_hi), np.int64(c_lo))
        return None

    @overload(pcg_uniform)
    def _pcg_uniform(hi, lo):
        if _ints(hi, lo):
            return lambda hi, lo: _uniform(np.int64(hi), np.int64(lo))
        return None


# ---- an iteration's block ------------------------------------------------------------------
@inlined
def open_block(ei, jumps, b, two):
    """Set up the (B, k) block of uniforms (two of them when ``two``: ``u`` then ``v``)
    that starts at the stream's present state: its columns' first rows, and the state after
    it (``E_RNG_NEXT``, taken by ``take_block``). No uniform is consumed yet. ``jumps[b]``:
    the coefficients of a jump of B k steps (``jump_table``)."""
    hi, lo = ei[E_RNG_HI], ei[E_RNG_LO]
    inc_hi, inc_lo = ei[E_RNG_INC_HI], ei[E_RNG_INC_LO]
    a_hi, a_lo, c_hi, c_lo = jumps[b, 0], jumps[b, 1], jumps[b, 2], jumps[b, 3]
    # column 0's row 0 is the first step's output (position 0); v's starts B k later
    ei[E_RNG_U_HI], ei[E_RNG_U_LO] = muladd128(hi, lo, M_HI, M_LO, inc_hi, inc_lo)
    end_hi, end_lo = muladd128(a_hi, a_lo, hi, lo, c_hi, c_lo)
    if two:
        ei[E_RNG_V_HI], ei[E_RNG_V_LO] = muladd128(end_hi, end_lo, M_HI, M_LO, inc_hi,
                                                   inc_lo)
        end_hi, end_lo = muladd128(a_hi, a_lo, end_hi, end_lo, c_hi, c_lo)
    ei[E_RNG_NEXT_HI], ei[E_RNG_NEXT_LO] = end_hi, end_lo
    ei[E_RNG_COLS] = 0
    ei[E_RNG_VCOLS] = 0


@inlined
def take_block(ei):
    """The opened block is consumed (a draw took it): the stream moves past it."""
    ei[E_RNG_HI], ei[E_RNG_LO] = ei[E_RNG_NEXT_HI], ei[E_RNG_NEXT_LO]


@inlined
def fill_columns(ei, jumps, uniforms, b, k, stop, two):
    """Columns up to ``stop - 1`` of the opened (B, k) block's ``u`` (and ``v`` when
    ``two``) into ``uniforms`` (row-major, ``u`` then ``v``, as ``rng.random`` gives them),
    those not filled yet (``E_RNG_COLS``, ``E_RNG_VCOLS``): a prefetch needs ``u`` only."""
    for j in range(ei[E_RNG_COLS], stop):
        ei[E_RNG_U_HI], ei[E_RNG_U_LO] = _column(ei[E_RNG_U_HI], ei[E_RNG_U_LO], ei, jumps,
                                                 uniforms, 0, b, k, j)
    if stop > ei[E_RNG_COLS]:
        ei[E_RNG_COLS] = stop
    if two:
        for j in range(ei[E_RNG_VCOLS], stop):
            ei[E_RNG_V_HI], ei[E_RNG_V_LO] = _column(ei[E_RNG_V_HI], ei[E_RNG_V_LO], ei,
                                                     jumps, uniforms, b * k, b, k, j)
        if stop > ei[E_RNG_VCOLS]:
            ei[E_RNG_VCOLS] = stop


@inlined
def _column(hi, lo, ei, jumps, uniforms, base, b, k, j):
    """Column ``j`` of a block at ``uniforms[base:]`` from its row 0's state (hi, lo); row
    to row is a jump of k steps, computed as two chains (even and odd rows, each jumping
    2k: ``jumps[2]``) whose multiplies overlap. Returns the next column's row-0 state."""
    a_hi, a_lo, c_hi, c_lo = jumps[2, 0], jumps[2, 1], jumps[2, 2], jumps[2, 3]
    e_hi, e_lo = hi, lo
    o_hi, o_lo = muladd128(jumps[1, 0], jumps[1, 1], hi, lo, jumps[1, 2], jumps[1, 3])
    i = 0
    while i + 1 < b:
        uniforms[base + i * k + j] = pcg_uniform(e_hi, e_lo)
        uniforms[base + (i + 1) * k + j] = pcg_uniform(o_hi, o_lo)
        e_hi, e_lo = muladd128(a_hi, a_lo, e_hi, e_lo, c_hi, c_lo)
        o_hi, o_lo = muladd128(a_hi, a_lo, o_hi, o_lo, c_hi, c_lo)
        i += 2
    if i < b:
        uniforms[base + i * k + j] = pcg_uniform(e_hi, e_lo)
    return muladd128(hi, lo, M_HI, M_LO, ei[E_RNG_INC_HI], ei[E_RNG_INC_LO])


# ---- Python's side --------------------------------------------------------------------------
def load_stream(ei: np.ndarray, rng: np.random.Generator) -> None:
    """Copy ``rng``'s PCG64 state into ``ei``."""
    state = stream_state(rng)
    s, inc = state["state"]["state"], state["state"]["inc"]
    ei[E_RNG_HI], ei[E_RNG_LO] = _signed(s >> 64), _signed(s)
    ei[E_RNG_INC_HI], ei[E_RNG_INC_LO] = _signed(inc >> 64), _signed(inc)


def jump_table(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """(max(n, 2) + 1, 4) int64: row b holds (A_hi, A_lo, C_hi, C_lo) of a jump of b k steps of
    ``rng``'s stream (its increment fixes them; the state does not matter)."""
    inc = stream_state(rng)["state"]["inc"]
    a1, c1 = 1, 0
    for _ in range(k):  # k steps: s -> M s + inc, composed
        a1, c1 = (MULTIPLIER * a1) & _MASK128, (MULTIPLIER * c1 + inc) & _MASK128
    table = np.zeros((max(n, 2) + 1, 4), dtype=np.int64)  # row 2: ``_column``'s chains
    a, c = 1, 0
    for b in range(table.shape[0]):
        table[b] = (_signed(a >> 64), _signed(a), _signed(c >> 64), _signed(c))
        a, c = (a1 * a) & _MASK128, (a1 * c + c1) & _MASK128
    return table


def store_stream(ei: np.ndarray, rng: np.random.Generator) -> None:
    """Set ``rng``'s state to the stream's position in ``ei`` (after the last block taken)."""
    state = stream_state(rng)
    state["state"]["state"] = _join(ei[E_RNG_HI], ei[E_RNG_LO])
    rng.bit_generator.state = state


def reproduced(rng: np.random.Generator) -> bool:
    """Whether the loop reproduces ``rng``'s stream (numpy's PCG64 only)."""
    return rng.bit_generator.state.get("bit_generator") == "PCG64"


def stream_state(rng: np.random.Generator) -> dict:
    """``rng``'s bit generator state; a ``TypeError`` unless the loop reproduces its stream
    (``reproduced``)."""
    if not reproduced(rng):
        raise TypeError(f"the compiled loop reproduces numpy's PCG64 stream, not "
                        f"{type(rng.bit_generator).__name__}")
    return rng.bit_generator.state
