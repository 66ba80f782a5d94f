"""How the benchmarks print a value measured over several seeds: its mean and its
lowest..highest (imported by the scripts beside it; ``python benchmarks/X.py`` puts this
folder on ``sys.path``)."""

from __future__ import annotations

from typing import Sequence


def span(values: Sequence[float], signed: bool = False) -> str:
    """'low..high' at one decimal, or one number when they agree there."""
    form = "{:+.1f}" if signed else "{:.1f}"
    low, high = form.format(min(values)), form.format(max(values))
    return low if low == high else f"{low}..{high}"


def mean_span(values: Sequence[float], signed: bool = False) -> str:
    """'mean (low..high)' at one decimal; just the mean where every seed gives the same value
    at one decimal (a single seed included)."""
    form = "{:+.1f}" if signed else "{:.1f}"
    mean = form.format(sum(values) / len(values))
    spread = span(values, signed)
    return mean if ".." not in spread else f"{mean} ({spread})"
