"""The production engines' adaptive rules (issue 14): vLLM V1 dynamic SD, TensorRT-LLM's
draft-length schedule / concurrency cap / acceptance-rate gate, SGLang's adaptive steps, and
the drafter upkeep (k = 0 sync, catch-up, tax). Hand-computed cases at the boundaries, the
vLLM lookup checked against a literal port of vLLM's dense-table builder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_fakes import MS, DEFAULT_PADDING, NO_PADDING, ScriptedExecutor, make_view

from sim.core.padding import GraphPadding
from sim.core.speculation import run_decode_iteration
from sim.errors import ConfigError
from sim.latency.iteration import DrafterUpkeep, drafter_upkeep_s
from sim.policies.base import BatchView
from sim.policies.engine_rules import (UPKEEP_SYNC, Z_CATCHUP, Z_FREE, Z_SYNC, catchup_into,
                                       upkeep_step)
from sim.policies.registry import make_policy
from sim.policies.sglang_adaptive import StepSlot
from sim.policies.trtllm import SpeculationGate, draft_len_for_batch
from sim.policies.vllm_dynamic import lookup, parse_schedule, schedule_array


# ------------------------------------------------------------------ vLLM V1 dynamic SD
@pytest.mark.parametrize("batch, k", [(1, 3), (64, 3), (65, 1), (128, 1), (129, 0), (512, 0),
                                      (513, 0), (1000, 0)])
def test_vllm_documented_schedule_at_its_boundaries(batch, k):
    """docs/features/speculative_decoding/dynamic_speculative_decoding.md: K=3,
    [[1, 64, 3], [65, 128, 1], [129, 512, 0]] (the policy's default); past 512 the last K."""
    pol = make_policy("vllm-v1")
    assert pol.k_for_batch(batch) == k
    assert pol.begin(make_view(batch)) == k


@pytest.mark.parametrize("batch, k", [(1, 3), (16, 3), (17, 3), (31, 3), (32, 2), (128, 2),
                                      (129, 2), (255, 2), (256, 0), (4096, 0)])
def test_vllm_gaps_inherit_the_previous_k(batch, k):
    """vLLM's own test (test_dynamic_sd_uses_batch_size_schedule): [(1, 16, 3), (32, 128, 2),
    (256, 2048, 0)] maps 17..31 to 3 and 129..255 to 2."""
    assert make_policy("vllm-v1:3,sched=1-16:3/32-128:2/256-2048:0").k_for_batch(batch) == k


def test_vllm_k_is_clamped_to_num_speculative_tokens():
    """The documented Eagle-3 example schedules K=5 at 1..16 with num_speculative_tokens 3."""
    pol = make_policy("vllm-v1:3,sched=1-16:5/17-32:4/33-64:3/65-128:1/129-512:0")
    assert [pol.k_for_batch(b) for b in (1, 16, 17, 33, 65, 129)] == [3, 3, 3, 3, 1, 0]
    assert pol.k_max == 3  # the KV lookahead is the startup maximum


def _vllm_dense(schedule, max_bs, num_spec):
    """A literal port of vLLM's build_dynamic_sd_schedule_lookup (dynamic/utils.py @ a6f6bb1)."""
    dense = [0] * (max_bs + 1)
    next_bs, last_k = 1, None
    for start, end, k in sorted(schedule):
        if start > next_bs and last_k is not None:
            for bs in range(next_bs, min(start, max_bs + 1)):
                dense[bs] = min(num_spec, last_k)
        for bs in range(max(start, next_bs), min(end, max_bs) + 1):
            dense[bs] = min(num_spec, k)
        next_bs = max(next_bs, end + 1)
        last_k = k
        if next_bs > max_bs:
            break
    for bs in range(next_bs, max_bs + 1):
        dense[bs] = min(num_spec, last_k)
    return dense


@st.composite
def _schedules(draw):
    n = draw(st.integers(1, 5))
    starts, pos = [1], 1
    ends = []
    for i in range(n):
        end = pos + draw(st.integers(0, 80))
        ends.append(end)
        if i < n - 1:
            pos = end + 1 + draw(st.integers(0, 40))  # a gap of 0..40 batch sizes
            starts.append(pos)
    ks = draw(st.lists(st.integers(0, 8), min_size=n, max_size=n))
    return list(zip(starts, ends, ks))


@settings(max_examples=200, deadline=None)
@given(schedule=_schedules(), num_spec=st.integers(1, 8))
def test_vllm_lookup_matches_vllms_dense_table(schedule, num_spec):
    text = "/".join(f"{a}-{b}:{k}" for a, b, k in schedule)
    parsed = parse_schedule(text)
    dense = _vllm_dense(schedule, 256, num_spec)
    ints = schedule_array(parsed)
    assert [lookup(ints, bs, num_spec) for bs in range(1, 257)] == dense[1:]


@pytest.mark.parametrize("sched", ["2-16:3", "1-16:3/10-20:2", "1-16:3/16-20:2", "0-4:3",
                                   "1-16:3/8-4:1", "1-16", "1-16:x", "1:3", "1-16:-1", "",
                                   "1-16:3/"])
def test_vllm_bad_schedules_are_refused(sched):
    with pytest.raises(ConfigError):
        make_policy(f"vllm-v1:3,sched={sched}" if sched else "vllm-v1:3,sched=")


# ------------------------------------------------------------------ TensorRT-LLM
@pytest.mark.parametrize("batch, length", [(1, 4), (4, 4), (5, 2), (8, 2), (9, 1), (32, 1),
                                           (33, 0), (256, 0)])
def test_trtllm_schedule_keys_are_upper_bounds(batch, length):
    """PR #10860 / get_draft_len_for_batch_size: {4: 4, 8: 2, 32: 1} -> 1-4: 4, 5-8: 2,
    9-32: 1, 33+: 0 (the default policy)."""
    pol = make_policy("trtllm")
    assert pol.k_for_batch(batch) == length
    assert pol.begin(make_view(batch)) == length


def test_trtllm_floor_and_cap():
    schedule = {4: 4, 8: 2, 32: 1}
    assert [draft_len_for_batch(schedule, b, 1) for b in (1, 8, 32, 33, 500)] == [4, 2, 1, 1, 1]
    cap = make_policy("trtllm:4,cap=32")  # {32: 4}: speculation on up to the cap, off above
    assert [cap.k_for_batch(b) for b in (1, 31, 32, 33)] == [4, 4, 4, 0]
    assert make_policy("trtllm:5,sched=none").k_for_batch(1000) == 5  # static without schedule
    assert make_policy("trtllm:4,floor=1").k_for_batch(33) == 1


@pytest.mark.parametrize("spec", [
    "trtllm:6",                         # the default schedule's smallest key must map to K
    "trtllm:4,sched=4:3/8:2",           # ... here 3 != 4
    "trtllm:4,sched=4:4/8:5",           # a length above max_draft_len
    "trtllm:4,sched=0:4",               # batch size key < 1
    "trtllm:4,sched=4:4/4:2",           # a key twice
    "trtllm:4,sched=4-4",               # malformed
    "trtllm:4,cap=8,sched=8:4",         # mutually exclusive
    "trtllm:4,cap=0",
    "trtllm:4,window=8",                # the gate needs both
    "trtllm:4,threshold=0.5",
    "trtllm:4,window=0,threshold=0.5",
    "trtllm:4,window=8,threshold=1.5",
    "trtllm:4,floor=5",
    "trtllm:4,zero=maybe",
    "trtllm:4,tax=-1",
])
def test_trtllm_bad_configs_are_refused(spec):
    with pytest.raises(ConfigError):
        make_policy(spec)


def test_gate_rolling_mean_turns_speculation_off_for_good():
    """window 3, threshold 0.5: rates 0.5, 0.25 (too few samples), 0.75 (mean 0.5, not below),
    0.0 (mean of the last three 0.333 < 0.5: disabled)."""
    gate = SpeculationGate(3, 0.5)
    assert [gate.record(r) for r in (0.5, 0.25, 0.75)] == [False, False, False]
    assert gate.mean == pytest.approx(0.5)
    assert gate.record(0.0) is True and gate.disabled and gate.disabled_after == 4
    assert gate.record(1.0) is False  # nothing re-enables it


class _DequeGate:
    """A literal port of ``SpeculationGate.record_acceptance_rate`` (a deque and a running
    sum), the reference for the ring-buffer rule ``gate_record``."""

    def __init__(self, window, threshold):
        from collections import deque
        self.window, self.threshold = window, threshold
        self.history, self.total, self.samples, self.disabled = deque(), 0.0, 0, False

    def record(self, rate):
        if self.disabled:
            return False
        self.history.append(rate)
        self.total += rate
        if len(self.history) > self.window:
            self.total -= self.history.popleft()
        self.samples += 1
        if self.samples >= self.window and self.total / len(self.history) < self.threshold:
            self.disabled = True
            return True
        return False


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 9), st.floats(0.0, 1.0),
       st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40))
