"""Shared helpers of the realrun tests: tiny in-process models, a plain greedy reference, a
minimal continuous-batching loop driving ``RealDecodeExecutor`` through the policy protocol."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from realrun.executor import RealDecodeExecutor
from realrun.kvcache import SlotKVCache
from sim.core.padding import GraphPadding
from sim.core.speculation import run_decode_iteration
from sim.policies.base import BatchView, Policy

VOCAB = 128


def tiny_model(arch: str = "llama", *, seed: int = 0, layers: int = 2,
               dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    """A tiny random causal LM with peaked logits (large init) so greedy text varies."""
    common = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  initializer_range=0.3, attn_implementation="sdpa")
    torch.manual_seed(seed)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=False))
    return model.to(dtype).eval().requires_grad_(False)


def perturbed_copy(model: torch.nn.Module, noise: float, seed: int = 1) -> torch.nn.Module:
    """The draft: ``model`` with relative Gaussian noise on every weight (0 = identical)."""
    draft = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in draft.parameters():
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * noise * p.std())
    return draft


def greedy_reference(model: torch.nn.Module, prompt: list[int], new_tokens: int) -> list[int]:
    """The target's own greedy decoding, recomputing the whole context every step (no cache)."""
    ids = list(prompt)
    out = []
    device = next(model.parameters()).device
    with torch.no_grad():
        for _ in range(new_tokens):
            tok = int(model(torch.tensor([ids], device=device)).logits[0, -1].argmax())
            out.append(tok)
            ids.append(tok)
    return out


class StaticPolicy(Policy):
    """k drafted and verified by every request (the test's own copy, protocol only)."""

    def __init__(self, k: int) -> None:
        self.k_max = k
        self.name = f"static:{k}"

    def begin(self, view: BatchView) -> int:
        return self.k_max


class RandomPolicy(Policy):
    """Random per-row drafting stops and verify lengths: exercises every rollback case."""

    name = "random"

    def __init__(self, k: int, seed: int = 0) -> None:
        self.k_max = k
        self.rng = np.random.default_rng(seed)

    def begin(self, view: BatchView) -> int:
        return int(self.rng.integers(0, self.k_max + 1))

    def continue_drafting(self, step, conf, drafted):
        return self.rng.random(conf.shape[0]) < 0.8

    def verify_lengths(self, conf, drafted):
        return np.array([self.rng.integers(0, d + 1) for d in drafted], dtype=np.int64)


@dataclass
class Req:
    arrival_iter: int
    prompt: list[int]
    new_tokens: int
    slot: int = -1
    output: list[int] = field(default_factory=list)


def view_for(running: list[Req], k_max: int) -> BatchView:
    remaining = np.array([r.new_tokens - len(r.output) for r in running], dtype=np.int64)
    n = len(running)
    return BatchView(now_s=0.0, context_tokens=np.array([len(r.prompt) + len(r.output) for r in running]),
                     prompt_tokens=np.array([len(r.prompt) for r in running]),
                     generated_tokens=np.array([len(r.output) for r in running]),
                     elapsed_s=np.zeros(n), ttft_slo_s=1.0, tpot_slo_s=1.0, queue_len=0,
                     max_draft_tokens=np.clip(np.minimum(remaining - 1, k_max), 0, None),
                     estimator=None, padding=GraphPadding())


def run_engine(target, draft, reqs: list[Req], policy: Policy, *, max_slots: int = 4,
               max_len: int = 128, controlled=None, **executor_kwargs):
    """Admit requests at their arrival iteration (a batched prefill), run decode iterations
    through ``run_decode_iteration`` until every request has its tokens; return the executor
    and the list of DecodeOutcomes. ``controlled(batch, k) -> (conf, accept)`` optional."""
    tc = SlotKVCache.for_model(target, max_slots=max_slots, max_len=max_len)
    dc = SlotKVCache.for_model(draft, max_slots=max_slots, max_len=max_len) if draft is not None else None
    ex = RealDecodeExecutor(target, tc, draft, dc, **executor_kwargs)
    pending = sorted(reqs, key=lambda r: r.arrival_iter)
    running: list[Req] = []
    outcomes = []
    it = 0
    while pending or running:
        arriving = [r for r in pending if r.arrival_iter <= it and tc.free_slots > 0][:tc.free_slots]
        if arriving:
            free = sorted(set(range(max_slots)) - {r.slot for r in running})
            for r, s in zip(arriving, free):
                r.slot = s
                pending.remove(r)
            first = ex.prefill([r.slot for r in arriving], [r.prompt for r in arriving])
            for r, tok in zip(arriving, first):
                r.output.append(tok)
            running += arriving
        elif running:
            ex.begin([r.slot for r in running],
                     controlled(len(running), policy.k_max) if controlled else None)
            out = run_decode_iteration(policy, view_for(running, policy.k_max), ex)
            outcomes.append(out)
            for r, toks in zip(running, ex.last_emitted):
                r.output.extend(toks)
        for r in [r for r in running if len(r.output) >= r.new_tokens]:
            assert ex.release(r.slot) == r.output
            running.remove(r)
        it += 1
    return ex, outcomes


def lookup_friendly_model(attention_scale: float = 0.02, seed: int = 3) -> torch.nn.Module:
    """A tiny target for prompt lookup: ``tiny_model`` with its attention output scaled down,
    so its greedy text mostly follows the current token and falls into repeats the lookup can
    predict (about half the proposed tokens are accepted), while still depending on the
    context (``attention_scale=0`` gives a different text)."""
    model = tiny_model("llama", seed=seed, dtype=torch.float32)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.mul_(attention_scale)
    return model


def served_workload(shapes, seed: int = 0):
    """A ``ServedWorkload`` of synthetic prompts: request i has ``shapes[i] = (prompt tokens,
    output tokens, arrival_s)``."""
    from realrun.prompts import ServedWorkload, synthetic_ids
    from sim.workload.request import Request, Workload

    reqs = tuple(Request(i, a, p, o) for i, (p, o, a) in enumerate(shapes))
    ids = {r.id: synthetic_ids(r.id, r.prompt_tokens, VOCAB, seed) for r in reqs}
    return ServedWorkload(Workload(reqs, "test", "native"), ids, "synthetic")
