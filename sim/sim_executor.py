"""The simulator's decode executor: draft confidences and verification outcomes come from the
acceptance model instead of real models (the real engine's executor lives in ``realrun``)."""

from __future__ import annotations

import numpy as np

from sim.acceptance.base import AcceptanceModel, accepted_prefix
from sim.policies.base import OracleView


class SimDecodeExecutor:
    """Implements ``sim.core.speculation.DecodeExecutor`` for one decode iteration.

    The whole (B, k) matrix of confidences and outcomes is drawn once per iteration, before
    drafting when the policy is an oracle (it may look at them) and lazily at the first draft
    step otherwise, from the run's single random generator.
    """

    __slots__ = ("_model", "_rng", "_keys", "_k", "_conf", "_accept")
    accepted_in_range = True  # verify() is accepted_prefix(accept, verify): 0 <= a_i <= k_i

    def __init__(self, model: AcceptanceModel, rng: np.random.Generator) -> None:
        self._model = model
        self._rng = rng
        self._keys: np.ndarray | None = None
        self._k = 0
        self._conf: np.ndarray | None = None
        self._accept: np.ndarray | None = None

    def start(self, keys: np.ndarray, k: int, draw_now: bool = False) -> OracleView | None:
        """Begin an iteration for requests with these draw keys (``model.draw_keys`` of their
        acceptance levels) and up to ``k`` draft positions; with ``draw_now`` the outcomes are
        drawn immediately and returned."""
        self._keys = keys
        self._k = k
        self._conf = self._accept = None
        if draw_now and k > 0:
            self._draw()
            return OracleView(self._conf, self._accept)
        return None

    def _draw(self) -> None:
        self._conf, self._accept = self._model.draw_with_keys(self._keys, self._k, self._rng)

    def draft_step(self, step: int, mask: np.ndarray) -> np.ndarray:
        if self._conf is None:
            self._draw()
        return self._conf[:, step]

    def verify(self, verify_tokens: np.ndarray) -> np.ndarray:
        if self._accept is None:
            return np.zeros(verify_tokens.shape[0], dtype=np.int64)
        return accepted_prefix(self._accept, verify_tokens)
