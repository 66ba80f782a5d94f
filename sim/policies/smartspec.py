"""``smartspec:K``: SmartSpec-style goodput argmax over a uniform draft length.

Each iteration picks k in 0..K maximising

    G(k) = sum_i (1 - a^(min(k, m_i) + 1)) / (1 - a) / T(k)

(B * (1 - a^(k+1)) / (1 - a) / T(k) when no request is capped by its ``max_draft_tokens``
m_i), with T(k) from ``sim.policies.goodput.IterationCost`` (estimator, graph padding) and a
running acceptance estimate a. G(0) is multiplied by ``plain_bias`` (default 1.0). Ties go
to the smaller k.

The estimate learns from every iteration that verified drafted tokens: each verified position
up to and including the first rejection is one Bernoulli trial (a truncated geometric), so an
iteration brings sum a_i accepted of sum (a_i + [a_i < k_i]) trials.

- ``rate=cumulative`` (default; the artifacts' form): alpha = all accepted / all trials since
  the start, ``alpha0`` (0.6) until the first verified token. Both SmartSpec's own code and
  the AdaSpec artifact's copy feed it vLLM's cumulative rejection-sampler counters.
- ``rate=ema`` (invented here): alpha <- (1 - w) * alpha + w * (accepted / trials) per
  iteration, w = ``weight`` (0.1). At batch 1 an iteration holds a handful of trials, so this
  estimate is noisy: it dips below break-even far more often (measured in the README).

The value decided with comes from ``sim.policies.recovery`` (``recover=``, default ``decay``),
so a stale low estimate cannot keep the policy in plain decoding for good.

``smartspec:K,artifact`` is SmartSpec as the AdaSpec artifact runs it (cerebellumking/AdaSpec
@ f3f2f48 ``vllm/spec_decode/dsd.py``; read from the identical class in Waloid24/SpecServe
@ 6fd4d37): ``rate=cumulative, alpha0=0.7, recover=reset`` (below 0.3 the rate is replaced by
0.65) and ``plain_bias=1.1`` ("the goodput should be at least 1.1x of non spec decode").
The artifact divides vLLM's rejection-sampler counters (every drafted position the target
agreed with, also past the first rejection, over all drafted positions); the policy protocol
reports accepted prefixes only, so the truncated-geometric count above stands in for it: both
estimate the same per-token rate when acceptances are independent.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from sim.compiled.jit import compiled, jitable
from sim.errors import ConfigError
from sim.policies.base import BatchView, Policy
from sim.policies.goodput import IterationCost, clamped_limit, goodput_of, pairwise_sum
from sim.policies.params import check_enum, check_k, check_unit
from sim.policies.recovery import (STATE_FLOATS, STATE_INTS, Recovery, RecoverMode,
                                   recovery_drafted, recovery_value)

DEFAULT_WEIGHT = 0.1
#: What ``smartspec:K,artifact`` sets (the registry's flag and the canonical name agree).
ARTIFACT = {"rate": "cumulative", "alpha0": "0.7", "recover": "reset", "plain_bias": "1.1"}


class RateMode(str, Enum):
    """How SmartSpec's acceptance estimate combines iterations."""

    EMA = "ema"
    CUMULATIVE = "cumulative"


