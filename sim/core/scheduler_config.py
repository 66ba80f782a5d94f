"""The scheduler's engine limits (``SchedulerConfig``) and their one validation."""

from __future__ import annotations

from dataclasses import dataclass

from sim.core.scheduler_state import MAX_LIMIT, MAX_NUM_SEQS
from sim.errors import ConfigError


@dataclass(frozen=True)
class SchedulerConfig:
    """Engine limits. ``kv_blocks`` is the whole pool; ``watermark_blocks`` stay free at
    admission (vLLM keeps 1 %) so that admitted requests can grow without thrashing.
    ``chunked_prefill`` splits prompts longer than the token budget over several prefill
    iterations (a request's chunks run in consecutive prefill iterations); off by default.
    ``max_model_len`` is the model's context in tokens (None: unlimited); see
    :meth:`Scheduler.arrive` for the requests rejected on arrival."""

    kv_blocks: int
    max_num_seqs: int = 256
    block_size: int = 16
    max_num_batched_tokens: int = 8192
    watermark_blocks: int = 0
    chunked_prefill: bool = False
    max_model_len: int | None = None

    def __post_init__(self) -> None:
        for name in ("kv_blocks", "max_num_seqs", "block_size", "max_num_batched_tokens",
                     "max_model_len"):
            value, most = getattr(self, name), MAX_NUM_SEQS if name == "max_num_seqs" else MAX_LIMIT
            if value is not None and not 1 <= value <= most:
                raise ConfigError(f"{name} must be in 1..{most}, got {value}")
        if not 0 <= self.watermark_blocks < self.kv_blocks:
            raise ConfigError("watermark_blocks must be in [0, kv_blocks)")
