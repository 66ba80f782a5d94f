"""The reproduced summation orders of ``sim.policies.goodput``: ``ddot_ones`` (OpenBLAS's ddot
of a vector with ones on x86-64) against the kernel's order written out with its accumulator
arrays, interpreted and compiled."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from sim.compiled.jit import compiled
from sim.policies.goodput import ddot_ones


def kernel_order(x: np.ndarray) -> float:
    """The AVX-512 kernel's order as OpenBLAS writes it: 4 x 8 accumulators over 32-blocks,
    folded to 4 x 4 (lane + lane 4), on over 16-blocks, the lanes reduced q by q, then the
    tail one by one."""
    n = x.shape[0]
    n1 = n & -16
    dot = 0.0
    if n1:
        n32 = n1 & -32
        acc = np.zeros((4, 8))
        for i in range(0, n32, 32):
            for q in range(4):
                for lane in range(8):
                    acc[q, lane] = x[i + 8 * q + lane] + acc[q, lane]
        acc4 = acc[:, :4] + acc[:, 4:]
        for i in range(n32, n1, 16):
            for q in range(4):
                for lane in range(4):
                    acc4[q, lane] = x[i + 4 * q + lane] + acc4[q, lane]
        v = [((acc4[0, j] + acc4[1, j]) + acc4[2, j]) + acc4[3, j] for j in range(4)]
        dot = (v[0] + v[2]) + (v[1] + v[3])
    for i in range(n1, n):
        dot = dot + x[i]
    return 0.0 + dot


def _vectors():
    rng = np.random.default_rng(7)
    for n in (0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 100, 129):
        # magnitudes spread over 20 decades: any change of order changes the sum
        yield n, rng.random(n) * 10.0 ** rng.integers(-10, 10, n)


@pytest.mark.parametrize("n, x", list(_vectors()))
def test_ddot_ones_sums_in_the_kernels_order(n, x):
    want = kernel_order(x)
    assert ddot_ones(x, 0, n, 1, True) == want
    assert compiled(ddot_ones)(x, 0, n, 1, True) == want
    # a strided view of the same values (lo, stride) in the contiguous kernel's order
    spread = np.zeros(3 * n + 2)
    spread[2::3] = x
    assert compiled(ddot_ones)(spread, 2, n, 3, True) == want


def test_ddot_ones_matches_numpy_on_x86_64():
    if platform.machine() != "x86_64":
        pytest.skip("the reproduced kernel is OpenBLAS's x86-64 one")
    for n, x in _vectors():
        if float(x @ np.ones(n)) != kernel_order(x):
            pytest.skip("numpy's BLAS here sums in another order")
        assert compiled(ddot_ones)(x, 0, n, 1, True) == float(x @ np.ones(n))


def test_hand_computed_order():
    # 32 values: lane 0 of q = 0 gets 1e16 and then 1.0 (absorbed: 1e16 + 1 == 1e16), lane 0
    # of q = 1 gets -1e16; summed q by q the lane is 0, the 1.0 lost
    x = np.zeros(32)
    x[0], x[32 - 32 + 8] = 1e16, -1e16
    x[4] = 1.0  # the (q = 0, lane 4) accumulator, folded into lane 0 before q = 1 is added
    assert kernel_order(x) == 0.0
    assert compiled(ddot_ones)(x, 0, 32, 1, True) == 0.0
    assert float(np.sum(x)) == 1.0  # numpy's pairwise sum keeps it: the orders differ
