"""``adaspec-nv:K``: ablation of AdaSpec with the adaptive drafter and SLO-aware estimator but
no verifier trimming (every drafted token is verified)."""

from __future__ import annotations

from sim.policies.adaspec import AdaSpecPolicy, CbarMode, TrimMode
from sim.policies.goodput import SloMode
from sim.policies.recovery import RecoverMode


class AdaSpecNoVerifierPolicy(AdaSpecPolicy):
    """``adaspec-nv:K``: the AdaSpec drafter and estimator without verifier trimming."""

    base_name = "adaspec-nv"
    default_trim = TrimMode.OFF
    artifact_options = {"slo": "off", "cbar": "cumulative", "recover": "none"}

    def __init__(self, k: int = 8, slo: str | SloMode = SloMode.OFF, cbar0: float = 0.6,
                 cbar_weight: float | None = None, lost: str | None = None,
                 cbar: str | CbarMode = CbarMode.CUMULATIVE,
                 recover: str | RecoverMode = RecoverMode.DECAY,
                 recover_after: int | None = None) -> None:
        super().__init__(k=k, slo=slo, trim=TrimMode.OFF, cbar0=cbar0, cbar_weight=cbar_weight,
                         lost=lost, cbar=cbar, recover=recover, recover_after=recover_after)
