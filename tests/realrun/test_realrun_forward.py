"""Slot KV cache + batched forward passes equal the model's own no-cache forward."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from realrun import forward  # noqa: E402
from realrun.kvcache import SlotKVCache  # noqa: E402
from realrun_helpers import tiny_model  # noqa: E402
from sim.errors import ConfigError  # noqa: E402


def _full_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
@pytest.mark.parametrize("slots", [[0, 1, 2], [3, 0, 2]])  # contiguous view / gathered rows
def test_prefill_and_decode_match_no_cache(arch, slots):
    model = tiny_model(arch)
    cache = SlotKVCache.for_model(model, max_slots=4, max_len=32)
    for s in slots:
        forward.allocate(cache, s)
    prompts = [[1, 5, 7, 9, 11], [3, 4], [8, 8, 8, 8, 8, 8, 8, 2]]
    last = forward.prefill(model, cache, slots, prompts)
    assert last.shape == (3, model.config.vocab_size) and last.dtype == torch.float32
    for i, p in enumerate(prompts):
        torch.testing.assert_close(last[i], _full_logits(model, p)[-1].float(), rtol=1e-6, atol=1e-6)
    assert [cache.lengths[s] for s in slots] == [5, 2, 8]
    toks = torch.tensor([[10, 11, 12], [13, 14, 15], [16, 17, 18]])
    valid = [3, 1, 2]
    logits = forward.decode(model, cache, slots, toks, valid)
    assert logits.shape == (3, 3, model.config.vocab_size)
    for i, p in enumerate(prompts):
        n = valid[i]
        ref = _full_logits(model, p + toks[i, :n].tolist())[-n:].float()
        torch.testing.assert_close(logits[i, :n], ref, rtol=1e-6, atol=1e-6)
    assert [cache.lengths[s] for s in slots] == [8, 3, 10]


def test_truncate_rolls_back_and_free_reuses_slot():
    model = tiny_model("llama")
    cache = SlotKVCache.for_model(model, max_slots=2, max_len=32)
    a, b = cache.allocate(), cache.allocate()
    forward.prefill(model, cache, [a, b], [[1, 2, 3], [4, 5, 6, 7]])
    forward.decode(model, cache, [a, b], torch.tensor([[9, 9, 9], [8, 8, 8]]))
    forward.truncate(cache, [a, b], [4, 5])  # keep one of the three new tokens each
    logits = forward.decode(model, cache, [a, b], torch.tensor([[20], [21]]))
    torch.testing.assert_close(logits[0, 0], _full_logits(model, [1, 2, 3, 9, 20])[-1].float())
    torch.testing.assert_close(logits[1, 0], _full_logits(model, [4, 5, 6, 7, 8, 21])[-1].float())
    with pytest.raises(ValueError):
        forward.truncate(cache, [a], [7])  # never forward
    forward.free(cache, a)
    assert cache.free_slots == 1
    a2 = forward.allocate(cache)
    assert a2 == a and cache.lengths[a2] == 0
    first = forward.prefill(model, cache, [a2], [[42, 43]])
    torch.testing.assert_close(first[0], _full_logits(model, [42, 43])[-1].float())


def test_padded_rows_never_clobber_cache_at_capacity():
    model = tiny_model("llama")
    cache = SlotKVCache.for_model(model, max_slots=2, max_len=6)
    s0, s1 = cache.allocate(), cache.allocate()
    forward.prefill(model, cache, [s0, s1], [[1, 2, 3, 4, 5], [6]])
    # Row 0 fills its last position; its 3 padded query columns write to the scratch column.
    logits = forward.decode(model, cache, [s0, s1], torch.tensor([[7, 0, 0, 0], [8, 9, 10, 11]]), [1, 4])
    torch.testing.assert_close(logits[0, 0], _full_logits(model, [1, 2, 3, 4, 5, 7])[-1].float())
    torch.testing.assert_close(logits[1], _full_logits(model, [6, 8, 9, 10, 11])[-4:].float())
    assert cache.lengths[s0] == 6
    with pytest.raises(ConfigError, match="max_len"):
        forward.decode(model, cache, [s0], torch.tensor([[1]]))


def test_cache_errors():
    model = tiny_model("llama")
    cache = SlotKVCache.for_model(model, max_slots=1, max_len=8)
    with pytest.raises(ConfigError, match="not allocated"):
        forward.decode(model, cache, [0], torch.tensor([[1]]))
    cache.allocate()
    with pytest.raises(ConfigError, match="no free KV slot"):
        cache.allocate()
    with pytest.raises(ConfigError, match="out of range"):
        cache.free(3)
    with pytest.raises(ValueError):
        forward.prefill(model, cache, [0], [[]])
    assert cache.bytes_total == 2 * 2 * 1 * 2 * 9 * 8 * 8  # K+V, layers, slots, heads, len+1, dim, 8 B
