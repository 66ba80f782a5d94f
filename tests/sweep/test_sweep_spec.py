"""SWEEP.toml parsing: grid expansion, stable keys, path resolution and one-line errors."""

from __future__ import annotations

import os

import pytest

from sim.errors import ConfigError
from sim.sweep.cli import main
from sim.sweep.spec import load_sweep
from sweep_helpers import small_sweep, write_native_trace, write_sweep


def test_grid_is_expanded_in_documented_order(tmp_path):
    path = small_sweep(tmp_path, traces=("a.csv", "b.csv"), policies=("nospec", "static:3"),
                       rate_scales=(1.0, 2.0), slo_scales=(1.0, 2.0), seeds=(0, 1))
    spec = load_sweep(path)
    assert len(spec.points) == 2 * 2 * 2 * 2 * 2
    first = spec.points[:4]
    assert [(p.policy, p.seed) for p in first] == [("nospec", 0), ("nospec", 1),
                                                  ("static:3", 0), ("static:3", 1)]
    assert [p.trace for p in spec.points[:16]] == ["a.csv"] * 16
    assert spec.points[4].slo_scale == 2.0 and spec.points[8].workload.rate_scale == 2.0
    assert len({p.key for p in spec.points}) == len(spec.points)
    assert spec.baselines == ("nospec",) and spec.goodput_attainment == 0.9


def test_slo_scale_multiplies_both_slos_and_config_lists_are_axes(tmp_path):
    write_native_trace(tmp_path / "a.csv")
    path = write_sweep(tmp_path, """
[sweep]
traces = ["a.csv"]
policies = ["nospec"]
slo_scales = [0.5, 2.0]
[config]
gpu = ["A100-80G", "H100"]
ttft_slo_s = 2.0
tpot_slo_s = 0.04
""")
    spec = load_sweep(path)
    assert spec.name == "sweep"
    assert [(dict(p.config)["gpu"], p.slo_scale) for p in spec.points] == [
        ("A100-80G", 0.5), ("A100-80G", 2.0), ("H100", 0.5), ("H100", 2.0)]
    config = spec.points[0].sim_config()
    assert (config.ttft_slo_s, config.tpot_slo_s) == pytest.approx((1.0, 0.02))
    row = spec.points[1].row()
    assert row["ttft_slo_s"] == pytest.approx(4.0) and row["base_ttft_slo_s"] == 2.0


def test_engine_is_a_config_axis(tmp_path):
    write_native_trace(tmp_path / "a.csv")
    path = write_sweep(tmp_path, """
[sweep]
traces = ["a.csv"]
policies = ["static:3"]
[config]
engine = ["single-pass", "vllm-0.6"]
""")
    points = load_sweep(path).points
    assert [p.sim_config().engine for p in points] == ["single-pass", "vllm-0.6"]
    assert [p.row()["engine"] for p in points] == ["single-pass", "vllm-0.6"]
    assert points[0].key != points[1].key
    bad = write_sweep(tmp_path, """
[sweep]
traces = ["a.csv"]
policies = ["nospec"]
[config]
engine = "vllm-1"
""")
    with pytest.raises(ConfigError, match="engine must be one of"):
        load_sweep(bad)


def _pass_overheads_sweep(folder, value: str):
    write_native_trace(folder / "a.csv")
    return write_sweep(folder, '[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n'
                               f"[config]\npass_overheads_s = {value}\n")


@pytest.mark.parametrize("value, expected", [
    ("[0.004, 0.001, 0.0015]", [(0.004, 0.001, 0.0015)]),          # one value
    ("[[0.004, 0.001, 0.0015], [0, 0, 0]]", [(0.004, 0.001, 0.0015), (0.0, 0.0, 0.0)])])
def test_pass_overheads_are_one_value_or_an_axis(tmp_path, value, expected):
    # a list was always read as an axis of numbers, so the field could not be set at all
    # ("object of type 'float' has no len()")
    points = load_sweep(_pass_overheads_sweep(tmp_path, value)).points
    assert [p.sim_config().pass_overheads_s for p in points] == expected
    assert len({p.key for p in points}) == len(points)


