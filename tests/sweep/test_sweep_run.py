"""End-to-end sweeps: outputs, failing points, resumption after a kill, Ray vs local pool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import replace

import pandas as pd
import pytest

from sim.sweep.cli import main
from sim.sweep.spec import load_sweep
from sim.sweep.table import read_header, read_table
from sweep_helpers import REPO, comparable, small_sweep, sweep_command

ENV = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_small_sweep_end_to_end(tmp_path, capsys):
    path = small_sweep(tmp_path, traces=("a.csv", "b.csv"), slo_scales=(1.0, 2.0))
    out = tmp_path / "out"
    assert main([str(path), "--workers", "2", "--out", str(out), "--quiet"]) == 0
    assert "goodput-rate" in capsys.readouterr().out
    spec = load_sweep(path)
    table = read_table(out / "results.csv")
    assert list(table["key"]) == [p.key for p in spec.points]
    assert (table["status"] == "ok").all()
    assert (table["requests"] == 24).all() and table["slo_attainment"].between(0, 1).all()
    assert {"ttft_s_p99", "tpot_s_mean", "e2e_s_mean", "throughput_tokens_per_s",
            "policy", "rate_scale", "slo_scale", "gpu", "tpot_slo_s"} <= set(table.columns)
    parquet = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(comparable(parquet), comparable(table), check_dtype=False)
    header = read_header(out / "results.csv")
    assert header["schema_version"] == 2 and header["seed"] == [0]
    assert set(header["inputs"]) == {"trace:a.csv", "trace:b.csv"}
    assert read_header(out / "results.parquet") == header
    for name in ("attainment_vs_rate", "attainment_vs_slo_scale", "goodput", "speedup"):
        frame = read_table(out / f"{name}.csv")
        assert len(frame) > 0, name
        assert read_header(out / f"{name}.csv")["sweep"] == "tiny"
    speedup = read_table(out / "speedup.csv")
    assert set(speedup["policy"]) == {"static:3"} and set(speedup["baseline"]) == {"nospec"}
    for stem in ("attainment_vs_rate", "attainment_vs_slo_scale", "speedup"):
        for ext in ("png", "svg"):
            assert (out / "plots" / f"{stem}.{ext}").stat().st_size > 1000
    record = json.loads(next((out / "points").glob("*.json")).read_text())
    assert record["status"] == "ok" and record["inputs"]["trace"]["sha256"]
    assert record["config"]["tpot_slo_s"] in (0.03, 0.06)


def test_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    # the first row is fine (the up-front check reads only the first request of a window);
    # the second fails when a point loads the trace
    (tmp_path / "bad.csv").write_text("arrival_s,prompt_tokens,output_tokens\n0.0,10,5\n"
                                      "0.5,10,-5\n")
    path = small_sweep(tmp_path, traces=("a.csv", "bad.csv"))
    out = tmp_path / "out"
    assert main([str(path), "--workers", "1", "--out", str(out), "--quiet", "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert "failed" in err and "bad.csv" in err
    table = read_table(out / "results.csv")
    assert len(table) == 8
    good, bad = table[table["trace"] == "a.csv"], table[table["trace"] == "bad.csv"]
    assert (good["status"] == "ok").all() and (bad["status"] == "error").all()
    assert bad["error"].str.contains("output_tokens").all()
    assert bad["slo_attainment"].isna().all()
    # a rerun skips the ok points and retries the failed ones only
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "points").glob("*.json")}
    assert main([str(path), "--workers", "1", "--out", str(out), "--quiet", "--no-plots"]) == 1
    assert "4 already done, 4 to run" in capsys.readouterr().out
    for p, mtime in mtimes.items():
        record = json.loads(p.read_text())
        assert (p.stat().st_mtime_ns == mtime) == (record["status"] == "ok")


def test_a_sweep_whose_every_request_is_rejected_writes_its_tables(tmp_path, capsys):
    # one KV block: no request is ever served, so no point has a latency; the speedup table
    # used to end in a KeyError traceback (all-None metric columns were not numeric)
    path = small_sweep(tmp_path, extra="").with_name("sweep.toml")
    path.write_text(path.read_text().replace("[config]\n", "[config]\nkv_blocks = 1\n"))
    out = tmp_path / "out"
    assert main([str(path), "--workers", "1", "--out", str(out), "--quiet", "--no-plots"]) == 0
    table = read_table(out / "results.csv")
    assert (table["rejected"] == table["requests"]).all() and table["e2e_s_mean"].isna().all()
    speedup = read_table(out / "speedup.csv")
    assert len(speedup) == 2 and speedup["e2e_speedup"].isna().all()
    assert (read_table(out / "attainment_vs_rate.csv")["slo_attainment"] == 0).all()


def test_a_one_request_sweep_writes_its_tables(tmp_path, capsys):
    # limit = 1 (a smoke test): no point has an offered rate (one arrival instant), and the
    # goodput table used to end in a KeyError traceback on that all-None column
    path = small_sweep(tmp_path, limit=1)
    out = tmp_path / "out"
    assert main([str(path), "--workers", "1", "--out", str(out), "--quiet", "--no-plots"]) == 0
    assert read_table(out / "results.csv")["workload_offered_rate_req_per_s"].isna().all()
    goodput = read_table(out / "goodput.csv")
    assert len(goodput) == 2 and goodput["goodput_offered_req_per_s"].isna().all()
    assert set(goodput["goodput_bound"]) == {"at_least"}


def test_killed_sweep_resumes_without_duplicates_and_matches_a_full_run(tmp_path):
    path = small_sweep(tmp_path, rate_scales=(1.0, 2.0, 4.0), slo_scales=(1.0, 2.0), limit=24)
    n_points = len(load_sweep(path).points)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(sweep_command(str(path), "--workers", "1", "--out", str(killed),
                                          "--quiet", "--no-plots"),
                            env=ENV, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list((killed / "points").glob("*.json"))) >= 3:
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    partial = len(list((killed / "points").glob("*.json")))
    assert 3 <= partial < n_points, "the sweep finished before it could be killed"
    assert main([str(path), "--workers", "2", "--out", str(killed), "--quiet",
                 "--no-plots"]) == 0
    full = tmp_path / "full"
    assert main([str(path), "--workers", "2", "--out", str(full), "--quiet", "--no-plots"]) == 0
    resumed, uninterrupted = read_table(killed / "results.csv"), read_table(full / "results.csv")
    assert len(resumed) == n_points and resumed["key"].is_unique
    assert (resumed["status"] == "ok").all()
    assert len(list((killed / "points").glob("*.json"))) == n_points
    pd.testing.assert_frame_equal(comparable(resumed), comparable(uninterrupted))
    for name in ("goodput", "speedup", "attainment_vs_rate"):
        pd.testing.assert_frame_equal(read_table(killed / f"{name}.csv"),
                                      read_table(full / f"{name}.csv"))


def test_ray_local_gives_the_same_results_as_the_process_pool(tmp_path):
    pytest.importorskip("ray")
    path = small_sweep(tmp_path, traces=("a.csv",), rate_scales=(1.0, 4.0))
    local, ray_dir = tmp_path / "local", tmp_path / "ray"
    assert main([str(path), "--workers", "2", "--out", str(local), "--quiet",
                 "--no-plots"]) == 0
    result = subprocess.run(sweep_command(str(path), "--ray", "local", "--workers", "2",
                                          "--out", str(ray_dir), "--quiet", "--no-plots"),
                            env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "on Ray (local)" in result.stdout
    pd.testing.assert_frame_equal(comparable(read_table(ray_dir / "results.csv")),
                                  comparable(read_table(local / "results.csv")))


def test_progress_in_a_log_is_lines_not_a_redrawn_bar(tmp_path, capsys, monkeypatch):
    """Off a terminal the sweep reports progress as plain lines (no carriage-return redraws)."""
    import sim.progress
    monkeypatch.setattr(sim.progress, "LINE_INTERVAL_S", 0.0)
    path = small_sweep(tmp_path)
    assert main([str(path), "--workers", "1", "--out", str(tmp_path / "out"), "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    assert "points" in err and "tiny: 4/4 points" in err


def test_a_point_keeps_no_iteration_table_and_has_the_same_summary(tmp_path, monkeypatch):
    import sim.run
    from sim.sweep.runner import build_workload, run_point
    point = load_sweep(small_sweep(tmp_path, policies=("adaspec:8",))).points[0]
    real, seen = sim.run.simulate, []

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(sim.run, "simulate", spy)
    outcome = run_point(point)
    assert outcome["status"] == "ok" and not seen[0].has_iterations
    full = real(build_workload(point), point.policy, point.sim_config(), seed=point.seed)
    assert full.has_iterations and len(full.iterations) == outcome["summary"]["iterations"]
    assert outcome["summary"] == full.summary


def test_a_point_record_says_what_was_simulated(tmp_path):
    """Each point's record carries the ``simulated`` block adaspec-sim writes for the same
    config (latency source and dense ops, engine limits, acceptance, SLOs)."""
    from sim.run import build_latency
    from sim.run_description import describe_run
    from sim.sweep.runner import run_point
    point = load_sweep(small_sweep(tmp_path, policies=("static:3",))).points[0]
    outcome = run_point(point)
    assert outcome["status"] == "ok"
    config = point.sim_config()
    simulated = outcome["simulated"]
    assert simulated == describe_run(replace(config, iteration_log=False), build_latency(config))
    assert simulated["latency"]["source"] == "roofline"
    assert simulated["acceptance"]


def test_trace_categories_without_a_profile_are_recorded_and_warned_once(tmp_path, capsys):
    """As adaspec-sim: requests whose category the acceptance model lacks take its default
    profile; each point's ``simulated`` block records it, so do its ``warnings``, and the
    sweep says it once per distinct case, in one line, with how many points it concerned."""
    (tmp_path / "cats.csv").write_text("arrival_s,prompt_tokens,output_tokens,category\n" + "".join(
        f"{0.2 * i},{40 + i},{10 + i % 4},{'mathh' if i % 3 else 'coding'}\n" for i in range(12)))
    path = small_sweep(tmp_path, traces=("cats.csv",), rate_scales=(1.0, 2.0))
    out = tmp_path / "out"
    assert main([str(path), "--workers", "1", "--out", str(out), "--quiet"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    line = ("cats.csv: acceptance spec-bench-vicuna-68m has no profile for the trace's "
            "categories 'mathh' (8): those 8 requests take its default (category '') profile "
            "(mean level 0.597)")
    assert err == [f"adaspec-sweep: warning: {line} (in 4 of 4 points run)"]
    records = [json.loads(p.read_text()) for p in (out / "points").glob("*.json")]
    assert len(records) == 4
    for record in records:
        assert record["simulated"]["acceptance_category_fallback"]["categories"] == {"mathh": 8}
        assert record["warnings"] == [line]
    (tmp_path / "plain").mkdir()
    plain = small_sweep(tmp_path / "plain", policies=("nospec",), rate_scales=(1.0,))
    assert main([str(plain), "--workers", "1", "--out", str(tmp_path / "o2"), "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err
    record = json.loads(next((tmp_path / "o2" / "points").glob("*.json")).read_text())
    assert "acceptance_category_fallback" not in record["simulated"]
