"""What a real run needs around the engine: the policies' latency estimator, the run config
written to ``summary.json`` (the adaspec-sim schema, so ``adaspec-validate`` can re-simulate
the run), and the ``RunResult`` of a finished run built with ``sim.metrics`` (one copy of the
metric definitions for sim and realrun).

Config keys: every ``sim.run.SimConfig`` field the real engine has (``gpu`` is the hardware
preset of the *estimator's* roofline, ``kv_blocks`` the pool the scheduler used,
``cuda_graphs`` False: passes run eager; ``acceptance`` is set only in controlled-acceptance
mode, to the model the acceptance was drawn from, and then ``acceptance_category_fallback``
(as in adaspec-sim's ``simulated`` block, ``sim.run_description``) only when the trace has
categories that model has no profile for, whose requests took its default profile;
``engine`` the verification engine it executes, ``single-pass``), plus ``runner``
(``realrun``), ``device``, ``dtype``, ``hardware``, ``max_len``, ``time_scale``,
``controlled_acceptance``, ``temperature``, ``threads``, ``prompts``, ``max_prompt_tokens``,
``max_output_tokens``, ``models`` (shape and origin of target and draft) and ``software``;
``method`` (``draft-model``, or ``ngram``: prompt lookup, ``draft`` null, no draft model
loaded) and, for ngram, ``ngram`` (its options).

Iteration table of an ngram run: ``draft_steps`` counts the proposal positions the policy
loop drafted (the loop's steps; no draft pass ran), ``draft_rows`` / ``draft_kv_tokens`` stay
empty (no draft forward pass, so nothing to price on the accelerator), and an extra column
``draft_cpu_s`` holds the measured CPU seconds of the lookups, part of ``duration_s``.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

from realrun.engine import EngineLimits, EngineRun
from realrun.lookup import METHOD_DRAFT_MODEL, METHOD_NGRAM, LookupDraftLatency, NgramConfig
from sim.core.padding import GraphPadding
from sim.errors import ConfigError
from sim.latency.base import LatencyModel
from sim.latency.iteration import SINGLE_PASS
from sim.latency.models import ModelSpec, get_model
from sim.metrics.requests import requests_frame
from sim.metrics.summary import summarize
from sim.run import RunResult


def model_spec(loaded: Any) -> ModelSpec:
    """The shape of a loaded model: its preset when it is one, else read from its config."""
    try:
        return get_model(loaded.name)
    except ConfigError:
        pass
    cfg = loaded.config
    heads = cfg.num_attention_heads
    dtype_bytes = torch.empty((), dtype=loaded.dtype).element_size()
    return ModelSpec(name=loaded.name, layers=cfg.num_hidden_layers, hidden=cfg.hidden_size,
                     heads=heads, kv_heads=getattr(cfg, "num_key_value_heads", None) or heads,
                     ffn=cfg.intermediate_size, vocab=cfg.vocab_size, dtype_bytes=dtype_bytes,
                     architecture="qwen2" if getattr(cfg, "model_type", "") == "qwen2" else "llama",
                     tie_word_embeddings=bool(getattr(cfg, "tie_word_embeddings", False)),
                     max_position_embeddings=int(getattr(cfg, "max_position_embeddings", 2048)),
                     source=loaded.source)


def build_estimator(target: ModelSpec, draft: ModelSpec | None, *, gpu: str = "H100",
                    profile: str | None = None, method: str = METHOD_DRAFT_MODEL) -> LatencyModel:
    """The policies' coarse view: a ``TableEstimator`` over a calibrated profile (``profile``)
    or over the roofline of these model shapes on the ``gpu`` preset. ``method`` ngram: the
    same target passes with drafting free (``realrun.lookup.LookupDraftLatency``)."""
    from sim.latency.estimator import TableEstimator

    if profile:
        from sim.latency.profile import load_profile
        base = load_profile(profile)
    else:
        from sim.latency.hardware import get_gpu
        from sim.latency.roofline import RooflineLatency
        base = RooflineLatency(target, draft if method == METHOD_DRAFT_MODEL else None,
                               get_gpu(gpu))
    if method == METHOD_NGRAM:
        base = LookupDraftLatency(base)
    return TableEstimator.from_model(base, GraphPadding(enabled=False))


def hardware_label(device: torch.device) -> str:
    """The device's model name (CUDA name, or the CPU model with its logical core count)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            name = next((line.split(":", 1)[1].strip() for line in handle
                         if line.lower().startswith("model name")), "")
    except OSError:
        pass
    return f"{name or platform.processor() or platform.machine()} ({os.cpu_count()} logical cores)"