class SmartSpecPolicy(Policy):
    """Uniform-k goodput maximiser with a running i.i.d. acceptance estimate.

    The rules are ``smartspec_begin`` and ``smartspec_observe`` over the state arrays
    ``_pi`` / ``_pf`` (layout ``SI_*`` / ``SF_*``), which the compiled loop runs too."""

    def __init__(self, k: int = 8, alpha0: float = 0.6, weight: float | None = None,
                 rate: str | RateMode = RateMode.CUMULATIVE, plain_bias: float = 1.0,
                 recover: str | RecoverMode = RecoverMode.DECAY,
                 recover_after: int | None = None) -> None:
        self.k_max = check_k(k)
        self.alpha0 = check_unit(alpha0, "alpha0")
        self.rate = check_enum(RateMode, rate, "rate")
        if weight is not None and self.rate is RateMode.CUMULATIVE:
            raise ConfigError("weight applies to rate=ema, not rate=cumulative")
        self.weight = check_unit(DEFAULT_WEIGHT if weight is None else weight, "weight",
                                 open_low=True)
        if isinstance(plain_bias, bool) or not isinstance(plain_bias, (int, float)) \
                or not 0.5 <= plain_bias <= 2.0:
            raise ConfigError(f"plain_bias must be a number in [0.5, 2], got {plain_bias!r}")
        self.plain_bias = float(plain_bias)
        pi = self._pi = np.zeros(SI_SIZE, dtype=np.int64)
        pf = self._pf = np.zeros(SF_SIZE)
        pi[SI_K] = self.k_max
        pi[SI_RATE] = 1 if self.rate is RateMode.EMA else 0
        pf[SF_ALPHA] = self.alpha0
        pf[SF_WEIGHT] = self.weight
        pf[SF_PLAIN_BIAS] = self.plain_bias
        self.recovery = Recovery(recover, self.alpha0, recover_after,
                                 pi[SI_REC:SI_REC + STATE_INTS], pf[SF_REC:SF_REC + STATE_FLOATS])
        self.name = self._canonical_name()
        self.last_goodputs: np.ndarray = np.zeros(0)

    @property
    def alpha(self) -> float:
        """The running acceptance estimate."""
        return float(self._pf[SF_ALPHA])

    def _canonical_name(self) -> str:
        """The spec with non-default options only (``make_policy`` rebuilds it); the exact
        artifact configuration is written as its flag."""
        options = {"rate": self.rate.value, "alpha0": f"{self.alpha0:g}",
                   "recover": self.recovery.mode.value, "plain_bias": f"{self.plain_bias:g}"}
        parts = [str(self.k_max)]
        if options == ARTIFACT:
            return f"smartspec:{self.k_max},artifact"
        if self.alpha0 != 0.6:
            parts.append(f"alpha0={self.alpha0:g}")
        if self.rate is not RateMode.CUMULATIVE:
            parts.append(f"rate={self.rate.value}")
            if self.weight != DEFAULT_WEIGHT:
                parts.append(f"weight={self.weight:g}")
        if self.plain_bias != 1.0:
            parts.append(f"plain_bias={self.plain_bias:g}")
        parts += self.recovery.spec_parts(RecoverMode.DECAY)
        return "smartspec:" + ",".join(parts)

    def compiled_state(self):
        """(policy kind, int state, float state, asks every step) for the compiled loop."""
        from sim.compiled.layout import P_SMARTSPEC
        return P_SMARTSPEC, self._pi, self._pf, False

    def begin(self, view: BatchView) -> int:
        k_cap = self.k_max
        batch = view.batch_size
        cost = IterationCost(view, k_cap)
        tokens_cum = np.zeros(k_cap + 1, dtype=np.int64)
        tokens_cum[1:] = np.cumsum(cost.draft_counts)
        prices_v = np.array([cost.verify_s(batch + int(t)) for t in tokens_cum.tolist()])
        prices_d = np.array([cost.draft_s(k) for k in range(k_cap + 1)])
        goodputs = np.zeros(k_cap + 1)
        k = int(compiled(smartspec_begin)(
            self._pi, self._pf, batch, np.asarray(view.max_draft_tokens, dtype=np.int64),
            cost.uniform, prices_v, prices_d, goodputs, np.zeros(batch + k_cap + 1)))
        self.last_goodputs = goodputs
        return k

    def observe(self, verify: np.ndarray, accepted: np.ndarray) -> None:
        smartspec_observe(self._pi, self._pf, verify, accepted, verify.shape[0])


# ---- state layout and rules --------------------------------------------------------------------
SI_K, SI_RATE, SI_ACCEPTED, SI_TRIALS = range(4)
SI_REC = 4
SI_SIZE = SI_REC + STATE_INTS
SF_ALPHA, SF_WEIGHT, SF_PLAIN_BIAS = range(3)
SF_REC = 3
SF_SIZE = SF_REC + STATE_FLOATS


@jitable
def smartspec_begin(pi, pf, batch, max_draft, uniform, prices_v, prices_d, goodputs, row):
    """The goodput argmax over k = 0..K (module doc); ``prices_v[k]`` / ``prices_d[k]``:
    verification / drafting seconds of k steps where every request that may, drafts. The
    goodputs go to ``goodputs``; ``row`` is scratch of at least the batch's size + K + 1
    (its last K + 1 hold the geometric sums: no array allocated per iteration)."""
    k_cap = pi[SI_K]
    alpha = recovery_value(pi[SI_REC:SI_REC + STATE_INTS], pf[SF_REC:SF_REC + STATE_FLOATS],
                           pf[SF_ALPHA])
    geo = row[row.shape[0] - (k_cap + 1):]  # geo[j] = sum_{r<=j} alpha^r
    total = 0.0
    for j in range(k_cap + 1):
        total += alpha ** float(j)
        geo[j] = total
    for k in range(k_cap + 1):
        if uniform:  # nobody capped below K
            expected = batch * geo[k]
        else:  # each request verifies min(k, its limit) tokens
            for i in range(batch):
                limit = clamped_limit(max_draft[i], k_cap)
                row[i] = geo[k if k < limit else limit]
            expected = 0.0 + pairwise_sum(row, 0, batch)
        goodputs[k] = goodput_of(expected, prices_d[k] + prices_v[k])
    goodputs[0] *= pf[SF_PLAIN_BIAS]
    best = 0  # first maximum: ties go to the smaller k
    for k in range(1, k_cap + 1):
        if goodputs[k] > goodputs[best]:
            best = k
    recovery_drafted(pi[SI_REC:SI_REC + STATE_INTS], pf[SF_REC:SF_REC + STATE_FLOATS], best > 0)
    return best


@jitable
def smartspec_observe(pi, pf, verify, accepted, batch):
    """Learn the acceptance estimate: each verified position up to and including the first
    rejection is one trial."""
    hits = 0
    misses = 0
    verified = False
    for i in range(batch):
        if verify[i] > 0:
            verified = True
            hits += accepted[i]
            if accepted[i] < verify[i]:
                misses += 1
    if not verified:
        return
    trials = hits + misses
    if trials == 0:
        return
    if pi[SI_RATE] == 0:
        pi[SI_ACCEPTED] += hits
        pi[SI_TRIALS] += trials
        pf[SF_ALPHA] = pi[SI_ACCEPTED] / pi[SI_TRIALS]
    else:
        w = pf[SF_WEIGHT]
        pf[SF_ALPHA] = (1.0 - w) * pf[SF_ALPHA] + w * (hits / trials)
