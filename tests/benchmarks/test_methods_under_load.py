"""benchmarks/methods_under_load.py: the runs per seed, the resumable results file with its
seed column, the seed means, the best static depth on the means, the column winner and in
how many seeds it wins, bad --seeds. The runner is replaced: no simulation runs here."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

# as `python benchmarks/X.py` has it
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import methods_under_load as mul  # noqa: E402
import seeded_runs as runs  # noqa: E402


def _row(trace, scale, method, policy, seed, attainment, tpot_ms):
    return {"trace": trace, "rate_scale": scale, "method": method, "policy": policy,
            "seed": seed, "requests": 300, "slo_attainment": attainment, "tpot_ms": tpot_ms,
            "tokens_per_step": 1.0}


def test_jobs_seed_by_seed_with_method_and_seed():
    jobs = mul.jobs_for(10, 20, 2)
    per_seed = sum(len(s) for _, s in mul.TRACES.values()) * (1 + 4 * len(mul.METHODS))
    assert len(jobs) == 2 * per_seed
    assert {j.seed for j in jobs[:per_seed]} == {0} and {j.seed for j in jobs[per_seed:]} == {1}
    assert len(set(jobs)) == len(jobs)
    pld = [j for j in jobs if j.method == "pld" and not j.policy.startswith("static:")]
    assert {j.policy for j in pld} == {"smartspec:8"}
    eagle = [j for j in jobs if j.method == "eagle" and not j.policy.startswith("static:")]
    assert {j.policy for j in eagle} == {"adaspec:8"}
    azure = [j for j in jobs if mul.trace_name(j) == "azure-conv"]
    assert {j.limit for j in azure} == {20} and {j.rate for j in azure} == {0.25, 0.5, 1.0}
    assert all(Path(j.trace).is_file() for j in jobs[:per_seed])


def test_series_means_and_spread():
    rows = [_row("conv", 1.0, "eagle", "adaspec:8", s, a, t)
            for s, a, t in ((0, 0.90, 10.0), (1, 0.80, 12.0), (2, 0.85, 14.0))]
    rows.append(_row("conv", 1.0, "eagle", "adaspec:8", 3, 0.10, 99.0))  # beyond --seeds 3
    table = mul.series(rows, 3)
    runs_ = table["conv", 1.0, "eagle", "adaspec:8"]
    assert runs_.seeds == (0, 1, 2)
    assert runs_.rank() == pytest.approx((85.0, -12.0))
    assert runs_.cell() == "85.0 (80.0..90.0) (12.0)"
    assert mul.series(rows, 1)["conv", 1.0, "eagle", "adaspec:8"].cell() == "90.0 (10.0)"


def test_best_static_is_chosen_on_the_seed_means():
    # static:2 wins seed 0 (95 vs 90) but static:4 has the higher mean (90 vs 85)
    rows = [_row("code", 2.0, "medusa", "static:2", 0, 0.95, 20.0),
            _row("code", 2.0, "medusa", "static:2", 1, 0.75, 20.0),
            _row("code", 2.0, "medusa", "static:4", 0, 0.90, 30.0),
            _row("code", 2.0, "medusa", "static:4", 1, 0.90, 30.0),
            _row("code", 2.0, "medusa", "static:1", 0, 0.85, 10.0),
            _row("code", 2.0, "medusa", "static:1", 1, 0.95, 10.0)]
    # static:1 ties static:4 on attainment (90) and wins on TPOT
    assert mul.best_static(mul.series(rows, 2))["code", 2.0, "medusa"].policy == "static:1"
    assert mul.best_static(mul.series(rows[:4], 2))["code", 2.0, "medusa"].policy == "static:4"
    assert mul.best_static(mul.series(rows[:4], 1))["code", 2.0, "medusa"].policy == "static:2"


def test_winner_on_means_and_its_seed_count():
    def series(policy, attainments, tpots):
        return mul.Series(policy, tuple(range(len(attainments))), attainments, tpots)

    column = {"draft-model": series("adaspec:8", (60.0, 58.0, 62.0), (30.0, 30.0, 30.0)),
              "eagle": series("adaspec:8", (61.0, 50.0, 55.0), (40.0, 40.0, 40.0)),
              "pld": series("smartspec:8", (60.0, 58.0, 62.0), (29.0, 31.0, 31.0))}
    # means: draft 60.0 / 30.0, eagle 55.3, pld 60.0 / 30.33: draft wins on TPOT;
    # seed 0 eagle (61), seed 1 draft (58, 30 < 31), seed 2 draft (62, 30 < 31)
    assert mul.winner(column) == ("draft-model", 2, 3)
    column["pld"] = series("smartspec:8", (60.0, 58.0), (29.0, 29.0))  # seeds 0, 1 only
    assert mul.winner(column)[2] == 2


def test_tables_bold_the_mean_winner_with_its_seed_count():
    rows = []
    for trace, (_, scales) in mul.TRACES.items():
        for s in scales:
            for seed, (good, other) in enumerate(((0.9, 0.8), (0.7, 0.8))):
                rows.append(_row(trace, s, "draft-model", "nospec", seed, 0.5, 50.0))
                for m in mul.METHODS:
                    att = good if m == "eagle" else other
                    rows += [_row(trace, s, m, p, seed, att - 0.1, 40.0) for p in mul.STATIC]
                    rows.append(_row(trace, s, m, mul.adaptive_policy(m), seed, att, 30.0))
    text = mul.tables(rows, 2)
    # eagle 80 mean, as every other method; on TPOT all tie: the first in METHODS wins
    assert "**80.0 (30.0)** 1/2" in text  # draft-model: best in seed 1 only (80 vs 70)
    assert "80.0 (70.0..90.0) (30.0)" in text and "INCOMPLETE" not in text
    readme = text.split("\n\n")[-1]
    assert readme.splitlines()[0].startswith("| method | conv x1 | conv x4 | code x2")
    assert "| nospec | 50.0 (50.0) |" in readme
    assert "INCOMPLETE" in mul.tables(rows[:-1], 2)


def test_record_appends_per_seed_and_skips_rows_already_there(tmp_path, monkeypatch):
    calls = []

    def fake_run_each(jobs, processes):
        calls.append(list(jobs))
        for job in jobs:
            yield job, runs.Outcome(0.5 + job.seed / 10, 0.02, 1.5)

    monkeypatch.setattr(mul, "run_each", fake_run_each)
    path = tmp_path / "results.csv"
    jobs = mul.jobs_for(10, 10, 2)
    mul.record(path, jobs[:3], 1)
    mul.record(path, jobs, 1)
    mul.record(path, jobs, 1)
    assert [len(c) for c in calls] == [3, len(jobs) - 3]
    rows = mul.read_rows(path)
    assert len(rows) == len(jobs) and {r["seed"] for r in rows} == {0, 1}
    assert rows[-1]["slo_attainment"] == 0.6 and rows[-1]["tpot_ms"] == pytest.approx(20.0)
    with path.open() as f:
        assert next(csv.reader(f)) == list(mul.FIELDS)


def test_a_file_from_before_the_seed_column_counts_as_seed_0(tmp_path, monkeypatch):
    """... and, from before the requests column, as made with the default limits."""
    monkeypatch.setattr(mul, "run_each", lambda jobs, processes: (
        (job, runs.Outcome(1.0, 0.01, 2.0)) for job in jobs))
    jobs = mul.jobs_for(mul.DEFAULT_LIMIT, mul.DEFAULT_AZURE_LIMIT, 2)
    old = ["trace,rate_scale,method,policy,slo_attainment,tpot_ms,tokens_per_step",
           f"conv,1.0,{jobs[0].method},{jobs[0].policy},0.25,12.0,1.0"]
    path = tmp_path / "results.csv"
    path.write_text("\n".join(old) + "\n")
    mul.record(path, jobs, 1)
    rows = mul.read_rows(path)
    assert len(rows) == len(jobs)
    assert rows[0]["seed"] == 0 and rows[0]["slo_attainment"] == 0.25  # kept, not rerun
    with path.open() as f:
        assert next(csv.reader(f)) == list(mul.FIELDS)


def test_runs_with_other_limits_are_recorded_apart_and_left_out(tmp_path, monkeypatch):
    monkeypatch.setattr(mul, "run_each", lambda jobs, processes: (
        (job, runs.Outcome(job.limit / 1000, 0.01, 2.0)) for job in jobs))
    path = tmp_path / "results.csv"
    small, large = mul.jobs_for(10, 20, 1), mul.jobs_for(30, 40, 1)
    mul.record(path, small, 1)
    mul.record(path, large, 1)  # other limits: run, not taken for the rows already there
    every = mul.read_rows(path)
    assert len(every) == len(small) + len(large)
    kept = mul.with_limits(every, 10, 20)
    assert len(kept) == len(small)
    assert {(r["trace"] == "azure-conv", r["requests"]) for r in kept} == {(False, 10),
                                                                           (True, 20)}
    assert {r["slo_attainment"] for r in mul.with_limits(every, 30, 40)} == {0.03, 0.04}
    mixed = mul.with_limits(every, 10, 40)  # each trace's own limit
    assert {(r["trace"] == "azure-conv", r["requests"]) for r in mixed} == {(False, 10), (True, 40)}


@pytest.mark.parametrize("argv", [["--seeds", "0"], ["--seeds", "-1"], ["--jobs", "0"],
                                  ["--limit", "0"], ["--azure-limit", "-3"]])
def test_bad_seeds_or_jobs_are_refused(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        mul.main([*argv, "--out", str(tmp_path), "--report-only"])
    assert stop.value.code == 2 and "must be >= 1" in capsys.readouterr().err


def test_job_method_defaults_to_the_draft_model():
    job = runs.Job("t.csv", "nospec", "single-pass", 1, 1.0, 0)
    assert job.method == "draft-model" and job._replace(method="eagle").method == "eagle"
