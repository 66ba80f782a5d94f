"""Goodput-rate, attainment curves and speedups on hand-made tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from sim.sweep.derived import (attainment_vs_rate, attainment_vs_slo_scale, goodput_rate,
                               goodput_rates, speedups)


def test_goodput_interpolates_at_the_first_crossing():
    rate, bound, fraction = goodput_rate([1, 2, 4], [1.0, 0.95, 0.75])
    assert bound == "interpolated" and fraction == pytest.approx(0.25)
    assert rate == pytest.approx(2 + 0.25 * 2)
    assert goodput_rate([1, 2, 4], [1.0, 0.95, 0.75], interpolate=False) == (2.0, "grid", 0.0)


def test_goodput_bounds_outside_the_grid_and_ignores_recovery():
    assert goodput_rate([1, 2, 4], [0.99, 0.95, 0.91])[:2] == (4.0, "at_least")
    rate, bound, _ = goodput_rate([1, 2, 4], [0.5, 0.95, 0.99])
    assert math.isnan(rate) and bound == "below_grid"
    assert goodput_rate([1, 2, 4, 8], [1.0, 0.8, 0.99, 0.5])[0] == pytest.approx(1.5)
    assert goodput_rate([1, 2], [0.9, 0.9])[:2] == (2.0, "at_least")


def _table(rows):
    base = {"key": "k", "trace": "t.csv", "trace_sha256": "x", "seed": 0, "rate_scale": 1.0,
            "arrivals": "trace", "arrival_rate_req_per_s": None, "slo_scale": 1.0,
            "gpu": "A100-80G", "ttft_slo_s": 2.0, "tpot_slo_s": 0.04}
    frame = pd.DataFrame([dict(base, **row) for row in rows])
    frame["rate"] = frame["rate_scale"]
    inputs = [c for c in frame.columns if c not in ("slo_attainment", "e2e_s_mean",
                                                    "tpot_s_mean", "workload_offered_rate_req_per_s")]
    frame["status"] = "ok"
    metrics = ["slo_attainment", "e2e_s_mean", "tpot_s_mean", "workload_offered_rate_req_per_s"]
    return frame[inputs + ["status"] + metrics]


def _points(policy, attainments, e2e, seed=0, slo_scale=1.0):
    return [{"policy": policy, "rate_scale": r, "seed": seed, "slo_scale": slo_scale,
             "slo_attainment": a, "e2e_s_mean": e, "tpot_s_mean": e / 100,
             "workload_offered_rate_req_per_s": 3.0 * r}
            for r, a, e in zip((1.0, 2.0, 4.0), attainments, e2e)]


def test_curves_average_seeds_and_goodput_reports_offered_rate():
    table = _table(_points("nospec", [1.0, 0.8, 0.4], [2, 4, 8])
                   + _points("nospec", [1.0, 1.0, 0.6], [2, 4, 8], seed=1)
                   + _points("adaspec:8", [1.0, 1.0, 0.95], [1, 2, 4]))
    curves = attainment_vs_rate(table)
    nospec = curves[curves["policy"] == "nospec"]
    assert list(nospec["slo_attainment"]) == pytest.approx([1.0, 0.9, 0.5])
    assert list(nospec["seeds"]) == [2, 2, 2]
    assert list(nospec["slo_attainment_seed_min"]) == pytest.approx([1.0, 0.8, 0.4])
    assert list(nospec["slo_attainment_seed_max"]) == pytest.approx([1.0, 1.0, 0.6])
    one_seed = curves[curves["policy"] == "adaspec:8"]
    assert list(one_seed["slo_attainment_seed_min"]) == list(one_seed["slo_attainment"])
    goodput = goodput_rates(table).set_index("policy")
    assert goodput.loc["nospec", "goodput_rate"] == pytest.approx(2.0)
    assert goodput.loc["nospec", "goodput_offered_req_per_s"] == pytest.approx(6.0)
    assert goodput.loc["adaspec:8", "goodput_bound"] == "at_least"
    assert goodput.loc["adaspec:8", "goodput_rate"] == 4.0


def test_speedups_are_baseline_over_policy_means():
    table = _table(_points("nospec", [1, 1, 1], [2, 4, 8]) + _points("adaspec:8", [1, 1, 1],
                                                                      [1, 2, 2]))
    frame = speedups(table, ["nospec"])
    assert list(frame["policy"]) == ["adaspec:8"] * 3 and list(frame["baseline"]) == ["nospec"] * 3
    assert list(frame["e2e_speedup"]) == pytest.approx([2.0, 2.0, 4.0])
    assert list(frame["tpot_speedup"]) == pytest.approx([2.0, 2.0, 4.0])


def test_attainment_vs_slo_scale_one_curve_per_policy_and_rate():
    table = _table(_points("nospec", [0.5, 0.4, 0.1], [2, 4, 8], slo_scale=0.5)
                   + _points("nospec", [1.0, 0.9, 0.5], [2, 4, 8], slo_scale=2.0))
    curves = attainment_vs_slo_scale(table)
    first = curves[curves["rate"] == 1.0]
    assert list(first["slo_scale"]) == [0.5, 2.0] and list(first["slo_attainment"]) == [0.5, 1.0]
    failed = table.assign(status="error")
    assert attainment_vs_rate(failed).empty and goodput_rates(failed).empty
