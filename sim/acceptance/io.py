"""Reading and writing acceptance-model files (schema-versioned JSON).

Layout (``schema_version`` 1)::

    {
      "schema_version": 1,
      "kind": "acceptance",
      "name": "spec-bench-vicuna-68m",            # optional; defaults to the file stem
      "source": "where the numbers come from",
      "categories": {"": {"mean": 0.55, "concentration": 12.0},
                     "translation": {"mean": 0.38, "concentration": null}},
      "calibration": {"points": [[0.0, 0.02], [1.0, 0.95]],
                      "confidence_concentration": 2.0},
      "position_decay": [1.0, 0.986, ...],        # optional
      "meta": {...}                               # optional, free-form (fit errors, counts)
    }

``mean`` is a category's mean per-token acceptance level, ``concentration`` the Beta
concentration of per-request levels (null: no spread); see ``sim.acceptance.model``. Any
problem with a file is one ``InputError`` line naming the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sim.acceptance.model import (
    AcceptanceParams,
    CalibrationCurve,
    CategoryProfile,
    ParametricAcceptance,
)
from sim.errors import ConfigError, InputError
from sim.jsonfile import read_json_file

ACCEPTANCE_SCHEMA_VERSION = 1
ACCEPTANCE_KIND = "acceptance"
_TOP_KEYS = {"schema_version", "kind", "name", "source", "categories", "calibration",
             "position_decay", "meta"}


def params_to_dict(params: AcceptanceParams) -> dict[str, Any]:
    """The JSON-ready dictionary of ``params`` (inverse of ``params_from_dict``)."""
    return {
        "schema_version": ACCEPTANCE_SCHEMA_VERSION,
        "kind": ACCEPTANCE_KIND,
        "name": params.name,
        "source": params.source,
        "categories": {
            key: {"mean": prof.mean, "concentration": prof.concentration}
            for key, prof in sorted(params.categories.items())
        },
        "calibration": {
            "points": [[x, y] for x, y in params.calibration.points],
            "confidence_concentration": params.confidence_concentration,
        },
        "position_decay": list(params.position_decay),
        "meta": dict(params.meta),
    }


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def params_from_dict(data: Any, *, path: str | Path | None = None,
                     default_name: str = "acceptance") -> AcceptanceParams:
    """Validate a decoded acceptance file; raise ``InputError`` (naming ``path``) if it is bad."""
    where = None if path is None else str(path)
    try:
        if not isinstance(data, dict):
            raise ConfigError("acceptance file must hold a JSON object")
        if "schema_version" not in data:
            raise ConfigError("missing 'schema_version'")
        version = data["schema_version"]
        if version != ACCEPTANCE_SCHEMA_VERSION or isinstance(version, bool):
            raise ConfigError(f"unsupported schema_version {version!r} "
                              f"(this tool reads {ACCEPTANCE_SCHEMA_VERSION})")
        if data.get("kind") != ACCEPTANCE_KIND:
            raise ConfigError(f"'kind' must be {ACCEPTANCE_KIND!r}, got {data.get('kind')!r}")
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(map(repr, unknown))} "
                              f"(put free-form data under 'meta')")
        for key in ("source", "categories", "calibration"):
            if key not in data:
                raise ConfigError(f"missing {key!r}")
        name = data.get("name", default_name)
        if not isinstance(name, str) or not name:
            raise ConfigError("'name' must be a non-empty string")
        if not isinstance(data["source"], str):
            raise ConfigError("'source' must be a string")
        cats_in = data["categories"]
        if not isinstance(cats_in, dict) or not cats_in:
            raise ConfigError("'categories' must be a non-empty object")
        categories = {}
        for key, prof in cats_in.items():
            if not isinstance(prof, dict) or "mean" not in prof or set(prof) - {"mean", "concentration"}:
                raise ConfigError(f"category {key!r} must be {{'mean': ..., 'concentration': ...}}")
            conc = prof.get("concentration")
            categories[key] = CategoryProfile(
                mean=_number(prof["mean"], f"category {key!r} mean"),
                concentration=None if conc is None else _number(conc, f"category {key!r} concentration"))
        cal = data["calibration"]
        if not isinstance(cal, dict) or "points" not in cal \
                or set(cal) - {"points", "confidence_concentration"}:
            raise ConfigError("'calibration' must be {'points': [[p, P(accept|p)], ...], "
                              "'confidence_concentration': ...}")
        points = cal["points"]
        if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2 for p in points):
            raise ConfigError("calibration 'points' must be a list of [confidence, probability] pairs")
        curve = CalibrationCurve(tuple((_number(p[0], "calibration confidence"),
                                        _number(p[1], "calibration probability")) for p in points))
        kappa_t = _number(cal.get("confidence_concentration", 2.0), "confidence_concentration")
        decay = data.get("position_decay", [])
        if not isinstance(decay, list):
            raise ConfigError("'position_decay' must be a list of numbers")
        decay_t = tuple(_number(d, "position_decay entry") for d in decay)
        meta = data.get("meta", {})
        if not isinstance(meta, dict):
            raise ConfigError("'meta' must be an object")
        return AcceptanceParams(name=name, source=data["source"], categories=categories,
                                calibration=curve, confidence_concentration=kappa_t,
                                position_decay=decay_t, meta=meta)
    except ConfigError as exc:
        raise InputError(f"bad acceptance file: {exc}", path=where) from None


def load_acceptance_params(path: str | Path) -> AcceptanceParams:
    """Read and validate an acceptance JSON file."""
    p = Path(path)
    data = read_json_file(p, "acceptance file")
    return params_from_dict(data, path=p, default_name=p.stem)


def load_acceptance(path: str | Path) -> ParametricAcceptance:
    """The acceptance model stored in ``path``."""
    return ParametricAcceptance(load_acceptance_params(path))


def save_acceptance(model: AcceptanceParams | ParametricAcceptance, path: str | Path) -> Path:
    """Write ``model`` (params or a built model) as schema-versioned JSON; return the path."""
    params = model.params if isinstance(model, ParametricAcceptance) else model
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(params_to_dict(params), indent=2) + "\n", encoding="utf-8")
    return p
