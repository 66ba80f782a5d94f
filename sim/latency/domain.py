"""Queries of a measured latency model outside what it measured, said once and plainly.

A calibrated profile (``sim.latency.profile``) answers a query outside its measured domain by
extrapolating its fitted line. Two kinds of query reach it, and they are reported apart:

* the run's own pricing (the ground truth pricing a pass, or a policy asking the truth):
  ``OutsideDomainWarning``, once per operation, naming the first such query
  (``ProfileLatency.check_domain``);
* a table estimator tabulating the model at every graph size and context bucket
  (``TableEstimator.from_model``), points a run mostly never visits. Inside ``tabulating()``
  those queries are recorded, not checked: they neither warn as the run's nor use up its
  once-per-operation warning; ``DomainProbe.report`` then says once per model, in one
  ``TableExtrapolationWarning``, where the table extrapolates.

Both are ``sim.errors.AdaSpecWarning``s, which the commands print as one line.
"""

from __future__ import annotations

import warnings
import weakref
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

from sim.errors import AdaSpecWarning


class OutsideDomainWarning(AdaSpecWarning, RuntimeWarning):
    """A latency model priced a query of the run outside its measured domain."""


class TableExtrapolationWarning(AdaSpecWarning, RuntimeWarning):
    """The policies' latency table reads a latency model outside its measured domain."""


_PROBE: ContextVar["DomainProbe | None"] = ContextVar("latency_domain_probe", default=None)
#: models whose table extrapolation was reported (once per model, not once per table built)
_REPORTED: "weakref.WeakSet" = weakref.WeakSet()


class DomainProbe:
    """What a tabulation asked each model: queries, how many fell outside, and per operation
    and variable the measured range and the extremes asked outside it."""

    def __init__(self) -> None:
        # id(model) -> [model, queries, outside, {op: {var: [lo, hi, least, most]}}]
        self._models: dict[int, list] = {}

    def record(self, model, op: str, outside: list[tuple[str, float, float, float]]) -> None:
        """One query of ``model``'s ``op``; ``outside``: its (variable, value, lo, hi) that
        lie outside the measured range (empty: inside)."""
        entry = self._models.setdefault(id(model), [model, 0, 0, {}])
        entry[1] += 1
        entry[2] += bool(outside)
        for var, value, lo, hi in outside:
            extent = entry[3].setdefault(op, {}).setdefault(var, [lo, hi, value, value])
            extent[2] = min(extent[2], value)
            extent[3] = max(extent[3], value)

    def report(self, stacklevel: int = 2) -> None:
        """One ``TableExtrapolationWarning`` per model the table read outside its domain,
        unless that model's was already given."""
        for model, queries, outside, extents in self._models.values():
            if not outside or model in _REPORTED:
                continue
            _REPORTED.add(model)
            parts = []
            for op, by_var in extents.items():
                ranges = ", ".join(f"{var} {_asked(lo, hi, least, most)} (measured "
                                   f"{lo:g}..{hi:g})"
                                   for var, (lo, hi, least, most) in by_var.items())
                parts.append(f"{op}: {ranges}")
            name = getattr(model, "name", type(model).__name__)
            warnings.warn(TableExtrapolationWarning(
                f"latency profile {name}: the policies' latency table reads it outside its "
                f"measured domain at {outside} of {queries} points ({'; '.join(parts)}); the "
                "policies' estimates there extrapolate its fitted lines (the simulated passes "
                "are checked on their own)"), stacklevel=stacklevel + 1)


def _asked(lo: float, hi: float, least: float, most: float) -> str:
    if least < lo and most > hi:
        return f"{least:g}..{most:g}"
    return f"up to {most:g}" if most > hi else f"down to {least:g}"


@contextmanager
def tabulating() -> Iterator[DomainProbe]:
    """Inside, measured models record their queries in the yielded probe instead of checking
    them (a table estimator's grid, not the run's queries)."""
    probe = DomainProbe()
    token = _PROBE.set(probe)
    try:
        yield probe
    finally:
        _PROBE.reset(token)


def current_probe() -> DomainProbe | None:
    """The probe of the enclosing ``tabulating()`` block (None: queries are the run's)."""
    return _PROBE.get()
