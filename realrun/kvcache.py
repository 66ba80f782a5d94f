"""Slot KV caches: each running request owns one row (slot) of a preallocated cache.

Storage per layer: keys and values of shape ``[max_slots, kv_heads, max_len + 1, head_dim]``;
column ``max_len`` is a scratch column that absorbs the writes of padded query positions, so a
padded pass never clobbers real entries. ``lengths[s]`` is the number of valid positions of
slot ``s``; rolling back rejected tokens is just lowering it (``truncate``).

Why not transformers' ``DynamicCache``/``StaticCache``: both keep one sequence length for the
whole batch (``StaticCache`` writes every row at the same ``cache_position``), so rows at
different lengths need left padding that changes as rows join, leave and roll back. Instead a
forward pass (``realrun.forward``) hands the model a small per-pass ``Cache`` whose layers write
each row's new keys/values *in place* at that row's own positions ``lengths[s] + q`` (index_put)
and return the rows' cached prefix ``[:, :, :kv_len]`` (a view when the slots are contiguous,
else one gather). An explicit additive 4D mask (row b, query q sees key j iff
``j <= lengths[b] + q``) and per-row ``position_ids`` make the batched pass exact. This works
with the stock Llama/Qwen2/Mistral modules (eager or sdpa attention) of transformers 5.x.
"""

from __future__ import annotations

from typing import Sequence

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

from sim.errors import ConfigError


class SlotKVCache:
    """Preallocated per-slot keys/values of one model (target and draft each own one)."""

    def __init__(self, *, num_layers: int, kv_heads: int, head_dim: int, max_slots: int,
                 max_len: int, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        if min(num_layers, kv_heads, head_dim, max_slots, max_len) <= 0:
            raise ConfigError("slot KV cache dimensions must be positive")
        self.num_layers = num_layers
        self.kv_heads = kv_heads
        self.head_dim = head_dim
        self.max_slots = max_slots
        self.max_len = max_len
        self.device = torch.device(device)
        self.dtype = dtype
        shape = (max_slots, kv_heads, max_len + 1, head_dim)
        # Zeros, never uninitialised memory: masked-out positions must hold finite values.
        self.keys = [torch.zeros(shape, device=self.device, dtype=dtype) for _ in range(num_layers)]
        self.values = [torch.zeros(shape, device=self.device, dtype=dtype) for _ in range(num_layers)]
        self.lengths = [0] * max_slots
        self._free = list(range(max_slots - 1, -1, -1))
        self._used: set[int] = set()

    @classmethod
    def for_model(cls, model: torch.nn.Module, *, max_slots: int, max_len: int) -> "SlotKVCache":
        """A cache shaped for ``model`` (a transformers causal LM), on its device and dtype."""
        cfg = model.config
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        param = next(model.parameters())
        return cls(num_layers=cfg.num_hidden_layers, kv_heads=kv_heads, head_dim=head_dim,
                   max_slots=max_slots, max_len=max_len, device=param.device, dtype=param.dtype)

    @property
    def bytes_total(self) -> int:
        """Bytes held by keys and values (scratch column included)."""
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))

    @property
    def free_slots(self) -> int:
        return len(self._free)

    def allocate(self, slot: int | None = None) -> int:
        """Take a free slot (the given one, or any); its length starts at 0."""
        if slot is None:
            if not self._free:
                raise ConfigError(f"no free KV slot (max_slots={self.max_slots})")
            slot = self._free.pop()
        else:
            self._check_slot(slot)
            if slot in self._used:
                raise ConfigError(f"KV slot {slot} is already in use")
            self._free.remove(slot)
        self._used.add(slot)
        self.lengths[slot] = 0
        return slot

    def free(self, slot: int) -> None:
        """Release ``slot``; its contents become garbage (never read again before rewrite)."""
        self._check_slot(slot)
        if slot not in self._used:
            raise ConfigError(f"KV slot {slot} is not in use")
        self._used.remove(slot)
        self.lengths[slot] = 0
        self._free.append(slot)

    def is_allocated(self, slot: int) -> bool:
        return slot in self._used

    def truncate(self, slots: Sequence[int], lengths: Sequence[int]) -> None:
        """Roll slots back to ``lengths`` valid positions (never forward)."""
        for slot, length in zip(slots, lengths, strict=True):
            self._check_slot(slot)
            length = int(length)
            if not 0 <= length <= self.lengths[slot]:
                raise ValueError(f"cannot truncate slot {slot} from {self.lengths[slot]} to {length}")
            self.lengths[slot] = length

    def reset_all(self) -> None:
        """Free every slot."""
        for slot in list(self._used):
            self.free(slot)

    def _check_slot(self, slot: int) -> None:
        if not 0 <= slot < self.max_slots:
            raise ConfigError(f"KV slot {slot} out of range 0..{self.max_slots - 1}")


