"""sim.compiled.pcg64: numpy's PCG64 stream and its random() doubles, bit for bit, stepped and
jumped, in Python and compiled."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.compiled import pcg64


def _start(seed: int) -> tuple[int, int]:
    state = np.random.default_rng(seed).bit_generator.state["state"]
    return state["state"], state["inc"]


def _python_stream(state: int, inc: int, n: int) -> list[float]:
    hi, lo = pcg64.split(state)
    m_hi, m_lo = pcg64.split(pcg64.MULTIPLIER)
    a_hi, a_lo = pcg64.split(inc)
    out = []
    for _ in range(n):
        hi, lo = pcg64.lcg128(hi, lo, m_hi, m_lo, a_hi, a_lo)
        out.append(pcg64.unit_double(hi, lo))
    return out


def test_the_first_draws_of_seed_42_by_hand():
    """numpy's default_rng(42).random(3) starts 0.7739560485559633, 0.4388784397520523,
    0.8585979199113825; the module gives the same doubles from the state numpy reports."""
    state, inc = _start(42)
    assert _python_stream(state, inc, 3) == [0.7739560485559633, 0.4388784397520523,
                                             0.8585979199113825]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**63), skip=st.integers(0, 40))
def test_python_steps_equal_numpys_random(seed, skip):
    rng = np.random.default_rng(seed)
    rng.random(skip)  # anywhere in the stream
    state = rng.bit_generator.state["state"]
    expected = rng.random(20).tolist()
    assert _python_stream(state["state"], state["inc"], 20) == expected


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**63), steps=st.integers(0, 300))
def test_a_jump_is_that_many_steps(seed, steps):
    state, inc = _start(seed)
    mul, add = pcg64.jump(steps, inc)
    jumped = (state * mul + add) % (1 << 128)
    rng = np.random.default_rng(seed)
    rng.bit_generator.advance(steps)  # numpy's own jump
    assert jumped == rng.bit_generator.state["state"]["state"]
    hi, lo = pcg64.split(state)
    assert pcg64.join(*pcg64.lcg128(hi, lo, *pcg64.split(mul), *pcg64.split(add))) == jumped


def test_jump_zero_is_the_identity_and_negative_jumps_are_refused():
    assert pcg64.jump(0, 12345) == (1, 0)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        pcg64.jump(-1, 1)


@settings(max_examples=50, deadline=None)
@given(value=st.integers(0, (1 << 128) - 1))
def test_split_and_join_are_inverse_int64_bit_patterns(value):
    hi, lo = pcg64.split(value)
    assert -(1 << 63) <= hi < (1 << 63) and -(1 << 63) <= lo < (1 << 63)
    assert pcg64.join(hi, lo) == value
    assert pcg64.join(np.int64(hi), np.int64(lo)) == value


def test_compiled_steps_and_jumps_equal_numpys_random():
    """The intrinsics (128-bit LLVM integers): 1,000 doubles from a compiled loop equal
    numpy's, and a compiled jump of 8 lands where 8 steps do."""
    from sim.compiled.jit import compiled, jitable

    @jitable
    def _stream(hi, lo, m_hi, m_lo, a_hi, a_lo, out):
        for n in range(out.size):
            hi, lo = pcg64.lcg128(hi, lo, m_hi, m_lo, a_hi, a_lo)
            out[n] = pcg64.unit_double(hi, lo)
        return hi, lo

    @jitable
    def _jump(hi, lo, m_hi, m_lo, a_hi, a_lo):
        return pcg64.lcg128(hi, lo, m_hi, m_lo, a_hi, a_lo)

    state, inc = _start(2026)
    args = (*pcg64.split(state), *pcg64.split(pcg64.MULTIPLIER), *pcg64.split(inc))
    out = np.empty(1000)
    end = compiled(_stream)(*args, out)
    np.testing.assert_array_equal(out, np.random.default_rng(2026).random(1000))
    rng = np.random.default_rng(2026)
    rng.random(1000)
    assert pcg64.join(*end) == rng.bit_generator.state["state"]["state"]
    mul, add = pcg64.jump(8, inc)
    after8 = compiled(_stream)(*args, np.empty(8))
    assert compiled(_jump)(*args[:2], *pcg64.split(mul), *pcg64.split(add)) == after8
