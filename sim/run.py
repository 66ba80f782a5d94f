"""Library entry point: simulate one policy on one workload under one configuration.

``simulate(workload, "adaspec:8", SimConfig(), seed=0)`` builds the ground-truth latency
model (roofline preset or calibrated profile), the policy's coarse estimator, the acceptance
model and the KV pool from the config, replays the workload and returns the per-request and
per-iteration tables with their summary. Same inputs and seed give identical results.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from sim.core.padding import GraphPadding, default_graph_sizes
from sim.core.scheduler import SchedulerConfig
from sim.errors import ConfigError
from sim.latency.iteration import DEFAULT_ENGINE, check_engine
from sim.metrics.requests import requests_frame
from sim.metrics.summary import summarize
from sim.policies.base import Policy
from sim.server import ServerSimulation, Slo
from sim.workload.request import Workload


@dataclass(frozen=True)
class SimConfig:
    """Everything but the workload, the policy and the seed that determines a run.

    Defaults: vicuna-7b target + vicuna-68m draft on one A100-80G (the AdaSpec paper's main
    setting), SLOs TTFT 2 s and TPOT 40 ms (the AdaSpec artifact's TPOT budget), vLLM 0.6
    engine limits (256 sequences, 16-token blocks, 90 % of GPU memory), CUDA graphs captured
    at 1, 2, 4, 8, 16, 32, 64, ..., 1024, Spec-Bench acceptance of vicuna-68m, and a
    single-pass verification engine (vLLM V1 / SGLang / TensorRT-LLM; ``engine="vllm-0.6"``
    is the batch expansion the AdaSpec and SmartSpec artifacts ran: docs/engines.md).
    """

    gpu: str = "A100-80G"
    target: str = "vicuna-7b"
    draft: str = "vicuna-68m"
    tp: int = 1
    ttft_slo_s: float = 2.0
    tpot_slo_s: float = 0.040
    max_num_seqs: int = 256
    block_size: int = 16
    max_num_batched_tokens: int = 8192
    chunked_prefill: bool = False
    gpu_memory_utilization: float = 0.9
    kv_blocks: int | None = None  # override the computed KV pool size
    cuda_graphs: bool = True
    graph_max_size: int = 1024
    acceptance: str = "spec-bench-vicuna-68m"
    profile: str | None = None  # calibrated profile (JSON) or Vidur profile folder (mlp.csv)
    # (target pass, draft step, drafting iteration) overheads in s; None: sim.latency.overhead
    pass_overheads_s: tuple[float, float, float] | None = None
    estimator: str = "table"  # the policies' latency view: "table" (coarse) or "exact"
    engine: str = DEFAULT_ENGINE  # serving engine: "single-pass" or "vllm-0.6" (batch expansion)

    def __post_init__(self) -> None:
        if not (self.ttft_slo_s > 0 and np.isfinite(self.ttft_slo_s)):
            raise ConfigError(f"TTFT SLO must be a positive number of seconds, got {self.ttft_slo_s}")
        if not (self.tpot_slo_s > 0 and np.isfinite(self.tpot_slo_s)):
            raise ConfigError(f"TPOT SLO must be a positive number of seconds, got {self.tpot_slo_s}")
        if self.tp < 1:
            raise ConfigError(f"tensor-parallel degree must be >= 1, got {self.tp}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError("gpu_memory_utilization must be in (0, 1]")
        if self.pass_overheads_s is not None:
            from sim.latency.overhead import PassOverheads
            if len(self.pass_overheads_s) != 3:
                raise ConfigError("pass_overheads_s must be (target, draft step, drafting) seconds")
            PassOverheads(*self.pass_overheads_s)  # validates
            object.__setattr__(self, "pass_overheads_s", tuple(map(float, self.pass_overheads_s)))
        if self.estimator not in ("table", "exact"):
            raise ConfigError(f"estimator must be 'table' or 'exact', got {self.estimator!r}")
        check_engine(self.engine)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RunResult:
    """One policy's run: tables, summary and the wall time the simulation took."""

    policy: str
    requests: pd.DataFrame
    iterations: pd.DataFrame
    summary: dict
    wall_s: float = field(compare=False, default=0.0)


def build_padding(config: SimConfig) -> GraphPadding:
    return GraphPadding(default_graph_sizes(config.graph_max_size), enabled=config.cuda_graphs)


def build_latency(config: SimConfig):
    """The ground-truth latency model: a calibrated profile (JSON) if given, a Vidur profile
    folder's measured kernels, else the fitted per-op model of the presets."""
    overheads = {}
    if config.pass_overheads_s is not None:
        overheads = dict(zip(("target_overhead_s", "draft_step_overhead_s", "draft_overhead_s"),
                             config.pass_overheads_s))
    from pathlib import Path
    if config.profile and not Path(config.profile).is_dir():
        if overheads:
            raise ConfigError("a calibrated profile carries its measured per-pass overheads; "
                              "pass_overheads_s applies to the presets and Vidur profiles")
        from sim.latency.profile import load_profile
        return load_profile(config.profile)
    from sim.latency.hardware import get_gpu
    from sim.latency.models import get_model
    from sim.latency.roofline import RooflineLatency
    target, draft, gpu = get_model(config.target), get_model(config.draft), get_gpu(config.gpu)
    if config.profile:
        from sim.latency.vidur_profile import load_vidur_latency
        return load_vidur_latency(config.profile, target, draft, gpu, tp=config.tp, **overheads)
    return RooflineLatency(target, draft, gpu, tp=config.tp, **overheads)


def build_estimator(config: SimConfig, latency, padding: GraphPadding):
    if config.estimator == "exact":
        return latency
    from sim.latency.estimator import TableEstimator
    return TableEstimator.from_model(latency, padding)


def build_scheduler_config(config: SimConfig, uses_draft: bool) -> SchedulerConfig:
    if config.kv_blocks is not None:
        blocks = config.kv_blocks
    else:
        from sim.latency.hardware import get_gpu
        from sim.latency.kv import kv_capacity_blocks
        from sim.latency.models import get_model
        blocks = kv_capacity_blocks(get_model(config.target), get_model(config.draft),
                                    get_gpu(config.gpu), config.tp,
                                    block_size=config.block_size,
                                    gpu_memory_utilization=config.gpu_memory_utilization,
                                    include_draft=uses_draft)
    return SchedulerConfig(kv_blocks=blocks, max_num_seqs=config.max_num_seqs,
                           block_size=config.block_size,
                           max_num_batched_tokens=config.max_num_batched_tokens,
                           watermark_blocks=max(0, min(blocks - 1, int(0.01 * blocks))),
                           chunked_prefill=config.chunked_prefill)


def resolve_policy(policy: str | Policy) -> Policy:
    if isinstance(policy, Policy):
        return policy
    from sim.policies.registry import make_policy
    return make_policy(policy)


def simulate(workload: Workload, policy: str | Policy, config: SimConfig | None = None,
             seed: int = 0, progress: bool = False, latency=None, acceptance=None) -> RunResult:
    """Replay ``workload`` under ``policy``; ``latency``/``acceptance`` override the models
    the config names (tests and calibration use this)."""
    config = config or SimConfig()
    if len(workload) == 0:
        raise ConfigError("the workload has no requests")
    policy = resolve_policy(policy)
    padding = build_padding(config)
    latency = latency if latency is not None else build_latency(config)
    estimator = build_estimator(config, latency, padding)
    if acceptance is None:
        from sim.acceptance.presets import make_acceptance
        acceptance = make_acceptance(config.acceptance)
    rng = np.random.default_rng(seed)
    server = ServerSimulation(workload, policy, latency, estimator, acceptance,
                              build_scheduler_config(config, policy.uses_draft), padding,
                              Slo(config.ttft_slo_s, config.tpot_slo_s), rng, progress=progress,
                              engine=config.engine)
    began = time.perf_counter()
    server.run()
    wall = time.perf_counter() - began
    requests = requests_frame(server.finished, config.ttft_slo_s, config.tpot_slo_s)
    iterations = server.iterations.to_frame()
    return RunResult(policy.name, requests, iterations, summarize(requests, iterations), wall)
