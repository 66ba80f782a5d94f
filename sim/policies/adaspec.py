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

import numpy as np

from sim.compiled.jit import compiled, jitable
from sim.errors import ConfigError
from sim.policies.base import BatchView, Policy
from sim.policies.goodput import (IterationCost, SloMode, array_sum, feasible_time,
                                  pairwise_sum, slo_limit)
from sim.policies.params import check_enum, check_k, check_unit
from sim.policies.recovery import (STATE_FLOATS, STATE_INTS, Recovery, RecoverMode,
                                   recovery_drafted, recovery_value)

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
    """The AdaSpec policy; see the module docstring for the exact rules.

    The rules are the ``@jitable`` functions below (``adaspec_begin``, ``adaspec_continue``,
    ``adaspec_verify``), over the state arrays ``_pi`` / ``_pf`` (layout ``AI_*`` / ``AF_*``):
    this class calls them compiled for the protocol path, with prices from the view's
    estimator, and the compiled loop calls them directly (``compiled_state``)."""

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
        pi = self._pi = np.zeros(AI_SIZE, dtype=np.int64)
        pf = self._pf = np.zeros(AF_SIZE)
        pi[AI_K] = self.k_max
        pi[AI_SLO] = _SLO_CODES[self.slo]
        pi[AI_LOST] = 1 if self.lost is LostMode.PLAIN else 0
        pi[AI_TRIM] = _TRIM_CODES[self.trim]
        pi[AI_CBAR_MODE] = 1 if self.cbar_mode is CbarMode.EMA else 0
        pf[AF_CBAR] = pf[AF_CBAR_USED] = self.cbar0
        pf[AF_CBAR_WEIGHT] = self.cbar_weight
        self.recovery = Recovery(recover, self.cbar0, recover_after,
                                 pi[AI_REC:AI_REC + STATE_INTS], pf[AF_REC:AF_REC + STATE_FLOATS])
        self.name = self._canonical_name()
        self._cost: IterationCost | None = None
        self._batch = -1
        self._work: tuple = ()

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

    # -- telemetry (read-only views of the state) ----------------------------------------------
    @property
    def cbar(self) -> float:
        """The stored mean draft confidence."""
        return float(self._pf[AF_CBAR])

    @cbar.setter
    def cbar(self, value: float) -> None:
        self._pf[AF_CBAR] = value

    @property
    def cbar_used(self) -> float:
        """The value the last iteration decided with (after recovery)."""
        return float(self._pf[AF_CBAR_USED])

    @property
    def g0(self) -> float:
        return float(self._pf[AF_G0])

    @property
    def best(self) -> float:
        return float(self._pf[AF_BEST])

    @property
    def predicted(self) -> float:
        return float(self._pf[AF_PREDICTED])

    @property
    def last_trim(self) -> str:
        return _TRIM_OUTCOMES[int(self._pi[AI_LAST_TRIM])]

    @property
    def stats(self) -> dict[str, int]:
        return {name: int(self._pi[AI_STATS + i]) for i, name in enumerate(STAT_NAMES)}

    def compiled_state(self):
        """(policy kind, int state, float state, asks every step) for the compiled loop;
        a string when this configuration has no compiled form."""
        from sim.compiled.layout import P_ADASPEC
        return P_ADASPEC, self._pi, self._pf, True

    # -- protocol --------------------------------------------------------------------------

    def _arrays(self, batch: int) -> tuple:
        if self._batch != batch:
            k = self.k_max
            self._batch = batch
            self._work = (np.zeros((k, batch)), np.zeros(batch), np.zeros(batch),
                          np.zeros(k + 1), np.zeros(k + 1), np.zeros(2 * (k + 1) * batch),
                          np.zeros(3 * (k + 1) * batch + batch, dtype=np.int64))
        return self._work

    def begin(self, view: BatchView) -> int:
        batch = view.batch_size
        cum, sum_c, gain, prices_v, prices_d, fscratch, iscratch = self._arrays(max(batch, 1))
        k_cap = self.k_max
        self._cost = None
        cost = None
        counts = np.zeros(k_cap, dtype=np.int64)
        uniform = True
        cap_max = 0
        if batch:
            cost = IterationCost(view, k_cap)
            counts[:] = cost.draft_counts
            uniform = cost.uniform
            prices_v[:] = np.nan
            prices_d[:] = np.nan
            prices_v[0] = cost.verify_s(batch)
            if counts[0] > 0:
                prices_v[1] = cost.verify_s(batch + int(counts[0]))
                prices_d[1] = cost.draft_s(1)
            if not uniform:
                cap_max = int(max(view.max_draft_tokens.tolist()))
        tpot = float(view.tpot_slo_s) if view.tpot_slo_s is not None else math.inf
        k = int(compiled(adaspec_begin)(self._pi, self._pf, batch, tpot, counts, uniform,
                                        prices_v, prices_d, cap_max))
        if self._pi[AI_ACTIVE]:
            self._cost = cost
            self._counts = counts
            self._tokens_cum = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            self._max_draft = np.asarray(view.max_draft_tokens, dtype=np.int64)
            self._hist = (np.asarray(cost.limit_counts, dtype=np.int64)
                          if cost.limit_counts is not None
                          else np.zeros(k_cap + 1, dtype=np.int64))
        return k

    def _price(self, steps: int) -> None:
        """Fill the prices of ``steps`` draft steps (and their verification) if missing."""
        prices_v, prices_d = self._work[3], self._work[4]
        if steps <= self.k_max and prices_v[steps] != prices_v[steps]:
            prices_v[steps] = self._cost.verify_s(self._batch + int(self._tokens_cum[steps]))
            prices_d[steps] = self._cost.draft_s(steps)

    def continue_drafting(self, step: int, conf: np.ndarray, drafted: np.ndarray) -> bool:
        if step == 0:
            return True
        if self._cost is None:
            return False
        self._price(step)
        self._price(step + 1)
        cum, sum_c, gain, prices_v, prices_d, _, _ = self._work
        conf = np.asarray(conf, dtype=np.float64)
        return bool(compiled(adaspec_continue)(
            self._pi, self._pf, step, conf, _column_contiguous(conf), self._batch, cum, sum_c,
            gain, self._counts, self._hist, self._tokens_cum, prices_v, prices_d,
            self._max_draft))

    def verify_lengths(self, conf: np.ndarray, drafted: np.ndarray) -> np.ndarray:
        drafted = np.asarray(drafted, dtype=np.int64)
        steps = conf.shape[1]
        self._pi[AI_LAST_TRIM] = TRIM_NONE
        if steps == 0 or self._cost is None:
            return drafted
        self._price(steps)
        cost = self._cost
        batch = self._batch
        padding = cost._pad
        tree = cost.tree is not None  # a method's token tree: whole depths are trimmed below
        trims = padding.enabled and not tree
        total = batch + (batch * steps if self._pi[AI_UNIFORM] else int(drafted.sum()))
        target = padding.next_smaller(total) if trims else total
        v_target = cost.verify_s(target) if batch <= target < total else 0.0
        cum, sum_c, gain, prices_v, prices_d, fscratch, iscratch = self._work
        conf = np.ascontiguousarray(conf, dtype=np.float64) if conf.dtype != np.float64 \
            else conf
        new = np.empty(batch, dtype=np.int64)
        changed = compiled(adaspec_verify)(
            self._pi, self._pf, conf, steps, _column_contiguous(conf), drafted, batch, cum,
            sum_c, self._counts, prices_v, prices_d, trims, total, target, v_target,
            new, fscratch, iscratch)
        if tree and self.trim is not TrimMode.OFF and padding.enabled:
            from sim.drafters.trim import trim_tree
            return trim_tree(self, cost, drafted, steps)
        return new if changed else drafted

    # -- the state a tree method's verifier (sim.drafters.trim) reads and records ------------
    def cumulative_confidences(self, steps: int) -> np.ndarray:
        """c_{i,t} of this iteration as (B, steps), 0 past what request i drafted."""
        return self._work[0][:steps, :self._batch].T

    @property
    def expected_tokens(self) -> float:
        """E[N] of the plan drafted so far (every drafted token verified)."""
        return float(self._pf[AF_EXPECTED])

    def score(self, expected: float, time_s: float, min_tokens: float) -> float:
        """G = E / T, or -inf for an infeasible configuration (the rule ``_score``)."""
        return float(_score(self._pi, self._pf, expected, time_s, min_tokens))

    def record_trim(self, kept: bool) -> None:
        """Count a trim decision in ``stats`` and ``last_trim``."""
        self._pi[ST_TRIM_KEPT if kept else ST_TRIM_REJECTED] += 1
        self._pi[AI_LAST_TRIM] = TRIM_KEPT if kept else TRIM_REJECTED