def model_info(loaded: Any) -> dict[str, Any]:
    """Shape and origin of a ``realrun.models.LoadedModel``."""
    cfg = loaded.config
    return {"spec": loaded.source, "name": loaded.name, "random_weights": bool(loaded.random_weights),
            "seed": loaded.seed, "params_count": int(loaded.params_count),
            "layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size,
            "heads": cfg.num_attention_heads,
            "kv_heads": getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads,
            "ffn": cfg.intermediate_size, "vocab": cfg.vocab_size}


def run_config(*, limits: EngineLimits, target_spec: str, draft_spec: str, target: Any,
               draft: Any | None, gpu: str, profile: str | None, device: torch.device, dtype: str,
               time_scale: float, controlled_acceptance: str | None, threads: int | None,
               prompts: str, max_prompt_tokens: int | None,
               max_output_tokens: int | None, method: str = METHOD_DRAFT_MODEL,
               ngram: NgramConfig | None = None,
               category_fallback: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``config`` block of a real run (module doc)."""
    import transformers

    sched = limits.scheduler_config()
    config: dict[str, Any] = {
        "runner": "realrun", "engine": SINGLE_PASS,
        "gpu": gpu, "target": target_spec, "draft": draft_spec, "tp": 1,
        "ttft_slo_s": limits.ttft_slo_s, "tpot_slo_s": limits.tpot_slo_s,
        "max_num_seqs": sched.max_num_seqs, "block_size": sched.block_size,
        "max_num_batched_tokens": sched.max_num_batched_tokens, "chunked_prefill": False,
        "kv_blocks": sched.kv_blocks, "cuda_graphs": False, "profile": profile,
        "estimator": "table", "method": method,
    }
    if method == METHOD_NGRAM:
        config["ngram"] = (ngram or NgramConfig()).to_dict()
    if controlled_acceptance is not None:
        config["acceptance"] = controlled_acceptance
    if category_fallback:
        config["acceptance_category_fallback"] = category_fallback
    config.update({
        "device": str(device), "dtype": dtype, "hardware": hardware_label(device),
        "max_len": limits.max_len, "time_scale": time_scale,
        "controlled_acceptance": controlled_acceptance, "temperature": limits.temperature,
        "threads": threads if threads is not None else torch.get_num_threads(),
        "prompts": prompts, "max_prompt_tokens": max_prompt_tokens,
        "max_output_tokens": max_output_tokens,
        "models": {"target": model_info(target),
                   "draft": model_info(draft) if draft is not None else None},
        "software": {"torch": torch.__version__, "transformers": transformers.__version__},
    })
    return config


def to_run_result(policy: str, run: EngineRun, limits: EngineLimits) -> RunResult:
    """The run's tables and summary, with measured times, through ``sim.metrics``."""
    requests = requests_frame(run.finished, limits.ttft_slo_s, limits.tpot_slo_s)
    iterations = run.iterations.to_frame()
    if run.lookup_steps:  # method ngram (module doc)
        if len(run.lookup_steps) != len(iterations):
            raise RuntimeError("lookup log and iteration log differ in length")
        iterations["draft_steps"] = run.lookup_steps
        iterations["draft_cpu_s"] = run.draft_cpu_s
    summary = summarize(requests, iterations)
    summary["iteration_path"] = "protocol"  # the real engine runs the policy protocol
    return RunResult(policy, requests, iterations, summary, run.wall_s)