def test_gate_ring_matches_the_deque_bit_for_bit(window, threshold, rates):
    ring, port = SpeculationGate(window, threshold), _DequeGate(window, threshold)
    for rate in rates:
        assert ring.record(rate) == port.record(rate)
        assert ring.disabled == port.disabled and ring.samples == port.samples
        assert ring.total == port.total  # the same sums in the same order


def test_upkeep_step_and_catchup_by_hand():
    """The shared upkeep rules: sync answers UPKEEP_SYNC at k = 0 and counts nothing;
    catch-up counts its k = 0 iterations and hands the count over (once) when drafting
    resumes; free does neither. Catch-up after 3 iterations off: generated 1 -> nothing
    missed, 3 -> 2, 9 -> 3 (capped at the iterations off), a request with no room skipped."""
    sync, catchup, free = (np.array([code, 0], dtype=np.int64)
                           for code in (Z_SYNC, Z_CATCHUP, Z_FREE))
    assert [upkeep_step(sync, k) for k in (0, 0, 2)] == [UPKEEP_SYNC, UPKEEP_SYNC, 0]
    assert [upkeep_step(catchup, k) for k in (0, 0, 0, 2, 2)] == [0, 0, 0, 3, 0]
    assert [upkeep_step(free, k) for k in (0, 0, 2)] == [0, 0, 0]
    news, cached = np.zeros(4, dtype=np.int64), np.zeros(4, dtype=np.int64)
    n = catchup_into(3, np.array([11, 23, 49, 60]), np.array([1, 3, 9, 9]),
                     np.array([4, 4, 4, 0]), 4, news, cached)
    assert n == 2 and news[:n].tolist() == [2, 3] and cached[:n].tolist() == [21, 46]


