"""Library entry point: simulate one policy on one workload under one configuration.

``simulate(workload, "adaspec:8", SimConfig(), seed=0)`` builds the ground-truth latency
model (roofline preset or calibrated profile), the policy's coarse estimator, the acceptance
model and the KV pool from the config, replays the workload and returns the per-request and
per-iteration tables with their summary. Same inputs and seed give identical results.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from typing import TYPE_CHECKING, Any

import numpy as np

from sim.core.padding import GraphPadding, default_graph_sizes
from sim.core.scheduler import SchedulerConfig
from sim.errors import ConfigError
from sim.latency.iteration import DEFAULT_ENGINE, check_engine
from sim.latency.measured import DEFAULT_DENSE_OPS, check_dense_ops
from sim.policies.base import Policy
from sim.table import is_dataframe
from sim.workload.request import Workload

if TYPE_CHECKING:  # pandas and the SimPy server load only when a run starts (fast --help)
    import pandas as pd


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
    # per-layer non-attention kernels of the presets: "measured" (real GPU rows where the
    # preset's GPU profiled the layer shape at this TP, the closed form elsewhere) or
    # "fitted" (the closed form everywhere); sim.latency.measured
    dense_ops: str = DEFAULT_DENSE_OPS
    # speculative method (sim.drafters): "draft-model" (the draft above), "eagle", "eagle-2",
    # "eagle-3", "medusa", "hydra", "pld", "lookahead"; with another method than the draft
    # model, the default acceptance preset becomes that method's (spec-bench-<method>)
    method: str = "draft-model"
    # "auto": the compiled iteration path wherever the run has a compiled form (sim.compiled),
    # else the protocol path; "protocol": always the protocol path (for checking)
    engine_path: str = "auto"
    iteration_log: bool = True  # keep (and write) the per-iteration table; False: summary only

    def __post_init__(self) -> None:
        if not (self.ttft_slo_s > 0 and np.isfinite(self.ttft_slo_s)):
            raise ConfigError(f"TTFT SLO must be a positive number of seconds, got {self.ttft_slo_s}")
        if not (self.tpot_slo_s > 0 and np.isfinite(self.tpot_slo_s)):
            raise ConfigError(f"TPOT SLO must be a positive number of seconds, got {self.tpot_slo_s}")
        if self.tp < 1:
            raise ConfigError(f"tensor-parallel degree must be >= 1, got {self.tp}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError("gpu_memory_utilization must be in (0, 1]")
        default_graph_sizes(self.graph_max_size)  # validates graph_max_size
        if self.pass_overheads_s is not None:
            from sim.latency.overhead import check_pass_overheads
            object.__setattr__(self, "pass_overheads_s",
                               check_pass_overheads(self.pass_overheads_s, "pass_overheads_s"))
        if self.estimator not in ("table", "exact"):
            raise ConfigError(f"estimator must be 'table' or 'exact', got {self.estimator!r}")
        check_engine(self.engine)
        check_dense_ops(self.dense_ops)
        if self.method != "draft-model" or (self.acceptance.startswith("spec-bench-")
                                            and self.acceptance != "spec-bench-vicuna-68m"):
            from sim.drafters.checks import resolve_method_config
            resolve_method_config(self)  # validates; may set the method's acceptance preset
        if self.engine_path not in ("auto", "protocol"):
            raise ConfigError(f"engine_path must be 'auto' or 'protocol', got {self.engine_path!r}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class RunResult:
    """One policy's run: tables, summary and the wall time the simulation took.

    ``request_table`` / ``iteration_log`` are the run's tables (a
    ``sim.metrics.requests.RequestTable`` and a ``sim.metrics.recorder.IterationLog``; a
    DataFrame given here is wrapped), which the output writer streams slice by slice;
    ``requests`` / ``iterations`` are the DataFrames, built from them when first read.
    ``release()`` drops the tables (and the log's spool folder) once they are written."""

    policy: str
    request_table: Any
    iteration_log: Any
    summary: dict
    wall_s: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "request_table", _as_table(self.request_table))
        object.__setattr__(self, "iteration_log", _as_table(self.iteration_log))
        object.__setattr__(self, "_frames", {})

    @property
    def requests(self) -> pd.DataFrame:
        if "requests" not in self._frames:
            self._frames["requests"] = self.request_table.frame()
        return self._frames["requests"]

    @property
    def iterations(self) -> pd.DataFrame:
        if "iterations" not in self._frames:
            self._frames["iterations"] = self.iteration_log.to_frame()
        return self._frames["iterations"]

    @property
    def has_iterations(self) -> bool:
        """Whether the iteration table was kept (``SimConfig.iteration_log``)."""
        return getattr(self.iteration_log, "keep", True)

    def release(self) -> None:
        """Drop the tables (after writing them); the summary stays."""
        close = getattr(self.iteration_log, "close", None)
        if close is not None:
            close()
        for name in ("request_table", "iteration_log"):
            object.__setattr__(self, name, None)
        self._frames.clear()