def _column_contiguous(conf: np.ndarray) -> bool:
    """Whether a column of ``conf`` is contiguous (BLAS then sums it another way)."""
    return conf.shape[0] <= 1 or conf.strides[0] == conf.itemsize


# ---- state layout ------------------------------------------------------------------------------
_SLO_CODES = {SloMode.OFF: 0, SloMode.STRICT: 1, SloMode.TOKENS: 2}
_TRIM_CODES = {TrimMode.TOKEN: 0, TrimMode.REQUEST: 1, TrimMode.OFF: 2}
SLO_OFF, SLO_STRICT, SLO_TOKENS = 0, 1, 2
TRIM_TOKEN, TRIM_REQUEST, TRIM_OFF = 0, 1, 2
TRIM_NONE, TRIM_KEPT, TRIM_REJECTED = 0, 1, 2
_TRIM_OUTCOMES = ("none", "kept", "rejected")
STAT_NAMES = ("iterations", "slo_lost", "precheck_plain", "stop_after_step", "stop_before_step",
              "trim_kept", "trim_rejected", "recovering")
(AI_K, AI_SLO, AI_LOST, AI_TRIM, AI_CBAR_MODE, AI_CONF_COUNT, AI_ACTIVE, AI_BATCH, AI_UNIFORM,
 AI_ABSORBED, AI_CHECKED, AI_PRED_AT, AI_PER_TOKEN, AI_LAST_TRIM, AI_TOKENS_MODE) = range(15)
