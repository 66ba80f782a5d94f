"""Requests that can never be served are rejected on arrival, as vLLM 0.6 does."""

from __future__ import annotations

import pytest

from sim.core.scheduler import REJECT_REASONS, Scheduler, SchedulerConfig, reject_reason_kind
from sim.core.scheduler_state import MAX_LIMIT, MAX_NUM_SEQS
from sim.errors import ConfigError
from sim.workload.request import Request


def _arrive(prompt, output, **config):
    config = {"kv_blocks": 1000, **config}
    return Scheduler(SchedulerConfig(**config)).arrive(Request(0, 0.0, prompt, output), 0.0)


@pytest.mark.parametrize("prompt, output, config, kind", [
    (2000, 49, {"max_model_len": 2048}, "context"),          # 2049 > 2048
    (9000, 1, {}, "prompt-budget"),                          # > 8192 batched tokens, unchunked
    (100, 10, {"max_num_batched_tokens": 16}, "prompt-budget"),
    (100, 10, {"kv_blocks": 7}, "kv-pool"),                  # ceil(110 / 16) = 7 > 7 - 1 watermark
])
def test_rejected_with_its_reason(prompt, output, config, kind):
    if kind == "kv-pool":
        config["watermark_blocks"] = 1
    record = _arrive(prompt, output, **config)
    assert record is not None and record.status == "rejected"
    assert reject_reason_kind(record.reason) == kind and kind in REJECT_REASONS


@pytest.mark.parametrize("prompt, output, config", [
    (2000, 48, {"max_model_len": 2048}),                     # exactly the context
    (9000, 1, {"chunked_prefill": True}),                    # chunked: any prompt length
    (100, 10, {"kv_blocks": 7}),                             # 7 blocks, no watermark
    (10**6, 10**6, {"max_model_len": None, "chunked_prefill": True, "kv_blocks": 10**6}),
])
def test_admitted_at_the_limits(prompt, output, config):
    assert _arrive(prompt, output, **config) is None


def test_huge_output_is_a_context_rejection_not_an_overflow():
    record = _arrive(10, 99_999_999_999, max_model_len=2048)
    assert reject_reason_kind(record.reason) == "context" and "100000000009" in record.reason


def test_reason_kind_of_other_text_is_empty():
    assert reject_reason_kind("something else: x") == ""


@pytest.mark.parametrize("name, value, most", [
    ("max_num_seqs", 10 ** 8, MAX_NUM_SEQS),      # used to be a MemoryError traceback
    ("max_num_seqs", 0, MAX_NUM_SEQS),
    ("kv_blocks", 10 ** 23, MAX_LIMIT),           # used to be an OverflowError (int64 state)
    ("max_num_batched_tokens", 2 ** 63, MAX_LIMIT),
    ("block_size", 2 ** 31, MAX_LIMIT),
    ("max_model_len", 0, MAX_LIMIT)])
def test_engine_limits_outside_their_range_are_config_errors(name, value, most):
    with pytest.raises(ConfigError, match=fr"{name} must be in 1\.\.{most}, got {value}"):
        SchedulerConfig(**{"kv_blocks": 1000, name: value})


def test_engine_limits_at_their_maximum_are_taken():
    config = SchedulerConfig(kv_blocks=MAX_LIMIT, max_num_seqs=MAX_NUM_SEQS,
                             max_num_batched_tokens=MAX_LIMIT, max_model_len=MAX_LIMIT)
    assert Scheduler(config).arrive(Request(0, 0.0, 10, 5), 0.0) is None