class _SlotLayer(CacheLayerMixin):
    """One layer's view of a SlotKVCache during one forward pass."""

    is_sliding = False

    def __init__(self, store: SlotKVCache, layer: int, plan: "PassPlan") -> None:
        super().__init__()
        self.store = store
        self.layer = layer
        self.plan = plan
        self.is_initialized = True

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        return None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
               ) -> tuple[torch.Tensor, torch.Tensor]:
        plan = self.plan
        keys, values = self.store.keys[self.layer], self.store.values[self.layer]
        # [B, H, T, D] -> [B, T, H, D] to match keys[rows, :, cols] indexing.
        keys[plan.write_rows, :, plan.write_cols] = key_states.transpose(1, 2).to(keys.dtype)
        values[plan.write_rows, :, plan.write_cols] = value_states.transpose(1, 2).to(values.dtype)
        if plan.contiguous_start is not None:
            s0, s1 = plan.contiguous_start, plan.contiguous_start + plan.batch
            return keys[s0:s1, :, :plan.kv_len], values[s0:s1, :, :plan.kv_len]
        return (keys[:, :, :plan.kv_len].index_select(0, plan.slot_index),
                values[:, :, :plan.kv_len].index_select(0, plan.slot_index))

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.plan.kv_len, 0

    def get_seq_length(self) -> int:
        return min(self.store.lengths[s] for s in self.plan.slots)

    def get_max_length(self) -> int:
        return self.store.max_len


class PassPlan:
    """Where one batched pass over ``slots`` reads and writes, plus its mask and positions.

    Row b feeds ``valid[b]`` real tokens (the rest of the T columns are padding) starting at
    position ``start[b] = lengths[slot_b]``.
    """

    def __init__(self, store: SlotKVCache, slots: Sequence[int], valid: Sequence[int], t_len: int,
                 *, mask_dtype: torch.dtype) -> None:
        device = store.device
        self.slots = [int(s) for s in slots]
        self.batch = len(self.slots)
        if self.batch == 0 or t_len <= 0:
            raise ValueError("a forward pass needs at least one row and one token")
        starts = []
        for slot, n in zip(self.slots, valid, strict=True):
            if not store.is_allocated(slot):
                raise ConfigError(f"KV slot {slot} is not allocated")
            if not 0 <= int(n) <= t_len:
                raise ValueError(f"row valid length {n} outside 0..{t_len}")
            if store.lengths[slot] + int(n) > store.max_len:
                raise ConfigError(f"KV slot {slot} would exceed max_len={store.max_len} "
                                  f"({store.lengths[slot]} + {int(n)} tokens)")
            starts.append(store.lengths[slot])
        self.valid = [int(n) for n in valid]
        self.starts = starts
        self.kv_len = max(1, max(s + n for s, n in zip(starts, self.valid)))
        self.slot_index = torch.tensor(self.slots, device=device, dtype=torch.long)
        first = self.slots[0]
        self.contiguous_start = first if self.slots == list(range(first, first + self.batch)) else None
        start_t = torch.tensor(starts, device=device, dtype=torch.long)[:, None]
        valid_t = torch.tensor(self.valid, device=device, dtype=torch.long)[:, None]
        q = torch.arange(t_len, device=device, dtype=torch.long)[None, :]
        self.position_ids = start_t + q  # [B, T]
        # Padded query positions write to the scratch column max_len.
        self.write_cols = torch.where(q < valid_t, self.position_ids,
                                      torch.full_like(self.position_ids, store.max_len))
        self.write_rows = self.slot_index[:, None].expand(-1, t_len)
        kv = torch.arange(self.kv_len, device=device, dtype=torch.long)[None, None, :]
        allowed = kv <= self.position_ids[:, :, None]  # [B, T, kv_len]
        mask = torch.zeros(allowed.shape, device=device, dtype=mask_dtype)
        mask.masked_fill_(~allowed, torch.finfo(mask_dtype).min)
        self.attention_mask = mask[:, None]  # [B, 1, T, kv_len], additive

    def commit(self, store: SlotKVCache) -> None:
        """Advance each slot's length by the tokens it fed."""
        for slot, n in zip(self.slots, self.valid):
            store.lengths[slot] += n


class PassCache(Cache):
    """The transformers ``Cache`` handed to the model for one pass over a SlotKVCache."""

    def __init__(self, store: SlotKVCache, plan: PassPlan) -> None:
        super().__init__(layers=[_SlotLayer(store, i, plan) for i in range(store.num_layers)])