AI_STATS = 15  # the STAT_NAMES counters
(ST_ITERATIONS, ST_SLO_LOST, ST_PRECHECK_PLAIN, ST_STOP_AFTER, ST_STOP_BEFORE, ST_TRIM_KEPT,
 ST_TRIM_REJECTED, ST_RECOVERING) = range(AI_STATS, AI_STATS + 8)
AI_REC = AI_STATS + 8  # the recovery rule's ints
AI_SIZE = AI_REC + STATE_INTS
(AF_CBAR, AF_CBAR_USED, AF_CONF_TOTAL, AF_CBAR_WEIGHT, AF_G0, AF_BEST, AF_PREDICTED, AF_SLO_S,
 AF_BUDGET_S, AF_EXPECTED, AF_LAST_SUM, AF_PRED_TIME) = range(12)
AF_REC = 12  # the recovery rule's floats
AF_SIZE = AF_REC + STATE_FLOATS


# ---- the rules ---------------------------------------------------------------------------------
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
            acc = np.zeros((4, 8))
            n32 = n1 & -32
            i = 0
            while i < n32:
                for q in range(4):
                    for lane in range(8):
                        acc[q, lane] = a[lo + (i + 8 * q + lane) * stride] + acc[q, lane]
                i += 32
            acc4 = np.zeros((4, 4))
            for q in range(4):
                for lane in range(4):
                    acc4[q, lane] = acc[q, lane] + acc[q, lane + 4]
            while i < n1:
                for q in range(4):
                    for lane in range(4):
                        acc4[q, lane] = a[lo + (i + 4 * q + lane) * stride] + acc4[q, lane]
                i += 16
            v0 = ((acc4[0, 0] + acc4[1, 0]) + acc4[2, 0]) + acc4[3, 0]
            v1 = ((acc4[0, 1] + acc4[1, 1]) + acc4[2, 1]) + acc4[3, 1]
            v2 = ((acc4[0, 2] + acc4[1, 2]) + acc4[2, 2]) + acc4[3, 2]
            v3 = ((acc4[0, 3] + acc4[1, 3]) + acc4[2, 3]) + acc4[3, 3]
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


