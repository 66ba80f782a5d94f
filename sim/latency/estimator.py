"""The policies' coarse view of latency: tables over CUDA-graph sizes x context buckets, read
so that the prediction is close to the truth and monotone by construction (DESIGN.md §4).

AdaSpec's artifact profiles the target and draft at each captured graph size (37 sizes) and a
handful of context lengths (5 buckets) and looks latencies up in that table. ``TableEstimator``
reproduces that view on top of any ``LatencyModel`` (normally the simulator's ground truth), so
the estimation error a real deployment has is part of what is simulated. It measures, per size
S and per-sequence context bucket c:

* ``verify_table``: ``target_verify_s(S, S, c * S)`` (S one-token sequences, c cached tokens
  each) and ``draft_table``: ``draft_step_s(S, c * S)``: AdaSpec's table;
* ``token_row`` (one value per size): ``target_verify_s(1, S, c0)``, one sequence of S new
  tokens over the smallest bucket's context (a prefill-like chunk). A pass's cost has a part
  that grows with its tokens (the GEMMs, the lm_head) and a part that grows with its
  *sequences* (a per-sequence attention floor; a KV read that gets faster per token with more
  sequences). A row of S one-token sequences cannot tell the two apart, so pricing a
  single-pass verification of B sequences x (k + 1) tokens from row pad(B (k+1)) charges the
  per-sequence floor of B (k+1) sequences (at B = 64, k = 8 on the A100 7b truth: 22 ms
  instead of 3 ms). ``token_row=False``: the smallest bucket's column stands in for it
  (AdaSpec's form, which keeps that overcharge).

Reading a verification (or plain decode) pass of B sequences, T query tokens, K cached tokens:

    t = H(pad(T)) + Q(B, K / B),   Q(n, c) = verify(n, c) - H(n)

* ``H`` (token part) is the token row, made non-decreasing in S (a running max: a guard
  against a noisy calibrated profile). Above the largest size an eager pass runs at its own
  token count, and GEMMs pad their rows to whole tiles (a staircase): the row continues with
  knots at the multiples of ``tail_step_tokens`` (32) up to ``tail_max_tokens`` (the larger
  of 32,768, every pass of up to 2,048 sequences x 16 tokens, and the largest size), in the
  same running max, and a pass between two knots reads the *upper* one (a pass of T tokens
  costs at most what ceil(T / 32) x 32 costs, so the read never underprices inside a step).
  A knot S is measured as m = ceil(S / S_max) chunks of at most the largest size's tokens
  (``target_verify_s(m, S, m c0)``), not one sequence of S tokens: that one carries causal
  attention among all S tokens (~S^2 / 2 pairs), which a verification of B x (k + 1) tokens
  does not (one sequence: +40 % at 2,048 x 9 tokens; chunks: the per-token attention of the
  row's largest entry, as below it). Beyond the last
  knot, and everywhere above the largest size with ``tail_step_tokens=0`` (the form before
  the knots), a straight line from the row's last entry (least squares over its
  ``fit_points`` largest entries, slope >= 0);
* ``Q`` (sequence part: n sequences with c cached tokens each, what the verify table holds
  beyond the tokens) is made non-decreasing along buckets and along sizes (running maxima),
  read *bilinearly*: linearly in c between buckets (flat below the smallest; above the
  largest the last segment's slope continues, ``extrapolate_context=False``: flat) and
  linearly in n between sizes, at the *unpadded* B (the attention kernels run over the real
  sequences; only the GEMMs see the padded size). Above the largest size it continues as a
  line in n per bucket (least squares, slope >= 0, made non-decreasing along buckets);
* monotone by construction: more draft tokens raise T only (H non-decreasing), a longer
  context raises c only, one more sequence with the same context raises n and T at the same
  c (Q non-decreasing in n and c, H in T), and a k > 0 plan never costs less than k = 0. On a
  table point (B = T = S, K = c S) the prediction is the measured value (H cancels), so a
  batch-expansion verification (``vllm-0.6``: B = T = rows) reads AdaSpec's table itself.
  Monotonicity in the sequence count *at fixed total KV* is deliberately not imposed: it is
  not a property of the truth (the per-token KV read gets faster with more sequences).

Reading a draft step (rows already padded by the caller, ``sim.latency.iteration``; an
unpadded row count reads the row of its padded size): the draft table's row n, piecewise
linear in the KV tokens K it reads (its knots n * c; flat below, tail slope above). Because
the caller pads, one more request can move a step from row n to the next row n' with only
(n + 1) / n times the KV read (B = n -> n + 1 at the same context per request), so each row is
raised to the previous row read along that ray: ``row_n'(K) = max(own_n'(K),
row_n(K n / (n + 1)))`` (evaluated on the union of both rows' knots, where the chord of a max
of piecewise-linear functions bounds it from above; tail slopes likewise). That keeps drafting
non-decreasing in the batch without comparing rows at equal total KV (a small row extrapolated
to a large K reads KV at its slow small-batch rate). Above the largest size a draft step is a
line in n per bucket, as ``Q``. Prefill queries go to the underlying model unchanged;
``draft_overhead_s`` is the model's.

Queries cost a couple of list lookups, a bisect over the 5 buckets (verify) or a row's knots
(draft, <= 186) and a few float operations. Error against the truth: docs/estimator.md
(``benchmarks/estimator_error.py``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from sim.compiled.jit import inlined, jitable
from sim.core.padding import GraphPadding, size_positions
from sim.errors import ConfigError
from sim.latency.base import LatencyModel
from sim.latency.domain import tabulating
from sim.latency.piecewise import (PiecewiseLinear, bisect_right, line_slopes, monotone_grid,
                                    pwl_eval, running_max)

DEFAULT_CONTEXT_BUCKETS: tuple[int, ...] = (1, 256, 512, 1024, 2048)
DEFAULT_FIT_POINTS = 8
#: the token row above the largest size: a knot every 32 tokens (AdaSpec's artifact continues
#: its sizes in steps of 32, issue 10) up to 32,768 tokens (2,048 sequences x 16 tokens)
DEFAULT_TAIL_STEP_TOKENS = 32
DEFAULT_TAIL_MAX_TOKENS = 32768


def describe_token_tail(step_tokens: int = DEFAULT_TAIL_STEP_TOKENS,
                        max_tokens: int = DEFAULT_TAIL_MAX_TOKENS) -> str:
    """How the table reads passes above the largest graph size, for a run's header."""
    if step_tokens <= 0:
        return "token row past the largest graph size: a line"
    return (f"token row past the largest graph size: {step_tokens}-token steps to "
            f"{max_tokens:,}, then a line")