def test_trtllm_gate_through_the_protocol():
    """4 requests at batch 4 draft 4 tokens each; every iteration accepts 1 of 16 drafted
    (rate 1/16): after window=2 speculation-enabled iterations the gate closes, and from then
    on k = 0 at any batch size, with no drafter work charged."""
    pol = make_policy("trtllm:4,window=2,threshold=0.5")
    accept = np.zeros((4, 8), dtype=bool)
    accept[0, 0] = True
    for i in range(2):
        assert not pol.disabled
        out = run_decode_iteration(pol, make_view(4), ScriptedExecutor(np.full((4, 8), 0.5),
                                                                       accept))
        assert out.draft_steps == 4 and int(out.accepted.sum()) == 1
    assert pol.disabled and pol.gate.mean == pytest.approx(1 / 16)
    for batch in (1, 4, 100):
        assert pol.begin(make_view(batch)) == 0
        assert pol.drafter_upkeep() is None


def test_trtllm_gate_ignores_iterations_that_drafted_nothing():
    pol = make_policy("trtllm:4,window=1,threshold=0.5")
    pol.begin(make_view(40))  # k = 0 above the schedule
    pol.observe(np.zeros(40, dtype=np.int64), np.zeros(40, dtype=np.int64))
    assert pol.gate.samples == 0 and not pol.disabled