@jitable
def _score(pi, pf, expected, time_s, min_tokens):
    """G = E / T, or -inf for an infeasible configuration (the strict form is the budget
    ``AF_BUDGET_S``, inf when unconstrained)."""
    if time_s > pf[AF_BUDGET_S] or (
            pi[AI_PER_TOKEN] and not feasible_time(time_s, min_tokens, pf[AF_SLO_S], True)):
        return -math.inf
    return expected / time_s if time_s > 0.0 else 0.0


@jitable
def adaspec_begin(pi, pf, batch, tpot_slo_s, counts, uniform, prices_v, prices_d, cap_max):
    """The pre-check (module doc, rule 1); returns the most draft steps this iteration may
    run. ``prices_v[s]`` / ``prices_d[s]``: verification / drafting seconds of s steps
    (needed here: s = 0, and s = 1 when anyone may draft)."""
    k = _begin(pi, pf, batch, tpot_slo_s, counts, uniform, prices_v, prices_d, cap_max)
    recovery_drafted(pi[AI_REC:AI_REC + STATE_INTS], pf[AF_REC:AF_REC + STATE_FLOATS], k > 0)
    return k


@jitable
def _begin(pi, pf, batch, tpot_slo_s, counts, uniform, prices_v, prices_d, cap_max):
    pi[ST_ITERATIONS] += 1
    pi[AI_ACTIVE] = 0
    if batch == 0:
        return 0
    cbar = recovery_value(pi[AI_REC:AI_REC + STATE_INTS], pf[AF_REC:AF_REC + STATE_FLOATS],
                          pf[AF_CBAR])
    pf[AF_CBAR_USED] = cbar
    if pi[AI_REC + 3]:  # recovering
        pi[ST_RECOVERING] += 1
    pi[AI_ACTIVE] = 1
    pi[AI_BATCH] = batch
    slo_s = slo_limit(tpot_slo_s, pi[AI_SLO] == SLO_OFF)
    t0 = prices_v[0]
    if pi[AI_LOST] == 0 and t0 > slo_s:
        # even plain decoding misses the TPOT budget: no configuration can meet it this
        # iteration, so maximise goodput unconstrained (fewer seconds per token for all)
        slo_s = math.inf
        pi[ST_SLO_LOST] += 1
    constrained = slo_s != math.inf
    pi[AI_PER_TOKEN] = 1 if constrained and pi[AI_SLO] == SLO_TOKENS else 0
    pf[AF_BUDGET_S] = slo_s if constrained and pi[AI_SLO] == SLO_STRICT else math.inf
    pf[AF_SLO_S] = slo_s
    g0 = batch / t0
    pf[AF_G0] = g0
    pf[AF_BEST] = g0
    n1 = counts[0] if counts.shape[0] else 0
    if n1 == 0:
        pi[ST_PRECHECK_PLAIN] += 1
        return 0
    min_tokens = 1.0 + cbar if n1 == batch else 1.0
    time1 = prices_d[1] + prices_v[1]
    pi[AI_PRED_AT] = 1  # T(1 step): reused after step 0 ran
    pf[AF_PRED_TIME] = time1
    g1 = _score(pi, pf, batch + cbar * n1, time1, min_tokens)
    pf[AF_PREDICTED] = g1
    if not g1 > g0:
        pi[ST_PRECHECK_PLAIN] += 1
        return 0
    # Every request that may draft step t does (max_draft_tokens > t; the driver enforces
    # that), so the drafter only ever answers True or False.
    pi[AI_UNIFORM] = 1 if uniform else 0
    pf[AF_LAST_SUM] = float(batch)
    pi[AI_TOKENS_MODE] = 1 if pi[AI_SLO] == SLO_TOKENS else 0
    pi[AI_ABSORBED] = 0
    pi[AI_CHECKED] = 0  # draft steps whose after-step check has run
    pf[AF_EXPECTED] = float(batch)
    if uniform:
        return pi[AI_K]
    return min(pi[AI_K], cap_max)  # the longest any request may draft


