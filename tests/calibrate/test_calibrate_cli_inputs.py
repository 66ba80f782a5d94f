"""adaspec-calibrate and adaspec-validate inputs: --out is checked before any model loads,
bad devices and missing prompt files are one-line errors, the report's columns never run
together, and a profile measured for other models than the run gets a warning."""

from __future__ import annotations

import json

import pytest

from calibrate.cli import main as calibrate_main
from calibrate.validate_cli import format_report, model_mismatch

PAIR = ["--target", "random:tiny-llama", "--draft", "random:tiny-llama-draft"]


@pytest.fixture
def no_models(monkeypatch):
    """Loading a model fails the test: the error must come before any calibration work."""
    models = pytest.importorskip("realrun.models")

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the inputs were checked")
    monkeypatch.setattr(models, "load_model", refuse)


def _one_line_error(capsys, rc: int) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("adaspec-calibrate: error: "), err
    return err


@pytest.mark.parametrize("command", ["latency", "acceptance"])
def test_an_unwritable_out_fails_before_calibrating(tmp_path, capsys, no_models, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    rc = calibrate_main([command, *PAIR, "--out", str(blocker / "profile.json")])
    assert "is not a directory" in _one_line_error(capsys, rc)
    rc = calibrate_main([command, *PAIR, "--out", str(tmp_path)])
    assert "is a directory" in _one_line_error(capsys, rc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing created


def test_an_unwritable_log_out_fails_before_calibrating(tmp_path, capsys, no_models):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    rc = calibrate_main(["acceptance", *PAIR, "--out", str(tmp_path / "acc.json"),
                         "--log-out", str(blocker / "log.csv")])
    assert "--log-out" in _one_line_error(capsys, rc)


@pytest.mark.parametrize("command", ["latency", "acceptance"])
def test_an_unknown_device_is_a_one_line_error(tmp_path, capsys, no_models, command):
    rc = calibrate_main([command, *PAIR, "--device", "tpu7", "--out", str(tmp_path / "o.json")])
    assert "--device must be cpu, cuda or cuda:N, got 'tpu7'" in _one_line_error(capsys, rc)


def test_missing_prompts_file_is_named(tmp_path, capsys, no_models):
    rc = calibrate_main(["acceptance", *PAIR, "--prompts", str(tmp_path / "MISSING.jsonl"),
                         "--out", str(tmp_path / "acc.json")])
    assert "MISSING.jsonl: no such file" in _one_line_error(capsys, rc)


def test_default_prompts_are_package_data():
    from calibrate.acceptance import default_prompts_path
    from sim.workload.lengths import data_path
    path = default_prompts_path()
    assert path == data_path("spec-bench") and path.is_file()
    assert path.parent.parent.name == "workload"  # inside the sim package, not traces/


def _report(real: float, sim: float, rel_error: float) -> dict:
    metrics = {"ttft_mean_s": {"real": real, "sim": sim, "rel_error": rel_error},
               "throughput_tok_per_s": {"real": 1.0, "sim": None, "rel_error": None}}
    return {"policies": {"static:3": {
        "requests": 3, "metrics": metrics,
        "iteration_latency": {"n": 4, "mape_percent": 12.5, "by_kind": {}},
        "distributions": {}, "out_of_domain_ops": {"real_iterations": []}}}}


def test_report_columns_never_run_together_on_large_values():
    text = format_report(_report(469.7, 9_451_000.0, 20121.0))
    row = next(line for line in text.splitlines() if line.strip().startswith("ttft_mean"))
    cells = row.split()
    assert cells[:4] == ["ttft_mean", "(ms)", "4.697e+05", "9.451e+09"]
    assert cells[4:] == ["+2.01e+06", "%"]
    small = format_report(_report(0.5, 0.55, 0.1))
    assert "+10.0 %" in small


def test_a_profile_for_other_models_than_the_run_is_named():
    profile = {"config": {"target": "x", "draft": "y"},
               "models": {"target": {"name": "qwen2.5-coder-1.5b"},
                          "draft": {"name": "qwen2.5-coder-0.5b"}}}
    sim_run = {"target": "vicuna-7b", "draft": "vicuna-68m"}
    warning = model_mismatch(profile, sim_run)
    assert "qwen2.5-coder-1.5b + qwen2.5-coder-0.5b" in warning
    assert "vicuna-7b + vicuna-68m" in warning
    same = {"target": "x", "draft": "y", "models": {"target": {"name": "qwen2.5-coder-1.5b"},
                                                    "draft": {"name": "qwen2.5-coder-0.5b"}}}
    assert model_mismatch(profile, same) is None
    assert model_mismatch({"config": {"target": "a", "draft": "b"}},
                          {"target": "a", "draft": "b"}) is None
    assert model_mismatch({}, sim_run) is None  # nothing recorded: nothing to compare


def test_validate_warns_on_stderr(tmp_path, capsys):
    """End to end: a sim run on vicuna-7b validated with a tiny-llama profile."""
    from calibrate_helpers import synthetic_profile_doc

    from calibrate.profile_io import write_profile
    from calibrate.validate_cli import main as validate_main
    from sim.cli import main as sim_main
    profile = write_profile(tmp_path / "profile.json", synthetic_profile_doc())
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,prompt_tokens,output_tokens\n0.0,20,8\n0.1,30,6\n")
    run = tmp_path / "run"
    assert sim_main(["--trace", str(trace), "--policy", "nospec", "--out", str(run),
                     "--quiet"]) == 0
    capsys.readouterr()
    assert validate_main([str(run), "--profile", str(profile)]) == 0
    err = capsys.readouterr().err
    assert "adaspec-validate: warning: the profile was measured for tiny-llama + " \
           "tiny-llama-draft, the run used vicuna-7b + vicuna-68m" in err
    assert json.loads((run / "summary.json").read_text())["config"]["target"] == "vicuna-7b"
