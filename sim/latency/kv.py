"""KV-cache capacity: how many blocks of ``block_size`` tokens fit beside the weights.

One shared pool, as vLLM 0.6's speculative worker sizes it: target and draft caches get the
same number of blocks, so a block costs ``block_size * (target KV bytes/token on one rank +
draft KV bytes/token on one rank)``.  The bottleneck rank holds a 1/tp shard of the target and
a 1/draft_tp shard of the draft (a draft_tp=1 draft lives on rank 0 only, so rank 0 is it).

Budget per GPU = memory * gpu_memory_utilization - weights on that GPU - activation reserve.
The default reserve (2 GiB) stands for what vLLM's profiling run finds beyond the weights:
CUDA context and NCCL buffers (~0.5-1 GiB), peak activations at max_num_batched_tokens and
the sampler's logits, and the CUDA-graph memory pool.
"""

from __future__ import annotations

from sim.errors import ConfigError
from sim.latency.hardware import GpuSpec
from sim.latency.models import ModelSpec

DEFAULT_ACTIVATION_RESERVE_BYTES = 2 * 1024**3


def kv_block_bytes(target: ModelSpec, draft: ModelSpec | None, tp: int = 1, draft_tp: int = 1,
                   block_size: int = 16, include_draft: bool = True) -> int:
    """Bytes one block (``block_size`` tokens of target and draft KV) takes on one GPU."""
    per_token = target.kv_bytes_per_token_per_rank(tp)
    if include_draft and draft is not None:
        per_token += draft.kv_bytes_per_token_per_rank(draft_tp)
    return block_size * per_token


def kv_capacity_blocks(target: ModelSpec, draft: ModelSpec | None, gpu: GpuSpec, tp: int = 1,
                       block_size: int = 16, gpu_memory_utilization: float = 0.9,
                       activation_reserve_bytes: int = DEFAULT_ACTIVATION_RESERVE_BYTES,
                       include_draft: bool = True, draft_tp: int = 1) -> int:
    """Number of KV blocks that hold both target and draft KV for ``block_size`` tokens each.

    Raises ConfigError if the weights (plus the reserve) leave no room for a single block.
    """
    if block_size < 1:
        raise ConfigError(f"block_size must be >= 1, got {block_size}")
    if not 0 < gpu_memory_utilization <= 1:
        raise ConfigError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}")
    if activation_reserve_bytes < 0:
        raise ConfigError(f"activation_reserve_bytes must be >= 0, got {activation_reserve_bytes}")
    target.check_tp(tp)
    with_draft = include_draft and draft is not None
    weights = target.weight_bytes / tp
    if with_draft:
        draft.check_tp(draft_tp)
        weights += draft.weight_bytes / draft_tp
    usable = gpu.memory_bytes * gpu_memory_utilization
    budget = usable - weights - activation_reserve_bytes
    block = kv_block_bytes(target, draft, tp, draft_tp, block_size, with_draft)
    if budget < block:
        names = target.name + (f" + {draft.name}" if with_draft else "")
        raise ConfigError(
            f"{names} weights ({weights / 1e9:.1f} GB per GPU at tp={tp}) plus the "
            f"{activation_reserve_bytes / 1e9:.1f} GB reserve leave no room for one KV block in "
            f"{gpu.name}'s {usable / 1e9:.1f} GB usable ({gpu_memory_utilization:.0%} of "
            f"{gpu.memory_bytes / 1e9:.1f} GB); raise tp or gpu_memory_utilization")
    return int(budget // block)