class _FrameTable:
    """A DataFrame with the table interface (``frame``/``frames``/``tables``/``to_frame``;
    the output writer takes the DataFrame itself as a slice)."""

    def __init__(self, frame) -> None:
        self._frame = frame

    def frame(self):
        return self._frame

    to_frame = frame

    def frames(self):
        yield self._frame

    tables = frames


def _as_table(table):
    return _FrameTable(table) if is_dataframe(table) else table


def build_padding(config: SimConfig) -> GraphPadding:
    return GraphPadding(default_graph_sizes(config.graph_max_size), enabled=config.cuda_graphs)


def build_latency(config: SimConfig):
    """The ground-truth latency model: a calibrated profile (JSON) if given, a Vidur profile
    folder's measured kernels, else the fitted per-op model of the presets.

    Refused: a draft model with more parameters than the target (speculation could never pay;
    almost always swapped options) and a latency model under which a target pass takes no
    time (an all-zero profile would report TTFT 0 and every SLO met)."""
    overheads = {}
    if config.pass_overheads_s is not None:
        overheads = dict(zip(("target_overhead_s", "draft_step_overhead_s", "draft_overhead_s"),
                             config.pass_overheads_s))
    if is_calibrated_profile(config.profile):
        if overheads:
            raise ConfigError("a calibrated profile carries its measured per-pass overheads; "
                              "pass_overheads_s applies to the presets and Vidur profiles")
        if config.dense_ops != DEFAULT_DENSE_OPS:
            raise ConfigError("a calibrated profile measured whole passes; dense_ops applies to "
                              "the presets and Vidur profiles")
        from sim.latency.profile import load_profile
        latency = load_profile(config.profile)
    else:
        from sim.latency.hardware import get_gpu
        from sim.latency.roofline import RooflineLatency
        target, draft = model_pair(config)
        gpu = get_gpu(config.gpu)
        if config.method != "draft-model":  # the method's drafter replaces the draft model
            draft = None
        if config.profile:
            from sim.latency.vidur_profile import load_vidur_latency
            latency = load_vidur_latency(config.profile, target, draft, gpu, tp=config.tp,
                                         dense_ops=config.dense_ops, **overheads)
        else:
            latency = RooflineLatency(target, draft, gpu, tp=config.tp,
                                      dense_ops=config.dense_ops, **overheads)
    if config.method != "draft-model":
        from sim.drafters.costs import method_latency
        from sim.drafters.presets import get_method
        latency = method_latency(latency, get_method(config.method))
    check_latency_positive(latency, config.profile or "the roofline")
    return latency


def is_calibrated_profile(profile: str | None) -> bool:
    """A calibrated profile file (``adaspec-calibrate latency``), as opposed to none or a
    Vidur profile folder (which needs the preset models, GPU and TP)."""
    from pathlib import Path
    return bool(profile) and not Path(profile).is_dir()


def model_pair(config: SimConfig):
    """The target and draft presets the config names; a draft larger than the target is an
    error."""
    from sim.latency.models import get_model
    target, draft = get_model(config.target), get_model(config.draft)
    if draft.params_count > target.params_count:
        raise ConfigError(f"draft model {draft.name} ({draft.params_count / 1e9:.2f} B "
                          f"parameters) is larger than target {target.name} "
                          f"({target.params_count / 1e9:.2f} B); swap --target and --draft?")
    return target, draft


