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