@jitable
def _absorb(pi, pf, conf, upto, batch, cum, sum_c):
    """Fold draft steps absorbed..upto-1 into the cumulative confidences (row t of ``cum``),
    their batch sum and the expected emitted tokens (``conf`` is 0 where a request did not
    draft, so c drops to 0 for requests that stopped)."""
    for t in range(pi[AI_ABSORBED], upto):
        if t == 0:
            for i in range(batch):
                cum[0, i] = conf[i, 0]
        else:
            for i in range(batch):
                cum[t, i] = cum[t - 1, i] * conf[i, t]
        last = ddot_ones(cum[t], 0, batch, 1, True)
        pf[AF_LAST_SUM] = last
        pf[AF_EXPECTED] += last
        if pi[AI_TOKENS_MODE]:
            for i in range(batch):
                sum_c[i] += cum[t, i]
    if upto > pi[AI_ABSORBED]:
        pi[AI_ABSORBED] = upto


@jitable
def _fold_step(pi, pf, conf, t, contiguous, batch, counts):
    """``cbar=cumulative``: fold draft step t's confidences into the mean since the start
    (each request that drafted the step counts once; ``conf`` is 0 where nobody drafted)."""
    pf[AF_CONF_TOTAL] += ddot_ones(conf[:, t], 0, batch, 1, contiguous)
    pi[AI_CONF_COUNT] += counts[t]
    pf[AF_CBAR] = pf[AF_CONF_TOTAL] / pi[AI_CONF_COUNT]
    if not pi[AI_REC + 3]:
        pf[AF_CBAR_USED] = pf[AF_CBAR]


@jitable
def _min_tokens(pi, sum_c, batch):
    """1 + min_i sum_t c_{i,t} in the tokens form, else 1."""
    if not pi[AI_TOKENS_MODE]:
        return 1.0
    low = sum_c[0]
    for i in range(1, batch):
        if sum_c[i] < low:
            low = sum_c[i]
    return 1.0 + low


@jitable
def adaspec_continue(pi, pf, step, conf, contiguous, batch, cum, sum_c, gain, counts, hist,
                     tokens_cum, prices_v, prices_d, max_draft):
    """The drafter (module doc, rule 2): whether everyone still drafting drafts step
    ``step`` (1) or nobody does (0). Needs the prices of ``step`` and ``step + 1`` steps."""
    if step == 0:
        return 1
    if not pi[AI_ACTIVE]:
        return 0
    # (a) after step `step - 1`: G(step) from the real cumulative confidences
    if pi[AI_ABSORBED] == 0 and pi[AI_TOKENS_MODE]:
        for i in range(batch):
            sum_c[i] = 0.0
    _absorb(pi, pf, conf, step, batch, cum, sum_c)
    if pi[AI_PRED_AT] == step:  # T(step) was computed for the prediction before it
        time_s = pf[AF_PRED_TIME]
    else:
        time_s = prices_d[step] + prices_v[step]
    g = _score(pi, pf, pf[AF_EXPECTED], time_s, _min_tokens(pi, sum_c, batch))
    pi[AI_CHECKED] = step
    if g < pf[AF_BEST]:
        pi[ST_STOP_AFTER] += 1
        return 0
    pf[AF_BEST] = g
    if pi[AI_CBAR_MODE] == 0:
        _fold_step(pi, pf, conf, step - 1, contiguous, batch, counts)
    # (b) before step `step`: predict G(step + 1), extrapolating c_{i,step+1} = c_{i,step} cbar
    if step >= pi[AI_K]:
        return 0
    n = counts[step]
    if n == 0:
        return 0
    cbar = pf[AF_CBAR_USED]
    last = pi[AI_ABSORBED] - 1  # the row of c_{i,step}
    if not pi[AI_TOKENS_MODE] and (pi[AI_UNIFORM] or hist[step] == 0):
        # every request that drafted step - 1 may draft step `step` (requests that stopped
        # earlier have c = 0), so the extrapolated gain is cbar times the last step's sum
        gain_sum = cbar * pf[AF_LAST_SUM]
        min_tokens = 1.0
    else:
        for i in range(batch):
            gain[i] = cum[last, i] * cbar
            if not pi[AI_UNIFORM] and not max_draft[i] > step:
                gain[i] = 0.0  # only requests with room draft step `step`
        gain_sum = array_sum(gain, batch)
        min_tokens = 1.0
        if pi[AI_TOKENS_MODE]:
            low = sum_c[0] + gain[0]
            for i in range(1, batch):
                if sum_c[i] + gain[i] < low:
                    low = sum_c[i] + gain[i]
            min_tokens = 1.0 + low
    time_next = prices_d[step + 1] + prices_v[step + 1]
    pi[AI_PRED_AT] = step + 1
    pf[AF_PRED_TIME] = time_next
    g_next = _score(pi, pf, pf[AF_EXPECTED] + gain_sum, time_next, min_tokens)
    pf[AF_PREDICTED] = g_next
    if g_next < pf[AF_BEST]:
        pi[ST_STOP_BEFORE] += 1
        return 0
    return 1


