"""``sim.compiled.stream``: the run generator's uniforms computed where the loop reads them
must be numpy's PCG64 stream bit for bit (blocks, columns, jumps), interpreted and compiled,
and the generator must end where ``rng.random`` would have left it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.compiled import layout as L
from sim.compiled.jit import compiled, jitable
from sim.compiled.stream import (MULTIPLIER, fill_columns, jump_table, load_stream,
                                 muladd128, open_block, pcg_uniform, store_stream, take_block)


@jitable
def play_blocks(ei, jumps, uniforms, plan, out):
    """Play ``plan``'s iterations as the loop does: open a (b, k) block, fill columns up to
    ``stop`` in two calls (the first, u of column 0, as a prefetch), take it when ``stop`` > 0;
    each block's filled uniforms go to ``out`` row after row (u then v)."""
    at = 0
    for row in range(plan.shape[0]):
        b, k, stop, two = plan[row, 0], plan[row, 1], plan[row, 2], plan[row, 3] != 0
        open_block(ei, jumps, b, two)
        if stop > 0:
            fill_columns(ei, jumps, uniforms, b, k, 1, False)  # a prefetch: u only
            fill_columns(ei, jumps, uniforms, b, k, stop, two)
            take_block(ei)
            for i in range(b):
                for j in range(stop):
                    out[at] = uniforms[i * k + j]
                    at += 1
                    if two:
                        out[at] = uniforms[b * k + i * k + j]
                        at += 1
    return at


def _expected(rng: np.random.Generator, plan: np.ndarray) -> list[float]:
    """What ``play_blocks`` must give: the protocol path's ``rng.random`` blocks, the
    filled positions in the same order."""
    values = []
    for b, k, stop, two in plan.tolist():
        if stop == 0:
            continue
        u = rng.random(b * k).reshape(b, k)
        v = rng.random(b * k).reshape(b, k) if two else None
        for i in range(b):
            for j in range(stop):
                values.append(u[i, j])
                if two:
                    values.append(v[i, j])
    return values


def _plan(draw_rows, k: int) -> np.ndarray:
    return np.array([[b, k, stop, two] for b, stop, two in draw_rows], dtype=np.int64)


@pytest.mark.parametrize("interpreted", [True, False])
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), k=st.integers(1, 9), warmup=st.integers(0, 70),
       rows=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 9), st.booleans()),
                     min_size=1, max_size=12))
def test_the_loops_blocks_are_numpys_stream(interpreted, seed, k, warmup, rows):
    rows = [(b, min(stop, k), two) for b, stop, two in rows]
    plan = _plan(rows, k)
    rng, reference = np.random.default_rng(seed), np.random.default_rng(seed)
    rng.beta(2.0, 3.0, size=warmup)  # the levels' draws before the loop: any position
    reference.beta(2.0, 3.0, size=warmup)
    ei = np.zeros(L.ENGINE_INTS, dtype=np.int64)
    load_stream(ei, rng)
    uniforms = np.zeros(2 * 40 * k)
    out = np.zeros(2 * 40 * k * len(rows))
    play = play_blocks if interpreted else compiled(play_blocks)
    n = play(ei, jump_table(rng, 40, k), uniforms, plan, out)
    expected = _expected(reference, plan)
    assert n == len(expected)
    assert out[:n].tobytes() == np.array(expected).tobytes()
    store_stream(ei, rng)  # the generator ends where the protocol path's does
    assert rng.random(5).tobytes() == reference.random(5).tobytes()


def test_an_opened_block_not_taken_leaves_the_stream_where_it_was():
    rng, reference = np.random.default_rng(11), np.random.default_rng(11)
    ei = np.zeros(L.ENGINE_INTS, dtype=np.int64)
    load_stream(ei, rng)
    jumps = jump_table(rng, 8, 4)
    uniforms = np.zeros(64)
    open_block(ei, jumps, 8, True)
    fill_columns(ei, jumps, uniforms, 8, 4, 2, True)  # prefetched, then the policy said k = 0
    store_stream(ei, rng)
    assert rng.random(3).tobytes() == reference.random(3).tobytes()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(0, 300), k=st.integers(1, 12),
       b=st.integers(0, 300))
def test_the_jump_table_is_pcg64s_advance(seed, n, k, b):
    """Row b of the table moves the state as ``PCG64.advance(b k)`` does."""
    b = min(b, max(n, 2))
    rng = np.random.default_rng(seed)
    ei = np.zeros(L.ENGINE_INTS, dtype=np.int64)
    load_stream(ei, rng)
    table = jump_table(rng, n, k)
    assert table.shape == (max(n, 2) + 1, 4)
    hi, lo = muladd128(table[b, 0], table[b, 1], ei[L.E_RNG_HI], ei[L.E_RNG_LO],
                       table[b, 2], table[b, 3])
    rng.bit_generator.advance(b * k)
    assert (int(hi) & (2**64 - 1)) << 64 | (int(lo) & (2**64 - 1)) == \
        rng.bit_generator.state["state"]["state"]


@jitable
def _both(a_hi, a_lo, b_hi, b_lo, c_hi, c_lo):
    hi, lo = muladd128(a_hi, a_lo, b_hi, b_lo, c_hi, c_lo)
    return hi, lo, pcg_uniform(hi, lo)


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.integers(-2**63, 2**63 - 1), min_size=6, max_size=6))
def test_the_compiled_arithmetic_is_the_interpreted(words):
    """Every bit pattern (signed words), including the top bits the rotation reads."""
    assert compiled(_both)(*words) == _both(*words)


def test_one_step_by_hand():
    """State 0 with increment 1 steps to 1: the output is 1 xor 0 rotated by 0, so the
    uniform is (1 >> 11) / 2**53 = 0; state 1 steps to M + 1."""
    assert muladd128(0, 0, 0, MULTIPLIER & (2**64 - 1), 0, 1) == (0, 1)
    assert pcg_uniform(0, 1) == 0.0
    assert pcg_uniform(0, 1 << 11) == 2.0**-53
    hi, lo = muladd128(0, 1, MULTIPLIER >> 64, MULTIPLIER & (2**64 - 1), 0, 1)
    assert (hi, lo & (2**64 - 1)) == (MULTIPLIER >> 64, (MULTIPLIER + 1) & (2**64 - 1))


def test_another_bit_generator_is_refused():
    rng = np.random.Generator(np.random.MT19937(0))
    with pytest.raises(TypeError, match="PCG64"):
        load_stream(np.zeros(L.ENGINE_INTS, dtype=np.int64), rng)


def test_a_run_on_another_generator_takes_the_protocol_path():
    from sim.compiled.run import why_protocol
    from sim.policies.registry import make_policy
    from sim.run import SimConfig, build_latency
    from sim.acceptance.base import FixedAcceptance
    latency = build_latency(SimConfig())
    rng = np.random.Generator(np.random.MT19937(0))
    reason = why_protocol(make_policy("adaspec:8"), latency, latency, FixedAcceptance(0.5),
                          "single-pass", None, rng)
    assert reason is not None and "PCG64" in reason
    assert why_protocol(make_policy("adaspec:8"), latency, latency, FixedAcceptance(0.5),
                        "single-pass", None, np.random.default_rng(0)) is None
