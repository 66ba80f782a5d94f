"""The policies' coarse view of latency: a table over CUDA-graph sizes x context buckets,
read so that the prediction is monotone by construction (DESIGN.md §4).

AdaSpec's artifact profiles the target and draft at each captured graph size (37 sizes) and a
handful of context lengths (5 buckets) and looks latencies up in that table.  ``TableEstimator``
reproduces that view on top of any ``LatencyModel`` (normally the simulator's ground truth), so
the estimation error a real deployment has is part of what is simulated.  The table holds, per
size S and bucket c, ``target_verify_s(S, S, c * S)`` (S one-token sequences with c cached
tokens each) and ``draft_step_s(S, c * S)``.

Reading it (both passes alike):

* a query is keyed on the padded size S (the smallest size >= the pass's tokens) and on the
  *KV tokens the pass reads* (``context_tokens``): row S holds the pass at K = c * S read
  positions, so a verification pass over B sequences x (k + 1) tokens that reads each
  sequence's KV once is priced like a decode pass of S rows reading the same K positions;
* between buckets the row is interpolated linearly in K (rounding K down to a bucket made the
  prediction fall as k grew: at B = 64, L = 1300 it went 32.8, 32.9, 27.7, ... ms for
  k = 0, 1, 2 -- a jagged goodput curve that stopped AdaSpec's greedy drafter at a local peak);
  below the smallest bucket the row is flat; above the largest it continues with its last
  segment's slope (``extrapolate_context=False``: flat);
* monotone by construction: the table is first made non-decreasing along buckets and sizes
  (running maxima; a no-op on a roofline, a guard against a noisy calibrated profile), then
  every row is evaluated on one common grid of K values (the union of all rows' knots c * S)
  and made non-decreasing across sizes at every grid point.  All rows then interpolate
  between the same K knots with the same weights, so the prediction is non-decreasing in S at
  fixed K and in K at fixed S: more draft tokens, a larger batch or a longer context never
  predicts a faster pass, and a k > 0 plan never costs less than plain decoding;
* above the largest size (eager passes) each grid point g continues as a straight line in S:
  slope by least squares over the ``fit_points`` largest sizes (clamped at >= 0), anchored at
  the largest size. A line at small K (compute-bound, steep) can overtake one at larger K
  (memory-bound, flat) far out, so grid point g takes the upper envelope of the lines of all
  grid points <= g (a few lines survive: precomputed); interpolating between envelopes keeps
  the prediction non-decreasing in S and in K;
* prefill queries go to the underlying model unchanged; ``draft_overhead_s`` is the model's.

Queries cost a list index, a bisect over the K grid (<= 186 knots) and a few float operations.
Error against the truth over a grid: docs/estimator.md (``benchmarks/estimator_error.py``).
"""

from __future__ import annotations

import bisect
from typing import Sequence

import numpy as np

from sim.core.padding import GraphPadding, size_positions
from sim.errors import ConfigError
from sim.latency.base import LatencyModel

DEFAULT_CONTEXT_BUCKETS: tuple[int, ...] = (1, 256, 512, 1024, 2048)
DEFAULT_FIT_POINTS = 8


def _running_max(values: Sequence[float]) -> list[float]:
    out, top = [], -np.inf
    for v in values:
        top = max(top, float(v))
        out.append(top)
    return out


def _line_slopes(sizes: Sequence[int], times: np.ndarray, fit_points: int) -> list[float]:
    """Per column of ``times`` (sizes x columns): the least-squares slope (s per token, >= 0)
    over the last ``fit_points`` sizes; a single size gives the line through the origin."""
    xs = np.asarray(sizes[-fit_points:], dtype=float)
    ys = times[-fit_points:]
    if len(xs) < 2:
        return (ys[-1] / xs[-1]).tolist()
    return np.maximum(np.polyfit(xs, ys, 1)[0], 0.0).tolist()