# ------------------------------------------------------------------ SGLang
def test_sglang_default_slots_start_where_sglang_starts_them():
    """DEFAULT_ADAPTIVE_CONFIG @ 015c872 with launch steps 3: a slot starts at 3 if it is a
    candidate, else at candidates[len // 2]; EMA = steps - 1."""
    pol = make_policy("sglang")
    start = {bs: (s.current, s.ema) for bs, s in pol.slots.items()}
    assert start == {1: (3, 2.0), 8: (3, 2.0), 32: (1, 0.0), 64: (0, -1.0)}
    assert pol.k_max == 7  # the largest candidate: the constant KV reservation
    assert {bs: (s.up, s.down) for bs, s in pol.slots.items()} == {
        1: (0.0, -0.25), 8: (0.0, 0.0), 32: (0.0, 0.0), 64: (0.0, 0.0)}
    seven = make_policy("sglang:7")
    assert {bs: s.current for bs, s in seven.slots.items()} == {1: 7, 8: 1, 32: 1, 64: 0}


@pytest.mark.parametrize("batch, padded_key, plain_key", [
    (1, 1, 1), (4, 1, 1), (5, 8, 1), (7, 8, 1), (8, 8, 8), (9, 8, 8), (16, 8, 8), (17, 32, 8),
    (31, 32, 8), (32, 32, 32), (33, 64, 32), (63, 64, 32), (64, 64, 64), (300, 64, 64)])
def test_sglang_routing_pads_to_a_graph_size_then_floors(batch, padded_key, plain_key):
    """batch_size_key_for_batch: pad up to the smallest graph size >= batch (sizes 1, 2, 4, 8,
    16, 32, 64, 96, ...), then the largest slot key <= it; pad=none floors the batch itself."""
    pol = make_policy("sglang")
    assert pol.route(batch, DEFAULT_PADDING) is pol.slots[padded_key]
    assert pol.route(batch, NO_PADDING) is pol.slots[plain_key]
    plain = make_policy("sglang:3,pad=none")
    assert plain.route(batch, DEFAULT_PADDING) is plain.slots[plain_key]
    assert pol.begin(make_view(batch, padding=DEFAULT_PADDING)) == pol.slots[padded_key].current


def _slot(initial, candidates, alpha=1.0, warmup=0, interval=1, up=0.0, down=-0.25):
    return StepSlot.start(tuple(candidates), initial, up, down, alpha, interval, warmup)


def test_sglang_slot_warmup_and_interval():
    """SGLang's test_update_respects_warmup_and_interval: alpha 1, warmup 1, interval 2."""
    s = _slot(3, (1, 3, 7), warmup=1, interval=2)
    assert s.update([0, 0]) is False and s.current == 3  # warmup
    assert s.update([0, 0]) is False and s.current == 3  # (2 - 1) % 2 != 0
    assert s.update([0, 0]) is True and s.current == 1   # ema 0 <= 1 - 0.5 - 0.25


def test_sglang_slot_thresholds_exactly():
    """SGLang's tests: a rise needs ema > step - 0.5 + up (2.5 does not leave 3); a drop needs
    ema <= prev - 0.5 + down (0.5 leaves 3 for 1 with down 0); one recompute may cross several
    candidates down (7 -> 1)."""
    s = _slot(3, (1, 3, 7), up=0.0)
    assert s.update([2, 3]) is False and s.ema == 2.5 and s.current == 3
    assert s.update([3, 3]) is True and s.current == 7
    d = _slot(3, (1, 3, 7), down=0.0, up=0.5)
    assert d.update([0, 1]) is True and d.current == 1
    assert _slot(7, (1, 3, 7)).update([0, 0]) is True
    ramp = _slot(1, (1, 3, 7))
    assert ramp.update([1, 1]) and ramp.current == 3
    assert ramp.update([3, 3]) and ramp.current == 7


