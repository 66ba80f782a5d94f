"""A sweep readies the compiled loop once, before its workers start (``sim.compiled.warm``),
only when a point could use it, and says so when that means a compile."""

from __future__ import annotations

import pytest

import sim.compiled.warm as warm
from sim.compiled import jit
from sim.sweep.cli import main
from sim.sweep.runner import ready_compiled_loop, run_local
from sim.sweep.spec import load_sweep
from sweep_helpers import small_sweep


@pytest.fixture
def warm_ups(monkeypatch):
    """Each warm-up the sweep asks for, recorded (the real one, which loads the loop)."""
    calls = []
    real = warm.warm_loop

    def recording():
        calls.append("warm-up")
        return real()

    monkeypatch.setattr(warm, "warm_loop", recording)
    return calls


def _points(tmp_path, **kwargs):
    return load_sweep(small_sweep(tmp_path, **kwargs)).points


def test_the_loop_is_readied_once_before_the_pool_starts(tmp_path, warm_ups):
    points = _points(tmp_path)
    outcomes = []
    run_local(points, lambda point, outcome: outcomes.append(outcome["status"]), workers=2)
    assert len(warm_ups) == 1
    assert outcomes == ["ok"] * len(points)


def test_no_warm_up_when_the_points_run_in_this_process(tmp_path, warm_ups):
    """One worker: the points run here, and the first of them loads or compiles the loop."""
    points = _points(tmp_path)
    run_local(points, lambda point, outcome: None, workers=1)
    assert warm_ups == []


def test_no_warm_up_when_no_point_can_use_the_loop(tmp_path, warm_ups):
    """Every point asks for the protocol path (every built-in policy has a compiled form;
    ``sim.compiled.warm.may_take_compiled_path`` is tested on its own)."""
    path = small_sweep(tmp_path)
    # the helper's [config] table, with one more key
    path.write_text(path.read_text().replace("[config]\n",
                                             "[config]\nengine_path = \"protocol\"\n"))
    points = load_sweep(path).points
    assert ready_compiled_loop(points) is False
    assert warm_ups == []


def test_a_compile_before_the_workers_start_is_said_unless_quiet(tmp_path, capsys,
                                                                  monkeypatch):
    from fakes import COMPILE_LINE, announcing_a_compile

    monkeypatch.setattr(warm, "warm_loop", announcing_a_compile(lambda: True))
    path = small_sweep(tmp_path)
    assert main([str(path), "--workers", "2", "--out", str(tmp_path / "quiet"),
                 "--quiet", "--no-plots"]) == 0
    assert "compiling" not in capsys.readouterr().err
    assert main([str(path), "--workers", "2", "--out", str(tmp_path / "said"),
                 "--no-plots"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert f"adaspec-sweep: {COMPILE_LINE}" in err
    assert jit._NOTICES == []


def test_a_failed_warm_up_leaves_the_points_to_run_as_before(tmp_path, monkeypatch):
    def failing():
        raise OSError("no space left on device")

    monkeypatch.setattr(warm, "warm_loop", failing)
    points = _points(tmp_path)
    assert ready_compiled_loop(points) is False
    outcomes = []
    run_local(points, lambda point, outcome: outcomes.append(outcome["status"]), workers=2)
    assert outcomes == ["ok"] * len(points)
