"""The simulated serving engine: a SimPy model of one LLM server replaying a workload.

Two SimPy processes share one scheduler: ``arrivals`` releases requests at their trace times;
``engine`` runs iterations back to back, each a prefill iteration (when a waiting request can
be admitted; vLLM's default prefill-first rule) or a decode iteration whose speculation is
decided by the policy through ``sim.core.speculation.run_decode_iteration``. The serving
engine (``single-pass`` or ``vllm-0.6`` batch expansion) turns the iteration into forward
passes and ``sim.latency.iteration`` prices them with the ground-truth latency model; the
policy only sees its own estimator.

Two paths run the engine (``engine_path``): the *compiled* path (``sim.compiled``), where
one compiled function is handed the trace's arrivals up front and plays both processes in
SimPy's order (the one SimPy process left yields one timeout per hand-over of records,
which brings SimPy's clock to the loop's), and the *protocol* path, one SimPy step per
iteration through ``run_decode_iteration`` and the policy's Python methods. Both call the
same rules and give the same bytes; a run takes the compiled path when its policy, ground
truth, estimator, acceptance model and engine all have a compiled form ("auto", the
default), and the protocol path otherwise (a user's own ``Policy`` subclass) or when asked
(``engine_path="protocol"``). ``ServerSimulation.engine_path`` says which one ran.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy

from sim.acceptance.base import AcceptanceModel
from sim.compiled.layout import ST_DONE, ST_FLUSH
from sim.core.padding import GraphPadding
from sim.core.scheduler import Scheduler, SchedulerConfig
from sim.core.speculation import build_batch_view, decode_shape, run_decode_iteration
from sim.errors import ConfigError
from sim.latency.base import LatencyModel
from sim.latency.iteration import (DEFAULT_ENGINE, VLLM_06, DecodeShape, check_engine,
                                   decode_iteration_s, drafter_upkeep_s, prefill_iteration_s)
from sim.metrics.recorder import IterationLog
from sim.metrics.requests import RequestTable
from sim.policies.base import Policy
from sim.sim_executor import SimDecodeExecutor
from sim.workload.request import RequestColumns, Workload


@dataclass(frozen=True)
class Slo:
    """Latency targets in seconds."""

    ttft_s: float
    tpot_s: float


class ServerSimulation:
    """Replays ``workload`` through one simulated server; results land in ``finished`` and
    ``iterations`` after :meth:`run`."""

    def __init__(self, workload: Workload, policy: Policy, latency: LatencyModel,
                 estimator: LatencyModel, acceptance: AcceptanceModel,
                 scheduler_config: SchedulerConfig, padding: GraphPadding, slo: Slo,
                 rng: np.random.Generator, progress=None,
                 engine: str = DEFAULT_ENGINE, plan=None, engine_path: str = "auto") -> None:
        self.workload = workload
        self.engine = check_engine(engine)
        self._expanded = engine == VLLM_06
        self.policy = policy
        # engine adaptive rules only (sim.policies.engine_rules): draft work besides drafting
        self._upkeep = getattr(policy, "drafter_upkeep", None)
        self.latency = latency
        self.estimator = estimator
        self.padding = padding
        self.slo = slo
        self.rng = rng
        self.progress = progress
        # a method other than the draft model (sim.drafters.plan.MethodPlan): verify lengths
        # are depths of its tree, capped at its depth; each request reserves KV for the nodes
        self.plan = plan
        self._k_view = policy.k_max if plan is None else min(policy.k_max, plan.max_depth)
        self._lookahead = (policy.k_max if plan is None
                           else plan.method.kv_slots(self._k_view))
        self.scheduler = Scheduler(scheduler_config, lookahead_tokens=self._lookahead)
        self.executor = SimDecodeExecutor(acceptance, rng)
        requests = workload.requests
        categories = (requests.categories() if isinstance(requests, RequestColumns)
                      else [r.category for r in requests])
        levels = np.asarray(acceptance.request_levels(categories, rng), dtype=float)
        # per-request draw work, done once; by position in the workload (a request's id is
        # its label only: a sliced or merged workload keeps its ids)
        self._keys = acceptance.draw_keys(levels)
        if engine_path not in ENGINE_PATHS:
            raise ConfigError(f"engine_path must be one of {', '.join(ENGINE_PATHS)}, "
                              f"got {engine_path!r}")
        self.protocol_reason: str | None = "asked for (engine_path='protocol')"
        self._compiled = None
        if engine_path == "auto":
            from sim.compiled.run import CompiledRun, why_protocol
            self.protocol_reason = why_protocol(policy, latency, estimator, acceptance,
                                                self.engine, plan, rng)
            if self.protocol_reason is None:
                self._compiled = CompiledRun(self.scheduler, policy, latency, estimator,
                                             acceptance, padding, self.engine, rng, slo,
                                             workload.requests, self._keys, plan)
        #: "compiled" or "protocol": which path runs the engine (``protocol_reason``: why)
        self.engine_path = "compiled" if self._compiled is not None else "protocol"
        self._key_by_slot = np.zeros(scheduler_config.max_num_seqs, dtype=self._keys.dtype)
        # batch expansion: whether each slot's previous iteration ended with a bonus token
        self._bonus_by_slot = np.zeros(scheduler_config.max_num_seqs, dtype=bool)
        #: where requests go when they leave (``sim.run`` gives its own)
        self.finished = RequestTable(slo.ttft_s, slo.tpot_s)
        self.iterations = IterationLog()
        self.env = simpy.Environment(initial_time=0.0)
        self._wake: simpy.Event | None = None
        self._arrivals_done = False

    # ------------------------------------------------------------------ processes
    def run(self) -> None:
        """Run the simulation until every request has finished or been rejected."""
        if self._compiled is None:
            self.env.process(self._arrivals())
            self.env.process(self._engine())
        else:  # the compiled loop plays both processes (sim.compiled.loop)
            self.env.process(self._compiled_engine())
        self.env.run()

    def _arrivals(self):
        env = self.env
        keys = self._keys
        for position, request in enumerate(self.workload.requests):
            delay = request.arrival_s - env.now
            if delay > 0:
                yield env.timeout(delay)
            rejected = self.scheduler.arrive(request, env.now, float(keys[position]))
            if rejected is not None:
                self.finished.append(rejected)
            elif self._wake is not None and not self._wake.triggered:
                self._wake.succeed()
        self._arrivals_done = True
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()

    def _engine(self):
        env = self.env
        sched = self.scheduler
        progress = self.progress  # a sim.progress reporter or None
        count = 0
        while True:
            if sched.idle:
                if self._arrivals_done:
                    break
                self._wake = env.event()
                yield self._wake
                self._wake = None
                continue
            chunks = sched.next_prefill(env.now)
            if chunks:
                yield from self._prefill(chunks)
            else:
                preemptions = sched.preemption_count
                slots = sched.prepare_decode(self._lookahead, env.now)
                if slots.size:
                    yield from self._decode(slots)
                elif sched.preemption_count == preemptions:
                    raise RuntimeError("scheduler made no progress: nothing to prefill or decode")
            count += 1
            if progress is not None and count % 256 == 0:
                progress.update(env.now)
        if progress is not None:
            progress.close()

    def _compiled_engine(self):
        """The engine process of the compiled path: the compiled loop plays the arrival and
        engine processes (in SimPy's order) over the whole trace; each time it hands records
        over, one timeout brings SimPy's clock to the loop's."""
        env = self.env
        run = self._compiled
        progress = self.progress
        reported = 0
        while True:
            status = run.run()
            run.take_finished(self.finished)
            if status == ST_FLUSH:
                run.drain(self.iterations)
            end = run.now
            if end > env.now:
                yield env.timeout(_delay_to(env.now, end))
            if status == ST_DONE:
                break
            if progress is not None and run.iterations // 256 > reported:
                reported = run.iterations // 256
                progress.update(env.now)
        run.drain(self.iterations)
        if progress is not None:
            progress.close()

    # ------------------------------------------------------------------ iterations
    def _prefill(self, chunks):
        env = self.env
        sched = self.scheduler
        start = env.now
        tokens = [c.tokens for c in chunks]
        cached = [c.cached for c in chunks]
        duration = prefill_iteration_s(self.latency, tokens, self.policy.uses_draft, cached)
        for c in chunks:
            if c.cached == 0:
                self._key_by_slot[c.slot] = sched.key_at(c.slot)
                self._bonus_by_slot[c.slot] = False
        queue = sched.queue_len
        yield env.timeout(duration)
        done = sched.finish_prefill(chunks, env.now)
        emitted = sum(1 for c in chunks if c.completes)
        total_tokens = sum(tokens)
        self.iterations.add_prefill(start, duration, len(chunks), total_tokens, emitted, queue)
        self.finished.extend(done)

    def _decode(self, slots: np.ndarray):
        env = self.env
        sched = self.scheduler
        policy = self.policy
        pad = self.padding.pad
        start = env.now
        batch = int(slots.size)
        if policy.k_max == 0:
            context_sum = sched.context_tokens(slots)
            shape = DecodeShape(batch, context_sum, batch, batch, context_sum)
            duration = decode_iteration_s(self.latency, self.padding, shape)
            yield env.timeout(duration)
            self.finished.extend(sched.finish_decode(slots, 1, None, None, None, env.now))
            self.iterations.add_decode(start, duration, shape, pad(batch), pad(batch), 0, batch,
                                       0, sched.queue_len, None)
            return
        padded_batch = pad(batch)
        k_view = self._k_view
        oracle = self.executor.start(self._key_by_slot[slots], k_view,
                                     draw_now=policy.needs_oracle)
        bonus = self._bonus_by_slot[slots] if self._expanded else None
        view = build_batch_view(sched, slots, start, k_view, self.slo.ttft_s,
                                self.slo.tpot_s, self.estimator, self.padding, oracle,
                                self.engine, bonus, self.plan)
        outcome = run_decode_iteration(policy, view, self.executor)
        shape = (decode_shape(view, outcome) if self.plan is None
                 else self.plan.decode_shape(view, outcome))
        duration = decode_iteration_s(self.latency, self.padding, shape)
        if self._upkeep is not None:  # issue 14 hook: engine rules' k = 0 and catch-up costs
            upkeep = self._upkeep()
            if upkeep is not None:
                duration += drafter_upkeep_s(self.latency, self.padding, upkeep, duration)
        verify = outcome.verify
        # accepted <= verify <= drafted <= remaining - 1 (the driver caps drafting at
        # max_draft_tokens), so a request never emits more than it still needs
        accepted = outcome.accepted
        emitted = accepted + 1
        accepted_total = sum(accepted.tolist())
        steps = outcome.draft_steps
        if self._expanded:
            self._bonus_by_slot[slots] = (accepted == verify) & (verify > 0)
        yield env.timeout(duration)
        self.finished.extend(sched.finish_decode(slots, emitted, outcome.drafted, verify,
                                                 accepted, env.now))
        self.iterations.add_decode(start, duration, shape, padded_batch,
                                   pad(shape.verify_tokens), sum(outcome.drafting),
                                   batch + accepted_total, accepted_total, sched.queue_len,
                                   verify if steps else None)


ENGINE_PATHS = ("auto", "protocol")


def _delay_to(now: float, end: float) -> float:
    """The timeout delay after which SimPy's clock (``now + delay``) reads exactly ``end``."""
    delay = end - now
    while now + delay < end:
        delay = math.nextafter(delay, math.inf)
    while now + delay > end:
        delay = math.nextafter(delay, -math.inf)
    return delay