@jitable
def _trim_pays(pi, pf, removed, draft_time, v_total, v_target):
    """Whether giving up ``removed`` expected tokens to verify the smaller pass keeps the
    predicted goodput (forms without a per-request SLO); records the decision."""
    expected = pf[AF_EXPECTED]
    full = _score(pi, pf, expected, draft_time + v_total, 1.0)
    trimmed = _score(pi, pf, expected - removed, draft_time + v_target, 1.0)
    kept = trimmed >= full
    if kept:
        pi[ST_TRIM_KEPT] += 1
        pi[AI_LAST_TRIM] = TRIM_KEPT
    else:
        pi[ST_TRIM_REJECTED] += 1
        pi[AI_LAST_TRIM] = TRIM_REJECTED
    return kept


@jitable
def _lowest_tokens(cum, drafted, steps, batch, drop, vals, rows, ends):
    """The ``drop`` draft tokens with the lowest cumulative confidence (ties: the later
    position first, then the lower batch index): their request indices into ``rows[:drop]``
    (lowest first) and their values into ``vals[:drop]``; returns how many tokens there are.

    c_{i,t} never grows along t (confidences are at most 1), so the lowest tokens are
    suffixes: the rows' last tokens are merged (``ends``: scratch); a row that does grow
    falls back to sorting every token."""
    m = 0
    monotone = True
    for i in range(batch):
        d = drafted[i] if drafted[i] < steps else steps
        ends[i] = d - 1
        m += d
        for t in range(1, d):
            if cum[t, i] > cum[t - 1, i]:
                monotone = False
    take = drop if drop < m else m
    if monotone:
        for j in range(take):
            best = -1
            best_v = 0.0
            best_t = 0
            for i in range(batch):
                t = ends[i]
                if t < 0:
                    continue
                v = cum[t, i]
                if best < 0 or v < best_v or (v == best_v and t > best_t):
                    best, best_v, best_t = i, v, t
            vals[j] = best_v
            rows[j] = best
            ends[best] -= 1
        return m
    n = 0
    for t in range(steps - 1, -1, -1):  # stable sort by value of (t desc, i asc) order
        for i in range(batch):
            if t < drafted[i]:
                vals[n] = cum[t, i]
                rows[n] = i
                n += 1
    idx = np.argsort(vals[:n], kind="mergesort")
    picked_vals = np.empty(take)
    picked_rows = np.empty(take, dtype=np.int64)
    for j in range(take):
        picked_vals[j] = vals[idx[j]]
        picked_rows[j] = rows[idx[j]]
    for j in range(take):
        vals[j] = picked_vals[j]
        rows[j] = picked_rows[j]
    return m