def check_latency_positive(latency, what: str) -> None:
    """ConfigError when a target pass would take no time: a fitted profile whose target
    operations have only zero coefficients (checked on the fit, as a probe pass could lie
    outside the measured domain), or another model whose one-token passes take 0 s."""
    ops = getattr(latency, "ops", None)
    if isinstance(ops, dict):
        zero = [op for op in ("target_prefill", "target_verify")
                if op in ops and not any(ops[op].coefficients)]
        if zero:
            raise ConfigError(f"latency profile {what}: every coefficient of {' and '.join(zero)} "
                              "is 0, so a target pass would take no time; a latency profile "
                              "must predict positive times")
        return
    prefill = latency.target_prefill_s([1])
    decode = latency.target_verify_s(1, 1, 1)
    if not (prefill > 0 and decode > 0):
        raise ConfigError(f"latency model {what}: a one-token target pass takes {prefill:g} s "
                          f"(prefill) / {decode:g} s (decode); it must predict positive times")


def profile_model_pair(meta: dict | None, target: str | None, draft: str | None,
                       fallback: tuple[str, str] = ("vicuna-7b", "vicuna-68m"),
                       kv_blocks_given: bool = False) -> tuple[str, str]:
    """Target and draft presets of a run on a calibrated profile: the profile's own models
    (they size the KV pool and set the context). ``target``/``draft`` (None = not given) must
    agree with them; where the profile names no preset, a given name or, with an explicit KV
    pool, the profile's own name (context then unknown: no limit) is used, and otherwise it is
    an error."""
    from sim.latency.models import get_model
    from sim.run_description import profile_identity

    identity = profile_identity(meta)
    chosen = []
    for role, given, default in (("target", target, fallback[0]), ("draft", draft, fallback[1])):
        measured = str(identity.get(role) or "")
        name = measured.split(":", 1)[1] if measured.startswith("random:") else measured
        try:
            preset = get_model(name).name
        except ConfigError:
            preset = None
        if given is not None:
            if preset is not None and get_model(given).name != preset:
                raise ConfigError(f"--{role} {given} disagrees with the profile, measured for "
                                  f"{role} {measured}; drop --{role}")
            chosen.append(get_model(given).name)
        elif preset is not None:
            chosen.append(preset)
        elif kv_blocks_given:  # the profile's own name: no context limit is known
            chosen.append(measured or default)
        else:
            raise ConfigError(f"the profile's {role} {measured or '(unnamed)'} is not a model "
                              f"preset: give --{role} PRESET of the same shape (it sizes the KV "
                              "pool and sets the context) or --kv-blocks")
    return chosen[0], chosen[1]


def target_context_tokens(config: SimConfig) -> int | None:
    """The target model's context (max_position_embeddings) when it is a preset, else None."""
    from sim.latency.models import get_model
    try:
        return get_model(config.target).max_position_embeddings
    except ConfigError:
        return None


def build_estimator(config: SimConfig, latency, padding: GraphPadding):
    if config.estimator == "exact":
        return latency
    from sim.latency.estimator import TableEstimator
    if config.method != "draft-model":  # the target's passes tabulated, the drafter exact
        from sim.drafters.costs import MethodLatency
        return MethodLatency(TableEstimator.from_model(latency.base, padding), latency.drafter)
    return TableEstimator.from_model(latency, padding)


def build_scheduler_config(config: SimConfig, uses_draft: bool) -> SchedulerConfig:
    if config.kv_blocks is not None:
        blocks = config.kv_blocks
    elif config.method != "draft-model":
        from sim.drafters.checks import method_kv_blocks
        blocks = method_kv_blocks(config, uses_draft)
    else:
        from sim.latency.hardware import get_gpu
        from sim.latency.kv import kv_capacity_blocks
        target, draft = model_pair(config)
        blocks = kv_capacity_blocks(target, draft,
                                    get_gpu(config.gpu), config.tp,
                                    block_size=config.block_size,
                                    gpu_memory_utilization=config.gpu_memory_utilization,
                                    include_draft=uses_draft)
    return SchedulerConfig(kv_blocks=blocks, max_num_seqs=config.max_num_seqs,
                           block_size=config.block_size,
                           max_num_batched_tokens=config.max_num_batched_tokens,
                           watermark_blocks=max(0, min(blocks - 1, int(0.01 * blocks))),
                           chunked_prefill=config.chunked_prefill,
                           max_model_len=target_context_tokens(config))


def resolve_policy(policy: str | Policy) -> Policy:
    if isinstance(policy, Policy):
        return policy
    from sim.policies.registry import make_policy
    return make_policy(policy)


