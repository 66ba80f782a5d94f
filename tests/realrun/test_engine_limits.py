"""``realrun.engine.EngineLimits`` refuses a temperature or SLO that is not a finite number in
range, in one line naming the field (``temperature < 0`` let nan and inf through, and the SLO
check ``> 0`` let inf through); ``adaspec-realrun --temperature`` is refused before torch
loads anything, naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from realrun.engine import EngineLimits  # noqa: E402
from sim.errors import ConfigError  # noqa: E402

pytestmark = pytest.mark.real
INF, NAN = float("inf"), float("nan")
CODE_TRACE = str(Path(__file__).resolve().parents[2] / "traces" / "adaspec" / "code.csv")


@pytest.mark.parametrize("value, shown", [(NAN, "nan"), (INF, "inf"), (-INF, "-inf"),
                                          (-0.5, "-0.5")])
def test_temperature_must_be_finite_and_non_negative(value, shown):
    with pytest.raises(ConfigError) as info:
        EngineLimits(temperature=value)
    assert str(info.value) == f"temperature must be a finite number >= 0, got {shown}"


@pytest.mark.parametrize("field", ["ttft_slo_s", "tpot_slo_s"])
@pytest.mark.parametrize("value, shown", [(INF, "inf"), (NAN, "nan"), (0.0, "0.0"),
                                          (-1.0, "-1.0")])
def test_slos_must_be_finite_numbers_of_seconds_above_zero(field, value, shown):
    with pytest.raises(ConfigError) as info:
        EngineLimits(**{field: value})
    assert str(info.value) == f"{field} (seconds) must be a finite number > 0, got {shown}"


def test_values_in_range_are_kept():
    limits = EngineLimits(temperature=0.0, ttft_slo_s=1e-3, tpot_slo_s=100.0)
    assert (limits.temperature, limits.ttft_slo_s, limits.tpot_slo_s) == (0.0, 1e-3, 100.0)
    assert EngineLimits(temperature=0.8).temperature == 0.8


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_the_option_is_refused_before_anything_loads(capsys, tmp_path, monkeypatch, value):
    import realrun.cli
    from realrun.cli import main

    def no_load(prog):  # the torch requirement is checked after the options
        raise AssertionError("options should have been refused first")

    monkeypatch.setattr(realrun.cli, "require_real_extra", no_load)
    code = main(["--trace", CODE_TRACE, "--policy", "nospec", "--target",
                 "random:tiny-llama", "--method", "ngram", "--out", str(tmp_path / "run"),
                 f"--temperature={value}"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"adaspec-realrun: error: --temperature must be a finite number >= 0, got "
                   f"{float(value)!r}"]