class _MonotoneSurface:
    """t(S, K) of one pass kind: rows per size on a common K grid (see the module doc)."""

    __slots__ = ("grid", "rows", "slopes", "tail", "eager", "max_size", "index")

    @staticmethod
    def _envelopes(intercepts: Sequence[float], slopes: Sequence[float]
                   ) -> list[tuple[tuple[float, float], ...]]:
        """Per g, the lines (intercept, slope) of grid points <= g that are the maximum
        somewhere on x >= 0 (intercepts are non-decreasing in g)."""
        out: list[tuple[tuple[float, float], ...]] = []
        hull: list[tuple[float, float]] = []
        for a, b in zip(intercepts, slopes):
            # the new line has the highest intercept: it dominates every line no steeper
            lines = [(a, b)] + sorted((ln for ln in hull if ln[1] > b), key=lambda ln: ln[1])
            kept: list[tuple[float, float]] = []
            for line in lines:  # slopes increasing: drop lines never on top for x >= 0
                while len(kept) >= 2:
                    (a1, b1), (a2, b2) = kept[-2], kept[-1]
                    if (a1 - line[0]) * (b2 - b1) <= (a1 - a2) * (line[1] - b1):
                        kept.pop()  # line overtakes kept[-2] no later than kept[-1] does
                    else:
                        break
                kept.append(line)
            hull = kept
            out.append(tuple(hull))
        return out

    def __init__(self, sizes: Sequence[int], buckets: Sequence[int],
                 table: Sequence[Sequence[float]], fit_points: int, extrapolate: bool) -> None:
        n_sizes = len(sizes)
        # non-decreasing along buckets (per size), then along sizes (per bucket)
        cols = [_running_max([table[j][i] for j in range(len(buckets))]) for i in range(n_sizes)]
        for j in range(len(buckets)):
            fixed = _running_max([cols[i][j] for i in range(n_sizes)])
            for i in range(n_sizes):
                cols[i][j] = fixed[i]
        grid = sorted({0} | {s * c for s in sizes for c in buckets})
        rows, tails = [], []
        for i, s in enumerate(sizes):
            knots = [s * c for c in buckets]
            values = cols[i]
            tail = 0.0
            if extrapolate and len(knots) > 1 and knots[-1] > knots[-2]:
                tail = max(0.0, (values[-1] - values[-2]) / (knots[-1] - knots[-2]))
            row = np.interp(grid, knots, values)  # flat outside the knots ...
            beyond = np.asarray(grid, dtype=float) > knots[-1]
            row[beyond] = values[-1] + tail * (np.asarray(grid, dtype=float)[beyond] - knots[-1])
            rows.append(row)  # ... except above the last, where the last slope continues
            tails.append(tail)
        stacked = np.maximum.accumulate(np.vstack(rows), axis=0)  # non-decreasing in S
        self.grid = [int(g) for g in grid]
        self.rows = [r.tolist() for r in stacked]
        gaps = np.diff(np.asarray(grid, dtype=float))
        self.slopes = [(np.diff(r) / gaps).tolist() + [0.0] for r in stacked]
        self.tail = _running_max(tails)
        self.eager = self._envelopes(stacked[-1].tolist(), _line_slopes(sizes, stacked, fit_points))
        self.max_size = sizes[-1]
        self.index = size_positions(tuple(sizes))

    def __call__(self, tokens: int, kv_tokens: float) -> float:
        grid = self.grid
        g = bisect.bisect_right(grid, kv_tokens) - 1
        if g < 0:
            g = 0
        last = g == len(grid) - 1
        if tokens > self.max_size:
            extra = tokens - self.max_size
            lo = max([a + b * extra for a, b in self.eager[g]])
            if last:
                return lo + self.tail[-1] * (kv_tokens - grid[g])
            hi = max([a + b * extra for a, b in self.eager[g + 1]])
            return lo + (hi - lo) * (kv_tokens - grid[g]) / (grid[g + 1] - grid[g])
        i = self.index[tokens]
        if last:
            return self.rows[i][g] + self.tail[i] * (kv_tokens - grid[g])
        return self.rows[i][g] + self.slopes[i][g] * (kv_tokens - grid[g])


