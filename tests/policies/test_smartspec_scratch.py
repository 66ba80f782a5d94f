"""``smartspec_begin`` keeps its geometric sums in the tail of its ``row`` scratch: with a
scratch of exactly batch + K + 1, the per-request part and the sums do not overlap (hand
computed: alpha 0.5, K 2, one request capped at 0 steps)."""

from __future__ import annotations

import numpy as np

from sim.compiled.jit import compiled
from sim.policies.smartspec import SmartSpecPolicy, smartspec_begin


def test_geometric_sums_live_in_the_scratch_tail():
    for fn in (smartspec_begin, compiled(smartspec_begin)):
        policy = SmartSpecPolicy(k=2, alpha0=0.5)
        goodputs = np.zeros(3)
        row = np.full(2 + 3, np.nan)
        # geo = [1, 1.5, 1.75]; request 0 may draft 2, request 1 none: expected tokens
        # geo[min(k, 2)] + geo[0] = 2, 2.5, 2.75 over 1 s each
        best = fn(policy._pi, policy._pf, 2, np.array([2, 0], dtype=np.int64), False,
                  np.ones(3), np.zeros(3), goodputs, row)
        assert goodputs.tolist() == [2.0, 2.5, 2.75]
        assert best == 2
        assert row[2:].tolist() == [1.0, 1.5, 1.75]
