"""The forward-pass API of the real engine; the calibrator times exactly these functions.

Every pass is batched over slots of a ``SlotKVCache`` (see ``realrun.kvcache`` for the layout
and why): rows may sit at different lengths; row b's tokens get positions
``lengths[slot_b] + q`` and their keys/values are written in place at those positions.

- ``prefill(model, cache, slots, token_ids_list)`` appends each slot's prompt (lists of
  different lengths, right-padded into one pass) and returns the logits at each row's last
  prompt position, ``[B, V]``.
- ``decode(model, cache, slots, token_ids, valid_lengths=None)`` appends ``token_ids[b, :n_b]``
  and returns logits ``[B, T, V]`` (T = 1 for a draft step, k_max + 1 for verification);
  positions past a row's valid length are padding and their logits are meaningless.
- ``truncate(cache, slots, lengths)`` rolls slots back (rejected draft tokens);
  ``free(cache, slot)`` releases a slot.

Logits are returned as float32. Passes run under ``torch.inference_mode``.
"""

from __future__ import annotations

import functools
import inspect
from typing import Sequence

import torch

from realrun.kvcache import PassCache, PassPlan, SlotKVCache

__all__ = ["prefill", "decode", "truncate", "free", "allocate"]

PAD_TOKEN_ID = 0


@functools.lru_cache(maxsize=None)
def _cache_kwarg_for(cls: type) -> str:
    # transformers 5.24 renamed ``past_key_values`` to ``cache`` (old name deprecated).
    params = inspect.signature(cls.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _hidden(model: torch.nn.Module, cache: SlotKVCache, slots: Sequence[int], ids: torch.Tensor,
            valid: Sequence[int]) -> tuple[torch.Tensor, PassPlan]:
    base = model.base_model
    plan = PassPlan(cache, slots, valid, int(ids.shape[1]), mask_dtype=cache.dtype)
    kwargs = {_cache_kwarg_for(type(base)): PassCache(cache, plan)}
    out = base(input_ids=ids.to(cache.device), attention_mask=plan.attention_mask,
               position_ids=plan.position_ids, use_cache=True, **kwargs)
    plan.commit(cache)
    return out.last_hidden_state, plan


def _logits(model: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    return model.get_output_embeddings()(hidden).float()


def allocate(cache: SlotKVCache, slot: int | None = None) -> int:
    """Take a free slot (length 0) for a new request; returns its index."""
    return cache.allocate(slot)


@torch.inference_mode()
def prefill(model: torch.nn.Module, cache: SlotKVCache, slots: Sequence[int],
            token_ids_list: Sequence[Sequence[int]]) -> torch.Tensor:
    """Append each prompt to its slot in one batched pass; return last-position logits [B, V]."""
    lengths = [len(ids) for ids in token_ids_list]
    if len(lengths) != len(slots):
        raise ValueError("prefill needs one token list per slot")
    if min(lengths, default=0) <= 0:
        raise ValueError("prefill needs a non-empty prompt for every slot")
    t_len = max(lengths)
    ids = torch.full((len(slots), t_len), PAD_TOKEN_ID, dtype=torch.long)
    for row, tokens in enumerate(token_ids_list):
        ids[row, :len(tokens)] = torch.as_tensor(list(tokens), dtype=torch.long)
    hidden, _ = _hidden(model, cache, slots, ids, lengths)
    last = torch.as_tensor(lengths, device=hidden.device, dtype=torch.long) - 1
    rows = torch.arange(len(slots), device=hidden.device)
    return _logits(model, hidden[rows, last])


@torch.inference_mode()
def decode(model: torch.nn.Module, cache: SlotKVCache, slots: Sequence[int],
           token_ids: torch.Tensor, valid_lengths: Sequence[int] | None = None) -> torch.Tensor:
    """Append ``token_ids[b, :valid_lengths[b]]`` to each slot; return logits [B, T, V]."""
    token_ids = torch.as_tensor(token_ids, dtype=torch.long)
    if token_ids.ndim != 2 or token_ids.shape[0] != len(slots):
        raise ValueError(f"decode needs token_ids of shape [{len(slots)}, T], got {tuple(token_ids.shape)}")
    valid = ([int(token_ids.shape[1])] * len(slots) if valid_lengths is None
             else [int(n) for n in valid_lengths])
    hidden, _ = _hidden(model, cache, slots, token_ids, valid)
    return _logits(model, hidden)


def truncate(cache: SlotKVCache, slots: Sequence[int], lengths: Sequence[int]) -> None:
    """Roll each slot back to ``lengths`` valid positions (drops rejected tokens)."""
    cache.truncate(slots, lengths)


def free(cache: SlotKVCache, slot: int) -> None:
    """Release ``slot`` for another request."""
    cache.free(slot)
