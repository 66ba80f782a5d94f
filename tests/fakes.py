"""Test doubles shared by the simulator tests: a linear latency model and a fixed-k policy
(independent of ``sim.policies``), plain decoding (``sim.policies.nospec.NoSpecPolicy``), and
a function that announces a compile first, as a miss in the compiled-code cache does."""

from __future__ import annotations

from dataclasses import dataclass


from sim.policies.base import BatchView, Policy
from sim.policies.nospec import NoSpecPolicy as PlainPolicy

__all__ = ["COMPILE_LINE", "FixedK", "LinearLatency", "PlainPolicy", "announcing_a_compile"]

COMPILE_LINE = "compiling f with numba, once (seconds): ..."


def announcing_a_compile(fn):
    """``fn``, first handing ``COMPILE_LINE`` to the innermost handler
    ``sim.compiled.jit.compile_notices`` installed (what a miss in the disk cache does), so a
    command's notice can be checked without an empty cache."""
    from sim.compiled import jit

    def announced(*args, **kwargs):
        for handle in jit._NOTICES[-1:]:
            handle(COMPILE_LINE)
        return fn(*args, **kwargs)

    return announced


@dataclass(frozen=True)
class LinearLatency:
    """prefill = a + b * tokens; verify = c + d * tokens + e * context; draft = f."""

    prefill_base_s: float = 0.010
    prefill_per_token_s: float = 0.0001
    verify_base_s: float = 0.020
    verify_per_token_s: float = 0.0
    verify_per_context_s: float = 0.0
    draft_s: float = 0.002
    draft_prefill_s_: float = 0.0
    draft_overhead_s: float = 0.0

    def target_prefill_s(self, prompt_tokens, cached_tokens=None):
        return self.prefill_base_s + self.prefill_per_token_s * sum(prompt_tokens)

    def draft_prefill_s(self, prompt_tokens, cached_tokens=None):
        return self.draft_prefill_s_

    def target_verify_s(self, batch_size, tokens, context_tokens):
        return (self.verify_base_s + self.verify_per_token_s * tokens
                + self.verify_per_context_s * context_tokens)

    def draft_step_s(self, batch_size, context_tokens):
        return self.draft_s


class FixedK(Policy):
    """Draft exactly k tokens for everyone (the static rule, independent of sim.policies)."""

    def __init__(self, k: int) -> None:
        self.k_max = k
        self.name = f"fixed-k:{k}"

    def begin(self, view: BatchView) -> int:
        return self.k_max


#: A GPU-like calibrated profile's coefficients (seconds), per operation of
#: ``sim.latency.profile``: the tests give them domains of their own (``gpu_like_ops``).
GPU_LIKE_COEFFICIENTS = {
    "target_prefill": {"intercept": 5e-3, "padded_tokens": 6e-5, "batch": 1e-4,
                       "padded_sq_tokens": 1e-9},
    "draft_prefill": {"intercept": 1e-3, "padded_tokens": 1e-5, "batch": 2e-5,
                      "padded_sq_tokens": 2e-10},
    "target_verify": {"intercept": 8e-3, "tokens": 3e-5, "batch": 1e-5, "context_tokens": 2e-8,
                      "attended_pairs": 1e-10},
    "draft_step": {"intercept": 1e-3, "batch": 5e-6, "context_tokens": 5e-9},
}


def gpu_like_ops(prefill_batch: list, prefill_prompt_len: list,
                 verify_tokens_per_seq: list) -> dict:
    """``{op: (coefficients, domain)}`` of the GPU-like profile: the prefills' domains as
    given, verification over 1-1024 sequences of ``verify_tokens_per_seq`` tokens, draft
    steps over 1-1024 sequences, contexts up to 10^6 tokens a sequence."""
    prefill = {"batch": prefill_batch, "prompt_len": prefill_prompt_len}
    domains = {"target_prefill": prefill, "draft_prefill": prefill,
               "target_verify": {"batch": [1, 1024], "tokens_per_seq": verify_tokens_per_seq,
                                 "context_per_seq": [0, 1e6]},
               "draft_step": {"batch": [1, 1024], "context_per_seq": [0, 1e6]}}
    return {op: (GPU_LIKE_COEFFICIENTS[op], domains[op]) for op in GPU_LIKE_COEFFICIENTS}


def profile_doc(ops: dict, **domains) -> dict:
    """A calibrated profile document of ``ops`` (``gpu_like_ops``), some domains replaced."""
    return {"schema_version": 1, "kind": "latency-profile", "draft_overhead_s": 4e-4,
            "ops": {op: {"coefficients": coefficients, "domain": domains.get(op, domain)}
                    for op, (coefficients, domain) in ops.items()}}