def _rows_in_context(buckets: Sequence[int], grid: list[list[float]], extrapolate: bool
                     ) -> list[PiecewiseLinear]:
    """Per size, its row as a function of the per-sequence context; tail slopes (the last
    segment's, or 0) made non-decreasing across sizes."""
    tails = [0.0] * len(grid)
    if extrapolate and len(buckets) > 1:
        gap = buckets[-1] - buckets[-2]
        tails = running_max([max(0.0, (row[-1] - row[-2]) / gap) for row in grid])
    return [PiecewiseLinear(buckets, row, tail) for row, tail in zip(grid, tails)]


class _EagerLines:
    """Above the largest size: ``row_max(c) + slope(c) * (n - n_max)``, the slope a least-
    squares line in n per bucket over the largest sizes, >= 0 and non-decreasing along
    buckets, read linearly in c between buckets (flat below; above, the last segment's slope
    continues unless ``extrapolate`` is off)."""

    __slots__ = ("at_max", "slope", "max_size")

    def __init__(self, sizes: Sequence[int], buckets: Sequence[int], grid: list[list[float]],
                 at_max, fit_points: int, extrapolate: bool) -> None:
        slopes = running_max(line_slopes(sizes, np.asarray(grid), fit_points))
        tail = 0.0
        if extrapolate and len(buckets) > 1:
            tail = (slopes[-1] - slopes[-2]) / (buckets[-1] - buckets[-2])
        self.slope = PiecewiseLinear(buckets, slopes, tail)
        self.at_max = at_max
        self.max_size = sizes[-1]

    def __call__(self, n: float, context_per_seq: float) -> float:
        return (self.at_max(context_per_seq)
                + self.slope(context_per_seq) * (n - self.max_size))


