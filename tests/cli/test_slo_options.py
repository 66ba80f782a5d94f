"""The SLO options of adaspec-sim and adaspec-realrun: one check (``sim.cli_common``) that
refuses a non-finite or non-positive number of milliseconds with one line naming the flag
(exit 2), before anything is loaded; the sweep file's SLO fields refuse the same values."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cli import main as sim_main

ROOT = Path(__file__).resolve().parents[2]
CODE_TRACE = str(ROOT / "traces" / "adaspec" / "code.csv")
BAD = [("--slo-ttft-ms", "nan"), ("--slo-ttft-ms", "inf"), ("--slo-tpot-ms", "-inf"),
       ("--slo-tpot-ms", "0"), ("--slo-ttft-ms", "-5"), ("--slo-tpot-ms", "NaN")]


def _one_line_naming(capsys, flag: str, value: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert flag in err[0] and "millisecond" in err[0] and "second," not in err[0]
    assert value.lower().lstrip("-") in err[0].lower()


@pytest.mark.parametrize("flag, value", BAD)
def test_sim_refuses_non_finite_and_non_positive_slos(capsys, tmp_path, flag, value):
    out = tmp_path / "run"
    code = sim_main(["--trace", CODE_TRACE, "--limit", "5", "--policy", "nospec", "--quiet",
                     "--out", str(out), f"{flag}={value}"])
    assert code == 2
    _one_line_naming(capsys, flag, value)
    assert not out.exists()


@pytest.mark.parametrize("flag, value", BAD)
def test_realrun_refuses_them_the_same_way_before_loading_anything(capsys, tmp_path, flag,
                                                                  value):
    """Checked before torch is imported, so the same line comes with or without torch."""
    from realrun.cli import main as realrun_main
    out = tmp_path / "run"
    code = realrun_main(["--trace", CODE_TRACE, "--policy", "nospec", "--target",
                         "random:tiny-llama", "--method", "ngram", "--out", str(out),
                         "--quiet", f"{flag}={value}"])
    assert code == 2
    _one_line_naming(capsys, flag, value)
    assert not out.exists()


def test_the_check_is_written_once():
    """Both commands read their SLOs through ``sim.cli_common.slos_s_from_args``."""
    import inspect

    import realrun.cli
    import sim.cli
    for module in (sim.cli, realrun.cli):
        source = inspect.getsource(module)
        assert "slos_s_from_args" in source and "slo_ttft_ms <= 0" not in source


def test_good_slos_reach_the_config_in_seconds():
    import argparse

    from sim.cli_common import slos_s_from_args
    assert slos_s_from_args(argparse.Namespace(slo_ttft_ms=1500.0, slo_tpot_ms=25.0)) == (
        1.5, 0.025)
