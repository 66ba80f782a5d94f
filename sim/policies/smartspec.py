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

from sim.errors import ConfigError
from sim.policies.base import BatchView, Policy
from sim.policies.goodput import IterationCost, draft_limits, goodput
from sim.policies.params import check_enum, check_k, check_unit
from sim.policies.recovery import Recovery, RecoverMode

DEFAULT_WEIGHT = 0.1
#: What ``smartspec:K,artifact`` sets (the registry's flag and the canonical name agree).
ARTIFACT = {"rate": "cumulative", "alpha0": "0.7", "recover": "reset", "plain_bias": "1.1"}


class RateMode(str, Enum):
    """How SmartSpec's acceptance estimate combines iterations."""

    EMA = "ema"
    CUMULATIVE = "cumulative"


class SmartSpecPolicy(Policy):
    """Uniform-k goodput maximiser with a running i.i.d. acceptance estimate."""

    def __init__(self, k: int = 8, alpha0: float = 0.6, weight: float | None = None,
                 rate: str | RateMode = RateMode.CUMULATIVE, plain_bias: float = 1.0,
                 recover: str | RecoverMode = RecoverMode.DECAY,
                 recover_after: int | None = None) -> None:
        self.k_max = check_k(k)
        self.alpha = check_unit(alpha0, "alpha0")
        self.alpha0 = self.alpha
        self.rate = check_enum(RateMode, rate, "rate")
        if weight is not None and self.rate is RateMode.CUMULATIVE:
            raise ConfigError("weight applies to rate=ema, not rate=cumulative")
        self.weight = check_unit(DEFAULT_WEIGHT if weight is None else weight, "weight",
                                 open_low=True)
        if isinstance(plain_bias, bool) or not isinstance(plain_bias, (int, float)) \
                or not 0.5 <= plain_bias <= 2.0:
            raise ConfigError(f"plain_bias must be a number in [0.5, 2], got {plain_bias!r}")
        self.plain_bias = float(plain_bias)
        self.recovery = Recovery(recover, self.alpha0, recover_after)
        self.name = self._canonical_name()
        self._accepted_total = 0
        self._trials_total = 0
        self._ks = np.arange(self.k_max + 1)
        self.last_goodputs: np.ndarray = np.zeros(0)

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

    def begin(self, view: BatchView) -> int:
        k_cap = self.k_max
        cost = IterationCost(view, k_cap)
        alpha = self.recovery.value(self.alpha)
        geo = np.cumsum(alpha ** self._ks)  # geo[j] = sum_{r<=j} alpha^r
        if cost.uniform:  # nobody capped below K
            tokens = view.batch_size * self._ks
            expected = view.batch_size * geo
        else:
            # per-request verify length for each candidate k: (K+1, B)
            lengths = np.minimum(self._ks[:, None], draft_limits(view, k_cap)[None, :])
            tokens = lengths.sum(axis=1)
            expected = geo[lengths].sum(axis=1)
        goodputs = np.array([goodput(e, cost.time_s(k, t)) for k, (e, t)
                             in enumerate(zip(expected.tolist(), tokens.tolist()))])
        goodputs[0] *= self.plain_bias
        self.last_goodputs = goodputs
        k = int(np.argmax(goodputs))  # first maximum: ties go to the smaller k
        self.recovery.drafted(k > 0)
        return k

    def observe(self, verify: np.ndarray, accepted: np.ndarray) -> None:
        verified = verify > 0
        if not verified.any():
            return
        acc = accepted[verified]
        hits = int(acc.sum())
        trials = hits + int(np.count_nonzero(acc < verify[verified]))
        if trials == 0:
            return
        if self.rate is RateMode.CUMULATIVE:
            self._accepted_total += hits
            self._trials_total += trials
            self.alpha = self._accepted_total / self._trials_total
        else:
            self.alpha = (1.0 - self.weight) * self.alpha + self.weight * (hits / trials)
