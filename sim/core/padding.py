"""CUDA-graph batch padding: decode passes run at the smallest captured size >= their size."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from sim.errors import ConfigError


MAX_GRAPH_SIZE = 16_384
"""Largest captured size (twice the default token budget; vLLM caps its captures at the
budget): the policies' latency tables hold a row per size, so 65,536 takes seconds to build
and a billion never finishes."""


def default_graph_sizes(max_size: int = 1024) -> tuple[int, ...]:
    """vLLM-style captured sizes: 1, 2, 4, 8, 16, 32, then multiples of 32 up to ``max_size``
    (1..MAX_GRAPH_SIZE).

    With the default maximum of 1024 this is the 37 sizes AdaSpec profiled.
    """
    if isinstance(max_size, bool) or not 1 <= max_size <= MAX_GRAPH_SIZE:
        raise ConfigError(f"graph max size must be in 1..{MAX_GRAPH_SIZE}, got {max_size}")
    sizes = [s for s in (1, 2, 4, 8, 16, 32) if s <= max_size]
    sizes += list(range(64, max_size + 1, 32))
    return tuple(sizes)


def size_positions(sizes: tuple[int, ...]) -> list[int]:
    """``positions[n]`` = index in ``sizes`` (increasing) of the smallest size >= n, for
    n = 0..sizes[-1] (n = 0 maps to 0): O(1) padding lookups on the simulator's hot path."""
    positions = [0] * (sizes[-1] + 1)
    j = 0
    for n in range(1, sizes[-1] + 1):
        while sizes[j] < n:
            j += 1
        positions[n] = j
    return positions


@dataclass(frozen=True)
class GraphPadding:
    """Padding rule; ``enabled=False`` runs every pass at its exact size (eager mode)."""

    sizes: tuple[int, ...] = default_graph_sizes()
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.sizes or list(self.sizes) != sorted(set(self.sizes)) or self.sizes[0] < 1:
            raise ConfigError("graph sizes must be strictly increasing positive integers")
        # pad() runs several times per simulated iteration: a list lookup instead of a bisect.
        # _table[n] = pad(n) for 0 <= n <= max size (not a dataclass field: no effect on eq).
        if self.enabled:
            table = [self.sizes[j] for j in size_positions(self.sizes)]
            table[0] = 0
        else:
            table = list(range(self.sizes[-1] + 1))
        object.__setattr__(self, "_table", table)

    @property
    def max_size(self) -> int:
        return self.sizes[-1]

    def pad(self, n: int) -> int:
        """Size the pass runs at: the smallest captured size >= n, or n itself above the
        largest size (eager) or when padding is disabled."""
        if 0 < n < len(self._table):
            return self._table[n]
        return n

    @property
    def top_step(self) -> int:
        """Spacing of the largest captured sizes (32 for the defaults; the largest size itself
        when there is only one)."""
        sizes = self.sizes
        return sizes[-1] - sizes[-2] if len(sizes) > 1 else sizes[-1]

    def next_smaller(self, n: int) -> int:
        """The largest captured size strictly below ``pad(n)`` (0 if none).

        Above the largest size (eager passes) the sizes continue in steps of ``top_step``:
        the answer is the largest ``max_size + j * top_step`` below ``n``, so a pass of 1100
        tokens trims to 1088, not 1024 (the AdaSpec artifact's ``n - ((n - 1) // 32) * 32``)."""
        top = self.sizes[-1]
        if self.enabled and n > top:
            step = self.top_step
            return top + (n - 1 - top) // step * step
        padded = self.pad(n)
        i = bisect.bisect_left(self.sizes, padded)
        return self.sizes[i - 1] if i > 0 else 0
