"""Sweep files are validated up front: [config] combinations, windows and every swept value are
checked before any point runs, each error one line with exit 2, and nothing is left behind."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sim.errors import ConfigError
from sim.sweep.cli import main
from sim.sweep.spec import load_sweep
from sim.sweep.store import ResultStore
from sweep_helpers import REPO, small_sweep, sweep_command, write_native_trace, write_sweep

PROFILE = REPO / "calibrate" / "profiles" / "cpu-2core-qwen2.5-coder-1.5b-0.5b.json"


def _nan_profile(folder: Path) -> Path:
    doc = json.loads(PROFILE.read_text())
    op = next(iter(doc["ops"]))
    doc["ops"][op]["coefficients"]["intercept"] = float("nan")
    path = folder / "nan_profile.json"
    path.write_text(json.dumps(doc))  # json writes NaN, as a careless tool would
    return path


def test_a_nan_profile_in_a_config_axis_fails_before_any_point(tmp_path, capsys):
    _nan_profile(tmp_path)
    write_native_trace(tmp_path / "a.csv")
    path = write_sweep(tmp_path, f"""
[sweep]
traces = ["a.csv"]
policies = ["nospec"]
[config]
profile = ["{PROFILE}", "nan_profile.json"]
""")
    out = tmp_path / "out"
    assert main([str(path), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[config] (profile = 'nan_profile.json')" in err[0]
    assert "finite" in err[0] and not out.exists()


def test_config_types_follow_the_simconfig_annotations(tmp_path):
    write_native_trace(tmp_path / "a.csv")
    ok = write_sweep(tmp_path, """
[sweep]
traces = ["a.csv"]
policies = ["nospec"]
[config]
max_num_seqs = [8, 16]
kv_blocks = 4096
chunked_prefill = [false, true]
tpot_slo_s = 1
""")
    spec = load_sweep(ok)
    assert len(spec.points) == 4
    assert {dict(p.config)["max_num_seqs"] for p in spec.points} == {8, 16}
    for body, where in (('kv_blocks = "lots"', "kv_blocks"), ("tp = true", "tp"),
                        ('estimator = 3', "estimator"), ("gpu_memory_utilization = inf",
                                                         "gpu_memory_utilization")):
        bad = write_sweep(tmp_path, f'[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n'
                                    f'[config]\n{body}\n', name="bad.toml")
        with pytest.raises(ConfigError, match=rf"\[config\] {where}: must be"):
            load_sweep(bad)


def test_rate_scale_inf_exits_2_and_leaves_no_temporary_file(tmp_path):
    path = small_sweep(tmp_path, rate_scales=(1.0,))
    out = tmp_path / "out"
    assert main([str(path), "--out", str(out), "--workers", "1", "--quiet", "--no-plots"]) == 0
    path.write_text(path.read_text().replace("rate_scales = [1.0]", "rate_scales = [1.0, inf]"))
    proc = subprocess.run(sweep_command(str(path), "--out", str(out), "--workers", "1"),
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "rate_scales" in proc.stderr and "inf" in proc.stderr
    assert not list(out.glob("points/.*")) and not list(out.glob(".*.tmp-*"))


def test_a_store_write_that_fails_removes_its_temporary(tmp_path):
    store = ResultStore(tmp_path / "out")
    with pytest.raises(ValueError):
        store.put({"key": "k1", "summary": {"ttft_mean_s": float("inf")}})  # allow_nan=False
    assert list(store.points_dir.iterdir()) == []


def test_duplicate_config_axis_values_are_errors_like_duplicate_rates(tmp_path):
    write_native_trace(tmp_path / "a.csv")
    head = '[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n'
    for body, key in ((head + "[config]\nmax_num_seqs = [8, 8]\n", r"\[config\] max_num_seqs"),
                      (head + "seeds = [1, 1]\n", r"\[sweep\] seeds"),
                      (head + "rate_scales = [2, 2.0]\n", r"\[sweep\] rate_scales")):
        with pytest.raises(ConfigError, match=key + ": has duplicate values"):
            load_sweep(write_sweep(tmp_path, body))


def test_the_point_workload_is_the_value_the_command_line_makes(tmp_path):
    """A sweep point and adaspec-sim with the same options describe the same WorkloadSpec."""
    from sim.cli import build_parser
    from sim.cli_common import workload_spec_from_args
    write_native_trace(tmp_path / "a.csv", n=40)
    path = write_sweep(tmp_path, """
[sweep]
traces = ["a.csv"]
policies = ["nospec"]
arrival_rates = [3.5]
arrivals = "gamma"
cv = 1.5
window_s = [1.0, 9.0]
limit = 12
""")
    point = load_sweep(path).points[0]
    args = build_parser().parse_args(["--trace", point.trace_path, "--window", "1:9",
                                      "--limit", "12", "--arrivals", "gamma:3.5,1.5"])
    assert workload_spec_from_args(args) == point.workload
    assert point.workload.build(0) == point.workload.build(0)


def test_unknown_category_is_found_up_front(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(f"""[sweep]
traces = ["{REPO / 'traces/adaspec/code.csv'}"]
policies = ["nospec"]
rate_scales = [1.0]
limit = 5
category = "mathh"
""")
    with pytest.raises(ConfigError, match="unknown acceptance category 'mathh'"):
        load_sweep(path)
