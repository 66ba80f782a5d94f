"""The shared efficiency model of the goodput-driven policies (adaspec, adaspec-nv, smartspec,
oracle): expected emitted tokens, predicted iteration time with graph padding, goodput and SLO
feasibility (DESIGN.md §3 "AdaSpec, precisely").

Notation: B decode requests; k_i tokens request i sends to verification; s draft steps run.

- Expected emitted tokens: E[N] = sum_i (1 + sum_{j<=k_i} c_{i,j}), c_{i,j} the cumulative
  draft confidence; a position not drafted yet is extrapolated as c_{i,j} = c_{i,j-1} * cbar.
- Predicted time: the serving engine's passes for the plan, priced by the one iteration-
  duration module (``sim.latency.iteration``) with the policy's *estimator*:
  T = [s>0] o_draft + sum_{t<s} t_draft(g(rows_t), kv_t) + t_verify(rows, g(B + sum k_i), kv).
  Single-pass: rows_t = n_t (requests drafting step t), kv_t = their context + t n_t;
  verification rows = B reading kv = sum L_i. Batch expansion (``vllm-0.6``): rows_t adds the
  bonus-token rows, verification is a decode pass over B + sum k_i rows reading
  sum (k_i + 1) L_i + k_i (k_i + 1) / 2 positions. When only the count n_t < B or the total
  sum k_i is known (not who), contexts are the batch mean's share and the k_i are spread as
  evenly as possible; ``verify_plan_s`` prices an explicit per-request plan exactly.
  g() is the padded graph size; t_verify includes the target's fixed per-pass overhead.
- Goodput G = E[N] / T.
- SLO feasibility (``SloMode``): ``strict`` T <= tpot_slo (the artifact's per-iteration budget);
  ``tokens`` T / E[N_i] <= tpot_slo for every request i; ``off`` no constraint. A
  non-speculative iteration (s = 0) is always feasible; a non-finite or non-positive SLO never
  constrains.

Estimator calls are memoised per iteration by padded size, so a policy evaluating many
configurations pays for each distinct padded size once.
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np

from sim.compiled.jit import compiled, jitable
from sim.latency.iteration import (VLLM_06, draft_pass_s, draft_step_rows, expanded_kv_tokens,
                                   uniform_expanded_kv_tokens, verify_pass_s)
from sim.policies.base import BatchView


class SloMode(str, Enum):
    """How the TPOT SLO restricts speculative configurations."""

    STRICT = "strict"
    TOKENS = "tokens"
    OFF = "off"


class IterationCost:
    """Predicted seconds of one decode iteration's configurations, from ``view.estimator``.

    Built once per iteration (``begin``); ``draft_s(steps)`` and ``verify_s(tokens)`` are cached.
    ``draft_counts[t]`` (a list of ints) is how many requests draft step t when every request
    that may, does (``max_draft_tokens > t``); ``limit_counts[t]`` how many may draft exactly
    t tokens (t = 0..k_max); ``uniform`` says every request may draft all ``k_max`` steps (then
    ``draft_counts`` is B everywhere and ``limit_counts`` is None: no per-request limits).
    """

    __slots__ = ("batch", "context_tokens", "draft_overhead_s", "_est", "_pad", "_verify_cache",
                 "_step_cache", "draft_counts", "limit_counts", "uniform", "_draft_cum",
                 "_expanded", "_bonus_rows", "_bonus_context", "_contexts", "tree")

    def __init__(self, view: BatchView, k_max: int, limits: np.ndarray | None = None) -> None:
        """``limits``: optional precomputed ``min(max_draft_tokens, k_max)`` (non-negative)."""
        batch = self.batch = view.batch_size
        self.context_tokens = view.total_context_tokens
        self._est = view.estimator
        self._pad = view.padding
        self._expanded = view.engine == VLLM_06
        self._bonus_rows = view.bonus_rows if self._expanded else 0
        self._bonus_context = view.bonus_context_tokens if self._bonus_rows else 0
        self._contexts = view.context_tokens
        # a method's plan (sim.drafters.plan): verify lengths are depths of its tree
        self.tree = view.drafter
        self.draft_overhead_s = float(view.estimator.draft_overhead_s)
        self._verify_cache: dict[int, float] = {}
        self._step_cache: dict[tuple[int, int], float] = {}
        k_max = max(int(k_max), 0)
        if limits is None and (batch == 0 or view.least_max_draft_tokens >= k_max):
            self.draft_counts = [batch] * k_max  # the common case: no array arithmetic
            self.limit_counts = None
            self.uniform = True
        else:
            counts = np.zeros(k_max, dtype=np.int64)
            hist = np.zeros(k_max + 1, dtype=np.int64)
            source = view.max_draft_tokens if limits is None else limits
            self.uniform = bool(compiled(draft_counts_into)(
                np.asarray(source, dtype=np.int64), batch, k_max, counts, hist))
            self.limit_counts = hist.tolist()
            self.draft_counts = counts.tolist()
        self._draft_cum: list[float] = [0.0]

    def padded(self, tokens: int) -> int:
        return self._pad.pad(int(tokens))

    def verify_s(self, tokens: int) -> float:
        """Target verification pass over ``tokens`` positions (B + sum k_i), padded; under
        batch expansion the sum k_i is spread as evenly as possible over the batch."""
        t = self._verify_cache.get(tokens)  # keyed by raw (and single-pass: padded) counts
        if t is None:
            if self.tree is not None:  # tokens = B + sum of depths (sim.drafters.plan)
                t = self.tree.verify_s(self, int(tokens))
            elif self._expanded:
                t = float(verify_pass_s(self._est, self._pad, tokens, tokens,
                                        self._spread_kv_tokens(int(tokens))))
            else:
                padded = self._pad.pad(int(tokens))
                t = self._verify_cache.get(padded)
                if t is None:
                    t = float(verify_pass_s(self._est, self._pad, self.batch, padded,
                                            self.context_tokens))
                    self._verify_cache[padded] = t
            self._verify_cache[tokens] = t
        return t

    def _spread_kv_tokens(self, tokens: int) -> int:
        """Batch expansion's KV positions for sum k_i = tokens - B spread evenly: q each,
        one more for r requests of mean context (exact for uniform k)."""
        return spread_kv_tokens(self.batch, self.context_tokens, tokens)

    def verify_plan_s(self, verify: np.ndarray) -> float:
        """Verification pass of an explicit plan (k_i per request), priced exactly."""
        if self.tree is not None:
            return self.tree.verify_plan_s(self, verify)
        total = int(verify.sum())
        if not self._expanded:
            return self.verify_s(self.batch + total)
        kv = expanded_kv_tokens(self._contexts.tolist(), verify.tolist())
        return float(verify_pass_s(self._est, self._pad, self.batch + total,
                                   self.batch + total, kv))

    def draft_step_s(self, drafting: int, step: int = 0) -> float:
        """Draft step ``step`` over ``drafting`` requests (padded rows; their share of the
        batch's context and, under batch expansion, of its bonus rows)."""
        key = (drafting, step)
        t = self._step_cache.get(key)
        if t is None and self.tree is not None:  # a method's drafter (sim.drafters.plan)
            t = self._step_cache[key] = self.tree.draft_step_s(self, drafting, step)
        if t is None:
            rows, kv = draft_share(self.batch, self.context_tokens, self._bonus_rows,
                                   self._bonus_context, drafting, step)
            t = float(draft_pass_s(self._est, self._pad, rows, kv))
            self._step_cache[key] = t
        return t

    def draft_s(self, steps: int) -> float:
        """Drafting time of ``steps`` steps where every request that may draft does (incl. o_draft)."""
        cum = self._draft_cum
        while len(cum) <= steps:
            t = len(cum) - 1
            n = self.draft_counts[t] if t < len(self.draft_counts) else 0
            extra = self.draft_step_s(n, t) if n > 0 else 0.0
            cum.append(next_draft_total(cum[-1], extra, self.draft_overhead_s, t))
        return cum[steps]

    def draft_s_actual(self, drafted: np.ndarray) -> float:
        """Drafting time of the steps actually run, given each request's drafted count."""
        drafted = np.asarray(drafted)
        steps = int(drafted.max(initial=0))
        if steps == 0:
            return 0.0
        hist = np.bincount(drafted, minlength=steps + 1)
        counts = (self.batch - np.cumsum(hist)[:steps]).tolist()
        return self.draft_overhead_s + sum(self.draft_step_s(n, t) for t, n in enumerate(counts)
                                           if n > 0)

    def time_s(self, steps: int, verify_tokens: int) -> float:
        """T for ``steps`` draft steps (all eligible drafting) and sum k_i = ``verify_tokens``."""
        return self.draft_s(steps) + self.verify_s(self.batch + int(verify_tokens))


def draft_limits(view: BatchView, k_max: int) -> np.ndarray:
    """Per request, the most tokens it may draft this iteration: min(max_draft_tokens, k_max) >= 0."""
    limits = np.minimum(np.asarray(view.max_draft_tokens, dtype=np.int64), k_max)
    return limits if view.least_max_draft_tokens >= 0 else np.maximum(limits, 0)


def slo_limit_s(view: BatchView, mode: SloMode) -> float:
    """The TPOT budget the feasibility check uses (inf when unconstrained)."""
    slo = float(view.tpot_slo_s) if view.tpot_slo_s is not None else math.inf
    return slo_limit(slo, mode is SloMode.OFF)


def feasible(time_s: float, min_request_tokens: float, slo_s: float, mode: SloMode,
             speculative: bool = True) -> bool:
    """Whether a configuration keeps every request inside its TPOT SLO.

    ``min_request_tokens`` is min_i E[N_i] (only used by the ``tokens`` form).
    """
    if not speculative:
        return True
    return feasible_time(time_s, min_request_tokens, slo_s, mode is SloMode.TOKENS)


def cumulative_confidence(conf: np.ndarray, drafted: np.ndarray, length: int | None = None,
                          cbar: float | None = None) -> np.ndarray:
    """c_{i,j} = prod_{m<=j} p_{i,m} as a (B, length) array.

    Positions j >= drafted_i are extrapolated as c_{i,j-1} * cbar when ``cbar`` is given, else 0.
    """
    conf = np.asarray(conf, dtype=np.float64)
    batch, steps = conf.shape
    length = steps if length is None else int(length)
    pos = np.arange(length)
    have = np.zeros((batch, length))
    have[:, :min(steps, length)] = conf[:, :length]
    drafted = np.asarray(drafted)
    real = pos[None, :] < drafted[:, None]
    if cbar is None:
        factors = np.where(real, have, 0.0)
    else:
        factors = np.where(real, have, float(cbar))
    return np.cumprod(factors, axis=1)


def expected_emitted_tokens(cum_conf: np.ndarray, verify: np.ndarray) -> float:
    """E[N] = sum_i (1 + sum_{j<k_i} c_{i,j}) for verify lengths k_i (0-based positions)."""
    cum_conf = np.asarray(cum_conf, dtype=np.float64)
    batch, length = cum_conf.shape
    mask = np.arange(length)[None, :] < np.asarray(verify)[:, None]
    return float(batch + np.where(mask, cum_conf, 0.0).sum())


def goodput(expected_tokens: float, time_s: float) -> float:
    """Tokens per second; 0 for a non-positive time estimate (degenerate estimator)."""
    return goodput_of(expected_tokens, time_s)


def geometric_tokens(alpha: float, k: int) -> float:
    """Expected emitted tokens of one request drafting k i.i.d. tokens with acceptance alpha:
    sum_{r=0..k} alpha^r = (1 - alpha^(k+1)) / (1 - alpha)."""
    return float(np.sum(alpha ** np.arange(k + 1)))


# ---- the cost model's rules, shared with the compiled loop ---------------------------------
@jitable
def clamped_limit(limit, k_max):
    """A request's draft limit within 0..k_max: ``min(max(limit, 0), k_max)``."""
    if limit > k_max:
        limit = k_max
    if limit < 0:
        limit = 0
    return limit


@jitable
def draft_counts_into(limits, batch, k_max, counts, hist):
    """``hist[t]``: requests whose draft limit ``min(max(limits_i, 0), k_max)`` is t
    (t = 0..k_max); ``counts[t]``: requests that may draft step t (limit > t). Returns
    whether every request may draft all ``k_max`` steps."""
    for t in range(k_max + 1):
        hist[t] = 0
    for i in range(batch):
        hist[clamped_limit(limits[i], k_max)] += 1
    left = batch
    for t in range(k_max):
        left -= hist[t]
        counts[t] = left
    return k_max == 0 or counts[k_max - 1] == batch


@jitable
def spread_kv_tokens(batch, context_tokens, tokens):
    """Batch expansion's KV positions for sum k_i = tokens - B spread evenly: q each, one
    more for r requests of mean context (exact for uniform k)."""
    if batch == 0:
        return 0
    q = (tokens - batch) // batch
    r = (tokens - batch) % batch
    kv = uniform_expanded_kv_tokens(batch, context_tokens, q)
    return kv + (r * context_tokens) // batch + r * (q + 1) if r else kv


@jitable
def draft_share(batch, context_tokens, bonus_rows, bonus_context, drafting, step):
    """(rows, KV tokens) of draft step ``step`` over ``drafting`` of the batch's requests:
    their share of its context and, under batch expansion, of its bonus rows."""
    if drafting >= batch:
        context, bonus, extra = context_tokens, bonus_rows, bonus_context
    else:
        context = drafting * context_tokens // batch
        bonus = (bonus_rows * drafting + batch // 2) // batch
        extra = bonus_context * bonus // bonus_rows if bonus else 0
    return draft_step_rows(step, drafting, context, bonus, extra)


@jitable
def next_draft_total(total, step_s, overhead_s, step):
    """Drafting time after one more step: the step, plus the overhead with the first."""
    return total + step_s + (overhead_s if step == 0 else 0.0)


@jitable
def feasible_time(time_s, min_request_tokens, slo_s, per_token):
    """``feasible`` of a speculative configuration: ``per_token`` is the ``tokens`` form."""
    if slo_s == math.inf:
        return True
    if per_token:
        return time_s <= slo_s * min_request_tokens
    return time_s <= slo_s


@jitable
def goodput_of(expected_tokens, time_s):
    """``goodput``: tokens per second, 0 for a non-positive time estimate."""
    return expected_tokens / time_s if time_s > 0.0 else 0.0


@jitable
def slo_limit(tpot_slo_s, mode_off):
    """``slo_limit_s`` from the TPOT SLO (inf when unconstrained)."""
    if mode_off or not math.isfinite(tpot_slo_s) or tpot_slo_s <= 0.0:
        return math.inf
    return tpot_slo_s


@jitable
def _pairwise_leaf(a, lo, n):
    """numpy's pairwise sum of at most 128 contiguous values (8 accumulators)."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    end = n - n % 8
    while i < end:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@jitable
def pairwise_sum(a, lo, n):
    """numpy's float64 ``sum`` of ``a[lo:lo + n]``, in numpy's order
    (``pairwise_sum_DOUBLE``: blocks of 8 accumulators up to 128 values, above that the sum
    of the two halves split at a multiple of 8), evaluated without recursion."""
    if n <= 128:
        return _pairwise_leaf(a, lo, n)
    starts = np.empty(128, dtype=np.int64)
    sizes = np.empty(128, dtype=np.int64)
    expanded = np.zeros(128, dtype=np.bool_)
    values = np.empty(128)
    top = 0
    count = 0
    starts[0] = lo
    sizes[0] = n
    while top >= 0:
        first = starts[top]
        size = sizes[top]
        if size <= 128:
            values[count] = _pairwise_leaf(a, first, size)
            count += 1
            top -= 1
        elif not expanded[top]:
            half = size // 2
            half -= half % 8
            expanded[top] = True
            top += 1  # the right half, evaluated second
            starts[top] = first + half
            sizes[top] = size - half
            expanded[top] = False
            top += 1  # the left half, evaluated first
            starts[top] = first
            sizes[top] = half
            expanded[top] = False
        else:
            values[count - 2] = values[count - 2] + values[count - 1]
            count -= 1
            top -= 1
    return values[0]


@jitable
def array_sum(a, n):
    """``float(a[:n].sum())`` as numpy computes it."""
    return 0.0 + pairwise_sum(a, 0, n)


@jitable
def _ddot_lane(a, lo, stride, n32, n1, lane):
    """Lane ``lane`` (of 4) of ``ddot_ones``'s contiguous kernel, reduced: the sum over q =
    0..3, in that order, of its 4 x 4 accumulator (q, lane), which is the 4 x 8 accumulators
    (q, lane) and (q, lane + 4) over the 32-blocks below ``n32``, added, then summed on over
    the 16-blocks up to ``n1``. Each accumulator starts at 0.0 and adds each value to its
    running sum (``x + acc``), as the kernel does; they are independent, so each is
    evaluated on its own (scalars: no scratch array to allocate per call)."""
    total = 0.0
    for q in range(4):
        low = 0.0
        high = 0.0
        for i in range(0, n32, 32):
            low = a[lo + (i + 8 * q + lane) * stride] + low
            high = a[lo + (i + 8 * q + lane + 4) * stride] + high
        acc = low + high
        for i in range(n32, n1, 16):
            acc = a[lo + (i + 4 * q + lane) * stride] + acc
        total = acc if q == 0 else total + acc
    return total


@jitable
def ddot_ones(a, lo, n, stride, contiguous):
    """``float(x @ ones)`` of the n values ``a[lo::stride]`` as numpy gets it from OpenBLAS's
    ddot on x86-64 (AVX-512 kernel: 4 x 8 accumulators, then 4 x 4, then a tail; the strided
    kernel: two accumulators over groups of 4), so the compiled rule reproduces the previous
    release's sums bit for bit."""
    if contiguous:
        n1 = n & -16
        dot = 0.0
        if n1:
            n32 = n1 & -32
            v0 = _ddot_lane(a, lo, stride, n32, n1, 0)
            v1 = _ddot_lane(a, lo, stride, n32, n1, 1)
            v2 = _ddot_lane(a, lo, stride, n32, n1, 2)
            v3 = _ddot_lane(a, lo, stride, n32, n1, 3)
            dot = (v0 + v2) + (v1 + v3)
        for i in range(n1, n):
            dot = dot + a[lo + i * stride]
        return 0.0 + dot
    t1 = 0.0
    t2 = 0.0
    n1 = n & -4
    i = 0
    while i < n1:
        t1 += a[lo + i * stride] + a[lo + (i + 2) * stride]
        t2 += a[lo + (i + 1) * stride] + a[lo + (i + 3) * stride]
        i += 4
    while i < n:
        t1 += a[lo + i * stride]
        i += 1
    return 0.0 + (t1 + t2)
