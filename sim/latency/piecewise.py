"""The estimator's piecewise-linear building blocks: running maxima (monotone rows and
grids), least-squares tail slopes, and non-decreasing piecewise-linear functions with the
lookup rules (``bisect_right``, ``pwl_eval``) the compiled loop runs too."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from sim.compiled.jit import jitable


def running_max(values: Sequence[float]) -> list[float]:
    out, top = [], -np.inf
    for v in values:
        top = max(top, float(v))
        out.append(top)
    return out


def line_slopes(sizes: Sequence[int], times: np.ndarray, fit_points: int) -> list[float]:
    """Per column of ``times`` (sizes x columns): the least-squares slope (s per unit, >= 0)
    over the last ``fit_points`` sizes; a single size gives the line through the origin."""
    xs = np.asarray(sizes[-fit_points:], dtype=float)
    ys = np.asarray(times, dtype=float)[-fit_points:]
    if len(xs) < 2:
        return np.maximum(ys[-1] / xs[-1], 0.0).tolist()
    return np.maximum(np.polyfit(xs, ys, 1)[0], 0.0).tolist()


def monotone_grid(table: Sequence[Sequence[float]]) -> list[list[float]]:
    """``table`` (sizes x buckets) made non-decreasing along buckets, then along sizes."""
    rows = [running_max(row) for row in table]
    for j in range(len(rows[0])):
        column = running_max([row[j] for row in rows])
        for i, row in enumerate(rows):
            row[j] = column[i]
    return rows


class PiecewiseLinear:
    """Non-decreasing piecewise-linear function: flat below the first knot, ``tail`` slope
    (>= 0) above the last."""

    __slots__ = ("knots", "values", "slopes", "tail")

    def __init__(self, knots: Sequence[float], values: Sequence[float], tail: float) -> None:
        self.knots = [float(x) for x in knots]
        self.values = [float(v) for v in values]
        self.slopes = [(v1 - v0) / (x1 - x0) for x0, x1, v0, v1
                       in zip(self.knots, self.knots[1:], self.values, self.values[1:])]
        self.slopes.append(tail)
        self.tail = tail

    def __call__(self, x: float) -> float:
        return pwl_eval(self.knots, self.values, self.slopes, 0, len(self.knots), x)


@jitable
def bisect_right(a, x, lo, hi):
    """``bisect.bisect_right(a, x, lo, hi)`` (a rule the compiled loop runs too)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@jitable
def pwl_eval(knots, values, slopes, lo, hi, x):
    """A ``PiecewiseLinear`` whose knots, values and slopes (tail last) are
    ``knots[lo:hi]``, ``values[lo:hi]``, ``slopes[lo:hi]``, at ``x``."""
    g = bisect_right(knots, x, lo, hi) - 1
    if g < lo:
        return values[lo]
    return values[g] + slopes[g] * (x - knots[g])