class _VerifySurface:
    """t(B, T, K) = H(pad T) + Q(B, K / B) of the target (see the module doc).

    Kept as flat lists read by ``verify_surface`` (``arrays`` gives the compiled loop the
    same numbers as numpy arrays)."""

    __slots__ = ("token", "token_tail", "token_step", "buckets", "values", "slopes", "below",
                 "index", "eager", "max_size")

    def __init__(self, sizes: Sequence[int], buckets: Sequence[int],
                 table: Sequence[Sequence[float]], token_row: Sequence[float],
                 fit_points: int, extrapolate: bool, tail_step: int = 0,
                 tail_row: Sequence[float] = ()) -> None:
        # H over the sizes, then its knots above the largest size (every tail_step tokens)
        token_sizes = list(sizes) + tail_knots(sizes[-1], tail_step, len(tail_row))
        token = running_max(list(token_row) + list(tail_row))
        self.token = token
        self.token_tail = line_slopes(token_sizes, np.asarray(token), fit_points)
        self.token_step = int(tail_step)
        token = token[:len(sizes)]
        grid = monotone_grid([[t - token[i] for t in row] for i, row in enumerate(table)])
        rows = _rows_in_context(buckets, grid, extrapolate)
        # Q's rows share the bucket knots: one bisect per query serves both rows read.
        self.buckets = [float(c) for c in buckets]
        self.values = [row.values for row in rows]
        self.slopes = [row.slopes for row in rows]
        # below[:][n] = (i, lower size, its width): row i of the size >= n and where n lies
        # between size i - 1 and size i (width 0: n is a size, or below the smallest).
        positions = size_positions(tuple(sizes))
        below = [(i, sizes[i - 1] if i and sizes[i] != n else sizes[i],
                  (sizes[i] - sizes[i - 1]) if i and sizes[i] != n else 0)
                 for n, i in enumerate(positions)]
        self.below = [list(column) for column in zip(*below)]
        self.index = positions
        self.max_size = sizes[-1]
        eager = _EagerLines(sizes, buckets, grid, rows[-1], fit_points, extrapolate)
        # above the largest size: rows[-1] (values, slopes) + eager slope (values, slopes)
        self.eager = [rows[-1].values, rows[-1].slopes, eager.slope.values, eager.slope.slopes]

    def __call__(self, batch: int, tokens: int, kv_tokens: float) -> float:
        return verify_surface(self.token, self.token_tail, self.token_step, self.index,
                              self.buckets,
                              self.values, self.slopes, self.below, self.eager, self.max_size,
                              batch, tokens, kv_tokens)

    def arrays(self) -> tuple:
        """The surface as numpy arrays, in ``verify_surface``'s argument order."""
        return (np.asarray(self.token, dtype=np.float64), float(self.token_tail),
                int(self.token_step), np.asarray(self.index, dtype=np.int64),
                np.asarray(self.buckets, dtype=np.float64),
                np.asarray(self.values, dtype=np.float64),
                np.asarray(self.slopes, dtype=np.float64),
                np.asarray(self.below, dtype=np.int64),
                np.asarray(self.eager, dtype=np.float64), int(self.max_size))


