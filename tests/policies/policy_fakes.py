"""Hand-computable doubles for the policy tests.

Estimator (all in milliseconds, returned in seconds):
    verify(tokens) = 10 + 0.5 * tokens          (tokens already padded by the caller)
    draft step     = 1 + draft_per_batch * padded_batch   (draft_per_batch = 0 by default)
    draft overhead = 0.5 (once per iteration that drafts)
Context length is ignored so every number in the tests can be checked by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.acceptance.base import accepted_prefix
from sim.core.padding import GraphPadding
from sim.policies.base import BatchView, OracleView

MS = 1e-3
NO_PADDING = GraphPadding(enabled=False)
DEFAULT_PADDING = GraphPadding()  # 1, 2, 4, 8, 16, 32, 64, 96, ...


@dataclass(frozen=True)
class FakeEstimator:
    verify_base_ms: float = 10.0
    verify_per_token_ms: float = 0.5
    draft_step_ms: float = 1.0
    draft_per_batch_ms: float = 0.0
    overhead_ms: float = 0.5

    def target_prefill_s(self, prompt_tokens, cached_tokens=None):
        return 0.0

    def draft_prefill_s(self, prompt_tokens, cached_tokens=None):
        return 0.0

    def target_verify_s(self, batch_size, tokens, context_tokens):
        return (self.verify_base_ms + self.verify_per_token_ms * tokens) * MS

    def draft_step_s(self, batch_size, context_tokens):
        return (self.draft_step_ms + self.draft_per_batch_ms * batch_size) * MS

    @property
    def draft_overhead_s(self):
        return self.overhead_ms * MS


def make_view(batch: int, *, max_draft: int | list[int] = 8, estimator=None,
              padding: GraphPadding = NO_PADDING, tpot_slo_s: float = float("inf"),
              oracle: OracleView | None = None) -> BatchView:
    limits = np.full(batch, max_draft, dtype=np.int64) if isinstance(max_draft, int) \
        else np.asarray(max_draft, dtype=np.int64)
    return BatchView(
        now_s=0.0,
        context_tokens=np.full(batch, 100, dtype=np.int64),
        prompt_tokens=np.full(batch, 90, dtype=np.int64),
        generated_tokens=np.full(batch, 10, dtype=np.int64),
        elapsed_s=np.zeros(batch),
        ttft_slo_s=float("inf"),
        tpot_slo_s=tpot_slo_s,
        queue_len=0,
        max_draft_tokens=limits,
        estimator=estimator or FakeEstimator(),
        padding=padding,
        oracle=oracle,
    )


class ScriptedExecutor:
    """Returns scripted draft confidences per step and accepted prefixes from a fixed verdict
    matrix; records what it was asked to do."""

    def __init__(self, conf: np.ndarray, accept: np.ndarray | None = None) -> None:
        self.conf = np.asarray(conf, dtype=np.float64)
        self.accept = np.ones_like(self.conf, dtype=bool) if accept is None \
            else np.asarray(accept, dtype=bool)
        self.masks: list[np.ndarray] = []
        self.verified: np.ndarray | None = None

    def draft_step(self, step: int, mask: np.ndarray) -> np.ndarray:
        self.masks.append(np.array(mask, dtype=bool))
        return self.conf[:, step]

    def verify(self, verify_tokens: np.ndarray) -> np.ndarray:
        self.verified = np.array(verify_tokens)
        return accepted_prefix(self.accept, np.asarray(verify_tokens))
