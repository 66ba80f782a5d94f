"""The acceptance-model interface and the simplest model (one fixed per-token probability).

The simulator asks a model for two things: at admission, one acceptance *level* per request
(drawn from its category's profile); at each decode iteration, for the whole batch at once,
the draft confidence and the accept outcome of each of the next ``k`` draft positions.
Outcomes are drawn before drafting, so the sim-only oracle can see them; the accepted prefix
of request i is the run of True at the start of its row, cut at its verify length.

A draw is split in two so the simulator's hot path does per-request work once: ``draw_keys``
turns levels into whatever the model needs per request (computed at admission and cached per
slot), ``draw_with_keys`` draws a batch from those keys. ``draw`` is the two in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from sim.compiled.jit import compiled, jitable
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

    def draw_keys(self, levels: np.ndarray) -> np.ndarray:
        """Per-request draw keys (B,) for ``draw_with_keys``, a pure function of the levels."""
        ...

    def draw_with_keys(self, keys: np.ndarray, k: int, rng: np.random.Generator
                       ) -> tuple[np.ndarray, np.ndarray]:
        """``draw`` from precomputed keys: ``draw(levels, ...)`` is
        ``draw_with_keys(draw_keys(levels), ...)``, same random numbers, same results."""
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
        return self.draw_with_keys(self.draw_keys(levels), k, rng)

    def draw_keys(self, levels: np.ndarray) -> np.ndarray:
        return np.asarray(levels, dtype=np.float64)

    def draw_with_keys(self, keys: np.ndarray, k: int, rng: np.random.Generator
                       ) -> tuple[np.ndarray, np.ndarray]:
        batch = keys.shape[0]
        conf = np.empty((batch, k))
        accept = np.empty((batch, k), dtype=bool)
        compiled(draw_fixed)(rng.random(batch * k), np.asarray(keys, dtype=np.float64), batch,
                             k, conf, accept, 0, k)
        return conf, accept


def accepted_prefix(accept: np.ndarray, verify: np.ndarray) -> np.ndarray:
    """Length of the leading run of True in each row of ``accept``, capped at ``verify[i]``."""
    batch = accept.shape[0]
    out = np.zeros(batch, dtype=np.int64)
    if accept.shape[1]:
        compiled(accepted_prefix_into)(accept, np.asarray(verify, dtype=np.int64), batch, out)
    return out


@jitable
def accepted_prefix_into(accept, verify, batch, out):
    """``accepted_prefix`` of the first ``batch`` rows into ``out``. Each row is read to its
    end without a branch on the outcomes (``run`` stays 1 while every position so far was
    accepted and verified): the outcomes are random, so a loop that stopped at the first
    rejection would mispredict it about once a row."""
    k = accept.shape[1]
    for i in range(batch):
        cap = verify[i]
        n = 0
        run = 1
        for j in range(k):
            run = run & int(accept[i, j]) & int(j < cap)
            n += run
        out[i] = n


@jitable
def draw_fixed(v, keys, batch, k, conf, accept, first, stop):
    """``FixedAcceptance``'s draw from uniforms ``v`` (B*k, row-major): every token is
    accepted with its request's probability, which is also its confidence (positions
    ``first..stop-1`` only)."""
    for i in range(batch):
        p = keys[i]
        for j in range(first, stop):
            conf[i, j] = p
            accept[i, j] = v[i * k + j] < p