def test_sglang_slot_at_zero_probes_up_without_updating_the_ema():
    """test_zero_step_mixed_slot_drops_probes_and_rechecks: [0, 3], alpha 1, down 0."""
    s = _slot(3, (0, 3), down=0.0)
    assert s.update([0, 0]) is True and s.current == 0 and s.ema == 0.0  # 0 <= 0.5 + 0
    assert s.update([3, 3]) is True and s.current == 3 and s.ema == 0.0  # at 0: no EMA, probe
    assert s.update([0, 0]) is True and s.current == 0


def test_sglang_policy_feeds_the_routed_slot_only():
    """Perfect acceptance at batch 1 drives slot 1 up past its 10 warmup batches; slot 32
    (batch 17..32 padded) never sees a batch and stays at 1."""
    pol = make_policy("sglang")
    ex = ScriptedExecutor(np.full((1, 8), 0.9), np.ones((1, 8), dtype=bool))
    ks = [run_decode_iteration(pol, make_view(1), ex).draft_steps for _ in range(30)]
    assert ks[:10] == [3] * 10 and ks[-1] == 7
    assert pol.slots[32].current == 1 and pol.slots[32].batches == 0
    assert pol.slots[1].batches == 30


@pytest.mark.parametrize("spec", ["sglang:3,slots=1:0/8:0", "sglang:3,slots=0:1+3",
                                  "sglang:3,slots=1:1+3/1:2", "sglang:3,slots=1:x",
                                  "sglang:3,slots=1-3", "sglang:3,ema=0", "sglang:3,interval=0",
                                  "sglang:3,warmup=-1", "sglang:3,pad=always", "sglang:65"])
def test_sglang_bad_configs_are_refused(spec):
    with pytest.raises(ConfigError):
        make_policy(spec)


# ------------------------------------------------------------------ drafter upkeep
def _view(generated, context, max_draft=8, padding=NO_PADDING) -> BatchView:
    generated = np.asarray(generated, dtype=np.int64)
    context = np.asarray(context, dtype=np.int64)
    base = make_view(len(generated), max_draft=max_draft, padding=padding)
    return BatchView(0.0, context, context - generated, generated, base.elapsed_s, 2.0, 0.04, 0,
                     base.max_draft_tokens, base.estimator, padding)


def test_sync_charges_the_proposer_and_one_draft_pass_at_k0():
    pol = make_policy("vllm-v1")
    view = _view([5, 9, 30], [105, 309, 230])
    assert pol.begin(view) == 3 and pol.drafter_upkeep() is None  # batch 3: K = 3, no upkeep
    big = _view([5] * 130, [100] * 130)
    assert pol.begin(big) == 0
    assert pol.drafter_upkeep() == DrafterUpkeep(True, 130, 13_000)


def test_catchup_fills_what_was_generated_while_off():
    """trtllm:4,sched=4:4: draft length 4 up to batch 4, 0 above. Two k = 0 iterations at
    batch 5, then drafting resumes at batch 4: request 0 (one token, from its prefill) misses
    nothing, request 1 (2 tokens) misses 1, request 2 (10 tokens) misses 2 (both off
    iterations), request 3 has no room to draft and is skipped."""
    pol = make_policy("trtllm:4,sched=4:4")
    off = _view([1] * 5, [50] * 5)
    for _ in range(2):
        assert pol.begin(off) == 0 and pol.drafter_upkeep() is None
    on = _view([1, 2, 10, 10], [50, 60, 70, 80], max_draft=[4, 4, 4, 0])
    assert pol.begin(on) == 4
    assert pol.drafter_upkeep() == DrafterUpkeep(catchup_tokens=(1, 2), catchup_cached=(59, 68))
    assert pol.begin(on) == 4 and pol.drafter_upkeep() is None  # caught up


