"""Acceptance JSON files: round trip, and every kind of bad file is one-line InputError."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sim.acceptance.io import (
    ACCEPTANCE_SCHEMA_VERSION,
    load_acceptance,
    load_acceptance_params,
    params_to_dict,
    save_acceptance,
)
from sim.acceptance.model import ParametricAcceptance
from sim.acceptance.presets import make_acceptance
from sim.errors import InputError


def test_round_trip_preserves_params_and_draws(tmp_path):
    model = make_acceptance("spec-bench-vicuna-68m")
    path = save_acceptance(model, tmp_path / "sub" / "acc.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == ACCEPTANCE_SCHEMA_VERSION and data["kind"] == "acceptance"
    loaded = load_acceptance(path)
    assert params_to_dict(loaded.params) == params_to_dict(model.params)
    # via make_acceptance too, and the same seed gives the same draws
    again = make_acceptance(str(path))
    assert isinstance(again, ParametricAcceptance)
    levels = np.array([0.3, 0.6, 0.9])
    a = model.draw(levels, 5, np.random.default_rng(4))
    b = again.draw(levels, 5, np.random.default_rng(4))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def _write(tmp_path, content) -> str:
    path = tmp_path / "acc.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _good() -> dict:
    return {"schema_version": 1, "kind": "acceptance", "source": "unit test",
            "categories": {"": {"mean": 0.6, "concentration": 10}},
            "calibration": {"points": [[0, 0], [1, 1]], "confidence_concentration": 2.0},
            "position_decay": [1.0, 0.9]}


def test_minimal_file_loads_with_defaults(tmp_path):
    params = load_acceptance_params(_write(tmp_path, _good()))
    assert params.name == "acc" and params.position_decay == (1.0, 0.9)
    doc = _good()
    del doc["position_decay"]
    doc["calibration"] = {"points": [[0, 0.1], [1, 0.9]]}
    doc["meta"] = {"samples": 123}
    params = load_acceptance_params(_write(tmp_path, doc))
    assert params.position_decay == () and params.meta == {"samples": 123}


def _mutations():
    def drop(key):
        def f(d):
            del d[key]
            return d
        return f

    def setv(key, value):
        def f(d):
            d[key] = value
            return d
        return f

    return [
        drop("schema_version"), drop("categories"), drop("calibration"), drop("source"),
        setv("schema_version", 2), setv("schema_version", "1"), setv("kind", "profile"),
        setv("extra", 1), setv("categories", {}), setv("categories", {"x": {"mean": 0.5}}),
        setv("categories", {"": {"mean": 1.5}}), setv("categories", {"": {"mean": "high"}}),
        setv("categories", {"": {"mean": 0.5, "sd": 1}}), setv("categories", []),
        setv("calibration", {"points": [[0, 0.9], [1, 0.1]]}),
        setv("calibration", {"points": [[0, 0], [0.5]]}),
        setv("calibration", {"points": [[0, 0], [1, 1]], "confidence_concentration": -1}),
        setv("calibration", [[0, 0], [1, 1]]),
        setv("position_decay", [1.0, 0.0]), setv("position_decay", "flat"),
        setv("meta", []), setv("name", ""),
    ]


@pytest.mark.parametrize("mutate", _mutations())
def test_bad_content_is_one_line_input_error(tmp_path, mutate):
    path = _write(tmp_path, mutate(_good()))
    with pytest.raises(InputError) as err:
        load_acceptance(path)
    msg = str(err.value)
    assert "\n" not in msg and path in msg


@pytest.mark.parametrize("text", ["", "   \n", '{"schema_version": 1, "kind": "acc', "[1, 2", "nan"])
def test_empty_or_truncated_file(tmp_path, text):
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as err:
        load_acceptance(path)
    assert "\n" not in str(err.value) and path in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_acceptance(tmp_path / "nope.json")
    with pytest.raises(InputError):
        make_acceptance(str(tmp_path / "nope.json"))