def simulate(workload: Workload, policy: str | Policy, config: SimConfig | None = None,
             seed: int = 0, progress=False, latency=None, acceptance=None,
             spool_dir=None) -> RunResult:
    """Replay ``workload`` under ``policy``; ``latency``/``acceptance`` override the models
    the config names (tests and calibration use this). ``progress``: False (none), True (a
    bar on a terminal, periodic lines on stderr otherwise) or a ``sim.progress`` reporter.
    ``spool_dir``: a folder where the iteration table goes in chunks while the run goes
    (bounded memory; the CLI uses its run directory); None keeps it in memory as compact
    arrays. With ``config.iteration_log`` False only its statistics are kept."""
    config = config or SimConfig()
    if len(workload) == 0:
        raise ConfigError("the workload has no requests")
    check_clock_range(workload)
    policy = resolve_policy(policy)
    padding = build_padding(config)
    latency = latency if latency is not None else build_latency(config)
    estimator = build_estimator(config, latency, padding)
    if acceptance is None:
        from sim.acceptance.presets import make_acceptance
        acceptance = make_acceptance(config.acceptance)
    rng = np.random.default_rng(seed)
    if progress is True:
        from sim.progress import make_progress
        progress = make_progress(policy.name, workload.requests[-1].arrival_s)
    from sim.metrics.recorder import IterationLog
    from sim.metrics.requests import RequestTable
    from sim.metrics.summary import summarize
    from sim.server import ServerSimulation, Slo
    plan = None
    if config.method != "draft-model":
        from sim.drafters.checks import check_policy_method
        from sim.drafters.plan import MethodPlan
        from sim.drafters.presets import get_method
        check_policy_method(policy, config.method)
        plan = MethodPlan(get_method(config.method))
    server = ServerSimulation(workload, policy, latency, estimator, acceptance,
                              build_scheduler_config(config, policy.uses_draft), padding,
                              Slo(config.ttft_slo_s, config.tpot_slo_s), rng,
                              progress=progress or None, engine=config.engine, plan=plan,
                              engine_path=config.engine_path)
    # the server's sinks: rows leave as typed columns / chunks, no per-request objects stay
    server.finished = RequestTable(config.ttft_slo_s, config.tpot_slo_s)
    server.iterations = IterationLog(keep=config.iteration_log, spool_dir=spool_dir,
                                     arrival_span_s=arrival_span_s(workload))
    began = time.perf_counter()
    server.run()
    wall = time.perf_counter() - began
    server.iterations.flush()
    summary = summarize(server.finished, server.iterations)
    # which iteration path ran (never hidden): "compiled" or "protocol", and why protocol
    summary["iteration_path"] = server.engine_path
    if server.engine_path == "protocol":
        summary["iteration_path_reason"] = server.protocol_reason
    return RunResult(policy.name, server.finished, server.iterations, summary, wall)


MAX_ARRIVAL_S = float(2 ** 32)
"""Latest arrival time a run takes (2^32 s, about 136 years): the simulated clock counts float
seconds, which step by at most 2^-20 s (< 1 us) below it; far past it an iteration of a few
ms no longer moves the clock, and every latency would read 0."""


def check_clock_range(workload: Workload) -> None:
    """Every arrival lies where the simulated clock resolves a microsecond
    (:data:`MAX_ARRIVAL_S`); a trace in epoch milliseconds, say, is an error, not a table of
    zero latencies."""
    last_s = arrival_span_s(workload)[1]
    if not last_s <= MAX_ARRIVAL_S:
        raise ConfigError(f"the workload's last arrival is at {last_s!r} s, past the "
                          f"{MAX_ARRIVAL_S:.0f} s (136 years) where the simulated clock (float "
                          "seconds) still resolves 1 us; arrival times must be seconds from "
                          "the trace's start (native and arrival-only traces keep their own "
                          "zero; --rate-scale and --arrivals set the gaps)")


def arrival_span_s(workload: Workload) -> tuple[float, float]:
    """(first, last) arrival time of the workload's requests."""
    arrivals = getattr(workload.requests, "arrival_s", None)
    if arrivals is None:
        arrivals = np.fromiter((r.arrival_s for r in workload.requests), np.float64,
                               len(workload))
    return float(arrivals.min()), float(arrivals.max())
