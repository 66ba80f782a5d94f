"""The run generator's uniforms computed where they are used: numpy's PCG64 (the bit generator
of ``numpy.random.default_rng``, which every run uses) and its ``random()`` doubles, one
step at a time or jumped ahead, bit for bit.

PCG64 is a 128-bit linear congruential generator: a draw first steps the state,
``s <- s * MULTIPLIER + inc (mod 2**128)``, then outputs 64 bits of the new state (XSL-RR:
the high and low halves xored, rotated right by the top 6 bits); ``random()`` keeps the top
53 of them, times 2**-53. Stepping ``m`` times is one step of another LCG,
``s <- s * A_m + C_m`` with ``A_m = MULTIPLIER**m`` and ``C_m = inc * (MULTIPLIER**(m-1) + ...
+ 1)`` (``jump``), so the compiled loop can start each of an iteration's rows of uniforms
from the one before without computing the uniforms in between that no draft step reads
(``sim.compiled.draws``).

A state is two int64 (its high and low halves as bit patterns) so that compiled code keeps
it in integer arrays; ``lcg128`` and ``unit_double`` work on those halves. In Python they
are Python integer arithmetic; in compiled code (after ``register``) 128-bit LLVM integer
instructions (numba has no 128-bit type): a multiplication of two 64-bit halves into 128
bits is one machine instruction there and about twenty without it.
"""

from __future__ import annotations

MULTIPLIER = 0x2360ED051FC65DA44385DF649FCCF645  # PCG's default 128-bit multiplier
_MASK64 = (1 << 64) - 1
_MASK128 = (1 << 128) - 1
_TWO_POW_MINUS_53 = 1.0 / 9007199254740992.0


def _signed(value: int) -> int:
    """The int64 with the bit pattern of the 64-bit unsigned ``value``."""
    return value - (1 << 64) if value >> 63 else value


def split(value: int) -> tuple[int, int]:
    """A 128-bit unsigned integer as (high, low) int64 bit patterns."""
    return _signed((value >> 64) & _MASK64), _signed(value & _MASK64)


def join(high: int, low: int) -> int:
    """``split``'s inverse."""
    return ((int(high) & _MASK64) << 64) | (int(low) & _MASK64)


def jump(steps: int, inc: int) -> tuple[int, int]:
    """(A, C) of ``steps`` steps at once: the state after them is ``s * A + C (mod 2**128)``
    (``steps`` >= 0; 0 gives (1, 0))."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    mul, add = 1, 0
    step_mul, step_add = MULTIPLIER, inc & _MASK128
    while steps:  # square-and-multiply on the affine map s -> s * m + a
        if steps & 1:
            mul, add = (mul * step_mul) & _MASK128, (add * step_mul + step_add) & _MASK128
        step_mul, step_add = (step_mul * step_mul) & _MASK128, \
            (step_add * (step_mul + 1)) & _MASK128
        steps >>= 1
    return mul, add


def lcg128(s_hi, s_lo, m_hi, m_lo, a_hi, a_lo):
    """``s * m + a (mod 2**128)`` on (high, low) int64 halves; returns (high, low)."""
    return split((join(s_hi, s_lo) * join(m_hi, m_lo) + join(a_hi, a_lo)) & _MASK128)


def unit_double(s_hi, s_lo) -> float:
    """The ``random()`` double PCG64 outputs for the (already stepped) state (high, low)."""
    high, low = int(s_hi) & _MASK64, int(s_lo) & _MASK64
    x = high ^ low
    rot = high >> 58
    out = ((x >> rot) | (x << ((64 - rot) & 63))) & _MASK64
    return (out >> 11) * _TWO_POW_MINUS_53


def register() -> None:
    """``lcg128`` and ``unit_double`` for compiled callers: intrinsics of 128-bit LLVM
    integer instructions (called by ``sim.compiled.jit.setup``)."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic, overload

    i64, i128 = ir.IntType(64), ir.IntType(128)

    def wide(builder, high, low):
        return builder.or_(builder.shl(builder.zext(high, i128), i128(64)),
                           builder.zext(low, i128))

    @intrinsic
    def _lcg128(typingctx, s_hi, s_lo, m_hi, m_lo, a_hi, a_lo):
        def codegen(context, builder, signature, args):
            s = wide(builder, args[0], args[1])
            m = wide(builder, args[2], args[3])
            a = wide(builder, args[4], args[5])
            r = builder.add(builder.mul(s, m), a)
            high = builder.trunc(builder.lshr(r, i128(64)), i64)
            return context.make_tuple(builder, signature.return_type,
                                      (high, builder.trunc(r, i64)))
        return types.UniTuple(types.int64, 2)(*(types.int64,) * 6), codegen

    @intrinsic
    def _unit_double(typingctx, s_hi, s_lo):
        def codegen(context, builder, signature, args):
            high, low = args
            x = builder.xor(high, low)
            rot = builder.lshr(high, i64(58))
            fshr = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(i64, [i64, i64, i64]), "llvm.fshr.i64")
            out = builder.call(fshr, [x, x, rot])  # rotate right by rot
            top = builder.lshr(out, i64(11))
            value = builder.uitofp(top, ir.DoubleType())
            return builder.fmul(value, ir.Constant(ir.DoubleType(), _TWO_POW_MINUS_53))
        return types.float64(types.int64, types.int64), codegen

    @overload(lcg128)
    def _lcg128_overload(s_hi, s_lo, m_hi, m_lo, a_hi, a_lo):
        if all(isinstance(t, types.Integer) for t in (s_hi, s_lo, m_hi, m_lo, a_hi, a_lo)):
            return lambda s_hi, s_lo, m_hi, m_lo, a_hi, a_lo: _lcg128(
                s_hi, s_lo, m_hi, m_lo, a_hi, a_lo)
        return None

    @overload(unit_double)
    def _unit_double_overload(s_hi, s_lo):
        if isinstance(s_hi, types.Integer) and isinstance(s_lo, types.Integer):
            return lambda s_hi, s_lo: _unit_double(s_hi, s_lo)
        return None
