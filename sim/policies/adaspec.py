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

from sim.compiled.jit import compiled
from sim.errors import ConfigError
from sim.policies.adaspec_rules import (AF_BEST, AF_CBAR, AF_CBAR_USED, AF_CBAR_WEIGHT,
                                        AF_G0, AF_PREDICTED, AF_REC, AF_SIZE,
                                        AI_ACTIVE, AI_CBAR_MODE, AI_K, AI_LAST_TRIM, AI_LOST,
                                        AI_REC, AI_SIZE, AI_SLO, AI_STATS, AI_TRIM, AI_UNIFORM,
                                        STAT_NAMES, TRIM_NONE, _TRIM_OUTCOMES, adaspec_begin,
                                        adaspec_continue, adaspec_verify)
from sim.policies.base import BatchView, Policy
from sim.policies.goodput import IterationCost, SloMode
from sim.policies.trim_selection import TREE_FLOATS_PER_ROW, TREE_INTS_PER_ROW
from sim.policies.params import check_enum, check_k, check_unit
from sim.policies.recovery import STATE_FLOATS, STATE_INTS, Recovery, RecoverMode

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
        self._counts = self._tokens_cum = self._no_limits = np.zeros(0, dtype=np.int64)

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
                          np.zeros(k + 1), np.zeros(k + 1),
                          np.zeros(2 * (k + 1) * batch + TREE_FLOATS_PER_ROW * batch),
                          np.zeros((3 * (k + 1) + 1 + TREE_INTS_PER_ROW) * batch,
                                   dtype=np.int64))
        if len(self._counts) != self.k_max:  # per-iteration plan arrays, refilled by begin
            k = self.k_max
            self._counts = np.zeros(k, dtype=np.int64)
            self._tokens_cum = np.zeros(k + 1, dtype=np.int64)  # [0] stays 0
            self._no_limits = np.zeros(k + 1, dtype=np.int64)
        return self._work

    def begin(self, view: BatchView) -> int:
        batch = view.batch_size
        cum, sum_c, gain, prices_v, prices_d, fscratch, iscratch = self._arrays(max(batch, 1))
        k_cap = self.k_max
        self._cost = None
        cost = None
        counts = self._counts
        uniform = True
        cap_max = 0
        if not batch:
            counts.fill(0)
        else:
            cost = IterationCost(view, k_cap)
            uniform = cost.uniform
            if uniform:
                counts.fill(batch)
            else:
                counts[:] = cost.draft_counts
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
            np.cumsum(counts, out=self._tokens_cum[1:])
            self._max_draft = np.asarray(view.max_draft_tokens, dtype=np.int64)
            self._hist = (np.asarray(cost.limit_counts, dtype=np.int64)
                          if cost.limit_counts is not None else self._no_limits)
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
    def trim_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rules' ints and floats (E[N], the SLO, the trim counters) and this iteration's
        cumulative confidences c_{i,t} as they hold them, ``[t, i]`` (0 past what request i
        drafted): what ``sim.drafters.trim`` reads and records into."""
        return self._pi, self._pf, self._work[0]


def _column_contiguous(conf: np.ndarray) -> bool:
    """Whether a column of ``conf`` is contiguous (BLAS then sums it another way)."""
    return conf.shape[0] <= 1 or conf.strides[0] == conf.itemsize


# the codes of the options in the state arrays (sim.policies.adaspec_rules)
_SLO_CODES = {SloMode.OFF: 0, SloMode.STRICT: 1, SloMode.TOKENS: 2}
_TRIM_CODES = {TrimMode.TOKEN: 0, TrimMode.REQUEST: 1, TrimMode.OFF: 2}
