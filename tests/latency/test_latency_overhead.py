"""The named per-pass overhead: defaults, parsing, the SimConfig field and the CLI flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cli import build_parser, config_from_args
from sim.errors import ConfigError
from sim.latency.overhead import (DEFAULT_DRAFT_OVERHEAD_S, DEFAULT_DRAFT_STEP_OVERHEAD_S,
                                  DEFAULT_TARGET_OVERHEAD_S, PassOverheads,
                                  parse_pass_overheads_ms)
from sim.run import SimConfig, build_latency

ROOT = Path(__file__).resolve().parents[2]


def test_defaults() -> None:
    assert PassOverheads() == PassOverheads(4e-3, 1e-3, 1.5e-3)
    assert (DEFAULT_TARGET_OVERHEAD_S, DEFAULT_DRAFT_STEP_OVERHEAD_S,
            DEFAULT_DRAFT_OVERHEAD_S) == (4e-3, 1e-3, 1.5e-3)


def test_parse() -> None:
    assert parse_pass_overheads_ms("2") == pytest.approx((2e-3, 1e-3, 1.5e-3))
    assert parse_pass_overheads_ms("2, 0.5") == pytest.approx((2e-3, 0.5e-3, 1.5e-3))
    assert parse_pass_overheads_ms("0,0,0") == (0.0, 0.0, 0.0)
    for bad in ("", "a", "1,,2", "1,2,3,4", "-1", "nan", "inf"):
        with pytest.raises(ConfigError, match="^--pass-overhead-ms .*millisecond"):
            parse_pass_overheads_ms(bad)
    with pytest.raises(ConfigError, match=r"^pass overheads draft step \(seconds\)"):
        PassOverheads(4e-3, float("nan"))


def test_sim_config_field_reaches_the_model() -> None:
    base = build_latency(SimConfig())
    zero = build_latency(SimConfig(pass_overheads_s=(0.0, 0.0, 0.0)))
    assert base.target_verify_s(1, 1, 100) - zero.target_verify_s(1, 1, 100) == \
        pytest.approx(4e-3)
    assert base.draft_step_s(1, 100) - zero.draft_step_s(1, 100) == pytest.approx(1e-3)
    assert zero.draft_overhead_s == 0.0
    # A sweep spec's JSON list becomes the same (hashable) tuple.
    assert SimConfig(pass_overheads_s=[0, 0, 0]) == SimConfig(pass_overheads_s=(0.0, 0.0, 0.0))
    with pytest.raises(ConfigError, match=r"^pass_overheads_s draft step \(seconds\) must be "
                                          r"a finite number >= 0, got -1.0$"):
        SimConfig(pass_overheads_s=(1.0, -1.0, 0.0))
    with pytest.raises(ConfigError, match=r"^pass_overheads_s must be 3 numbers of seconds "
                                          r"\(target pass, draft step, drafting iteration\), "
                                          r"got \(1.0, 0.0\)$"):
        SimConfig(pass_overheads_s=(1.0, 0.0))
    with pytest.raises(ConfigError, match="must be 3 numbers of seconds"):
        SimConfig(pass_overheads_s=0.004)  # a scalar: was "object of type 'float' has no len()"


def test_a_calibrated_profile_keeps_its_measured_overhead(tmp_path) -> None:
    profile = ROOT / "calibrate" / "profiles" / "cpu-2core-grid.json"
    with pytest.raises(ConfigError, match="calibrated profile"):
        build_latency(SimConfig(profile=str(profile), pass_overheads_s=(0.0, 0.0, 0.0)))


def test_cli_flag() -> None:
    args = build_parser().parse_args(["--trace", "t.csv", "--pass-overhead-ms", "3,0.8"])
    assert config_from_args(args).pass_overheads_s == pytest.approx((3e-3, 0.8e-3, 1.5e-3))
    args = build_parser().parse_args(["--trace", "t.csv"])
    assert config_from_args(args).pass_overheads_s is None


MS_ERRORS = [
    ("nan", "--pass-overhead-ms target pass (milliseconds) must be a finite number >= 0, "
            "got nan"),
    ("inf", "--pass-overhead-ms target pass (milliseconds) must be a finite number >= 0, "
            "got inf"),
    ("-1", "--pass-overhead-ms target pass (milliseconds) must be a finite number >= 0, "
           "got -1.0"),
    ("4,-inf", "--pass-overhead-ms draft step (milliseconds) must be a finite number >= 0, "
               "got -inf"),
    ("4,1,nan", "--pass-overhead-ms drafting iteration (milliseconds) must be a finite number "
                ">= 0, got nan"),
    ("1e400", "--pass-overhead-ms target pass (milliseconds) must be a finite number >= 0, "
              "got inf"),
    ("1,2,3,4", "--pass-overhead-ms must be TARGET_MS[,DRAFT_STEP_MS[,DRAFTING_MS]] (1 to 3 "
                "numbers of milliseconds), got '1,2,3,4'"),
    ("1,,2", "--pass-overhead-ms must be TARGET_MS[,DRAFT_STEP_MS[,DRAFTING_MS]] (1 to 3 "
             "numbers of milliseconds), got '1,,2'"),
    ("a", "--pass-overhead-ms must be numbers of milliseconds, got 'a'"),
]


@pytest.mark.parametrize("value, message", MS_ERRORS)
def test_the_option_refuses_bad_values_naming_itself_and_milliseconds(capsys, tmp_path, value,
                                                                     message) -> None:
    """The option's errors name the option and milliseconds (they named the dataclass field
    ``target_s`` and gave the value in seconds, ``got -0.001`` for ``-1``)."""
    from sim.cli import main
    out = tmp_path / "run"
    code = main(["--trace", str(ROOT / "traces" / "adaspec" / "code.csv"), "--limit", "5",
                 "--policy", "nospec", "--quiet", "--out", str(out),
                 f"--pass-overhead-ms={value}"])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [f"adaspec-sim: error: {message}"]
    assert not out.exists()


@pytest.mark.parametrize("value, message", [
    ("[0.004, nan, 0.001]", "pass_overheads_s draft step (seconds) must be a finite number >= "
                            "0, got nan"),
    ("[inf, 0, 0]", "pass_overheads_s target pass (seconds) must be a finite number >= 0, "
                    "got inf"),
    ("[-0.001, 0, 0]", "pass_overheads_s target pass (seconds) must be a finite number >= 0, "
                       "got -0.001"),
    ("[0.004, 0.001]", "pass_overheads_s must be 3 numbers of seconds (target pass, draft "
                       "step, drafting iteration), got (0.004, 0.001)"),
    ("0.004", "pass_overheads_s must be 3 numbers of seconds (target pass, draft step, "
              "drafting iteration), got 0.004"),
    ("[[0.004, 0, 0], [0, true, 0]]", "pass_overheads_s draft step (seconds) must be a finite "
                                      "number >= 0, got True"),
    ("[0.004, [1], 0]", "[config] pass_overheads_s: must be a list of numbers or a list of such "
                        "lists"),
])
def test_a_sweep_refuses_bad_values_naming_the_field_and_seconds(capsys, tmp_path, value,
                                                                 message) -> None:
    from sim.sweep.cli import main
    (tmp_path / "t.csv").write_text("arrival_s,prompt_tokens,output_tokens\n0.0,10,5\n")
    sweep = tmp_path / "s.toml"
    sweep.write_text(f'[sweep]\ntraces = ["t.csv"]\npolicies = ["nospec"]\n\n[config]\n'
                     f"pass_overheads_s = {value}\n")
    assert main([str(sweep), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"adaspec-sweep: error: {sweep}: [config]")
    assert err[0].endswith(message) and "target_s" not in err[0]
    assert not (tmp_path / "out").exists()
