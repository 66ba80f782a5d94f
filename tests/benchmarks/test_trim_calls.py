"""benchmarks/trim_calls.py: a short real run's trim selections captured, then replayed and
checked against a candidate."""

from __future__ import annotations

import sys

import numpy as np
import trim_calls as bench

_CANDIDATE = '''
import math
from sim.policies.trim_selection import lowest_tokens as project

def lowest_tokens(cum, drafted, steps, batch, drop, vals, rows, tree_v, tree_t, tree_i, limit):
    """Never stops early: a candidate whose returns differ from the project's."""
    return project(cum, drafted, steps, batch, drop, vals, rows, tree_v, tree_t, tree_i,
                   math.inf)
'''


def test_capture_then_replay_checks_a_candidate(tmp_path, capsys, monkeypatch):
    calls = tmp_path / "calls.npz"
    assert bench.main(["capture", "--limit", "300", "--out", str(calls)]) == 0
    out = capsys.readouterr().out
    assert "calls; drop mean" in out and "rejected" in out
    data = np.load(calls)
    n = data["meta"].shape[0]
    assert n > 50 and data["cum_at"][-1] == data["cum"].shape[0]
    assert np.all((data["meta"][:, 2] >= 1) & (data["meta"][:, 2] <= 32))  # the sizes: 32 apart
    (tmp_path / "never_early.py").write_text(_CANDIDATE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert bench.main(["replay", "--calls", str(calls), "--repeat", "1",
                       "--module", "never_early"]) == 0
    out = capsys.readouterr().out
    early = int(out.split("returned -1 (rejected early) ")[1].split()[0])
    assert 0 < early < n  # the project's selection stops early on some calls, not all
    assert "never_early: DIFFERENT returns and tokens" in out
    assert "never_early" in sys.modules
