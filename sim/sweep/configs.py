"""The ``[config]`` table of a sweep file: SimConfig overrides, each key a value or a list of
values (a grid axis), validated up front -- before any point runs.

A value is checked as ``adaspec-sim`` checks the same option: its type against the SimConfig
field's annotation (what argparse does for the command line), then the SimConfig itself
(ranges, SLOs), then the models it names are built once (unknown GPU or model presets, a
profile that does not load, an unknown acceptance model). Each error is one line naming the
sweep file and the key.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

from sim.errors import AdaSpecError, ConfigError

Resolve = Callable[[str, str], Path]
"""(path as written, key for errors) -> the file found on this machine."""

_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def _field_types() -> dict[str, tuple[set[str], str]]:
    """SimConfig field -> (type names of its annotation, the annotation as written)."""
    from sim.run import SimConfig
    out = {}
    for f in fields(SimConfig):
        text = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        out[f.name] = ({t.strip() for t in text.split("|")}, text)
    return out


def check_value_type(name: str, value: Any, types: set[str], annotation: str) -> None:
    """A TOML value fits a field annotated with ``types`` (int, float, str, bool, None);
    annotations with other types are left to SimConfig. Floats must be finite."""
    if not types <= set(_TYPES) | {"None"}:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"must be a finite number, got {value!r}")
    allowed = tuple(t for name_ in types if name_ in _TYPES for t in _TYPES[name_])
    ok = isinstance(value, allowed) and (isinstance(value, bool) == ("bool" in types))
    if not ok:
        raise ConfigError(f"must be of type {annotation}, got {value!r}")


def _axis_values(value: Any, annotation: str) -> list:
    """A [config] value as its axis: each item of a list is one value, except for a field
    that holds a tuple (``pass_overheads_s``), where a list of numbers is one value (a
    tuple) and a list of such lists is an axis."""
    if not annotation.startswith("tuple["):
        return value if isinstance(value, list) else [value]
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return [tuple(v) for v in value]
    return [tuple(value) if isinstance(value, list) else value]


def config_axes(table: Any, source: str) -> list[tuple[str, list]]:
    """The [config] keys in file order with their values (a scalar is a one-value axis)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [config]: must be a table of SimConfig fields")
    known = _field_types()
    axes = []
    for name, value in table.items():
        where = f"{source}: [config] {name}"
        if name not in known:
            raise ConfigError(f"{where}: unknown SimConfig field (known: "
                              f"{', '.join(sorted(known))})")
        values = _axis_values(value, known[name][1])
        if not values:
            raise ConfigError(f"{where}: must not be empty")
        for item in values:
            if isinstance(item, (dict, list)):
                raise ConfigError(f"{where}: values must be scalars or a list of scalars")
            if isinstance(item, tuple):
                if any(isinstance(x, (dict, list)) for x in item):
                    raise ConfigError(f"{where}: must be a list of numbers or a list of such "
                                      "lists")
                continue  # its numbers are SimConfig's to check (the field's one check)
            try:
                check_value_type(name, item, *known[name])
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        if len(set(values)) != len(values):
            raise ConfigError(f"{where}: has duplicate values {values}")
        axes.append((name, values))
    return axes


def check_config(config, acceptance_cache: dict, uses_draft: bool = True,
                 category: str = "") -> None:
    """Build what a run builds from ``config`` before it simulates: the latency model, the
    KV pool (with draft KV when a swept policy drafts) and the acceptance model (cached by
    name, and checked to know the sweep's ``category``); raises their one-line errors."""
    from sim.run import build_latency, build_scheduler_config
    build_latency(config)
    build_scheduler_config(config, uses_draft=uses_draft)
    if config.acceptance not in acceptance_cache:
        from sim.acceptance.presets import make_acceptance
        acceptance_cache[config.acceptance] = make_acceptance(config.acceptance)
    from sim.acceptance.presets import check_category
    check_category(acceptance_cache[config.acceptance], category)


ConfigRow = tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, str, str, str], ...]]


def expand_configs(table: Any, source: str, resolve: Resolve, uses_draft: bool = True,
                   category: str = "") -> list[ConfigRow]:
    """Every combination of the [config] axes, validated: (sorted overrides, extra inputs),
    where extra inputs are (role, name as written, path found here, sha256), e.g. a profile."""
    from sim.output import file_sha256
    from sim.run import SimConfig

    axes = config_axes(table, source)
    names = [n for n, _ in axes]
    acceptance_cache: dict = {}
    out = []
    for values in itertools.product(*[v for _, v in axes]):
        overrides = dict(zip(names, values))
        extra: list[tuple[str, str, str, str]] = []
        if overrides.get("profile"):
            path = resolve(overrides["profile"], "[config] profile")
            extra.append(("profile", overrides["profile"], str(path), file_sha256(path)))
            overrides["profile"] = str(path)
        label = ", ".join(f"{n} = {v!r}" for n, v in zip(names, values)) or "defaults"
        try:
            check_config(SimConfig(**overrides), acceptance_cache, uses_draft, category)
        except (AdaSpecError, TypeError, ValueError) as exc:
            text = " ".join(str(exc).split())
            raise ConfigError(f"{source}: [config] ({label}): {text}") from None
        out.append((tuple(sorted(overrides.items())), tuple(extra)))
    return out