@inlined
def verify_surface(token, token_tail, token_step, index, buckets, values, slopes, below, eager,
                   max_size, batch, tokens, kv_tokens):
    """``_VerifySurface`` at (B, T, K): H(pad T) + Q(B, K / B) (see the module doc)."""
    batch = batch if batch > 0 else 1
    if tokens > max_size:  # H: the token part, above the largest size
        t = token_above(token, token_tail, token_step, index[max_size], max_size, tokens)
    else:
        t = token[index[tokens]]
    c = kv_tokens / batch  # Q: the sequence part, at the unpadded batch
    nb = len(buckets)
    if batch >= max_size:
        return t + (pwl_eval(buckets, eager[0], eager[1], 0, nb, c)
                    + pwl_eval(buckets, eager[2], eager[3], 0, nb, c) * (batch - max_size))
    j = bisect_right(buckets, c, 0, nb) - 1
    dc = c - buckets[j] if j >= 0 else 0.0
    j = j if j >= 0 else 0
    i = below[0][batch]
    s0 = below[1][batch]
    width = below[2][batch]
    hi = values[i][j] + slopes[i][j] * dc
    if not width:
        return t + hi
    lo = values[i - 1][j] + slopes[i - 1][j] * dc
    return t + lo + (hi - lo) * (batch - s0) / width


@jitable
def tail_origin(max_size, step):
    """Where the token row's knots above ``max_size`` count from (knot j: origin + j step):
    the largest multiple of ``step`` not above it (``step`` 0: ``max_size``)."""
    return max_size - max_size % step if step > 0 else max_size


def tail_knots(max_size: int, step: int, count: int) -> list[int]:
    """The token row's first ``count`` knots above ``max_size``: the multiples of ``step``."""
    origin = tail_origin(max_size, step)
    return [origin + step * j for j in range(1, count + 1)]


@jitable
def token_above(token, token_tail, token_step, at_max, max_size, tokens):
    """H above the largest size ``max_size`` (row entry ``at_max``): the knot at or above
    ``tokens`` (the entries after the sizes' are knots at the multiples of ``token_step``
    above ``max_size``), beyond the last knot a line of slope ``token_tail`` from it."""
    knots = len(token) - 1 - at_max
    origin = tail_origin(max_size, token_step)
    if token_step > 0:
        j = (tokens - origin + token_step - 1) // token_step
        if j <= knots:
            return token[at_max + j]
    return token[len(token) - 1] + token_tail * (tokens - origin - knots * token_step)


class _DraftSurface:
    """t(n, K) of the draft: rows raised along the padding ray (see the module doc).

    The rows' knots, values and slopes are kept end to end (row r is
    ``offsets[r]:offsets[r + 1]``) for ``draft_surface``."""

    __slots__ = ("knots", "values", "slopes", "offsets", "index", "buckets", "eager",
                 "max_size")

    def __init__(self, sizes: Sequence[int], buckets: Sequence[int],
                 table: Sequence[Sequence[float]], fit_points: int, extrapolate: bool) -> None:
        grid = monotone_grid(table)
        own = _rows_in_context(buckets, grid, extrapolate)  # in c; re-knotted in K below
        rows: list[PiecewiseLinear] = []
        for i, s in enumerate(sizes):
            knots = {s * c for c in buckets}
            tail = own[i].tail / s
            if i:
                prev, r = rows[-1], (sizes[i - 1] + 1) / sizes[i - 1]
                knots |= {k * r for k in prev.knots}
                tail = max(tail, prev.tail / r)
            ks = sorted(knots)
            values = [own[i](k / s) for k in ks]
            if i:
                values = [max(v, prev(k / r)) for v, k in zip(values, ks)]
            rows.append(PiecewiseLinear(ks, values, tail))
        self.knots = [k for row in rows for k in row.knots]
        self.values = [v for row in rows for v in row.values]
        self.slopes = [g for row in rows for g in row.slopes]
        self.offsets = [0]
        for row in rows:
            self.offsets.append(self.offsets[-1] + len(row.knots))
        self.index = size_positions(tuple(sizes))
        self.max_size = sizes[-1]
        last, n_max = rows[-1], sizes[-1]
        eager = _EagerLines(sizes, buckets, grid, lambda c: last(c * n_max), fit_points,
                            extrapolate)
        self.buckets = [float(c) for c in buckets]
        self.eager = [eager.slope.values, eager.slope.slopes]

    def __call__(self, rows: int, kv_tokens: float) -> float:
        return draft_surface(self.knots, self.values, self.slopes, self.offsets, self.index,
                             self.buckets, self.eager, self.max_size, rows, kv_tokens)

    def arrays(self) -> tuple:
        """The surface as numpy arrays, in ``draft_surface``'s argument order."""
        return (np.asarray(self.knots, dtype=np.float64),
                np.asarray(self.values, dtype=np.float64),
                np.asarray(self.slopes, dtype=np.float64),
                np.asarray(self.offsets, dtype=np.int64), np.asarray(self.index, dtype=np.int64),
                np.asarray(self.buckets, dtype=np.float64),
                np.asarray(self.eager, dtype=np.float64), int(self.max_size))


