"""``adaspec:K``: AdaSpec (SoCC 2025) — adaptive drafter, confidence-prior verifier and
SLO-aware goodput estimator, as DESIGN.md §3 "AdaSpec, precisely", with the forms of the
released artifact as options (and as the default, chosen by measurement: README "Policies").

Default ``adaspec:K`` = ``slo=off, cbar=cumulative`` (the release's forms), ``trim=token``
(the paper's verifier) and ``recover=decay`` (invented here); the paper's SLO-constrained form
is ``slo=strict``, the release's verifier ``trim=request``.

Per iteration, with G = E[N] / T from ``sim.policies.goodput``:

1. Pre-check (``begin``): G(k=1, extrapolated: c_{i,1} = cbar) must exceed G(0) = B / T(0)
   and k=1 must be SLO-feasible, else plain decoding (return 0).
2. Drafter (``continue_drafting(s)``, s >= 1):
   a. after step s-1, recompute G(s) from the real cumulative confidences; if it fell below the
      best so far (or is infeasible), stop — the step's tokens are kept for the verifier;
   b. before step s, predict G(s+1) by extrapolating each drafting request one position
      (c_{i,s+1} = c_{i,s} * cbar); stop if the prediction is below the best so far or infeasible.
   "Below" is strict: an equal goodput keeps drafting.
3. Verifier (``verify_lengths``), ``trim=token`` (default): the pass of B + sum k_i tokens
   runs at its padded graph size; drop the lowest cumulative-confidence draft tokens (ties: the later
   position first, so each request loses a suffix) until it fits the next smaller graph size
   (``GraphPadding.next_smaller``: above the largest graph size the targets continue in steps
   of 32, as the artifact's do; never below B: bonus positions stay); keep the trimmed plan
   only if its predicted G is not lower (an infeasible plan scores -inf). Nothing is trimmed
   without padding (eager mode). ``trim=request`` (the released artifact,
   ``_eliminate_spec_lens_cuda_graph``): remove exactly the same number of tokens, taking
   whole suffixes from the requests in ascending order of their final cumulative confidence
   (ties: lower batch index first; the last one is cut partly); ``trim=off`` never trims
   (that is ``adaspec-nv``).
4. cbar, the mean single-token draft confidence, starts at ``cbar0`` = 0.6:
   ``cbar=cumulative`` (default; the artifact's ``default_confidence``): the mean since the start over
   every request of every draft step whose after-step check passed (the step that triggered
   a stop is left out), updated right after each step, so later predictions of the same
   iteration already use it; ``cbar=ema`` (invented here): an exponential running mean
   (weight ``cbar_weight``, default 0.1) of the batch-mean confidence of every step that ran,
   updated in ``verify_lengths``.
5. Recovery (``recover=``, ``sim.policies.recovery``): the value the pre-check and the
   extrapolation use this iteration; default ``decay`` (cbar returns towards ``cbar0`` with a
   half-life of ``recover_after`` plain iterations), so AdaSpec cannot stay in plain decoding
   for good because cbar only learns while drafting.

SLO modes (``slo=``): ``off`` (default; the release, whose check is commented out),
``strict`` T <= tpot_slo (the paper's form with the artifact's 40 ms budget), ``tokens``
T / E[N_i] <= tpot_slo for every request (invented here).
``adaspec:K,artifact`` is the release (cerebellumking/AdaSpec @ f3f2f48, read in its copy
Waloid24/AdaSpec @ 80d6c4f ``vllm/spec_decode/draft_model_runner.py``):
``slo=off,trim=request,cbar=cumulative,recover=none``.

When the SLO is already lost for the iteration (T(0) > tpot_slo: plain decoding alone misses
the budget, as under overload), DESIGN.md's literal rule leaves only k = 0 feasible, which
turns AdaSpec into plain decoding exactly when the server is most loaded (measured: 18 %
higher mean TPOT than static:1 on the AdaSpec conv trace at 8x rate). ``lost=goodput``
(default with an SLO form; invented here) drops the constraint for such an iteration and
maximises goodput; ``lost=plain`` keeps the literal rule. ``lost=`` needs ``slo=strict`` or
``slo=tokens``.

Drafting is iteration-level: every request that may draft (``max_draft_tokens > s``) drafts
step s; per-request lengths differ only through the verifier.

Telemetry (read-only, for tests and logs): ``g0`` (plain-decode goodput), ``best`` (best G of
the iteration so far), ``predicted`` (last extrapolated G), ``last_trim`` ("none", "kept",
"rejected"), ``cbar`` (the stored estimate), ``cbar_used`` (the value decided with) and the
``stats`` counters.
"""

