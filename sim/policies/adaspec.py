"""``adaspec:K``: AdaSpec (SoCC 2025) — adaptive drafter, confidence-prior verifier and
SLO-aware goodput estimator, exactly as DESIGN.md §3 "AdaSpec, precisely".

Per iteration, with G = E[N] / T from ``sim.policies.goodput``:

1. Pre-check (``begin``): G(k=1, extrapolated: c_{i,1} = cbar) must exceed G(0) = B / T(0)
   and k=1 must be SLO-feasible, else plain decoding (return 0).
2. Drafter (``continue_drafting(s)``, s >= 1):
   a. after step s-1, recompute G(s) from the real cumulative confidences; if it fell below the
      best so far (or is infeasible), stop — the step's tokens are kept for the verifier;
   b. before step s, predict G(s+1) by extrapolating each drafting request one position
      (c_{i,s+1} = c_{i,s} * cbar); stop if the prediction is below the best so far or infeasible.
   "Below" is strict: an equal goodput keeps drafting.
3. Verifier (``verify_lengths``), ``trim=token``: the pass of B + sum k_i tokens runs at its
   padded graph size; drop the lowest cumulative-confidence draft tokens (ties: the later
   position first, so each request loses a suffix) until it fits the next smaller graph size
   (never below B: bonus positions stay); keep the trimmed plan only if its predicted G is not
   lower (an infeasible plan scores -inf). Nothing is trimmed without padding (eager mode).
   ``trim=request`` (the released artifact) drops whole requests by ascending final
   cumulative confidence instead; ``trim=off`` never trims
   (that is ``adaspec-nv``).
4. cbar: exponential running mean (weight ``cbar_weight``, default 0.1) of the batch-mean
   single-token draft confidence of each draft step that ran ("productive" step: at least one
   token drafted), updated in ``verify_lengths``; starts at ``cbar0`` = 0.6.

SLO modes (``slo=``): ``strict`` T <= tpot_slo (default, the paper/artifact's 40 ms budget form),
``tokens`` T / E[N_i] <= tpot_slo for every request, ``off`` (the released artifact).
``adaspec:K,artifact`` is shorthand for ``slo=off,trim=request``.

When the SLO is already lost for the iteration (T(0) > tpot_slo: plain decoding alone misses
the budget, as under overload), DESIGN.md's literal rule leaves only k = 0 feasible, which
turns AdaSpec into plain decoding exactly when the server is most loaded (measured: 18 %
higher mean TPOT than static:1 on the AdaSpec conv trace at 8x rate). ``lost=goodput`` (the
default) drops the constraint for such an iteration and maximises goodput; ``lost=plain``
keeps the literal rule.

Drafting is iteration-level: every request that may draft (``max_draft_tokens > s``) drafts
step s; per-request lengths differ only through the verifier.

Telemetry (read-only, for tests and logs): ``g0`` (plain-decode goodput), ``best`` (best G of
the iteration so far), ``predicted`` (last extrapolated G), ``last_trim`` ("none", "kept",
"rejected"), ``cbar`` and the ``stats`` counters.
"""

from __future__ import annotations

import math
from enum import Enum
from functools import lru_cache
from itertools import accumulate

import numpy as np

from sim.policies.base import BatchView, Policy
from sim.policies.goodput import (
    IterationCost,
    SloMode,
    feasible,
    slo_limit_s,
)
from sim.policies.params import check_enum, check_k, check_unit

_NEG_INF = -math.inf


class TrimMode(str, Enum):
    """How AdaSpec's verifier trims a plan that just overflows a graph size."""

    TOKEN = "token"
    REQUEST = "request"
    OFF = "off"


class LostMode(str, Enum):
    """What the SLO check does in an iteration where even plain decoding misses the budget."""

    GOODPUT = "goodput"  # drop the constraint this iteration: maximise goodput (default)
    PLAIN = "plain"  # DESIGN.md's literal rule: only k = 0 is feasible, so decode plainly