@pytest.mark.parametrize("value, message", [
    ("[0.004, \"a\", 0]", "pass_overheads_s draft step (seconds) must be a finite number >= 0, "
                         "got 'a'"),
    ("[0.004, 0.001]", "pass_overheads_s must be 3 numbers of seconds (target pass, draft step, "
                       "drafting iteration), got (0.004, 0.001)"),
    ("[[1, 2, 3], [1, 2, 3]]", "pass_overheads_s: has duplicate values")])
def test_bad_pass_overheads_are_one_line_errors(tmp_path, value, message):
    path = _pass_overheads_sweep(tmp_path, value)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_keys_are_stable_across_parses_and_working_directories(tmp_path, monkeypatch):
    path = small_sweep(tmp_path)
    keys = [p.key for p in load_sweep(path).points]
    sub = tmp_path / "elsewhere"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert [p.key for p in load_sweep(path).points] == keys
    # the trace's content is part of the identity
    write_native_trace(tmp_path / "a.csv", seed=99)
    assert [p.key for p in load_sweep(path).points] != keys


def test_traces_resolve_against_the_file_then_cwd(tmp_path, monkeypatch):
    (tmp_path / "cwd").mkdir()
    write_native_trace(tmp_path / "cwd" / "c.csv")
    monkeypatch.chdir(tmp_path / "cwd")
    (tmp_path / "toml").mkdir()
    path = write_sweep(tmp_path / "toml", '[sweep]\ntraces = ["c.csv"]\npolicies = ["nospec"]\n')
    assert load_sweep(path).points[0].trace_path == str((tmp_path / "cwd" / "c.csv").resolve())


def test_arrival_rates_make_synthetic_arrival_points(tmp_path):
    write_native_trace(tmp_path / "a.csv")
    path = write_sweep(tmp_path, """
[sweep]
traces = ["a.csv"]
policies = ["nospec"]
arrival_rates = [2, 8]
arrivals = "gamma"
cv = 3.0
""")
    points = load_sweep(path).points
    assert [(p.workload.arrivals, p.rate, p.workload.arrival_cv) for p in points] == [("gamma", 2.0, 3.0),
                                                                    ("gamma", 8.0, 3.0)]