class TableEstimator:
    """Table-lookup latency estimator implementing ``LatencyModel`` (see the module doc)."""

    __slots__ = ("base", "sizes", "context_buckets", "verify_table", "draft_table",
                 "extrapolate_context", "_verify", "_draft", "_draft_overhead_s")

    def __init__(self, base: LatencyModel, sizes: Sequence[int], context_buckets: Sequence[int],
                 verify_table: Sequence[Sequence[float]],
                 draft_table: Sequence[Sequence[float]] | None,
                 fit_points: int = DEFAULT_FIT_POINTS, extrapolate_context: bool = True) -> None:
        sizes = tuple(int(s) for s in sizes)
        buckets = tuple(int(c) for c in context_buckets)
        if not sizes or list(sizes) != sorted(set(sizes)) or sizes[0] < 1:
            raise ConfigError("estimator sizes must be strictly increasing positive integers")
        if not buckets or list(buckets) != sorted(set(buckets)) or buckets[0] < 0:
            raise ConfigError("context buckets must be strictly increasing non-negative integers")
        if fit_points < 1:
            raise ConfigError(f"fit_points must be >= 1, got {fit_points}")
        tables = [("verify", verify_table)] + ([("draft", draft_table)] if draft_table else [])
        for label, table in tables:
            if len(table) != len(buckets) or any(len(row) != len(sizes) for row in table):
                raise ConfigError(f"{label} table must be {len(buckets)} buckets x "
                                  f"{len(sizes)} sizes")
        self.base = base
        self.sizes = sizes
        self.context_buckets = buckets
        self.extrapolate_context = extrapolate_context
        self.verify_table = tuple(tuple(float(t) for t in row) for row in verify_table)
        self.draft_table = (tuple(tuple(float(t) for t in row) for row in draft_table)
                            if draft_table else None)
        self._verify = _MonotoneSurface(sizes, buckets, self.verify_table, fit_points,
                                        extrapolate_context)
        self._draft = (_MonotoneSurface(sizes, buckets, self.draft_table, fit_points,
                                        extrapolate_context)
                       if self.draft_table is not None else None)
        self._draft_overhead_s = float(base.draft_overhead_s)

    @classmethod
    def from_model(cls, latency_model: LatencyModel, padding: GraphPadding | None = None,
                   context_buckets: Sequence[int] = DEFAULT_CONTEXT_BUCKETS,
                   fit_points: int = DEFAULT_FIT_POINTS,
                   extrapolate_context: bool = True) -> TableEstimator:
        """Tabulate ``latency_model`` at ``padding``'s graph sizes x ``context_buckets``.

        The draft table is skipped when the model has no draft (its queries then raise
        ConfigError, as the model's do).
        """
        padding = padding if padding is not None else GraphPadding()
        sizes = padding.sizes
        verify = [[latency_model.target_verify_s(s, s, c * s) for s in sizes]
                  for c in context_buckets]
        try:
            draft: list[list[float]] | None = [
                [latency_model.draft_step_s(s, c * s) for s in sizes] for c in context_buckets]
        except ConfigError:
            draft = None
        return cls(latency_model, sizes, context_buckets, verify, draft, fit_points,
                   extrapolate_context)

    # ---- LatencyModel ---------------------------------------------------------------------
    @property
    def draft_overhead_s(self) -> float:
        return self._draft_overhead_s

    def target_verify_s(self, batch_size: int, tokens: int, context_tokens: int) -> float:
        """Keyed on the padded token count and the KV positions read (``batch_size`` unused:
        the table's rows are one-token sequences reading the same positions)."""
        if tokens <= 0:
            return 0.0
        return self._verify(tokens, context_tokens)

    def draft_step_s(self, batch_size: int, context_tokens: int) -> float:
        if batch_size <= 0:
            return 0.0
        if self._draft is None:
            raise ConfigError("draft_step_s: the estimated latency model has no draft model")
        return self._draft(batch_size, context_tokens)

    def target_prefill_s(self, prompt_tokens: Sequence[int],
                         cached_tokens: Sequence[int] | None = None) -> float:
        return self.base.target_prefill_s(prompt_tokens, cached_tokens)

    def draft_prefill_s(self, prompt_tokens: Sequence[int],
                        cached_tokens: Sequence[int] | None = None) -> float:
        return self.base.draft_prefill_s(prompt_tokens, cached_tokens)

    def __repr__(self) -> str:
        return (f"TableEstimator({len(self.sizes)} sizes x {len(self.context_buckets)} "
                f"context buckets over {self.base!r})")
