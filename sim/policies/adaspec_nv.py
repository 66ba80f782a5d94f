"""``adaspec-nv:K``: ablation of AdaSpec with the adaptive drafter and SLO-aware estimator but
no verifier trimming (every drafted token is verified)."""

from __future__ import annotations

from sim.policies.adaspec import AdaSpecPolicy, LostMode, TrimMode
from sim.policies.goodput import SloMode


class AdaSpecNoVerifierPolicy(AdaSpecPolicy):
    """``adaspec-nv:K``: the AdaSpec drafter and estimator without verifier trimming."""

    base_name = "adaspec-nv"

    def __init__(self, k: int = 8, slo: str | SloMode = SloMode.STRICT, cbar0: float = 0.6,
                 cbar_weight: float = 0.1, lost: str = "goodput") -> None:
        super().__init__(k=k, slo=slo, trim=TrimMode.OFF, cbar0=cbar0, cbar_weight=cbar_weight,
                         lost=lost)

    def _canonical_name(self) -> str:
        parts = [str(self.k_max)]
        if self.slo is not SloMode.STRICT:
            parts.append(f"slo={self.slo.value}")
        if self.cbar0 != 0.6:
            parts.append(f"cbar0={self.cbar0:g}")
        if self.cbar_weight != 0.1:
            parts.append(f"cbar_weight={self.cbar_weight:g}")
        if self.lost is not LostMode.GOODPUT and self.slo is not SloMode.OFF:
            parts.append(f"lost={self.lost.value}")
        return f"{self.base_name}:" + ",".join(parts)
