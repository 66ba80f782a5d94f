"""Validation of policy parameters: every bad value is a one-line ``ConfigError``."""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from sim.errors import ConfigError

MAX_DRAFT_TOKENS = 64
E = TypeVar("E", bound=Enum)


def check_k(k: object, what: str = "K", low: int = 1) -> int:
    """A draft-length parameter: an int in [low, MAX_DRAFT_TOKENS]."""
    if isinstance(k, bool) or not isinstance(k, int) or not low <= k <= MAX_DRAFT_TOKENS:
        raise ConfigError(f"{what} must be an integer in {low}..{MAX_DRAFT_TOKENS}, got {k!r}")
    return k


def check_positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be an integer >= 1, got {value!r}")
    return value


def check_unit(value: object, what: str, open_low: bool = False) -> float:
    """A number in [0, 1] (``open_low``: in (0, 1])."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{what} must be a number, got {value!r}")
    v = float(value)
    if not (0.0 < v <= 1.0 if open_low else 0.0 <= v <= 1.0):
        raise ConfigError(f"{what} must be in {'(0, 1]' if open_low else '[0, 1]'}, got {value!r}")
    return v


def check_enum(cls: type[E], value: object, what: str) -> E:
    """A member of ``cls`` given as the member or its (case-insensitive) value."""
    if isinstance(value, cls):
        return value
    try:
        return cls(str(value).strip().lower())
    except ValueError:
        allowed = ", ".join(str(m.value) for m in cls)
        raise ConfigError(f"{what} must be one of {allowed}, got {value!r}") from None