@jitable
def trim_requests_into(cum, drafted, batch, steps, drop, new, kept, order):
    """The artifact's request trimming: remove exactly ``drop`` tokens, whole suffixes first
    from the request with the lowest final cumulative confidence, then the next (ties: lower
    batch index), the last one only partly. ``cum`` is (steps, B), 0 past ``drafted``; the new
    verify lengths go to ``new`` and each request's kept sum of cumulative confidences to
    ``kept``."""
    m = 0
    finals = np.empty(batch)
    for i in range(batch):
        if drafted[i] > 0:
            order[m] = i
            finals[m] = cum[drafted[i] - 1, i]
            m += 1
    idx = np.argsort(finals[:m], kind="mergesort")
    for i in range(batch):
        new[i] = drafted[i]
    before = 0
    for j in range(m):
        i = order[idx[j]]
        length = drafted[i]
        cut = drop - before
        if cut < 0:
            cut = 0
        if cut > length:
            cut = length
        new[i] = length - cut
        before += length
    for i in range(batch):
        if new[i] > 0:
            total = 0.0
            for t in range(new[i]):
                total += cum[t, i]
            kept[i] = total
        else:
            kept[i] = 0.0


@jitable
def _row_sum(cum, i, steps, batch):
    """``cum.T.sum(axis=1)[i]`` as numpy computes it (a pairwise sum along the row only when
    the batch has one request; otherwise step by step)."""
    if batch == 1:
        return 0.0 + pairwise_sum(cum[:, i], 0, steps)
    total = 0.0
    for t in range(steps):
        total += cum[t, i]
    return total