BAD = [
    ("[sweep\n", "invalid TOML"),
    ('[sweep]\npolicies = ["nospec"]\n', "[sweep] traces: missing"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nrates = [1]\n', "unknown key"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["warp-speed"]\n', "[sweep] policies"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nrate_scales = [-1]\n',
     "[sweep] rate_scales: rate scale must be a finite number > 0, got -1"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nrate_scales = [inf]\n',
     "[sweep] rate_scales: rate scale must be a finite number > 0, got inf"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nslo_scales = [nan]\n',
     "[sweep] slo_scales: SLO scale must be a finite number > 0, got nan"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nslo_scales = [1.0, 1e308]\n',
     "[sweep] slo_scales: scale 1e+308: TTFT SLO must be a positive number of seconds, got inf"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\narrival_rates = [2, 2.0]\n',
     "[sweep] arrival_rates: has duplicate values"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nlimit = 0\n',
     "[sweep] limit: request limit must be a whole number >= 1, got 0"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nwindow_s = [5000.0]\n',
     "fall inside the window"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nwindow_s = [3.0, 1.0]\n',
     "window end (1.0 s) must be after its start"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nlengths = "nope.jsonl"\n',
     "[sweep] lengths: file 'nope.jsonl' not found"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n[config]\nmax_num_seqs = "many"\n',
     "[config] max_num_seqs: must be of type int, got 'many'"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n[config]\nmax_num_seqs = 2.5\n',
     "[config] max_num_seqs: must be of type int, got 2.5"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n[config]\nchunked_prefill = 1\n',
     "[config] chunked_prefill: must be of type bool, got 1"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n[config]\nttft_slo_s = nan\n',
     "[config] ttft_slo_s: must be a finite number, got nan"),
    # the SLOs as adaspec-sim's --slo-*-ms: nan, inf and non-positive refused (in seconds here)
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n[config]\ntpot_slo_s = inf\n',
     "[config] tpot_slo_s: must be a finite number, got inf"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n[config]\nttft_slo_s = [1.0, -inf]\n',
     "[config] ttft_slo_s: must be a finite number, got -inf"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n[config]\nttft_slo_s = 0\n',
     "TTFT SLO must be a positive number of seconds, got 0"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nslo_scales = [inf]\n',
     "[sweep] slo_scales: SLO scale must be a finite number > 0, got inf"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nslo_scales = [0]\n',
     "[sweep] slo_scales: SLO scale must be a finite number > 0, got 0"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n[config]\ngpu = ["H100", "H100"]\n',
     "[config] gpu: has duplicate values ['H100', 'H100']"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n[config]\ngpu = ["H100", "Z100"]\n',
     "[config] (gpu = 'Z100'): "),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n[config]\ntarget = "gpt-9"\n',
     "[config] (target = 'gpt-9'): "),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n[config]\nacceptance = "psychic"\n',
     "[config] (acceptance = 'psychic'): unknown acceptance model"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nrate_scales = [1]\n'
     'arrival_rates = [2]\n', "not both"),
    ('[sweep]\ntraces = ["missing.csv"]\npolicies = ["nospec"]\n', "not found"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n[config]\nwarp = 9\n',
     "unknown SimConfig field"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\n[config]\ntpot_slo_s = -1\n',
     "TPOT SLO"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nbaselines = ["static:5"]\n',
     "not one of the swept policies"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec", "nospec"]\n', "listed twice"),
    ('[sweep]\ntraces = ["a.csv", "a.csv"]\npolicies = ["nospec"]\n',
     "[sweep] traces: trace 'a.csv' listed twice"),
    ('[sweep]\ntraces = []\npolicies = ["nospec"]\n', "must not be empty"),
    ('[sweep]\nname = "../../elsewhere"\ntraces = ["a.csv"]\npolicies = ["nospec"]\n',
     "[sweep] name: must be a non-empty name without '/'"),    # results/../../elsewhere
    ('[sweep]\nname = "/tmp/x"\ntraces = ["a.csv"]\npolicies = ["nospec"]\n',
     "[sweep] name: must be a non-empty name without '/'"),    # results / "/tmp/x" = /tmp/x
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nseeds = [0.5]\n',
     "[sweep] seeds: seed must be a whole number >= 0 and < 2**63, got 0.5"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nseeds = [-1]\n',
     "[sweep] seeds: seed must be a whole number >= 0 and < 2**63, got -1"),
    ('[sweep]\ntraces = ["a.csv"]\npolicies = ["nospec"]\nseeds = [0, 9223372036854775808]\n',
     "[sweep] seeds: seed must be a whole number >= 0 and < 2**63, got 9223372036854775808"),
]


@pytest.mark.parametrize("body, message", BAD, ids=[m for _, m in BAD])
def test_bad_sweep_files_are_one_line_errors(tmp_path, capsys, body, message):
    write_native_trace(tmp_path / "a.csv")
    path = write_sweep(tmp_path, body)
    with pytest.raises(ConfigError, match=".*") as info:
        load_sweep(path)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(path) in str(info.value)
    assert main([str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("adaspec-sweep: error:") and message in err[0]
    assert not (tmp_path / "out").exists()  # found before anything is written


def test_missing_sweep_file_is_a_one_line_error(tmp_path, capsys):
    assert main([str(tmp_path / "nope.toml")]) == 2
    assert "cannot read sweep file" in capsys.readouterr().err


def test_sweep_file_that_is_not_utf8_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe[sweep]\n")  # used to end in a UnicodeDecodeError traceback
    assert main([str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"adaspec-sweep: error: {path}: cannot read sweep file as UTF-8 text "
                   "(invalid start byte at byte 0)"]
    assert not (tmp_path / "out").exists()


def test_bad_workers_is_a_one_line_error(tmp_path, capsys):
    path = small_sweep(tmp_path)
    assert main([str(path), "--workers", "0", "--out", os.fspath(tmp_path / "o")]) == 2
    assert "--workers" in capsys.readouterr().err


def test_ray_missing_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    path = small_sweep(tmp_path)
    assert main([str(path), "--ray", "local", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs Ray" in err[0]
