"""Requests that can never be served are rejected on arrival, as vLLM 0.6 does."""

from __future__ import annotations

import pytest

from sim.core.scheduler import REJECT_REASONS, Scheduler, SchedulerConfig, reject_reason_kind
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
