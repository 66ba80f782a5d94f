"""Numpy arrays that compute as Python numbers do, bit for bit (``ExactArray``).

The latency model's token-only terms (``PassCosts.dense_s``, ``logits_s``) are written once,
for numbers; the compiled loop's tables want them at thousands of token counts at once
(``sim.compiled.tables``), with the very bits the numbers give. The same code runs on an
``ExactArray`` of token counts (int64). Numpy's ``+ - * /``, comparisons, ``minimum`` /
``maximum``, integer ``//`` and int-to-float conversions give the IEEE results Python's
operators give on the same values; two things do not, and an ``ExactArray`` does them
Python's way:

* ``**``: numpy's float64 power is vectorised (SVML on AVX-512 machines) and differs from
  the C library's ``pow``, which Python floats use, in the last bit of about one result in
  twenty. An ``ExactArray`` raises each element as Python does (``power``): a compiled loop
  (``power_each``) whose ``**`` is a call of that same ``pow`` (numba's ``llvm.pow``, as the
  compiled loop's own attention rules), 20-30 ns an element against Python's 110; Python's
  own ``**`` element by element where that is not certain (numba without its JIT, or with
  Intel's SVML, with which LLVM may vectorise the loop with SVML's pow; an exponent that
  is not a Python float or int; a negative or NaN base, where Python raises or answers
  otherwise) and in a process that has not set numba up (``sim.compiled.jit.setup``), which
  this never does on its own: the estimator's tables are built before a run knows whether
  it runs compiled code.
* the builtin ``sum`` of floats is compensated from Python 3.12 on, and adding arrays is
  not: a sum of terms is ``total(terms)``, the builtin ``sum`` itself on numbers and per
  element on exact arrays.

What stays the caller's: the arrays hold valid (positive) counts, so that no branch of the
number path (``tokens <= 0``) is skipped, and every intermediate int64 product stays below
2**63 (Python's ints do not overflow); the tests compare the two paths bit for bit.
"""

from __future__ import annotations

import sys
from itertools import repeat
from numbers import Real

import numpy as np

from sim.compiled.jit import jitable


class ExactArray(np.ndarray):
    """An ndarray whose ``**`` is Python's, element by element (``power``); every other
    operation is numpy's, and numpy hands back ``ExactArray``s from ufuncs of one (its
    default for subclasses). Only ``exact ** number`` is supported: the rules raise their
    ratios to a power that way (``sim.latency.ops._soft_max``); ``np.power`` would bypass
    it, which the tests comparing the two paths bit for bit would show."""

    def __pow__(self, exponent):
        return power(self, exponent)

    def __rpow__(self, base):
        raise TypeError("ExactArray: only an exact array raised to a number is supported")


def exact(values) -> ExactArray:
    """``values`` (an array or sequence of numbers) as an ``ExactArray``."""
    return np.asarray(values).view(ExactArray)


def power(base: ExactArray, exponent) -> ExactArray:
    """``base ** exponent`` per element as Python floats compute it (``exponent`` a number)."""
    if not isinstance(exponent, Real) or isinstance(exponent, np.ndarray):
        raise TypeError(f"ExactArray: the exponent must be a number, got {type(exponent)}")
    values = np.asarray(base)
    if values.dtype != np.float64:
        raise TypeError(f"ExactArray: only float64 bases are raised exactly, got {values.dtype}")
    flat = np.ascontiguousarray(values).ravel()
    out = np.empty(flat.shape)
    kernel = _compiled_power() if type(exponent) in (float, int) else None
    if kernel is not None and (not flat.size or flat.min() >= 0.0):  # no NaN, no negatives
        kernel(flat, float(exponent), out)  # Python's float ** int is float ** float(int)
    else:
        out[:] = list(map(pow, flat.tolist(), repeat(exponent)))
    return out.reshape(values.shape).view(ExactArray)


@jitable
def power_each(values, exponent, out):
    """``out[i] = values[i] ** exponent`` (float64 arrays, a float64 exponent): compiled,
    each ``**`` is one call of the C library's ``pow``, as Python's float ``**`` makes for
    finite positive bases (and 0.0, and 1.0, where both give 0.0 and 1.0)."""
    for i in range(values.shape[0]):
        v = values[i]
        out[i] = 1.0 if v == 1.0 else v ** exponent  # Python's 1.0 ** y, without pow


_KERNEL: list = []


def _compiled_power():
    """The compiled ``power_each``, or None where its ``**`` might not be the C library's
    ``pow`` call by call (module docstring; decided once per process), and None while numba
    is not set up (``sim.compiled.jit.is_set_up``): a process that runs no compiled code (a
    protocol-path run building its estimator's tables) never imports numba for this."""
    if not _KERNEL:
        from sim.compiled.jit import compiled, is_set_up
        if not is_set_up():
            return None
        import numba
        exact_calls = not numba.config.DISABLE_JIT and not numba.config.USING_SVML
        _KERNEL.append(compiled(power_each) if exact_calls else None)
    return _KERNEL[0]


def total(terms):
    """``sum(terms)``: the builtin on numbers; on exact arrays what the builtin gives per
    element, as an ``ExactArray``: through Python 3.11 it adds floats left to right from
    the int 0, which numpy's ``+`` does term by term; from 3.12 on it compensates, so it is
    called per element (``sum_per_element``)."""
    if not any(isinstance(t, ExactArray) for t in terms):
        return sum(terms)
    if sys.version_info < (3, 12):
        out = 0
        for t in terms:
            out = out + t
        return out
    return sum_per_element(terms)


def sum_per_element(terms) -> ExactArray:
    """The builtin ``sum`` of the terms' elements at each position (numbers and arrays of
    one shape; slow: a Python call per element)."""
    shape = np.broadcast_shapes(*(np.shape(t) for t in terms))
    columns = zip(*(np.broadcast_to(np.asarray(t), shape).ravel().tolist() for t in terms))
    return exact(np.array([sum(c) for c in columns], dtype=np.float64).reshape(shape))
