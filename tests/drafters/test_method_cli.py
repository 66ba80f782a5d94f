"""--method: default unchanged, recorded where the run is described, refused combinations
are one line and exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.cli import expand_policies, main
from sim.errors import ConfigError
from sim.run import SimConfig, simulate

ROOT = Path(__file__).resolve().parents[2]
CODE = str(ROOT / "traces" / "adaspec" / "code.csv")
BASE = ["--trace", CODE, "--limit", "12", "--quiet"]


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("adaspec-sim: error:")
    return err[0]


def test_default_config_is_the_draft_model():
    config = SimConfig()
    assert config.method == "draft-model" and config.acceptance == "spec-bench-vicuna-68m"
    assert SimConfig(method="eagle-2").acceptance == "spec-bench-eagle-2"
    assert SimConfig(method="pld", acceptance="fixed:0.5").acceptance == "fixed:0.5"


@pytest.mark.parametrize("argv, needle", [
    (["--method", "nope"], "unknown method"),
    (["--method", "pld", "--policy", "adaspec:8"], "decides on draft confidences"),
    (["--method", "lookahead", "--policy", "threshold:0.6,8"], "decides on draft confidences"),
    (["--method", "eagle", "--draft", "vicuna-68m"], "--draft names the draft model"),
    (["--method", "eagle", "--acceptance", "spec-bench-vicuna-68m"], "describes vicuna-68m"),
    (["--acceptance", "spec-bench-eagle"], "use it with --method eagle"),
    (["--method", "medusa", "--acceptance", "spec-bench-eagle"], "describes the eagle method"),
])
def test_refused(capsys, argv, needle):
    assert needle in _error(capsys, BASE + argv)


def test_calibrated_profile_is_refused_for_a_method(tmp_path):
    profile = tmp_path / "p.json"
    profile.write_text("{}")
    with pytest.raises(ConfigError, match="per-op costs"):
        SimConfig(method="eagle", profile=str(profile))


def test_policy_all_keeps_what_fits_the_method():
    names = expand_policies(["all"], "pld")
    assert "static:5" in names and "smartspec:8" in names
    assert not any(n.startswith(("adaspec", "threshold")) for n in names)
    assert any(n.startswith("adaspec") for n in expand_policies(["all"], "eagle-2"))


def test_simulate_refuses_a_confidence_policy_without_confidences():
    from sim.workload.request import Request, Workload
    workload = Workload((Request(0, 0.0, 20, 10, ""),), "one", "synthetic")
    with pytest.raises(ConfigError, match="draft confidences"):
        simulate(workload, "adaspec:8", SimConfig(method="lookahead"))


def test_method_run_is_recorded(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(BASE + ["--method", "eagle-2", "--policy", "static:3 adaspec:8",
                        "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "method: eagle-2 (feature-head; tree of 60 nodes" in printed
    assert "acceptance spec-bench-eagle-2" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["method"] == "eagle-2"
    assert summary["simulated"]["method"]["name"] == "eagle-2"
    iterations = (out / "static_3" / "iterations.csv").read_text().splitlines()
    assert any(",decode," in line for line in iterations)


def test_default_header_has_no_method_line(capsys):
    assert main(BASE + ["--policy", "nospec"]) == 0
    assert "method:" not in capsys.readouterr().out


def test_sweep_method_axis(tmp_path):
    from sim.sweep.spec import parse_sweep
    doc = {"sweep": {"name": "m", "traces": [CODE], "policies": ["nospec", "static:2"],
                     "rate_scales": [1.0], "limit": 5},
           "config": {"method": ["draft-model", "eagle-2", "pld"]}}
    spec = parse_sweep(doc, tmp_path, "m.toml")
    methods = {p.sim_config().method for p in spec.points}
    assert methods == {"draft-model", "eagle-2", "pld"}
    assert {p.sim_config().acceptance for p in spec.points} == {
        "spec-bench-vicuna-68m", "spec-bench-eagle-2", "spec-bench-pld"}
    doc["sweep"]["policies"] = ["adaspec:8"]
    with pytest.raises(ConfigError, match="method"):
        parse_sweep(doc, tmp_path, "m.toml")