class AdaSpecPolicy(Policy):
    """The AdaSpec policy; see the module docstring for the exact rules."""

    base_name = "adaspec"
    default_trim = TrimMode.TOKEN

    def __init__(self, k: int = 8, slo: str | SloMode = SloMode.STRICT,
                 trim: str | TrimMode = TrimMode.TOKEN, cbar0: float = 0.6,
                 cbar_weight: float = 0.1, lost: str | LostMode = "goodput") -> None:
        self.k_max = check_k(k)
        self.slo = check_enum(SloMode, slo, "slo")
        self.lost = check_enum(LostMode, lost, "lost")
        self.trim = check_enum(TrimMode, trim, "trim")
        self.cbar0 = check_unit(cbar0, "cbar0")
        self.cbar_weight = check_unit(cbar_weight, "cbar_weight", open_low=True)
        self.cbar = self.cbar0
        self.name = self._canonical_name()
        self.stats = {"iterations": 0, "slo_lost": 0, "precheck_plain": 0, "stop_after_step": 0,
                      "stop_before_step": 0, "trim_kept": 0, "trim_rejected": 0}
        self._cost: IterationCost | None = None
        # c_{i,t} (cumulative draft confidence) at [t, i], filled step by step by _absorb
        self._cum = np.empty((0, 0))
        self._ones = np.ones(0)
        self._positions = np.arange(self.k_max)[:, None]  # draft positions as a column

    def _canonical_name(self) -> str:
        """The spec string with non-default options only (``make_policy`` rebuilds it)."""
        parts = [str(self.k_max)]
        if self.slo is not SloMode.STRICT:
            parts.append(f"slo={self.slo.value}")
        if self.trim is not self.default_trim:
            parts.append(f"trim={self.trim.value}")
        if self.cbar0 != 0.6:
            parts.append(f"cbar0={self.cbar0:g}")
        if self.cbar_weight != 0.1:
            parts.append(f"cbar_weight={self.cbar_weight:g}")
        if self.lost is not LostMode.GOODPUT and self.slo is not SloMode.OFF:
            parts.append(f"lost={self.lost.value}")
        return f"{self.base_name}:" + ",".join(parts)

    # -- per-iteration helpers -------------------------------------------------------------

    def _score(self, expected: float, time_s: float, min_tokens: float) -> float:
        """G = E / T, or -inf for an infeasible configuration (``goodput.feasible``; the
        strict form is the per-iteration budget ``self._budget_s``, inf when unconstrained)."""
        if time_s > self._budget_s or (
                self._per_token and not feasible(time_s, min_tokens, self._slo_s, self.slo)):
            return _NEG_INF
        return expected / time_s if time_s > 0.0 else 0.0

    # -- protocol --------------------------------------------------------------------------

    def begin(self, view: BatchView) -> int:
        self.stats["iterations"] += 1
        self._cost = None
        batch = view.batch_size
        if batch == 0:
            return 0
        k_cap = self.k_max
        cost = IterationCost(view, k_cap)
        self._cost = cost
        self._batch = batch
        self._slo_s = slo_limit_s(view, self.slo)
        t0 = cost.verify_s(batch)
        if self.lost is LostMode.GOODPUT and t0 > self._slo_s:
            # even plain decoding misses the TPOT budget: no configuration can meet it this
            # iteration, so maximise goodput unconstrained (fewer seconds per token for all)
            self._slo_s = math.inf
            self.stats["slo_lost"] += 1
        constrained = self._slo_s != math.inf
        self._per_token = constrained and self.slo is SloMode.TOKENS
        self._budget_s = self._slo_s if constrained and self.slo is SloMode.STRICT else math.inf
        g0 = batch / t0
        self.g0 = g0
        self.best = g0
        counts = cost.draft_counts
        n1 = counts[0]
        if n1 == 0:
            self.stats["precheck_plain"] += 1
            return 0
        min_tokens = 1.0 + self.cbar if n1 == batch else 1.0
        time1 = cost.time_s(1, n1)
        self._predicted_time = (1, time1)  # T(1 step): reused after step 0 ran
        g1 = self._score(batch + self.cbar * n1, time1, min_tokens)
        self.predicted = g1
        if not g1 > g0:
            self.stats["precheck_plain"] += 1
            return 0
        # Every request that may draft step t does (max_draft_tokens > t; the driver enforces
        # that), so the drafter only ever answers True or False. In the common uniform case
        # (everyone may draft all K steps) no per-request masks are needed at all.
        self._uniform = cost.uniform
        self._max_draft = view.max_draft_tokens
        self._tokens_cum = list(accumulate(counts, initial=0))
        if self._cum.shape != (k_cap, batch):
            self._cum = np.empty((k_cap, batch))
            self._ones = np.ones(batch)
        self._c_last = self._cum[0]
        self._last_sum = float(batch)
        self._sum_c = np.zeros(batch) if self.slo is SloMode.TOKENS else None
        self._absorbed = 0
        self._expected = float(batch)
        if self._uniform:
            return k_cap
        return min(k_cap, max(view.max_draft_tokens.tolist()))  # the longest any request may draft

    def _absorb(self, conf: np.ndarray, upto: int) -> None:
        """Fold draft steps ``self._absorbed .. upto-1`` into the cumulative confidences
        (row t of ``self._cum``), their batch sum and the expected emitted tokens.

        Relies on the driver's contract that ``conf`` is 0 where a request did not draft, so
        c drops to 0 for requests that stopped (they never draft again this iteration)."""
        cum = self._cum
        for t in range(self._absorbed, upto):
            row = cum[t]
            if t == 0:
                row[...] = conf[:, 0]
            else:
                np.multiply(cum[t - 1], conf[:, t], out=row)
            self._c_last = row
            self._last_sum = float(row @ self._ones)  # a BLAS dot: the cheapest sum
            self._expected += self._last_sum
            if self._sum_c is not None:
                self._sum_c += row
        self._absorbed = max(self._absorbed, upto)

    def continue_drafting(self, step: int, conf: np.ndarray, drafted: np.ndarray) -> bool:
        if step == 0:
            return True
        cost, batch = self._cost, self._batch
        # (a) after step `step - 1`: G(step) from the real cumulative confidences
        self._absorb(conf, step)
        tokens = self._tokens_cum[step]
        at, time_s = self._predicted_time  # T(step) was computed for the prediction before it
        if at != step:
            time_s = cost.draft_s(step) + cost.verify_s(batch + tokens)
        tokens_mode = self._sum_c is not None
        g = self._score(self._expected, time_s,
                        1.0 + float(self._sum_c.min()) if tokens_mode else 1.0)
        if g < self.best:
            self.stats["stop_after_step"] += 1
            return False
        self.best = g
        # (b) before step `step`: predict G(step + 1), extrapolating c_{i,step+1} = c_{i,step} * cbar
        if step >= self.k_max:
            return False
        n = cost.draft_counts[step]
        if n == 0:
            return False
        if not tokens_mode and (self._uniform or cost.limit_counts[step] == 0):
            # every request that drafted step - 1 may draft step `step` (requests that stopped
            # earlier have c = 0), so the extrapolated gain is cbar times the last step's sum
            gain_sum = self.cbar * self._last_sum
            min_tokens = 1.0
        else:
            gain = self._c_last * self.cbar
            if not self._uniform:
                gain *= self._max_draft > step  # only requests with room draft step `step`
            gain_sum = float(gain.sum())
            min_tokens = 1.0 + float((self._sum_c + gain).min()) if tokens_mode else 1.0
        time_next = cost.draft_s(step + 1) + cost.verify_s(batch + tokens + n)
        self._predicted_time = (step + 1, time_next)
        g_next = self._score(self._expected + gain_sum, time_next, min_tokens)
        self.predicted = g_next
        if g_next < self.best:
            self.stats["stop_before_step"] += 1
            return False
        return True

    def _update_cbar(self, conf: np.ndarray) -> None:
        """EMA over the draft steps that ran of their mean single-token confidence."""
        sums = (self._ones @ conf).tolist()  # column sums (conf is 0 where nobody drafted)
        counts = self._cost.draft_counts
        w = self.cbar_weight
        cbar = self.cbar
        for t, total in enumerate(sums):
            cbar = (1.0 - w) * cbar + w * (total / max(counts[t], 1))
        self.cbar = cbar

    def verify_lengths(self, conf: np.ndarray, drafted: np.ndarray) -> np.ndarray:
        drafted = np.asarray(drafted, dtype=np.int64)
        self.last_trim = "none"
        steps = conf.shape[1]
        if steps == 0 or self._cost is None:
            return drafted
        self._absorb(conf, steps)  # self._cum[:steps] now holds every c_{i,t}, 0 where not drafted
        self._update_cbar(conf)
        cost = self._cost
        padding = cost._pad
        if self.trim is TrimMode.OFF or not padding.enabled:
            return drafted
        batch = self._batch
        uniform = self._uniform  # every request drafted every step
        tokens = batch * steps if uniform else sum(drafted.tolist())
        total = batch + tokens
        target = padding.next_smaller(total)
        if target < batch or target >= total:
            return drafted
        drop = total - target
        cum = self._cum[:steps]  # (steps, B)
        draft_time = cost.draft_s(steps)
        tokens_mode = self.slo is SloMode.TOKENS
        if self.trim is TrimMode.TOKEN and not tokens_mode:
            # Fast decision: the d lowest cumulative confidences sum to the same value whatever
            # the tie-breaking, so G(trimmed) is known before choosing which tokens go.
            if uniform:
                vals = cum.ravel()  # step-major: index t * B + i
                valid = None
            else:
                valid = self._positions[:steps] < drafted  # (steps, B): t < drafted_i
                vals = cum[valid]
            expected = self._expected
            if drop < vals.size:
                part = vals.copy()  # np.partition without its wrapper's overhead
                part.partition(drop - 1)
                lowest = float(np.add.reduce(part[:drop]))
            else:
                lowest = expected - batch
            full = self._score(expected, draft_time + cost.verify_s(total), 1.0)
            trimmed = self._score(expected - lowest, draft_time + cost.verify_s(target), 1.0)
            if trimmed < full:
                self.stats["trim_rejected"] += 1
                self.last_trim = "rejected"
                return drafted
            if valid is None:
                neg_cols, rows = _step_major_index(steps, batch)
            else:
                cols, rows = valid.nonzero()
                neg_cols = -cols
            # lowest value first; ties: the later position, then the lower batch index
            dropped = np.lexsort((neg_cols, vals))[:drop]
            self.stats["trim_kept"] += 1
            self.last_trim = "kept"
            return drafted - np.bincount(rows[dropped], minlength=batch)
        cum = cum.T  # (B, steps)
        valid = np.arange(steps)[None, :] < drafted[:, None]
        row_sums = cum.sum(axis=1)
        full = self._score(batch + float(row_sums.sum()), draft_time + cost.verify_s(total),
                           1.0 + float(row_sums.min()) if tokens_mode else 1.0)
        if self.trim is TrimMode.TOKEN:
            rows, cols = np.nonzero(valid)
            vals = cum[rows, cols]
            dropped = np.lexsort((-cols, vals))[:drop]
            new = drafted - np.bincount(rows[dropped], minlength=batch)
            removed = np.bincount(rows[dropped], weights=vals[dropped], minlength=batch)
        else:
            idx = np.nonzero(drafted > 0)[0]
            final = cum[idx, drafted[idx] - 1]
            order = idx[np.argsort(final, kind="stable")]
            upto = int(np.searchsorted(np.cumsum(drafted[order]), drop)) + 1
            gone = order[:upto]
            new = drafted.copy()
            new[gone] = 0
            removed = np.zeros(batch)
            removed[gone] = row_sums[gone]
        kept_sums = row_sums - removed
        trimmed = self._score(batch + float(kept_sums.sum()),
                              draft_time + cost.verify_s(batch + int(new.sum())),
                              1.0 + float(kept_sums.min()) if tokens_mode else 1.0)
        if trimmed >= full:
            self.stats["trim_kept"] += 1
            self.last_trim = "kept"
            return new
        self.stats["trim_rejected"] += 1
        self.last_trim = "rejected"
        return drafted


@lru_cache(maxsize=256)
def _step_major_index(steps: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """(-t, i) of each entry t * batch + i of a flattened (steps, batch) array; cached
    (read-only): the verifier's trimming asks for the same few shapes over and over."""
    cols, rows = np.divmod(np.arange(steps * batch), batch)
    neg_cols = -cols
    neg_cols.flags.writeable = False
    rows.flags.writeable = False
    return neg_cols, rows
