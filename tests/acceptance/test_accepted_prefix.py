"""``accepted_prefix`` (the leading run of accepted draft tokens, cut at the verify length),
interpreted and compiled: hand-computed rows and random ones against a plain loop."""

from __future__ import annotations

import numpy as np

from sim.acceptance.base import accepted_prefix, accepted_prefix_into
from sim.compiled.jit import compiled

ROWS = np.array([[1, 1, 0, 1],   # stops at the first rejection: 2
                 [1, 1, 1, 1],   # all accepted: the verify length (3), then k (4)
                 [0, 1, 1, 1],   # rejected first: 0
                 [1, 0, 1, 1],
                 [1, 1, 1, 0]], dtype=bool)


def _both(accept, verify):
    out = np.full(accept.shape[0], -7, dtype=np.int64)
    compiled(accepted_prefix_into)(accept, np.asarray(verify, dtype=np.int64),
                                   accept.shape[0], out)
    plain = accepted_prefix(accept, np.asarray(verify))
    assert plain.tolist() == out.tolist()
    return out.tolist()


def test_hand_computed_prefixes():
    assert _both(ROWS, [4, 3, 4, 4, 4]) == [2, 3, 0, 1, 3]
    assert _both(ROWS, [9, 9, 9, 9, 9]) == [2, 4, 0, 1, 3]  # past k: k caps it
    assert _both(ROWS, [1, 0, 0, -1, 2]) == [1, 0, 0, 0, 2]  # 0 and negative: nothing


def test_only_the_first_batch_rows_are_written():
    out = np.full(5, -7, dtype=np.int64)
    compiled(accepted_prefix_into)(ROWS, np.full(5, 4, dtype=np.int64), 2, out)
    assert out.tolist() == [2, 4, -7, -7, -7]


def test_random_rows_match_a_plain_loop():
    rng = np.random.default_rng(3)
    accept = rng.random((300, 8)) < 0.7
    verify = rng.integers(-1, 11, 300)
    want = []
    for row, cap in zip(accept, verify):
        j = 0
        while j < min(cap, 8) and row[j]:
            j += 1
        want.append(j)
    assert _both(accept, verify) == want