def test_free_and_tax():
    pol = make_policy("vllm-v1:3,zero=free,tax=0.25")
    assert pol.begin(_view([5] * 200, [100] * 200)) == 0
    assert pol.drafter_upkeep() == DrafterUpkeep(tax=0.25)
    assert pol.begin(_view([5], [100])) == 3
    assert pol.drafter_upkeep() == DrafterUpkeep(tax=0.25)
    assert make_policy("vllm-v1:3,zero=free").drafter_upkeep() is None


class _Latency:
    """ms: draft step 1 + 0.01 * rows + 0.001 * kv; draft prefill 2 + 0.1 * tokens +
    0.01 * cached; drafting overhead 0.5."""

    def draft_step_s(self, batch_size, context_tokens):
        return (1.0 + 0.01 * batch_size + 0.001 * context_tokens) * MS

    def draft_prefill_s(self, prompt_tokens, cached_tokens=None):
        return (2.0 + 0.1 * sum(prompt_tokens) + 0.01 * sum(cached_tokens or [0])) * MS

    @property
    def draft_overhead_s(self):
        return 0.5 * MS


def test_upkeep_seconds_by_hand():
    lat = _Latency()
    pad = GraphPadding()
    # sync at batch 130 (padded to 160), 13000 KV positions: 0.5 + 1 + 1.6 + 13 = 16.1 ms
    assert drafter_upkeep_s(lat, pad, DrafterUpkeep(True, 130, 13_000)) == pytest.approx(16.1 * MS)
    # catch-up of 1 + 2 tokens after 59 + 68 cached: 2 + 0.3 + 1.27 = 3.57 ms
    up = DrafterUpkeep(catchup_tokens=(1, 2), catchup_cached=(59, 68))
    assert drafter_upkeep_s(lat, pad, up) == pytest.approx(3.57 * MS)
    # tax 0.1 of a 20 ms iteration plus that catch-up: 3.57 + 0.1 * 23.57
    taxed = DrafterUpkeep(catchup_tokens=(1, 2), catchup_cached=(59, 68), tax=0.1)
    assert drafter_upkeep_s(lat, pad, taxed, 20 * MS) == pytest.approx((3.57 + 2.357) * MS)
    assert drafter_upkeep_s(lat, pad, DrafterUpkeep()) == 0.0


@pytest.mark.parametrize("spec, name", [
    ("vllm-v1", "vllm-v1:3"), ("vllm-v1:3,sched=1-64:3/65-128:1/129-512:0", "vllm-v1:3"),
    ("vllm-v1:4,zero=sync,tax=0", "vllm-v1:4"), ("vllm-v1:2,zero=catchup", "vllm-v1:2,zero=catchup"),
    ("trtllm", "trtllm:4"), ("trtllm:4,zero=catchup,floor=0", "trtllm:4"),
    ("trtllm:4,threshold=0.50,window=8", "trtllm:4,window=8,threshold=0.5"),
    ("trtllm:2,sched=8:2/1:2/64:1", "trtllm:2,sched=1:2/8:2/64:1"),
    ("sglang", "sglang:3"), ("sglang:3,slots=1:7+3+1+5/8:0+1+3/32:0+1/64:0", "sglang:3"),
    ("sglang:3,ema=0.2,interval=5,warmup=10,pad=graph,zero=sync", "sglang:3"),
    ("sglang:7,slots=1:1+7/16:0+1", "sglang:7,slots=1:1+7/16:0+1"),
])
def test_canonical_names_rebuild_the_policy(spec, name):
    pol = make_policy(spec)
    assert pol.name == name
    assert make_policy(pol.name).name == name


def test_vllm_lookup_compiled_is_the_same_rule():
    """The compiled loop calls ``lookup`` compiled: the same K at every batch size, gaps and
    the tail past the last range included."""
    from sim.compiled.jit import compiled
    ints = schedule_array(parse_schedule("1-4:4/9-16:2/40-64:0/65-80:3"))
    looked_up = compiled(lookup)
    for k_max in (1, 3, 8):
        assert [int(looked_up(ints, bs, k_max)) for bs in range(1, 200)] == \
            [lookup(ints, bs, k_max) for bs in range(1, 200)]