@jitable
def adaspec_verify(pi, pf, conf, steps, contiguous, drafted, batch, cum, sum_c, counts,
                   prices_v, prices_d, padding, total, target, v_target, new, fscratch,
                   iscratch):
    """The verifier (module doc, rule 3) and the cbar update (rule 4). ``total`` = B + sum
    drafted_i, ``target`` its next smaller graph size and ``v_target`` the verification
    price there (when it lies in [B, total)); needs the prices of ``steps`` steps. Writes the
    verify lengths to ``new`` and returns 1 when they differ from ``drafted``."""
    pi[AI_LAST_TRIM] = TRIM_NONE
    if steps == 0 or not pi[AI_ACTIVE]:
        return 0
    if pi[AI_ABSORBED] == 0 and pi[AI_TOKENS_MODE]:
        for i in range(batch):
            sum_c[i] = 0.0
    _absorb(pi, pf, conf, steps, batch, cum, sum_c)  # cum[:steps] holds every c_{i,t}
    if pi[AI_CBAR_MODE] == 0:
        if pi[AI_CHECKED] < steps:  # the driver, not the drafter, ended the loop
            pi[AI_CHECKED] = steps
            time_s = prices_d[steps] + prices_v[steps]
            if _score(pi, pf, pf[AF_EXPECTED], time_s, _min_tokens(pi, sum_c, batch)) \
                    >= pf[AF_BEST]:
                _fold_step(pi, pf, conf, steps - 1, contiguous, batch, counts)
    else:  # cbar=ema over the draft steps that ran of their mean single-token confidence
        w = pf[AF_CBAR_WEIGHT]
        cbar = pf[AF_CBAR]
        for t in range(steps):
            column = 0.0
            for i in range(batch):
                column += conf[i, t]
            cbar = (1.0 - w) * cbar + w * (column / max(counts[t], 1))
        pf[AF_CBAR] = cbar
    if pi[AI_TRIM] == TRIM_OFF or not padding:
        return 0
    if target < batch or target >= total:
        return 0
    drop = total - target
    draft_time = prices_d[steps]
    v_total = prices_v[steps]
    tokens_mode = pi[AI_TOKENS_MODE] != 0
    uniform = pi[AI_UNIFORM] != 0
    vals = fscratch
    rows = iscratch
    if pi[AI_TRIM] == TRIM_TOKEN and not tokens_mode:
        # Fast decision: the d lowest cumulative confidences sum to the same value whatever
        # the tie-breaking, so G(trimmed) is known before choosing which tokens go.
        m = _lowest_tokens(cum, drafted, steps, batch, drop, vals, rows, iscratch[-batch:])
        if drop < m:
            lowest = 0.0 + pairwise_sum(vals, 0, drop)
        else:
            lowest = pf[AF_EXPECTED] - batch
        if not _trim_pays(pi, pf, lowest, draft_time, v_total, v_target):
            return 0
        for i in range(batch):
            new[i] = drafted[i]
        for j in range(min(drop, m)):
            new[rows[j]] -= 1
        return 1
    if uniform and not tokens_mode:  # trim=request, everyone drafted `steps` tokens:
        # the `whole` lowest-final requests lose everything, the next one `part` tokens
        finals = np.empty(batch)
        for i in range(batch):
            finals[i] = cum[steps - 1, i]
        order = np.argsort(finals, kind="mergesort")
        whole = drop // steps
        part = drop % steps
        gone = fscratch
        m = 0
        for t in range(steps):  # cum[:, gone] in row-major order
            for j in range(whole):
                gone[m] = cum[t, order[j]]
                m += 1
        removed = 0.0 + pairwise_sum(gone, 0, m)
        if part:
            tail = np.empty(part)
            for t in range(part):
                tail[t] = cum[steps - part + t, order[whole]]
            removed += 0.0 + pairwise_sum(tail, 0, part)
        if not _trim_pays(pi, pf, removed, draft_time, v_total, v_target):
            return 0
        for i in range(batch):
            new[i] = drafted[i]
        for j in range(whole):
            new[order[j]] = 0
        if part:
            new[order[whole]] -= part
        return 1
    # the general rule (tokens form, or non-uniform request trimming)
    row_sums = np.empty(batch)
    for i in range(batch):
        row_sums[i] = _row_sum(cum, i, steps, batch)
    low = row_sums[0]
    for i in range(1, batch):
        if row_sums[i] < low:
            low = row_sums[i]
    full = _score(pi, pf, batch + array_sum(row_sums, batch), draft_time + v_total,
                  1.0 + low if tokens_mode else 1.0)
    kept = np.empty(batch)
    if pi[AI_TRIM] == TRIM_TOKEN:
        m = _lowest_tokens(cum, drafted, steps, batch, drop, vals, rows, iscratch[-batch:])
        for i in range(batch):
            new[i] = drafted[i]
            kept[i] = 0.0
        for j in range(min(drop, m)):
            new[rows[j]] -= 1
            kept[rows[j]] += vals[j]  # bincount(weights): in the order dropped
        for i in range(batch):
            kept[i] = row_sums[i] - kept[i]
    else:
        trim_requests_into(cum, drafted, batch, steps, drop, new, kept, iscratch)
    low = kept[0]
    verified = 0
    for i in range(batch):
        verified += new[i]
        if kept[i] < low:
            low = kept[i]
    trimmed = _score(pi, pf, batch + array_sum(kept, batch), draft_time + v_target,
                     1.0 + low if tokens_mode else 1.0)
    if trimmed >= full:
        pi[ST_TRIM_KEPT] += 1
        pi[AI_LAST_TRIM] = TRIM_KEPT
        return 1
    pi[ST_TRIM_REJECTED] += 1
    pi[AI_LAST_TRIM] = TRIM_REJECTED
    return 0


def _trim_requests(cum: np.ndarray, drafted: np.ndarray, drop: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``trim_requests_into`` on a (B, steps) ``cum``: (new verify lengths, kept sums)."""
    batch, steps = cum.shape
    new = np.empty(batch, dtype=np.int64)
    kept = np.empty(batch)
    compiled(trim_requests_into)(np.ascontiguousarray(cum.T), np.asarray(drafted, dtype=np.int64),
                                 batch, steps, drop, new, kept, np.empty(batch, dtype=np.int64))
    return new, kept
