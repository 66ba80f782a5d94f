"""The Python side of the compiled path: decides whether a run can take it, builds the
arrays ``sim.compiled.loop.run_chunk`` works on (the trace's arrivals among them), answers
its requests (table entries, request rows) and hands its records to the
``IterationLog`` and the ``RequestTable``.

``why_protocol`` says why a run cannot take it (None: it can); the server then runs the
protocol path, and the summary says which path ran (``engine_path``).
"""

from __future__ import annotations

import numpy as np

from sim.compiled import layout as L
from sim.compiled.stream import jump_table, load_stream, reproduced, store_stream
from sim.core.scheduler_state import REJECT_KINDS
from sim.workload.request import RequestColumns

RECORDS = 4096  # iterations buffered between two hand-overs to the IterationLog
FINISHED = 4096  # finish records buffered (at least 8 per slot)
RESERVED = 4096  # request rows made up front (more when as many are queued at once)
_STATUS = ("finished", "rejected")


def policy_plan(policy):
    """(kind, int state, float state, asks each step) of a built-in policy the loop runs,
    or a string saying why not."""
    from sim.policies.disable_by_batch import DisableByBatchPolicy
    from sim.policies.nospec import NoSpecPolicy
    from sim.policies.static import StaticPolicy

    kind = type(policy)
    empty_i, empty_f = np.zeros(1, dtype=np.int64), np.zeros(1)
    if kind is NoSpecPolicy:
        return L.P_NOSPEC, empty_i, empty_f, False
    if kind is StaticPolicy:
        return L.P_STATIC, empty_i, empty_f, False
    if kind is DisableByBatchPolicy:
        return (L.P_DISABLE_BY_BATCH, np.array([policy.batch_threshold], dtype=np.int64),
                empty_f, False)
    if kind in _compiled_classes():
        return policy.compiled_state()
    return f"policy {policy.name} ({kind.__name__}) has no compiled form"


def _compiled_classes() -> tuple:
    """Built-in policy classes whose rules the compiled loop runs (exactly these classes: a
    subclass may override a method, so it takes the protocol path)."""
    from sim.policies.adaspec import AdaSpecPolicy
    from sim.policies.adaspec_nv import AdaSpecNoVerifierPolicy
    from sim.policies.smartspec import SmartSpecPolicy
    from sim.policies.oracle import OraclePolicy
    from sim.policies.sglang_adaptive import SglangAdaptivePolicy
    from sim.policies.threshold import ThresholdPolicy
    from sim.policies.trtllm import TrtllmPolicy
    from sim.policies.vllm_dynamic import VllmDynamicPolicy
    return (AdaSpecPolicy, AdaSpecNoVerifierPolicy, SmartSpecPolicy, ThresholdPolicy,
            OraclePolicy, VllmDynamicPolicy, TrtllmPolicy, SglangAdaptivePolicy)


def why_protocol(policy, latency, estimator, acceptance, engine: str,
                 method_plan=None, rng: np.random.Generator | None = None) -> str | None:
    """Why this run cannot take the compiled path (None: it can); ``method_plan``: a
    method's ``MethodPlan`` (None: the draft model); ``rng``: the run's generator (the loop
    computes numpy's PCG64 stream itself, ``sim.compiled.stream``)."""
    from sim.acceptance.base import FixedAcceptance
    from sim.acceptance.model import ParametricAcceptance
    from sim.compiled.tables import supports_truth
    from sim.drafters.costs import MethodLatency
    from sim.latency.estimator import TableEstimator
    from sim.latency.iteration import SINGLE_PASS, VLLM_06
    from sim.latency.profile import ProfileLatency

    plan = policy_plan(policy)
    if isinstance(plan, str):
        return plan
    if method_plan is not None:
        if estimator is not latency and type(estimator) is MethodLatency:
            estimator = estimator.base  # the target's passes tabulated, the drafter exact
            latency = latency.base
    if not supports_truth(latency):
        return f"ground truth {type(latency).__name__} has no compiled form"
    if estimator is latency and type(latency) is ProfileLatency:
        # the compiled loop prices numbers of steps the protocol path may not ask for
        # (SmartSpec's every s, AdaSpec's next one); on a profile those extra queries could
        # warn (outside the measured domain) where the protocol path does not
        return "estimator exact over a calibrated profile has no compiled form"
    if estimator is not latency and not (type(estimator) is TableEstimator
                                         and estimator.base is latency):
        return f"estimator {type(estimator).__name__} has no compiled form"
    if type(acceptance) not in (ParametricAcceptance, FixedAcceptance):
        return f"acceptance model {type(acceptance).__name__} has no compiled form"
    if engine not in (SINGLE_PASS, VLLM_06):
        return f"engine {engine} has no compiled form"
    if rng is not None and not reproduced(rng):
        return (f"generator {type(rng.bit_generator).__name__} has no compiled form (the "
                f"loop computes numpy's PCG64 stream)")
    return None


