"""benchmarks/replay_azure_conv.py: the rounds' paired ratios, and a short real replay whose
policies run round by round."""

from __future__ import annotations

import replay_azure_conv as bench


def test_round_ratios_pair_each_round_with_the_same_rounds_baseline():
    runs = [(3.0, 0, 0, {}), (1.5, 0, 0, {}), (4.0, 0, 0, {})]
    baseline = [(2.0, 0, 0, {}), (1.0, 0, 0, {}), (1.0, 0, 0, {})]
    assert bench.round_ratios(runs, baseline) == [1.5, 1.5, 4.0]


def test_a_short_replay_prints_both_ratios(capsys, monkeypatch):
    order = []
    replay = bench._replay

    def recorded(tree, policy, limit, env=None):
        order.append(policy)
        return replay(tree, policy, limit, env)

    monkeypatch.setattr(bench, "_replay", recorded)
    assert bench.main(["--policy", "nospec", "--policy", "adaspec:8", "--limit", "30",
                       "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    # warm-up (one run each), then two rounds of both policies
    assert order == ["nospec", "adaspec:8"] * 3
    assert "of the fastest runs; median of the 2 rounds' ratios" in out
