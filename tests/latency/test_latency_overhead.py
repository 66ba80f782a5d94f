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
        with pytest.raises(ConfigError):
            parse_pass_overheads_ms(bad)


def test_sim_config_field_reaches_the_model() -> None:
    base = build_latency(SimConfig())
    zero = build_latency(SimConfig(pass_overheads_s=(0.0, 0.0, 0.0)))
    assert base.target_verify_s(1, 1, 100) - zero.target_verify_s(1, 1, 100) == \
        pytest.approx(4e-3)
    assert base.draft_step_s(1, 100) - zero.draft_step_s(1, 100) == pytest.approx(1e-3)
    assert zero.draft_overhead_s == 0.0
    # A sweep spec's JSON list becomes the same (hashable) tuple.
    assert SimConfig(pass_overheads_s=[0, 0, 0]) == SimConfig(pass_overheads_s=(0.0, 0.0, 0.0))
    with pytest.raises(ConfigError):
        SimConfig(pass_overheads_s=(1.0, -1.0, 0.0))
    with pytest.raises(ConfigError):
        SimConfig(pass_overheads_s=(1.0, 0.0))


def test_a_calibrated_profile_keeps_its_measured_overhead(tmp_path) -> None:
    profile = ROOT / "calibrate" / "profiles" / "cpu-2core-grid.json"
    with pytest.raises(ConfigError, match="calibrated profile"):
        build_latency(SimConfig(profile=str(profile), pass_overheads_s=(0.0, 0.0, 0.0)))


def test_cli_flag() -> None:
    args = build_parser().parse_args(["--trace", "t.csv", "--pass-overhead-ms", "3,0.8"])
    assert config_from_args(args).pass_overheads_s == pytest.approx((3e-3, 0.8e-3, 1.5e-3))
    args = build_parser().parse_args(["--trace", "t.csv"])
    assert config_from_args(args).pass_overheads_s is None