@inlined
def draft_surface(knots, values, slopes, offsets, index, buckets, eager, max_size, rows,
                  kv_tokens):
    """``_DraftSurface`` at (n rows, K KV tokens); above the largest size a line in n."""
    if rows > max_size:
        c = kv_tokens / rows
        last = len(offsets) - 2
        at_max = pwl_eval(knots, values, slopes, offsets[last], offsets[last + 1], c * max_size)
        return at_max + pwl_eval(buckets, eager[0], eager[1], 0, len(buckets), c) * (
            rows - max_size)
    r = index[rows]
    return pwl_eval(knots, values, slopes, offsets[r], offsets[r + 1], kv_tokens)


class TableEstimator:
    """Table-lookup latency estimator implementing ``LatencyModel`` (see the module doc)."""

    __slots__ = ("base", "sizes", "context_buckets", "verify_table", "draft_table",
                 "token_row", "tail_step_tokens", "tail_row", "extrapolate_context", "_verify",
                 "_draft", "_draft_overhead_s")

    def __init__(self, base: LatencyModel, sizes: Sequence[int], context_buckets: Sequence[int],
                 verify_table: Sequence[Sequence[float]],
                 draft_table: Sequence[Sequence[float]] | None,
                 fit_points: int = DEFAULT_FIT_POINTS, extrapolate_context: bool = True,
                 token_row: Sequence[float] | None = None, tail_step_tokens: int = 0,
                 tail_row: Sequence[float] = ()) -> None:
        """Tables are buckets x sizes; ``token_row`` one value per size (None: the smallest
        bucket's row of ``verify_table``, AdaSpec's form); ``tail_row`` the token row's knots
        above the largest size, at the multiples of ``tail_step_tokens`` above it
        (``tail_knots``; empty: the line from the largest size, see the module doc)."""
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
        if token_row is not None and len(token_row) != len(sizes):
            raise ConfigError(f"token row must have {len(sizes)} values (one per size)")
        if tail_step_tokens < 0 or (len(tail_row) > 0) != (tail_step_tokens > 0):
            raise ConfigError("tail_row needs tail_step_tokens > 0 (and a step needs knots), "
                              f"got step {tail_step_tokens} with {len(tail_row)} knots")
        if len(tail_row) and token_row is None:
            raise ConfigError("tail_row continues the token row: it needs token_row")
        self.base = base
        self.sizes = sizes
        self.context_buckets = buckets
        self.extrapolate_context = extrapolate_context
        self.verify_table = tuple(tuple(float(t) for t in row) for row in verify_table)
        self.draft_table = (tuple(tuple(float(t) for t in row) for row in draft_table)
                            if draft_table else None)
        self.token_row = (tuple(float(t) for t in token_row) if token_row is not None
                          else None)
        self.tail_step_tokens = int(tail_step_tokens)
        self.tail_row = tuple(float(t) for t in tail_row)
        by_size = [list(col) for col in zip(*self.verify_table)]
        self._verify = _VerifySurface(
            sizes, buckets, by_size,
            self.token_row if self.token_row is not None else self.verify_table[0],
            fit_points, extrapolate_context, self.tail_step_tokens, self.tail_row)
        self._draft = (_DraftSurface(sizes, buckets, [list(c) for c in zip(*self.draft_table)],
                                     fit_points, extrapolate_context)
                       if self.draft_table is not None else None)
        self._draft_overhead_s = float(base.draft_overhead_s)

    @classmethod
    def from_model(cls, latency_model: LatencyModel, padding: GraphPadding | None = None,
                   context_buckets: Sequence[int] = DEFAULT_CONTEXT_BUCKETS,
                   fit_points: int = DEFAULT_FIT_POINTS,
                   extrapolate_context: bool = True, token_row: bool = True,
                   tail_step_tokens: int = DEFAULT_TAIL_STEP_TOKENS,
                   tail_max_tokens: int = DEFAULT_TAIL_MAX_TOKENS) -> TableEstimator:
        """Tabulate ``latency_model`` at ``padding``'s graph sizes x ``context_buckets``
        (``token_row``: also one sequence of S tokens per size, and above the largest size
        one every ``tail_step_tokens`` tokens up to ``tail_max_tokens``; ``tail_step_tokens=0``
        or ``token_row=False``: no knots there, the line; see the module doc).

        The draft table is skipped when the model has no draft (its queries then raise
        ConfigError, as the model's do). The grid is asked inside
        ``sim.latency.domain.tabulating()``: a calibrated profile records those points rather
        than warning as for the run's passes, and one warning (once per model) says where
        the table extrapolates it.
        """
        padding = padding if padding is not None else GraphPadding()
        with tabulating() as probe:  # the grid is not the run's: no out-of-domain warnings
            table = cls._tabulate(latency_model, padding.sizes, context_buckets, token_row,
                                  tail_step_tokens, tail_max_tokens)
        probe.report(stacklevel=2)  # once per model: where the table extrapolates a profile
        return cls(latency_model, padding.sizes, context_buckets, *table[:2], fit_points,
                   extrapolate_context, *table[2:])

    @staticmethod
    def _tabulate(latency_model: LatencyModel, sizes: Sequence[int],
                  context_buckets: Sequence[int], token_row: bool, tail_step_tokens: int,
                  tail_max_tokens: int) -> tuple:
        """(verify table, draft table or None, token row, tail step, tail row) of
        ``from_model``."""
        if tail_step_tokens < 0:
            raise ConfigError(f"tail_step_tokens must be >= 0, got {tail_step_tokens}")
        step = tail_step_tokens if token_row else 0
        count = (max(tail_max_tokens, sizes[-1]) // step - sizes[-1] // step) if step else 0
        knots = tail_knots(sizes[-1], step, count)
        memoize = getattr(latency_model, "memoize_tokens", None)
        if memoize is not None:  # the token-only terms of every pass below in one go
            memoize(list(sizes) + knots, sizes)
        verify = [[latency_model.target_verify_s(s, s, c * s) for s in sizes]
                  for c in context_buckets]
        tokens = ([latency_model.target_verify_s(1, s, context_buckets[0]) for s in sizes]
                  if token_row else None)
        chunks = [-(-s // sizes[-1]) for s in knots]
        tail = [latency_model.target_verify_s(m, s, m * context_buckets[0])
                for m, s in zip(chunks, knots)]
        step = step if tail else 0
        try:
            draft: list[list[float]] | None = [
                [latency_model.draft_step_s(s, c * s) for s in sizes] for c in context_buckets]
        except ConfigError:
            draft = None
        return verify, draft, tokens, step, tail

    # ---- LatencyModel ---------------------------------------------------------------------
    @property
    def draft_overhead_s(self) -> float:
        return self._draft_overhead_s

    def target_verify_s(self, batch_size: int, tokens: int, context_tokens: int) -> float:
        """H(pad tokens) + Q(batch_size, context_tokens / batch_size) (see the module doc;
        ``tokens`` arrives padded)."""
        if tokens <= 0:
            return 0.0
        return self._verify(batch_size, tokens, context_tokens)

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
