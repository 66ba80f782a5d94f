"""Named target/draft pairings and one-call construction of the default latency model.

The pairs are the ones the AdaSpec paper and this project evaluate: vicuna-7b with vicuna-68m
(Spec-Bench's "SpS" setting), vicuna-33b with vicuna-160m, llama-3.3-70b with llama-3.2-1b,
the real Qwen2.5-Coder 1.5B/0.5B pair, and the tiny test shapes.
"""

from __future__ import annotations

from typing import Any

from sim.errors import ConfigError
from sim.latency.hardware import get_gpu
from sim.latency.models import get_model
from sim.latency.roofline import RooflineLatency

DEFAULT_DRAFTS: dict[str, str] = {
    "vicuna-7b": "vicuna-68m",
    "vicuna-33b": "vicuna-160m",
    "llama-3.3-70b": "llama-3.2-1b",
    "qwen2.5-coder-1.5b": "qwen2.5-coder-0.5b",
    "tiny-llama": "tiny-llama-draft",
    "tiny-qwen2": "tiny-qwen2-draft",
}


def default_draft(target: str) -> str:
    """Name of the draft model paired with the preset ``target``."""
    name = get_model(target).name
    try:
        return DEFAULT_DRAFTS[name]
    except KeyError:
        raise ConfigError(f"no default draft for {name!r}; pairs exist for: "
                          f"{', '.join(DEFAULT_DRAFTS)}") from None


def roofline_for(target: str, draft: str | None = "default", gpu: str = "A100-80G", tp: int = 1,
                 draft_tp: int = 1, **factors: Any) -> RooflineLatency:
    """Roofline model from preset names; ``draft="default"`` takes the paired draft and
    ``draft=None`` builds a target-only model. ``factors`` go to ``RooflineLatency``."""
    draft_name = default_draft(target) if draft == "default" else draft
    return RooflineLatency(get_model(target), get_model(draft_name) if draft_name else None,
                           get_gpu(gpu), tp=tp, draft_tp=draft_tp, **factors)
