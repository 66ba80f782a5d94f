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


class Recovery:
    """The recovery rule of one policy instance: tracks the plain-iteration streak.

    ``value(estimate)`` is what the policy decides with this iteration; ``drafted(bool)``
    tells the rule whether the iteration drafted (call it once per iteration, after deciding).
    ``recovering`` says whether the last ``value`` differed from the estimate.
    """

    __slots__ = ("mode", "prior", "after", "_factor", "_pull", "_streak", "recovering")

    def __init__(self, mode: str | RecoverMode, prior: float, after: int | None) -> None:
        self.mode = check_enum(RecoverMode, mode, "recover")
        if after is not None and self.mode in (RecoverMode.NONE, RecoverMode.RESET):
            raise ConfigError(f"recover_after applies to recover=probe or decay, "
                              f"not recover={self.mode.value}")
        self.after = check_positive_int(DEFAULT_RECOVER_AFTER if after is None else after,
                                        "recover_after")
        self.prior = float(prior)
        self._factor = 2.0 ** (-1.0 / self.after)  # per plain iteration, for decay
        self._pull = 1.0  # factor ** streak
        self._streak = 0
        self.recovering = False

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
        mode = self.mode
        if mode is RecoverMode.DECAY:
            used = self.prior + (estimate - self.prior) * self._pull if self._streak else estimate
        elif mode is RecoverMode.PROBE:
            used = self.prior if self._streak >= self.after else estimate
        elif mode is RecoverMode.RESET:
            used = ARTIFACT_RESET_TO if estimate < ARTIFACT_RESET_BELOW else estimate
        else:
            used = estimate
        self.recovering = used != estimate
        return used

    def drafted(self, did_draft: bool) -> None:
        """Record whether this iteration drafted (resets the plain streak) or not."""
        if did_draft:
            self._streak = 0
            self._pull = 1.0
        else:
            self._streak += 1
            self._pull *= self._factor
