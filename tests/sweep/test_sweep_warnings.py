"""A sweep point's warnings are recorded with the point, not printed by the worker; the sweep
command says each distinct one once, in one line, with how many points it concerned."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from sim.sweep.cli import main, point_warnings, warning_kind
from sim.sweep.spec import load_sweep
from sweep_helpers import REPO, small_sweep, sweep_command

PROFILE = REPO / "calibrate" / "profiles" / "cpu-2core-qwen2.5-coder-1.5b-0.5b.json"
SUFFIX = re.compile(r"^adaspec-sweep: warning: (.*) \(in (\d+) of (\d+) points? run"
                    r"(?:; numbers quoted from the first of them)?\)$")


def _profile_sweep(folder, **kwargs):
    """A small sweep on the calibrated CPU profile, whose domain (batch 1..3, prompts 16..48
    tokens) every point leaves."""
    path = small_sweep(folder, **kwargs)
    path.write_text(path.read_text().replace("[config]\n", f'[config]\nprofile = "{PROFILE}"\n'))
    return path


def test_a_point_records_its_warnings_and_prints_none(tmp_path, capfd):
    from sim.sweep.runner import run_point
    point = load_sweep(_profile_sweep(tmp_path, policies=("adaspec:4",))).points[0]
    outcome = run_point(point)  # outside any command: Python would show them in two lines
    assert outcome["status"] == "ok"
    assert capfd.readouterr().err == ""
    said = outcome["warnings"]
    name = PROFILE.name
    assert any(line.startswith(f"latency profile {name}: target_verify queried outside its "
                               "measured domain") for line in said)
    assert any("the policies' latency table reads it outside its measured domain" in line
               for line in said)
    assert all("\n" not in line for line in said)


def test_a_point_without_warnings_records_none(tmp_path):
    from sim.sweep.runner import run_point
    outcome = run_point(load_sweep(small_sweep(tmp_path, policies=("nospec",))).points[0])
    assert outcome["status"] == "ok" and "warnings" not in outcome


@pytest.mark.parametrize("workers", [1, 2])
def test_each_distinct_warning_is_said_once_with_its_point_count(tmp_path, capfd, workers):
    path = _profile_sweep(tmp_path, policies=("nospec", "adaspec:4"), rate_scales=(1.0, 4.0))
    out = tmp_path / "out"
    assert main([str(path), "--workers", str(workers), "--out", str(out), "--quiet",
                 "--no-plots"]) == 0
    err = capfd.readouterr().err.splitlines()
    # nothing in Python's format (from a worker or not), nothing twice
    assert all(line.startswith("adaspec-sweep: warning: ") for line in err), err
    assert not any("Warning:" in line or "warnings.warn" in line for line in err)
    said = {}
    for line in err:
        text, n, ran = SUFFIX.match(line).groups()
        assert warning_kind(text) not in said and ran == "4"
        said[warning_kind(text)] = int(n)
    records = [json.loads(p.read_text()) for p in (out / "points").glob("*.json")]
    assert len(records) == 4
    expected = {}
    for record in records:
        for kind in {warning_kind(line) for line in record["warnings"]}:
            expected[kind] = expected.get(kind, 0) + 1
    assert said == expected
    table = next(t for t in said if "latency table reads it outside" in t)
    assert said[table] == 4  # every point builds its own table from the profile
    # the plain decoders never draft: their records say no draft-step query left the domain
    nospec = [r for r in records if r["point"]["policy"] == "nospec"]
    assert all(not any("draft_step queried" in w for w in r["warnings"]) for r in nospec)
    # a rerun skips every finished point and says nothing again
    assert main([str(path), "--workers", str(workers), "--out", str(out), "--quiet",
                 "--no-plots"]) == 0
    assert "warning" not in capfd.readouterr().err


def test_on_ray_the_points_warnings_come_back_with_them(tmp_path):
    """Ray workers' output is not forwarded (``log_to_driver=False``): a point's warnings
    reach the driver only in its outcome."""
    pytest.importorskip("ray")
    path = _profile_sweep(tmp_path, policies=("adaspec:4",), rate_scales=(1.0, 4.0))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(sweep_command(str(path), "--ray", "local", "--workers", "2",
                                          "--out", str(tmp_path / "out"), "--quiet",
                                          "--no-plots"),
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    said = [SUFFIX.match(line).groups() for line in result.stderr.splitlines()
            if line.startswith("adaspec-sweep: warning: ")]
    assert said and all(ran == "2" for _, _, ran in said)
    assert any("latency table reads it outside" in text and n == "2" for text, n, _ in said)


def test_point_warnings_counts_each_point_once_in_point_order():
    class P:
        def __init__(self, key):
            self.key = key

    points = [P("a"), P("b"), P("c")]
    warned = {"c": ["x", "y"], "a": ["y", "y"], "b": []}
    assert list(point_warnings(points, warned).items()) == [("y", (2, False)),
                                                            ("x", (1, False))]


def test_the_same_warning_quoting_other_numbers_is_one_kind():
    class P:
        def __init__(self, key):
            self.key = key

    first = ("latency profile cpu-qwen2.5-1.5b.json: target_verify queried outside its "
             "measured domain (batch=24, measured 1..3)")
    other = first.replace("batch=24", "batch=32")
    elsewhere = first.replace("target_verify", "draft_step")
    renamed = first.replace("qwen2.5-1.5b", "qwen2.5-7b")
    assert warning_kind(first) == warning_kind(other) != warning_kind(elsewhere)
    assert warning_kind(first) != warning_kind(renamed)  # digits of a name are kept
    assert warning_kind("at 12 of 40 points") == warning_kind("at 3 of 40 points")
    warned = {"a": [first, other], "b": [other, elsewhere], "c": [renamed]}
    assert point_warnings([P("a"), P("b"), P("c")], warned) == {
        first: (2, True), elsewhere: (1, False), renamed: (1, False)}
