"""Options of the real-model commands refused before anything loads, in one line, with or
without torch: ``adaspec-realrun --time-scale`` (a finite number > 0: ``inf`` used to pass),
``adaspec-calibrate latency --draft-overhead-ms`` (a finite number >= 0: ``inf`` used to pass,
hours before the profile was written), and the commands' torch requirement itself (one line
where adaspec-calibrate gave an import traceback)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sim.workload.spec import check_non_negative

ROOT = Path(__file__).resolve().parents[2]
CODE_TRACE = str(ROOT / "traces" / "adaspec" / "code.csv")


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-2"])
def test_realrun_time_scale_must_be_finite_and_positive(capsys, tmp_path, value):
    from realrun.cli import main
    code = main(["--trace", CODE_TRACE, "--policy", "nospec", "--target", "random:tiny-llama",
                 "--method", "ngram", "--out", str(tmp_path / "run"), f"--time-scale={value}"])
    assert code == 2
    line = _one_line(capsys)
    assert line.startswith("adaspec-realrun: error: --time-scale must be a finite number > 0")


@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_calibrate_draft_overhead_must_be_finite_and_non_negative(capsys, tmp_path, value):
    from calibrate.cli import main
    code = main(["latency", "--target", "random:tiny-llama", "--draft", "random:tiny-llama-draft",
                 "--out", str(tmp_path / "p.json"), f"--draft-overhead-ms={value}"])
    assert code == 2
    assert _one_line(capsys).startswith(
        "adaspec-calibrate: error: --draft-overhead-ms must be a finite number >= 0")


@pytest.mark.parametrize("command", ["latency", "acceptance", "ngram", "overhead"])
def test_calibrate_without_torch_is_one_line(capsys, tmp_path, command, monkeypatch):
    """Run whether or not torch is installed: where it is, the check is made to find it
    missing (``require_real_extra`` looks the packages up with ``find_spec``)."""
    from calibrate.cli import main
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name in (
        "torch", "transformers") else found(name, *args))
    args = [command, "--target", "random:tiny-llama", "--out", str(tmp_path / "p.json")]
    if command not in ("ngram", "overhead"):
        args += ["--draft", "random:tiny-llama-draft"]
    assert main(args) == 2
    assert "needs torch and transformers" in _one_line(capsys)


def test_check_non_negative():
    assert check_non_negative("x", 0) == 0.0 and check_non_negative("x", 2.5) == 2.5
    for bad in (float("inf"), float("nan"), -1e-9, True, "1"):
        with pytest.raises(Exception, match="x must be a finite number >= 0"):
            check_non_negative("x", bad)
