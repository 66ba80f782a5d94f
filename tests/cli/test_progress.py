"""Progress: periodic one-line updates off a terminal, a bar on one, nothing with --quiet."""

from __future__ import annotations

import io
from pathlib import Path

from sim.cli import main
from sim.progress import BarProgress, LineProgress, make_progress

CODE = str(Path(__file__).resolve().parents[2] / "traces" / "adaspec" / "code.csv")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_line_progress_prints_at_most_once_per_interval():
    stream, clock = io.StringIO(), Clock()
    progress = LineProgress("adaspec:8", 600.0, stream, interval_s=30.0, clock=clock)
    clock.now = 10.0
    progress.update(100.0)
    assert stream.getvalue() == ""
    clock.now = 31.0
    progress.update(120.0)
    clock.now = 40.0
    progress.update(150.0)
    clock.now = 62.0
    progress.update(700.0)
    progress.close()
    assert stream.getvalue().splitlines() == [
        "adaspec-sim: adaspec:8: 120/600 s of the trace (20 %), 31 s elapsed",
        "adaspec-sim: adaspec:8: 600/600 s of the trace (100 %), 62 s elapsed"]
    assert "\r" not in stream.getvalue()


def test_a_bar_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(make_progress("p", 10.0, io.StringIO()), LineProgress)
    bar = make_progress("p", 10.0, Tty())
    assert isinstance(bar, BarProgress)
    bar.close()


def test_quiet_prints_nothing_and_default_keeps_stderr_to_lines(capsys):
    assert main(["--trace", CODE, "--limit", "10", "--policy", "nospec", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["--trace", CODE, "--limit", "10", "--policy", "nospec"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "nospec: simulated in" in err


def test_a_compile_the_cache_cannot_spare_is_announced_unless_quiet(capsys, monkeypatch):
    """A cold compile takes minutes (``sim.compiled.jit.compile_notices``): the command says
    so on stderr before it starts, as ``adaspec-sim: ...``; ``--quiet`` says nothing."""
    import sim.run
    from fakes import COMPILE_LINE, announcing_a_compile
    from sim.compiled import jit

    monkeypatch.setattr(sim.run, "simulate", announcing_a_compile(sim.run.simulate))
    assert main(["--trace", CODE, "--limit", "5", "--policy", "nospec", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["--trace", CODE, "--limit", "5", "--policy", "nospec"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"adaspec-sim: {COMPILE_LINE}"
    assert jit._NOTICES == []