from __future__ import annotations

import math
from enum import Enum
from functools import lru_cache
from itertools import accumulate

import numpy as np

from sim.errors import ConfigError
from sim.policies.base import BatchView, Policy
from sim.policies.goodput import (
    IterationCost,
    SloMode,
    feasible,
    slo_limit_s,
)
from sim.policies.params import check_enum, check_k, check_unit
from sim.policies.recovery import Recovery, RecoverMode

_NEG_INF = -math.inf
DEFAULT_CBAR_WEIGHT = 0.1


class TrimMode(str, Enum):
    """How AdaSpec's verifier trims a plan that just overflows a graph size."""

    TOKEN = "token"
    REQUEST = "request"
    OFF = "off"


class CbarMode(str, Enum):
    """How cbar combines the draft steps it has seen."""

    EMA = "ema"
    CUMULATIVE = "cumulative"


class LostMode(str, Enum):
    """What the SLO check does in an iteration where even plain decoding misses the budget."""

    GOODPUT = "goodput"  # drop the constraint this iteration: maximise goodput (default)
    PLAIN = "plain"  # DESIGN.md's literal rule: only k = 0 is feasible, so decode plainly


class AdaSpecPolicy(Policy):
    """The AdaSpec policy; see the module docstring for the exact rules."""

    base_name = "adaspec"
    default_trim = TrimMode.TOKEN
    #: What the ``artifact`` flag sets (the registry's flag and the canonical name agree).
    artifact_options = {"slo": "off", "trim": "request", "cbar": "cumulative", "recover": "none"}

    def __init__(self, k: int = 8, slo: str | SloMode = SloMode.OFF,
                 trim: str | TrimMode = TrimMode.TOKEN, cbar0: float = 0.6,
                 cbar_weight: float | None = None, lost: str | LostMode | None = None,
                 cbar: str | CbarMode = CbarMode.CUMULATIVE,
                 recover: str | RecoverMode = RecoverMode.DECAY,
                 recover_after: int | None = None) -> None:
        self.k_max = check_k(k)
        self.slo = check_enum(SloMode, slo, "slo")
        if lost is not None and self.slo is SloMode.OFF:
            raise ConfigError("lost applies to slo=strict or slo=tokens, not slo=off")
        self.lost = check_enum(LostMode, LostMode.GOODPUT if lost is None else lost, "lost")
        self.trim = check_enum(TrimMode, trim, "trim")
        self.cbar_mode = check_enum(CbarMode, cbar, "cbar")
        if cbar_weight is not None and self.cbar_mode is CbarMode.CUMULATIVE:
            raise ConfigError("cbar_weight applies to cbar=ema, not cbar=cumulative")
        self.cbar0 = check_unit(cbar0, "cbar0")
        self.cbar_weight = check_unit(DEFAULT_CBAR_WEIGHT if cbar_weight is None else cbar_weight,
                                      "cbar_weight", open_low=True)
        self.cbar = self.cbar0
        self.cbar_used = self.cbar0
        self._conf_total = 0.0  # cbar=cumulative: sum and count of the confidences folded in
        self._conf_count = 0
        self.recovery = Recovery(recover, self.cbar0, recover_after)
        self.name = self._canonical_name()
        self.stats = {"iterations": 0, "slo_lost": 0, "precheck_plain": 0, "stop_after_step": 0,
                      "stop_before_step": 0, "trim_kept": 0, "trim_rejected": 0, "recovering": 0}
        self._cost: IterationCost | None = None
        # c_{i,t} (cumulative draft confidence) at [t, i], filled step by step by _absorb
        self._cum = np.empty((0, 0))
        self._ones = np.ones(0)
        self._positions = np.arange(self.k_max)[:, None]  # draft positions as a column

    def _canonical_name(self) -> str:
        """The spec string with non-default options only (``make_policy`` rebuilds it); the
        exact artifact configuration is written as its flag."""
        options = {"slo": self.slo.value, "trim": self.trim.value, "cbar": self.cbar_mode.value,
                   "recover": self.recovery.mode.value}
        artifact = {key: options[key] for key in self.artifact_options} == self.artifact_options
        parts = [str(self.k_max)]
        if self.slo is not SloMode.OFF:
            parts.append(f"slo={self.slo.value}")
        if self.trim is not self.default_trim:
            parts.append(f"trim={self.trim.value}")
        if self.cbar_mode is not CbarMode.CUMULATIVE:
            parts.append(f"cbar={self.cbar_mode.value}")
        if self.cbar0 != 0.6:
            parts.append(f"cbar0={self.cbar0:g}")
        if self.cbar_mode is CbarMode.EMA and self.cbar_weight != DEFAULT_CBAR_WEIGHT:
            parts.append(f"cbar_weight={self.cbar_weight:g}")
        if self.lost is not LostMode.GOODPUT and self.slo is not SloMode.OFF:
            parts.append(f"lost={self.lost.value}")
        parts += self.recovery.spec_parts(RecoverMode.DECAY)
        flagged = {f"{key}={value}" for key, value in self.artifact_options.items()}
        if artifact and set(parts[1:]) <= flagged:  # nothing set beyond what the flag sets
            return f"{self.base_name}:{self.k_max},artifact"
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
        k = self._begin(view)
        self.recovery.drafted(k > 0)
        return k

    def _begin(self, view: BatchView) -> int:
        self.stats["iterations"] += 1
        self._cost = None
        batch = view.batch_size
        if batch == 0:
            return 0
        cbar = self.cbar_used = self.recovery.value(self.cbar)
        if self.recovery.recovering:
            self.stats["recovering"] += 1
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
        min_tokens = 1.0 + cbar if n1 == batch else 1.0
        time1 = cost.time_s(1, n1)
        self._predicted_time = (1, time1)  # T(1 step): reused after step 0 ran
        g1 = self._score(batch + cbar * n1, time1, min_tokens)
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
        self._checked = 0  # draft steps whose after-step check has run
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
        self._checked = step
        if g < self.best:
            self.stats["stop_after_step"] += 1
            return False
        self.best = g
        if self.cbar_mode is CbarMode.CUMULATIVE:
            self._fold_step(conf, step - 1)
        # (b) before step `step`: predict G(step + 1), extrapolating c_{i,step+1} = c_{i,step} * cbar
        if step >= self.k_max:
            return False
        n = cost.draft_counts[step]
        if n == 0:
            return False
        if not tokens_mode and (self._uniform or cost.limit_counts[step] == 0):
            # every request that drafted step - 1 may draft step `step` (requests that stopped
            # earlier have c = 0), so the extrapolated gain is cbar times the last step's sum
            gain_sum = self.cbar_used * self._last_sum
            min_tokens = 1.0
        else:
            gain = self._c_last * self.cbar_used
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

    def _fold_step(self, conf: np.ndarray, t: int) -> None:
        """``cbar=cumulative``: fold draft step t's confidences into the mean since the start
        (each request that drafted the step counts once; ``conf`` is 0 where nobody drafted)."""
        self._conf_total += float(self._ones @ conf[:, t])
        self._conf_count += self._cost.draft_counts[t]
        self.cbar = self._conf_total / self._conf_count
        if not self.recovery.recovering:
            self.cbar_used = self.cbar

    def _check_last_step(self, conf: np.ndarray, steps: int) -> None:
        """``cbar=cumulative``: the after-step check of the last step when the driver, not the
        drafter, ended the loop (all K steps ran): fold it in unless its goodput fell."""
        if self._checked >= steps:
            return
        self._checked = steps
        cost = self._cost
        time_s = cost.draft_s(steps) + cost.verify_s(self._batch + self._tokens_cum[steps])
        min_tokens = 1.0 + float(self._sum_c.min()) if self._sum_c is not None else 1.0
        if self._score(self._expected, time_s, min_tokens) >= self.best:
            self._fold_step(conf, steps - 1)

    def _update_cbar(self, conf: np.ndarray) -> None:
        """``cbar=ema``: EMA over the draft steps that ran of their mean single-token confidence."""
        sums = (self._ones @ conf).tolist()  # column sums (conf is 0 where nobody drafted)
        counts = self._cost.draft_counts
        w = self.cbar_weight
        cbar = self.cbar
        for t, total in enumerate(sums):
            cbar = (1.0 - w) * cbar + w * (total / max(counts[t], 1))
        self.cbar = cbar

    def _trim_pays(self, removed: float, total: int, target: int, draft_time: float) -> bool:
        """Whether giving up ``removed`` expected tokens to verify ``target`` instead of
        ``total`` positions keeps the predicted goodput (forms without a per-request SLO);
        records the decision in ``stats`` and ``last_trim``."""
        cost, expected = self._cost, self._expected
        full = self._score(expected, draft_time + cost.verify_s(total), 1.0)
        trimmed = self._score(expected - removed, draft_time + cost.verify_s(target), 1.0)
        kept = trimmed >= full
        self.stats["trim_kept" if kept else "trim_rejected"] += 1
        self.last_trim = "kept" if kept else "rejected"
        return kept

    def verify_lengths(self, conf: np.ndarray, drafted: np.ndarray) -> np.ndarray:
        drafted = np.asarray(drafted, dtype=np.int64)
        self.last_trim = "none"
        steps = conf.shape[1]
        if steps == 0 or self._cost is None:
            return drafted
        self._absorb(conf, steps)  # self._cum[:steps] now holds every c_{i,t}, 0 where not drafted
        if self.cbar_mode is CbarMode.CUMULATIVE:
            self._check_last_step(conf, steps)
        else:
            self._update_cbar(conf)
        cost = self._cost
        padding = cost._pad
        if self.trim is TrimMode.OFF or not padding.enabled:
            return drafted
        if cost.tree is not None:  # a method's token tree: trim whole depths
            from sim.drafters.trim import trim_tree
            return trim_tree(self, cost, drafted, steps)
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
            if drop < vals.size:
                part = vals.copy()  # np.partition without its wrapper's overhead
                part.partition(drop - 1)
                lowest = float(np.add.reduce(part[:drop]))
            else:
                lowest = self._expected - batch
            if not self._trim_pays(lowest, total, target, draft_time):
                return drafted
            if valid is None:
                neg_cols, rows = _step_major_index(steps, batch)
            else:
                cols, rows = valid.nonzero()
                neg_cols = -cols
            # lowest value first; ties: the later position, then the lower batch index
            dropped = np.lexsort((neg_cols, vals))[:drop]
            return drafted - np.bincount(rows[dropped], minlength=batch)
        if uniform and not tokens_mode:  # trim=request, everyone drafted `steps` tokens:
            # the `whole` lowest-final requests lose everything, the next one `part` tokens
            order = cum[steps - 1].argsort(kind="stable")
            whole, part = divmod(drop, steps)
            gone = order[:whole]
            removed = float(cum[:, gone].sum())
            if part:
                removed += float(cum[steps - part:, order[whole]].sum())
            if not self._trim_pays(removed, total, target, draft_time):
                return drafted
            new = drafted.copy()
            new[gone] = 0
            if part:
                new[order[whole]] -= part
            return new
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
            kept_sums = row_sums - np.bincount(rows[dropped], weights=vals[dropped],
                                               minlength=batch)
        else:
            new, kept_sums = _trim_requests(cum, drafted, drop)
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


def _trim_requests(cum: np.ndarray, drafted: np.ndarray, drop: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The artifact's request trimming: remove exactly ``drop`` tokens, whole suffixes first
    from the request with the lowest final cumulative confidence, then the next (ties: lower
    batch index), the last one only partly. ``cum`` is (B, steps), 0 past ``drafted``.
    Returns the new verify lengths and each request's kept sum of cumulative confidences."""
    idx = np.nonzero(drafted > 0)[0]
    order = idx[np.argsort(cum[idx, drafted[idx] - 1], kind="stable")]
    lengths = drafted[order]
    before = np.cumsum(lengths) - lengths  # tokens removed before reaching each request
    new = drafted.copy()
    new[order] = lengths - np.clip(drop - before, 0, lengths)
    prefix = np.cumsum(cum, axis=1)
    kept = np.where(new > 0, prefix[np.arange(len(new)), np.maximum(new - 1, 0)], 0.0)
    return new, kept
