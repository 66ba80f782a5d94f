"""sim.compiled.jit: what numba is set up with."""

from __future__ import annotations

import pytest


def test_scipy_linalg_is_blocked_only_while_numba_sets_up():
    """``_WithoutScipyLinalg`` refuses scipy.linalg inside the block, and nothing after it."""
    import importlib
    import sys

    from sim.compiled.jit import _WithoutScipyLinalg

    saved = {k: v for k, v in sys.modules.items() if k.startswith("scipy.linalg")}
    for name in saved:
        del sys.modules[name]
    try:
        with _WithoutScipyLinalg():
            with pytest.raises(ImportError):
                importlib.import_module("scipy.linalg.cython_blas")
        assert importlib.import_module("scipy.linalg").__name__ == "scipy.linalg"
        assert not any(isinstance(f, _WithoutScipyLinalg) for f in sys.meta_path)
    finally:
        sys.modules.update(saved)


def test_an_inlined_rule_is_the_same_function_and_compiled_callers_get_its_result():
    """``@inlined`` leaves the function as it is (Python callers call it), registers it
    as a jitable, and a compiled caller computes what the interpreted one does."""
    import numpy as np

    from sim.compiled import jit

    def weight(a, i):
        return 0.5 * a[i] + i

    marked = jit.inlined(weight)

    def total(a):
        s = 0.0
        for i in range(a.shape[0]):
            s += weight(a, i)
        return s

    assert marked is weight and weight in jit._INLINED and weight in jit._JITABLE
    values = np.array([0.1, 0.7, 3.0])
    assert weight(values, 2) == 3.5
    jit.jitable(total)
    assert jit.compiled(total)(values) == total(values) == 0.05 + 1.35 + 3.5
