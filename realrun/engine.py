"""The real serving engine: ``sim.server``'s loop on the wall clock with real forward passes.

One replica, one policy. The loop mirrors the simulated engine exactly:

- arrivals are replayed on the wall clock: request i is released at engine time
  ``arrival_s`` of the served workload (already multiplied by ``time_scale``); the engine clock
  starts at the first arrival, so no idle lead-in is waited out;
- the SAME ``sim.core.scheduler.Scheduler`` decides every iteration (FCFS admission, KV blocks,
  preemption by recompute); a scheduler slot is the row of the target and draft slot KV caches,
  and the KV pool is sized from that capacity (``max_num_seqs x max_len / block_size`` blocks,
  a block holding the target's and the draft's KV of its tokens);
- prefill-first rule: an iteration is a prefill when ``next_prefill`` admits anything, else a
  decode iteration over ``prepare_decode``'s slots; a preempted request's slot is released in
  both caches and its prompt plus the tokens it already emitted are prefilled again on
  readmission (that prefill emits its next token, as the scheduler counts);
- decode iterations build the same ``BatchView`` and go through
  ``sim.core.speculation.run_decode_iteration(policy, view, executor)`` with
  ``realrun.executor.RealDecodeExecutor`` (real draft confidences; greedy verification is
  lossless); request i emits ``min(accepted_i + 1, remaining_i)`` tokens;
- every iteration's duration is measured (``perf_counter``; on CUDA after
  ``torch.cuda.synchronize``), covering the policy's decisions and all passes, and logged in
  the same ``IterationLog`` with the same pass shape (``sim.core.speculation.decode_shape``);
  requests leave as the same ``FinishedRequest`` records;
- verification is one target pass over each request's k_i + 1 positions reading its KV once:
  the ``single-pass`` engine of ``sim.latency.iteration``. Batch expansion (``vllm-0.6``) is
  simulation-only; asking for it is a ConfigError.

Drafting methods (``method``): ``draft-model`` (a draft model with its own slot KV cache) or
``ngram`` (``realrun.ngram``: prompt lookup in each request's prompt and output so far on the
CPU; no draft model or cache). Under ngram every request looks up its proposal before the
policy decides, the view's ``max_draft_tokens`` is capped at the proposal's length (no match:
the request drafts nothing), the iteration's shape records no draft pass, and
``EngineRun.lookup_steps`` / ``draft_cpu_s`` keep the loop's draft steps and the measured lookup
time per iteration (``realrun.results`` writes them to the iteration table).

Outputs ignore EOS and run to ``output_tokens``. A request that can never fit its slot
(prompt + output > ``max_len``) or the KV pool is rejected with a per-request reason and the
run continues. Controlled acceptance: the passes run, but draft confidences and verdicts come
from an acceptance model (per-request levels and per-iteration draws, as in the simulator).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from realrun.executor import RealDecodeExecutor
from realrun.kvcache import SlotKVCache
from realrun.lookup import METHOD_DRAFT_MODEL, METHOD_NGRAM, METHODS, NgramConfig
from realrun.ngram import NgramDecodeExecutor
from realrun.prompts import ServedWorkload
from sim.acceptance.base import AcceptanceModel
from sim.core.padding import GraphPadding
from sim.core.scheduler import FinishedRequest, PrefillChunk, Scheduler, SchedulerConfig
from sim.core.speculation import build_batch_view, decode_shape, run_decode_iteration
from sim.errors import AdaSpecError, ConfigError
from sim.latency.base import LatencyModel
from sim.latency.iteration import SINGLE_PASS, DecodeShape, check_engine
from sim.metrics.recorder import IterationLog
from sim.policies.base import Policy
from sim.workload.request import Request
from sim.workload.spec import check_non_negative, check_positive


class EngineOOMError(AdaSpecError):
    """The device ran out of memory (one line: what to lower)."""


@dataclass(frozen=True)
class EngineLimits:
    """Engine limits and run options. ``kv_blocks`` defaults to the slot caches' capacity
    (``max_num_seqs * max_len // block_size``); a smaller pool forces preemption. The SLOs
    must be finite numbers of seconds > 0 and ``temperature`` a finite number >= 0 (nan and
    inf are one-line ConfigErrors, by ``sim.workload.spec``'s checks)."""

    max_num_seqs: int = 8
    max_len: int = 1024
    block_size: int = 16
    kv_blocks: int | None = None
    max_num_batched_tokens: int = 8192
    ttft_slo_s: float = 2.0
    tpot_slo_s: float = 0.040
    temperature: float = 0.0

    def __post_init__(self) -> None:
        for name in ("max_num_seqs", "max_len", "block_size", "max_num_batched_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.kv_blocks is not None and not 1 <= self.kv_blocks <= self.capacity_blocks:
            raise ConfigError(f"kv_blocks must be in 1..{self.capacity_blocks} (the slot caches "
                              f"hold {self.max_num_seqs} x {self.max_len} tokens), got {self.kv_blocks}")
        check_positive("ttft_slo_s (seconds)", self.ttft_slo_s)
        check_positive("tpot_slo_s (seconds)", self.tpot_slo_s)
        check_non_negative("temperature", self.temperature)

    @property
    def capacity_blocks(self) -> int:
        return max(1, self.max_num_seqs * self.max_len // self.block_size)

    def never_fits(self, request: Request, lookahead_tokens: int = 0) -> str:
        """Why ``request`` can never be served under these limits ("" when it can)."""
        total = request.prompt_tokens + request.output_tokens
        if total > self.max_len:
            return (f"request {request.id}: prompt {request.prompt_tokens} + output "
                    f"{request.output_tokens} tokens exceed the slot length max_len={self.max_len}")
        sched = self.scheduler_config()
        need = -(-(total + lookahead_tokens) // sched.block_size)
        if need > sched.kv_blocks - sched.watermark_blocks:
            return (f"request {request.id}: needs {need} KV blocks, the pool has "
                    f"{sched.kv_blocks - sched.watermark_blocks} usable")
        return ""

    def scheduler_config(self) -> SchedulerConfig:
        """The same rule as ``sim.run.build_scheduler_config`` (1 % watermark), no chunking."""
        blocks = self.kv_blocks if self.kv_blocks is not None else self.capacity_blocks
        return SchedulerConfig(kv_blocks=blocks, max_num_seqs=self.max_num_seqs,
                               block_size=self.block_size,
                               max_num_batched_tokens=self.max_num_batched_tokens,
                               watermark_blocks=max(0, min(blocks - 1, int(0.01 * blocks))),
                               chunked_prefill=False)


@dataclass
class EngineRun:
    """What one run produced: finish records, the iteration log, each request's emitted token
    ids (by request id), rejection reasons and (with ``keep_outcomes``) per decode iteration the
    (verify lengths, accepted lengths) arrays."""

    finished: list[FinishedRequest]
    iterations: IterationLog
    outputs: dict[int, list[int]]
    rejections: dict[int, str]
    outcomes: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    wall_s: float = 0.0
    # method ngram, per iteration (prefills included, 0 there): proposal positions drafted
    # (the policy loop's draft steps; no draft pass runs) and CPU seconds spent looking up
    lookup_steps: list[int] = field(default_factory=list)
    draft_cpu_s: list[float] = field(default_factory=list)


class RealEngine:
    """Serves a ``ServedWorkload`` with ``policy`` on real models (see the module doc)."""

    def __init__(self, target: torch.nn.Module, draft: torch.nn.Module | None, policy: Policy,
                 estimator: LatencyModel, limits: EngineLimits, *, seed: int = 0,
                 acceptance: AcceptanceModel | None = None, progress: bool = False,
                 keep_outcomes: bool = False, engine: str = SINGLE_PASS,
                 method: str = METHOD_DRAFT_MODEL, ngram: NgramConfig | None = None) -> None:
        if method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if ngram is not None and method != METHOD_NGRAM:
            raise ConfigError("ngram options apply to method ngram only")
        if method == METHOD_NGRAM and draft is not None:
            raise ConfigError("method ngram drafts by prompt lookup: pass no draft model")
        if check_engine(engine) != SINGLE_PASS:
            raise ConfigError(f"the real engine verifies in a single pass ({SINGLE_PASS}); "
                              f"engine {engine!r} (batch expansion) is simulation-only")
        if getattr(policy, "sim_only", False) or policy.needs_oracle:
            raise ConfigError(f"policy {policy.name} is simulation-only (it needs the future "
                              "acceptance outcomes); the real engine cannot run it")
        if policy.uses_draft and draft is None and method == METHOD_DRAFT_MODEL:
            raise ConfigError(f"policy {policy.name} needs a draft model")
        for model in (target, draft):
            positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
            if positions is not None and limits.max_len > positions:
                raise ConfigError(f"max_len {limits.max_len} exceeds the model's "
                                  f"{positions} positions")
        self.policy = policy
        self.estimator = estimator
        self.limits = limits
        self.padding = GraphPadding(enabled=False)  # eager passes: no CUDA graphs captured
        self.acceptance = acceptance
        self.seed = seed
        self.progress = progress
        self.keep_outcomes = keep_outcomes
        draft = draft if policy.uses_draft else None
        n, length = limits.max_num_seqs, limits.max_len
        self.target_cache = SlotKVCache.for_model(target, max_slots=n, max_len=length)
        self.draft_cache = (SlotKVCache.for_model(draft, max_slots=n, max_len=length)
                            if draft is not None else None)
        self.method = method
        self.ngram = (ngram or NgramConfig()) if method == METHOD_NGRAM else None
        if method == METHOD_NGRAM:
            self.executor: RealDecodeExecutor = NgramDecodeExecutor(
                target, self.target_cache, self.ngram, temperature=limits.temperature, seed=seed)
        else:
            self.executor = RealDecodeExecutor(target, self.target_cache, draft, self.draft_cache,
                                               temperature=limits.temperature, seed=seed)
        self._cuda = self.target_cache.device.type == "cuda"

    # ------------------------------------------------------------------ clock
    def _sync(self) -> None:
        if self._cuda:
            torch.cuda.synchronize(self.target_cache.device)

    def _now(self) -> float:
        return self._t0 + (time.perf_counter() - self._wall0)

    # ------------------------------------------------------------------ run
    def run(self, served: ServedWorkload) -> EngineRun:
        """Replay ``served`` on the wall clock until every request finished or was rejected."""
        requests = sorted(served.workload.requests, key=lambda r: (r.arrival_s, r.id))
        if not requests:
            raise ConfigError("the workload has no requests")
        self.scheduler = Scheduler(self.limits.scheduler_config(), lookahead_tokens=self.policy.k_max)
        self.prompts = served.prompt_ids
        self.result = EngineRun([], IterationLog(), {}, {})
        self._pending = deque(requests)
        self._rng = np.random.default_rng(self.seed)
        self._levels: dict[int, float] = {}
        if self.acceptance is not None:
            levels = self.acceptance.request_levels([r.category for r in requests], self._rng)
            self._levels = {r.id: float(v) for r, v in zip(requests, levels)}
        self._bar = tqdm(total=len(requests), unit="req", disable=not self.progress, leave=False,
                         desc=f"{self.policy.name} (real)")
        self._t0 = requests[0].arrival_s
        self._wall0 = time.perf_counter()
        try:
            self._loop()
        except torch.cuda.OutOfMemoryError:
            raise EngineOOMError(f"out of device memory running {self.policy.name}; lower "
                                 "--max-num-seqs, --max-len or the prompt lengths") from None
        except RuntimeError as exc:
            if "out of memory" in str(exc) or "can't allocate memory" in str(exc):
                raise EngineOOMError(f"out of memory running {self.policy.name}; lower "
                                     "--max-num-seqs, --max-len or the prompt lengths") from None
            raise
        finally:
            self._bar.close()
        self.result.wall_s = time.perf_counter() - self._wall0
        return self.result

    def _loop(self) -> None:
        sched = self.scheduler
        while True:
            self._release_arrivals()
            if sched.idle:
                if not self._pending:
                    break
                time.sleep(max(0.0, self._pending[0].arrival_s - self._now()))
                continue
            chunks = sched.next_prefill(self._now())
            if chunks:
                self._prefill(chunks)
                continue
            preemptions = sched.preemption_count
            slots = sched.prepare_decode(self.policy.k_max, self._now())
            self._sync_slots()
            if slots.size:
                self._decode(slots)
            elif sched.preemption_count == preemptions:
                raise RuntimeError("scheduler made no progress: nothing to prefill or decode")

    def _release_arrivals(self) -> None:
        now = self._now()
        pending = self._pending
        while pending and pending[0].arrival_s <= now:
            request = pending.popleft()
            record = self._reject_if_too_long(request)
            if record is None:
                record = self.scheduler.arrive(request, now)
            if record is not None:
                reason = record.reason
                if not reason.startswith("request "):
                    reason = f"request {request.id}: {reason}"
                self.result.rejections[request.id] = reason
                self._finish([record])

    def _reject_if_too_long(self, request: Request) -> FinishedRequest | None:
        reason = self.limits.never_fits(request)
        if not reason or request.prompt_tokens + request.output_tokens <= self.limits.max_len:
            return None  # the scheduler rejects what does not fit the KV pool
        nan = float("nan")
        return FinishedRequest(request, "rejected", nan, nan, nan, 0, 0, 0, 0, 0, reason=reason)

    def _finish(self, records: Sequence[FinishedRequest]) -> None:
        self.result.finished.extend(records)
        if records:
            self._bar.update(len(records))

    def _sync_slots(self) -> None:
        """Free the cache rows of requests the scheduler no longer runs (finished/preempted)."""
        running = set(self.scheduler.running)
        for slot in [s for s in self.executor.rows if s not in running]:
            self.executor.release(slot)

    # ------------------------------------------------------------------ iterations
    def _prefill(self, chunks: list[PrefillChunk]) -> None:
        sched = self.scheduler
        slots = [c.slot for c in chunks]
        ids = [sched.request_at(s).id for s in slots]
        prompts = []
        for c, rid in zip(chunks, ids):
            emitted = self.result.outputs.setdefault(rid, [])
            prompt = list(self.prompts[rid]) + emitted  # recompute after a preemption
            if c.cached != 0 or not c.completes or c.tokens != len(prompt):
                raise RuntimeError(f"prefill chunk {c} does not match request {rid}'s "
                                   f"{len(prompt)} tokens")
            prompts.append(prompt)
        queue = sched.queue_len
        start = self._now()
        first = self.executor.prefill(slots, prompts)
        self._sync()
        end = self._now()
        for rid, tok in zip(ids, first):
            self.result.outputs[rid].append(int(tok))
        done = sched.finish_prefill(chunks, end)
        self._sync_slots()
        self.result.iterations.add_prefill(start, end - start, len(chunks),
                                           sum(c.tokens for c in chunks), len(chunks), queue)
        if self.method == METHOD_NGRAM:
            self.result.lookup_steps.append(0)
            self.result.draft_cpu_s.append(0.0)
        self._finish(done)

    def _controlled(self, slots: np.ndarray, k: int):
        if self.acceptance is None or k == 0:
            return None
        levels = np.array([self._levels[self.scheduler.request_at(int(s)).id] for s in slots])
        return self.acceptance.draw(levels, k, self._rng)

    def _decode(self, slots: np.ndarray) -> None:
        sched = self.scheduler
        policy = self.policy
        ex = self.executor
        batch = int(slots.size)
        ids = [sched.request_at(int(s)).id for s in slots]
        generated = sched.generated[slots]
        remaining = sched.output[slots] - generated
        slot_list = slots.tolist()
        start = self._now()
        if policy.k_max == 0:
            ex.begin(slot_list)
            accepted = ex.verify(np.zeros(batch, dtype=np.int64))
            zeros = np.zeros(batch, dtype=np.int64)
            steps, drafted, verify, drafting = 0, zeros, zeros, ()
            context = int(sched.prompt[slots].sum() + generated.sum())
            shape = DecodeShape(batch, context, batch, batch, context)
        else:
            ex.begin(slot_list, self._controlled(slots, policy.k_max))
            view = build_batch_view(sched, slots, start, policy.k_max, self.limits.ttft_slo_s,
                                    self.limits.tpot_slo_s, self.estimator, self.padding)
            if self.method == METHOD_NGRAM:
                # The lookup runs first; a request may draft only what its proposal holds
                # (none: it drafts nothing, by the driver's prefix rule).
                lengths = ex.propose(np.maximum(view.max_draft_tokens, 0))
                view = replace(view, max_draft_tokens=np.minimum(view.max_draft_tokens, lengths))
            outcome = run_decode_iteration(policy, view, ex)
            steps, drafted, verify, accepted = (outcome.draft_steps, outcome.drafted,
                                                outcome.verify, outcome.accepted)
            drafting = outcome.drafting
            shape = decode_shape(view, outcome)
            if self.method == METHOD_NGRAM:  # no draft pass ran: the shape has none
                shape = replace(shape, draft_rows=(), draft_kv_tokens=())
        self._sync()
        end = self._now()
        emitted = np.minimum(accepted + 1, remaining)
        for i, rid in enumerate(ids):
            self.result.outputs[rid].extend(ex.last_emitted[i][:int(emitted[i])])
        if self.keep_outcomes and steps:
            self.result.outcomes.append((verify.copy(), accepted.copy()))
        done = sched.finish_decode(slots, emitted, drafted, verify, accepted, end)
        self._sync_slots()
        self._release_arrivals()  # the log's queue length is the one after the iteration
        pad = self.padding.pad
        self.result.iterations.add_decode(start, end - start, shape, pad(batch),
                                          pad(shape.verify_tokens), sum(drafting),
                                          int(emitted.sum()), int(accepted.sum()),
                                          sched.queue_len, verify if steps else None)
        if self.method == METHOD_NGRAM:
            self.result.lookup_steps.append(int(steps))
            self.result.draft_cpu_s.append(float(getattr(ex, "draft_cpu_s", 0.0))
                                           if policy.k_max else 0.0)
        self._finish(done)