def _arena(float_entries: list, int_entries: list) -> tuple[np.ndarray, np.ndarray]:
    """Pack arrays into one float and one int array; the int array starts with a header of
    (offset, rows, cols) per entry (floats first; cols 0 for 1-D)."""
    header = 3 * (len(float_entries) + len(int_entries))
    meta = []
    floats = []
    at = 0
    for a in float_entries:
        a = np.ascontiguousarray(a, dtype=np.float64)
        meta.append((at, a.shape[0], a.shape[1] if a.ndim == 2 else 0))
        floats.append(a.ravel())
        at += a.size
    ints = []
    at = header
    for a in int_entries:
        a = np.ascontiguousarray(a, dtype=np.int64)
        meta.append((at, a.shape[0], a.shape[1] if a.ndim == 2 else 0))
        ints.append(a.ravel())
        at += a.size
    cf = np.concatenate(floats) if floats else np.zeros(0)
    ci = np.concatenate([np.asarray(meta, dtype=np.int64).ravel()] + ints)
    return cf, ci


def scratch_arrays(n: int, k_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decode iteration's scratch for batches of up to ``n`` sequences drafting up to
    ``k_max`` tokens (``sim.compiled.layout``): ints ``wi``, floats ``wf`` (drawn and
    policy-visible confidences, (B, k) each), bools ``wb`` (accept outcomes, the first B k as
    (B, k); the alive and bonus masks, B each). All grow with n k, not n^2."""
    k = max(k_max, 1)
    wi = np.zeros((L.WORK_INTS, max(n, 2 * (k_max + 1), 8)), dtype=np.int64)
    wf = np.zeros((2, n, k))
    wb = np.zeros((3, n * k), dtype=np.bool_)
    return wi, wf, wb


class CompiledRun:
    """The compiled loop's arrays for one run, and its hand-overs."""

    def __init__(self, scheduler, policy, latency, estimator, acceptance, padding, engine: str,
                 rng: np.random.Generator, slo, requests, keys: np.ndarray,
                 method_plan=None) -> None:
        from sim.acceptance.base import FixedAcceptance
        from sim.compiled.jit import compiled
        from sim.compiled.loop import run_chunk
        from sim.compiled.tables import (T_DENSE, T_LOGITS, ProfileTables, estimator_arrays,
                                         padding_table, truth_tables)
        from sim.latency.iteration import VLLM_06

        self._run_chunk = compiled(run_chunk)
        self.scheduler = scheduler
        kind, self.pi, self.pf, asks = policy_plan(policy)
        k_max = int(policy.k_max)
        if method_plan is not None:  # verify lengths are depths of the method's tree
            k_max = min(k_max, method_plan.max_depth)
            estimator = estimator if estimator is latency else estimator.base
        # the most positions one sequence adds to a decode pass
        positions = k_max + 1
        if method_plan is not None:
            positions = max(positions, 1 + int(method_plan.nodes[k_max]),
                            max(method_plan.step_tokens, default=0))
        n = scheduler.config.max_num_seqs
        size = max(padding.max_size + 1, n * positions + 1, 2 * n + 1)
        self.truth = truth_tables(latency, padding, size)
        if not policy.uses_draft:
            self.truth.rows = (T_DENSE, T_LOGITS)  # no draft terms to price
        pad = padding_table(padding, size)
        if estimator is latency:
            est_kind = 1
            ev, ed = estimator_arrays_dummy()
        else:
            est_kind = 0
            ev, ed = estimator_arrays(estimator)
        if type(acceptance) is FixedAcceptance:
            acc_kind, cells, decay, decays = L.A_FIXED, np.zeros((1, 2)), np.ones(1), False
        else:
            acc_kind = L.A_PARAMETRIC
            cells = acceptance._cells
            decay = np.array(acceptance.decay(max(k_max, 1)), dtype=np.float64)
            decays = acceptance._decay.size > 0
        if method_plan is not None:
            drafter = self.truth.drafter
            m_ints, m_floats = drafter.ints, drafter.floats
            nodes = np.stack([method_plan.nodes, method_plan.depth_sums])
            step_tokens = method_plan.step_tokens_array
        else:
            m_ints, m_floats = np.zeros(1, dtype=np.int64), np.zeros(1)
            nodes, step_tokens = np.zeros((2, 1), dtype=np.int64), np.zeros(1, dtype=np.int64)
        self.cf, self.ci = _arena(
            [self.truth.att, self.truth.params, self.truth.overheads, ev[0], ev[4], ev[5],
             ev[6], ev[8], ed[0], ed[1], ed[2], ed[5], ed[6], cells, decay,
             np.array([ev[1]]), m_floats],
            [pad, ev[3], ev[7], ed[3], ed[4], np.array([ev[9], ed[7], ev[2]]),
             np.array(padding.sizes if padding.enabled else (-1,), dtype=np.int64),
             m_ints, nodes, step_tokens, jump_table(rng, n, max(k_max, 1))])
        # the loop's copy of a profile's domains, where it records queries outside them
        self._profile_att = (_float_entry(self.cf, self.ci, L.CF_ATT)
                             if isinstance(self.truth, ProfileTables) else None)
        ei = np.zeros(L.ENGINE_INTS, dtype=np.int64)
        ei[L.E_KMAX] = k_max
        ei[L.E_POLICY] = kind
        ei[L.E_EXPANDED] = int(engine == VLLM_06)
        ei[L.E_USES_DRAFT] = int(policy.uses_draft)
        ei[L.E_NEEDS_ORACLE] = int(policy.needs_oracle)
        ei[L.E_ACCEPTANCE] = acc_kind
        ei[L.E_DECAYS] = int(decays)
        ei[L.E_ESTIMATOR] = est_kind
        ei[L.E_PAD_SIZE] = size
        ei[L.E_ASKS_EACH_STEP] = int(asks)
        ei[L.E_PADDING] = int(padding.enabled)
        ei[L.E_LOOKAHEAD] = scheduler.lookahead_tokens
        ei[L.E_METHOD] = int(method_plan is not None)
        ei[L.E_SEQ_POSITIONS] = positions
        # the two processes at SimPy's start: the arrival process's first step at 0 (its
        # Initialize event comes first), then the engine's; ids 0 and 1 are theirs
        ei[L.E_PHASE] = L.PH_DECIDE
        ei[L.E_A_STATE] = L.A_STEP
        ei[L.E_EID] = 2
        self.ei = ei
        ef = np.zeros(L.ENGINE_FLOATS)
        ef[L.F_TTFT_SLO] = slo.ttft_s
        ef[L.F_TPOT_SLO] = slo.tpot_s
        self.ef = ef
        # an iteration's uniforms (u then v, B k each, B <= n), computed by the loop from
        # the run's stream (``sim.compiled.stream``), whose state is taken when it starts
        self.uniforms = np.zeros(2 * n * max(k_max, 1))
        self._rng = rng
        self._stream_loaded = False
        self.rec_i = np.zeros((L.RECORD_INTS, RECORDS), dtype=np.int64)
        self.rec_f = np.zeros((2, RECORDS))
        self.rec_len = np.zeros(max(RECORDS * 16, 4 * n), dtype=np.int64)
        self.rec_steps = np.zeros((2, RECORDS * 4 + 2 * (k_max + 1)), dtype=np.int64)
        self.fin = np.zeros(n, dtype=np.int64)
        done = max(FINISHED, 8 * n)
        self.done_i = np.zeros((L.DONE_INTS, done), dtype=np.int64)
        self.done_f = np.zeros((3, done))
        self.requests = requests
        self.arrivals, self.ids = arrival_arrays(requests, keys)
        scheduler.state.reserve(min(len(requests), RESERVED))
        self.wi, self.wf, self.wb = scratch_arrays(n, k_max)
        from sim.compiled.arenas import policy_work_sizes
        floats, ints = policy_work_sizes(n, k_max)
        self.pwf = np.zeros(floats)
        self.pwi = np.zeros(ints, dtype=np.int64)
        self._args: tuple | None = None

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        """Run the loop from where it stopped until it needs Python beyond what is answered
        here (table entries, request room); returns ``ST_DONE``, ``ST_FLUSH`` (drain the
        records, take the finished) or ``ST_TAKE`` (take the finished). The loop takes the
        run generator's state when it starts and hands it back when it is done (the
        generator then stands where the protocol path's would)."""
        if not self._stream_loaded:
            load_stream(self.ei, self._rng)
            self._stream_loaded = True
        status = self._run()
        if status == L.ST_DONE:
            store_stream(self.ei, self._rng)
        return status

    def _run(self) -> int:
        ei = self.ei
        st = self.scheduler.state
        run_chunk = self._run_chunk
        while True:
            args = self._args
            if (args is None or args[4] is not st.ri or args[5] is not st.rf
                    or args[8] is not st.queue or args[9] is not st.free_reqs
                    or args[14] is not self.truth.table):  # an array was reallocated
                args = self._args = (
                    st.cfg, st.sc, st.si, st.sf, st.ri, st.rf, st.running, st.free_slots,
                    st.queue, st.free_reqs, ei, self.ef, self.cf, self.ci, self.truth.table,
                    self.pi, self.pf, self.uniforms, self.rec_i, self.rec_f, self.rec_len,
                    self.rec_steps, self.fin, self.done_i, self.done_f, *self.arrivals,
                    self.wi, self.wf, self.wb, self.pwf, self.pwi)
            status = run_chunk(*args)
            if self._profile_att is not None:
                self.truth.warn(self._profile_att)
            if status == L.ST_NEED_ENTRY:
                self.truth.fill_prefill(int(ei[L.E_NEED_ROW]), int(ei[L.E_NEED_AT]))
            elif status == L.ST_NEED_PADDED:
                self.truth.fill_padded(int(ei[L.E_NEED_AT]))
                ei[L.E_HIGH_WATER] = self.truth.high_water
            elif status == L.ST_NEED_REQUESTS:
                st.reserve(st.ri.shape[1] + 1)
            elif status == L.ST_STALLED:
                raise RuntimeError("scheduler made no progress: nothing to prefill or decode")
            elif status == L.ST_BAD_POLICY:
                raise ValueError("the policy returned a negative k_max")
            else:
                return status

    @property
    def now(self) -> float:
        return float(self.ef[L.F_NOW])

    @property
    def iterations(self) -> int:
        return int(self.ei[L.E_COUNT])

    # ------------------------------------------------------------------ hand-overs
    def take_finished(self, table) -> None:
        """Hand the complete finish records (not those of an iteration in flight) to
        ``table`` (a ``RequestTable``) as typed columns, in the loop's order."""
        ei = self.ei
        end = int(ei[L.E_FIN_LAST])
        if end == 0:
            return
        tags = self.done_i[L.D_TAG, :end]
        kinds = self.done_i[L.D_STATUS, :end].tolist()
        arrival_s, _, prompts, outputs = self.arrivals
        table.add_columns(
            tags if self.ids is None else self.ids[tags],
            (self._categories(tags), [_STATUS[k != 0] for k in kinds],
             [REJECT_KINDS[k] for k in kinds]),
            (arrival_s[tags], self.done_f[L.DF_ADMITTED, :end],
             self.done_f[L.DF_FIRST, :end], self.done_f[L.DF_FINISH, :end]),
            (prompts[tags], outputs[tags],
             *self.done_i[L.D_GEN:L.D_PREEMPT + 1, :end]))
        rest = int(ei[L.E_FIN_N]) - end
        if rest:
            self.done_i[:, :rest] = self.done_i[:, end:end + rest]
            self.done_f[:, :rest] = self.done_f[:, end:end + rest]
        ei[L.E_FIN_N] = rest
        ei[L.E_FIN_LAST] = 0

    def _categories(self, positions: np.ndarray) -> list[str]:
        """The categories of the workload's requests at ``positions``."""
        requests = self.requests
        if isinstance(requests, RequestColumns):
            names = requests.category_names
            return [names[c] for c in requests.category_codes[positions].tolist()]
        return [requests[j].category for j in positions.tolist()]

    def drain(self, log) -> None:
        """Hand the buffered iteration records to ``log`` (an ``IterationLog``) as typed
        columns, the values ``add_prefill``/``add_decode`` would record row by row."""
        ei = self.ei
        count = int(ei[L.E_REC_N])
        if not count:
            return
        (kinds, batches, padded_batches, steps, drafted, verify_tokens, padded_tokens, emitted,
         accepted, queues, contexts, verify_rows, kvs) = self.rec_i[:, :count]
        prefill = kinds == L.K_PREFILL
        decode = ~prefill
        zero = np.zeros(count, dtype=np.int64)
        scalars = {
            "start_s": self.rec_f[0, :count], "duration_s": self.rec_f[1, :count],
            "kind": decode.astype(np.uint8), "batch_size": batches,
            "padded_batch": np.where(prefill, batches, padded_batches),
            "draft_steps": np.where(prefill, zero, steps),
            "drafted_tokens": np.where(prefill, zero, drafted),
            "verify_tokens": verify_tokens,
            "padded_tokens": np.where(prefill, verify_tokens, padded_tokens),
            "emitted_tokens": emitted, "accepted_tokens": np.where(prefill, zero, accepted),
            "queue_len": queues, "context_tokens": np.where(prefill, zero, contexts),
            "verify_rows": np.where(prefill, batches, verify_rows),
            "kv_tokens_read": np.where(prefill, zero, kvs)}
        drafting = decode & (steps > 0)  # rows that verified per-request lengths
        length_counts = np.where(drafting, batches, -1)
        step_counts = np.where(drafting, steps, 0)
        # each drafting row appended its lengths and its steps' shapes after the previous
        # row's (``decode_iteration``): the buffers' filled parts are the columns, in order
        lengths = self.rec_len[:int(ei[L.E_LEN_N])].astype(np.uint8)
        shapes = self.rec_steps[:, :int(ei[L.E_STEP_N])].copy()  # the buffer is reused
        log.add_columns(scalars, {
            "verify_lengths": (lengths, length_counts),
            "draft_rows": (shapes[0], step_counts),
            "draft_kv_tokens": (shapes[1], step_counts)})
        ei[L.E_REC_N] = 0
        ei[L.E_LEN_N] = 0
        ei[L.E_STEP_N] = 0


def _float_entry(cf: np.ndarray, ci: np.ndarray, entry: int) -> np.ndarray:
    """A 2-D view of float arena entry ``entry`` (``_arena``'s header)."""
    at, rows, cols = (int(v) for v in ci[3 * entry:3 * entry + 3])
    return cf[at:at + rows * cols].reshape(rows, cols)


def estimator_arrays_dummy():
    """Placeholder surfaces for a run whose policies price with the truth itself."""
    f, i = np.zeros(1), np.zeros(2, dtype=np.int64)
    ev = (f, 0.0, 0, i, f, np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((3, 1), dtype=np.int64),
          np.zeros((4, 1)), 0)
    ed = (f, f, f, i, i, f, np.zeros((2, 1)), 0)
    return ev, ed


def arrival_arrays(requests, keys: np.ndarray) -> tuple[tuple, np.ndarray | None]:
    """The loop's arrival arrays (``sim.compiled.loop``): arrival seconds, acceptance keys
    (``keys``: per request, in the workload's order), prompt and output tokens per request in
    the workload's order (a ``RequestColumns`` workload's own arrays, not copies), and the
    requests' ids for the tables (None: their positions)."""
    keys = _writeable(np.ascontiguousarray(keys[:len(requests)], dtype=np.float64))
    if isinstance(requests, RequestColumns):
        return (_writeable(requests.arrival_s), keys,
                _writeable(requests.prompt_tokens), _writeable(requests.output_tokens)), None
    ids = np.array([r.id for r in requests], dtype=np.int64)
    return (np.array([r.arrival_s for r in requests], dtype=np.float64), keys,
            np.array([r.prompt_tokens for r in requests], dtype=np.int64),
            np.array([r.output_tokens for r in requests], dtype=np.int64)), ids


def _writeable(a: np.ndarray) -> np.ndarray:
    """``a``, or a copy when it is read-only (numba compiles read-only arrays as another
    type: one signature for every run)."""
    return a if a.flags.writeable else a.copy()
