"""Sweep figures from a hand-made tidy table."""

from __future__ import annotations

import pandas as pd

from sim.plots.sweep_plots import write_sweep_plots


def _table():
    rows = []
    for trace in ("a.csv", "b.csv"):
        for slo in (1.0, 2.0):
            for policy, factor in (("nospec", 1.0), ("static:3", 0.8), ("adaspec:8", 0.7)):
                for rate in (1.0, 2.0, 4.0):
                    rows.append({"key": f"{trace}{slo}{policy}{rate}", "trace": trace,
                                 "policy": policy, "seed": 0, "rate": rate, "rate_scale": rate,
                                 "arrivals": "trace", "slo_scale": slo, "status": "ok",
                                 "slo_attainment": min(1.0, slo / (rate * factor)),
                                 "e2e_s_mean": rate * factor, "tpot_s_mean": 0.02 * factor,
                                 "workload_offered_rate_req_per_s": 2 * rate})
    return pd.DataFrame(rows)


def test_sweep_plots_write_png_and_svg(tmp_path):
    paths = write_sweep_plots(tmp_path, _table(), ["nospec"], 0.9, header={"schema_version": 1})
    assert sorted(p.name for p in paths) == sorted(
        f"{s}.{e}" for s in ("attainment_vs_rate", "attainment_vs_slo_scale", "speedup")
        for e in ("png", "svg"))
    for path in paths:
        assert path.stat().st_size > 2000


def test_no_plots_without_finished_points(tmp_path):
    assert write_sweep_plots(tmp_path, _table().assign(status="error"), ["nospec"]) == []


def test_seed_spread_is_shaded_and_named(tmp_path):
    from sim.plots.sweep_plots import plot_attainment_vs_rate

    one = _table()
    two = pd.concat([one, one.assign(seed=1, slo_attainment=one["slo_attainment"] * 0.9)],
                    ignore_index=True)
    shaded = plot_attainment_vs_rate(two)
    plain = plot_attainment_vs_rate(one)
    assert sum(len(ax.collections) for ax in shaded.axes) > 0
    assert sum(len(ax.collections) for ax in plain.axes) == 0
    assert "mean of 2 seeds" in shaded._suptitle.get_text()
    assert "seeds" not in plain._suptitle.get_text()
