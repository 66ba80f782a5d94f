"""The policies' coarse view of latency: a table over CUDA-graph sizes x context buckets.

AdaSpec's artifact profiles the target and draft at each captured graph size (37 sizes) and a
handful of context lengths (5 buckets) and looks latencies up in that table.  ``TableEstimator``
reproduces that view on top of any ``LatencyModel`` (normally the simulator's ground truth), so
the estimation error a real deployment has is part of what is simulated:

* verification: the table holds ``target_verify_s(size, size, bucket * size)`` (``size``
  sequences of one token each, each with ``bucket`` cached tokens); a query is answered at
  the padded token count (smallest size >= tokens) and the bucket at or below
  ``context_tokens / tokens``: the context per *query position* that makes the table row read
  as many cached positions as the query does (for plain decoding, tokens == batch size and
  this is the mean context per sequence; a verification pass of B sequences x (k+1) tokens
  reads each sequence's KV once, so it is looked up at context / (k+1));
* draft steps: ``draft_step_s(size, bucket * size)`` looked up at the padded batch size and the
  same bucket rule;
* above the largest bucket the context is not clamped (a long-context trace would otherwise be
  underestimated without bound): the last two buckets' difference is extrapolated linearly
  (``extrapolate_context=False`` clamps to the largest bucket instead);
* above the largest size (eager passes) a straight line is extrapolated from the bucket's row:
  slope by least squares over the ``fit_points`` largest sizes, anchored at the largest size
  (continuous there, never decreasing);
* prefill queries go to the underlying model unchanged; ``draft_overhead_s`` is the model's.

Consequences (intended): rounding the context down underestimates long-context passes by at
most one bucket step; padding the size overestimates by at most one size step.

Queries cost a bisect over the buckets, two list indexes and a few float operations.
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


def _line_fit(sizes: Sequence[int], times: Sequence[float], fit_points: int) -> tuple[float, float]:
    """(intercept, slope): least-squares slope over the last ``fit_points`` points, line through
    the last point; a single point gives a line through the origin."""
    xs = np.asarray(sizes[-fit_points:], dtype=float)
    ys = np.asarray(times[-fit_points:], dtype=float)
    if len(xs) < 2:
        return 0.0, float(ys[-1] / xs[-1])
    slope, intercept = np.polyfit(xs, ys, 1)
    if slope < 0:  # never let extrapolation get faster with more tokens
        return float(ys[-1]), 0.0
    # Anchor the line at the largest size so the estimate is continuous there.
    intercept = float(ys[-1] - slope * xs[-1])
    return intercept, float(slope)


def _context_slopes(table: Sequence[Sequence[float]], buckets: Sequence[int]) -> list[float]:
    """Per size: seconds per extra context token per sequence between the last two buckets."""
    if len(buckets) < 2:
        return [0.0] * len(table[0])
    width = buckets[-1] - buckets[-2]
    return [max(0.0, (hi - lo) / width) for lo, hi in zip(table[-2], table[-1])]


class TableEstimator:
    """Table-lookup latency estimator implementing ``LatencyModel`` (see the module doc)."""

    __slots__ = ("base", "sizes", "context_buckets", "verify_table", "draft_table",
                 "_index", "_max_size", "_verify_rows", "_draft_rows", "_verify_fit",
                 "_draft_fit", "_draft_overhead_s", "_max_bucket", "_verify_ctx_slope",
                 "_draft_ctx_slope", "extrapolate_context")

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
        self.verify_table = tuple(tuple(float(t) for t in row) for row in verify_table)
        self.draft_table = (tuple(tuple(float(t) for t in row) for row in draft_table)
                            if draft_table else None)
        self._max_size = sizes[-1]
        # _index[n] = position of the padded size of n (n in 1..max_size); _index[0] -> 0.
        self._index = size_positions(sizes)
        self._verify_rows = [list(row) for row in self.verify_table]
        self._verify_fit = [_line_fit(sizes, row, fit_points) for row in self.verify_table]
        if self.draft_table is not None:
            self._draft_rows: list[list[float]] | None = [list(r) for r in self.draft_table]
            self._draft_fit = [_line_fit(sizes, row, fit_points) for row in self.draft_table]
        else:
            self._draft_rows = None
            self._draft_fit = []
        self._draft_overhead_s = float(base.draft_overhead_s)
        self.extrapolate_context = extrapolate_context
        # Beyond the largest bucket: per-size slope (s per context token per sequence).
        self._max_bucket = buckets[-1] if extrapolate_context and len(buckets) > 1 else None
        self._verify_ctx_slope = _context_slopes(self.verify_table, buckets)
        self._draft_ctx_slope = (_context_slopes(self.draft_table, buckets)
                                 if self.draft_table is not None else [])

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
        if tokens <= 0:
            return 0.0
        # The table's row for size S holds S one-token sequences at context c (KV read S*c);
        # a pass over `tokens` positions reading `context_tokens` cached positions once per
        # sequence matches it at c = context_tokens / tokens (equal to the mean context per
        # sequence for plain decoding, where tokens == batch_size).
        per_seq = context_tokens / tokens
        b = bisect.bisect_right(self.context_buckets, per_seq) - 1
        if b < 0:
            b = 0
        if tokens > self._max_size:
            intercept, slope = self._verify_fit[b]
            t = intercept + slope * tokens
            if self._max_bucket is not None and per_seq > self._max_bucket:
                t += (self._verify_ctx_slope[-1] * tokens / self._max_size
                      * (per_seq - self._max_bucket))
            return t
        i = self._index[tokens]
        if self._max_bucket is not None and per_seq > self._max_bucket:
            return (self._verify_rows[b][i]
                    + self._verify_ctx_slope[i] * (per_seq - self._max_bucket))
        return self._verify_rows[b][i]

    def draft_step_s(self, batch_size: int, context_tokens: int) -> float:
        if batch_size <= 0:
            return 0.0
        rows = self._draft_rows
        if rows is None:
            raise ConfigError("draft_step_s: the estimated latency model has no draft model")
        per_seq = context_tokens / batch_size
        b = bisect.bisect_right(self.context_buckets, per_seq) - 1
        if b < 0:
            b = 0
        if batch_size > self._max_size:
            intercept, slope = self._draft_fit[b]
            t = intercept + slope * batch_size
            if self._max_bucket is not None and per_seq > self._max_bucket:
                t += (self._draft_ctx_slope[-1] * batch_size / self._max_size
                      * (per_seq - self._max_bucket))
            return t
        i = self._index[batch_size]
        if self._max_bucket is not None and per_seq > self._max_bucket:
            return rows[b][i] + self._draft_ctx_slope[i] * (per_seq - self._max_bucket)
        return rows[b][i]

    def target_prefill_s(self, prompt_tokens: Sequence[int],
                         cached_tokens: Sequence[int] | None = None) -> float:
        return self.base.target_prefill_s(prompt_tokens, cached_tokens)

    def draft_prefill_s(self, prompt_tokens: Sequence[int],
                        cached_tokens: Sequence[int] | None = None) -> float:
        return self.base.draft_prefill_s(prompt_tokens, cached_tokens)

    def __repr__(self) -> str:
        return (f"TableEstimator({len(self.sizes)} sizes x {len(self.context_buckets)} "
                f"context buckets over {self.base!r})")
