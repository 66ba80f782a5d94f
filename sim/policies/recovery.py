"""How an adaptive policy comes back from plain decoding (issue 10, "policies that recover").

SmartSpec's acceptance estimate alpha and AdaSpec's mean draft confidence cbar learn only from
iterations that draft. Once the estimate falls below the break-even point (one unlucky
request at batch 1 is enough), the policy decodes plainly and never sees the evidence that
would lift it again. A recovery rule maps the stored estimate to the value the policy
*decides* with; the stored estimate itself only ever absorbs observations.

Modes (``recover=`` in the policy grammar; ``recover_after=N`` sets N):

- ``none``: decide with the estimate (gets stuck: kept to show the failure).
- ``reset``: the SmartSpec artifact's rule (AdaSpec artifact's ``vllm/spec_decode/dsd.py``,
  ``_get_accepted_len``): an estimate below 0.3 is replaced by 0.65. Not parametrised.
- ``probe``: after N consecutive plain iterations, decide with the prior (``alpha0`` /
  ``cbar0``) until an iteration drafts. Invented here.
- ``decay`` (default): evidence ages while it is not refreshed: after s consecutive plain
  iterations, decide with ``prior + (estimate - prior) * 2 ** (-s / N)`` (half-life N plain
  iterations); an iteration that drafts sets s back to 0. Invented here. Near the break-even
  point (where a wrong guess costs little) it probes within a few iterations; far below it
  (a draft that really is poor) it waits longer.

Per iteration this is a couple of float operations (the policies' hot path).
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from sim.compiled.jit import jitable
from sim.errors import ConfigError
from sim.policies.params import check_enum, check_positive_int

#: The SmartSpec artifact's reset rule: below this, the estimate is replaced ...
ARTIFACT_RESET_BELOW = 0.3
#: ... by this value.
ARTIFACT_RESET_TO = 0.65
#: Default N of ``probe`` (plain iterations before a probe) and ``decay`` (half-life).
DEFAULT_RECOVER_AFTER = 64


class RecoverMode(str, Enum):
    """How the decision value returns from a stale estimate (see the module docstring)."""

    NONE = "none"
    RESET = "reset"
    PROBE = "probe"
    DECAY = "decay"


#: integer codes of the modes (the rules below take them)
MODE_CODES = {RecoverMode.NONE: 0, RecoverMode.RESET: 1, RecoverMode.PROBE: 2,
              RecoverMode.DECAY: 3}
#: the state arrays: ints (mode, N, plain streak, recovering), floats (prior, factor, pull)
RI_MODE, RI_AFTER, RI_STREAK, RI_RECOVERING = range(4)
RF_PRIOR, RF_FACTOR, RF_PULL = range(3)
STATE_INTS, STATE_FLOATS = 4, 3


@jitable
def recovery_value(ri, rf, estimate):
    """The estimate to decide with this iteration (see the module docstring); records in
    ``ri[RI_RECOVERING]`` whether it differs from ``estimate``."""
    mode = ri[RI_MODE]
    if mode == 3:  # decay
        used = rf[RF_PRIOR] + (estimate - rf[RF_PRIOR]) * rf[RF_PULL] if ri[RI_STREAK] \
            else estimate
    elif mode == 2:  # probe
        used = rf[RF_PRIOR] if ri[RI_STREAK] >= ri[RI_AFTER] else estimate
    elif mode == 1:  # reset
        used = ARTIFACT_RESET_TO if estimate < ARTIFACT_RESET_BELOW else estimate
    else:
        used = estimate
    ri[RI_RECOVERING] = 1 if used != estimate else 0
    return used


@jitable
def recovery_drafted(ri, rf, did_draft):
    """Record whether this iteration drafted (resets the plain streak) or not."""
    if did_draft:
        ri[RI_STREAK] = 0
        rf[RF_PULL] = 1.0
    else:
        ri[RI_STREAK] += 1
        rf[RF_PULL] *= rf[RF_FACTOR]


class Recovery:
    """The recovery rule of one policy instance: tracks the plain-iteration streak.

    ``value(estimate)`` is what the policy decides with this iteration; ``drafted(bool)``
    tells the rule whether the iteration drafted (call it once per iteration, after deciding).
    ``recovering`` says whether the last ``value`` differed from the estimate.

    The state lives in two small arrays (``ints``, ``floats``; a policy may pass views of its
    own state arrays), read and written by ``recovery_value`` / ``recovery_drafted``, the
    rules the compiled loop calls too.
    """

    __slots__ = ("mode", "prior", "after", "_i", "_f")

    def __init__(self, mode: str | RecoverMode, prior: float, after: int | None,
                 ints: np.ndarray | None = None, floats: np.ndarray | None = None) -> None:
        self.mode = check_enum(RecoverMode, mode, "recover")
        if after is not None and self.mode in (RecoverMode.NONE, RecoverMode.RESET):
            raise ConfigError(f"recover_after applies to recover=probe or decay, "
                              f"not recover={self.mode.value}")
        self.after = check_positive_int(DEFAULT_RECOVER_AFTER if after is None else after,
                                        "recover_after")
        self.prior = float(prior)
        self._i = np.zeros(STATE_INTS, dtype=np.int64) if ints is None else ints
        self._f = np.zeros(STATE_FLOATS) if floats is None else floats
        self._i[:] = (MODE_CODES[self.mode], self.after, 0, 0)
        # per plain iteration, for decay; pull = factor ** streak
        self._f[:] = (self.prior, 2.0 ** (-1.0 / self.after), 1.0)

    @property
    def recovering(self) -> bool:
        return bool(self._i[RI_RECOVERING])

    def spec_parts(self, default_mode: RecoverMode) -> list[str]:
        """The ``recover=`` / ``recover_after=`` parts of a canonical policy name."""
        parts = []
        if self.mode is not default_mode:
            parts.append(f"recover={self.mode.value}")
        if self.mode in (RecoverMode.PROBE, RecoverMode.DECAY) \
                and self.after != DEFAULT_RECOVER_AFTER:
            parts.append(f"recover_after={self.after}")
        return parts

    def value(self, estimate: float) -> float:
        """The estimate to decide with this iteration."""
        return float(recovery_value(self._i, self._f, float(estimate)))

    def drafted(self, did_draft: bool) -> None:
        """Record whether this iteration drafted (resets the plain streak) or not."""
        recovery_drafted(self._i, self._f, did_draft)
