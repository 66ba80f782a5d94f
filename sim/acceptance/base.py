"""The acceptance-model interface and the simplest model (one fixed per-token probability).

The simulator asks a model for two things: at admission, one acceptance *level* per request
(drawn from its category's profile); at each decode iteration, for the whole batch at once,
the draft confidence and the accept outcome of each of the next ``k`` draft positions.
Outcomes are drawn before drafting, so the sim-only oracle can see them; the accepted prefix
of request i is the run of True at the start of its row, cut at its verify length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from sim.errors import ConfigError


class AcceptanceModel(Protocol):
    """Draws draft confidences and acceptance outcomes; all randomness from the given rng."""

    name: str

    def request_levels(self, categories: Sequence[str], rng: np.random.Generator) -> np.ndarray:
        """One mean acceptance level in (0, 1) per request, from its category's profile."""
        ...

    def draw(self, levels: np.ndarray, k: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
        """For requests with these levels: (conf, accept), both shape (B, k); conf in (0, 1]
        is the draft's probability of its own token, accept[i, j] the target's verdict on it."""
        ...


@dataclass(frozen=True)
class FixedAcceptance:
    """Every drafted token is accepted independently with probability ``alpha`` and the
    draft reports confidence ``alpha`` (no signal in the confidence). Useful for tests and as
    the i.i.d. textbook model; the realistic models live in ``sim.acceptance.model``."""

    alpha: float = 0.58
    name: str = "fixed"

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"acceptance probability must be in [0, 1], got {self.alpha}")

    def request_levels(self, categories: Sequence[str], rng: np.random.Generator) -> np.ndarray:
        return np.full(len(categories), self.alpha)

    def draw(self, levels: np.ndarray, k: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
        batch = levels.shape[0]
        conf = np.broadcast_to(levels[:, None], (batch, k))
        accept = rng.random((batch, k)) < conf
        return np.array(conf), accept


def accepted_prefix(accept: np.ndarray, verify: np.ndarray) -> np.ndarray:
    """Length of the leading run of True in each row of ``accept``, capped at ``verify[i]``."""
    k = accept.shape[1]
    if k == 0:
        return np.zeros(accept.shape[0], dtype=np.int64)
    within = accept & (_positions(k) < verify[:, None])
    return np.logical_and.accumulate(within, axis=1).sum(axis=1, dtype=np.int64)


_POSITIONS: dict[int, np.ndarray] = {}


def _positions(k: int) -> np.ndarray:
    """Cached row vector 0..k-1 (accepted_prefix runs once per simulated iteration)."""
    row = _POSITIONS.get(k)
    if row is None:
        row = _POSITIONS[k] = np.arange(k)[None, :]
    return row
