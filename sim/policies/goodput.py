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
        else:
            if limits is None:
                limits = np.minimum(view.max_draft_tokens, k_max)
                if view.least_max_draft_tokens < 0:
                    limits = np.maximum(limits, 0)
            hist = np.bincount(limits, minlength=k_max + 1).tolist()
            self.limit_counts = hist
            counts = []  # requests with limit > t, for t = 0..k_max-1
            left = batch
            for t in range(k_max):
                left -= hist[t]
                counts.append(left)
            self.draft_counts = counts
        self.uniform = k_max == 0 or self.draft_counts[-1] == batch
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
        batch = self.batch
        if batch == 0:
            return 0
        q, r = divmod(tokens - batch, batch)
        kv = uniform_expanded_kv_tokens(batch, self.context_tokens, q)
        return kv + (r * self.context_tokens) // batch + r * (q + 1) if r else kv

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
            batch = self.batch
            if drafting >= batch:
                context, bonus, bonus_context = (self.context_tokens, self._bonus_rows,
                                                 self._bonus_context)
            else:
                context = drafting * self.context_tokens // batch
                bonus = (self._bonus_rows * drafting + batch // 2) // batch
                bonus_context = (self._bonus_context * bonus // self._bonus_rows
                                 if bonus else 0)
            rows, kv = draft_step_rows(step, drafting, context, bonus, bonus_context)
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
            cum.append(cum[-1] + extra + (self.draft_overhead_s if t == 0 else 0.0))
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
    if mode is SloMode.OFF or not math.isfinite(slo) or slo <= 0.0:
        return math.inf
    return slo


def feasible(time_s: float, min_request_tokens: float, slo_s: float, mode: SloMode,
             speculative: bool = True) -> bool:
    """Whether a configuration keeps every request inside its TPOT SLO.

    ``min_request_tokens`` is min_i E[N_i] (only used by the ``tokens`` form).
    """
    if not speculative or slo_s == math.inf:
        return True
    if mode is SloMode.TOKENS:
        return time_s <= slo_s * min_request_tokens
    return time_s <= slo_s


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
    return expected_tokens / time_s if time_s > 0.0 else 0.0


def geometric_tokens(alpha: float, k: int) -> float:
    """Expected emitted tokens of one request drafting k i.i.d. tokens with acceptance alpha:
    sum_{r=0..k} alpha^r = (1 - alpha^(k+1)) / (1 - alpha)."""
    return float(np.sum(alpha ** np.arange(k + 1)))
