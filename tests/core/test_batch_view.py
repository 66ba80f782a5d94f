"""The batch view of a decode iteration (``build_batch_view``, its gather ``batch_view_into``)
and the scheduler's batch context sum (``Scheduler.context_tokens``), by hand."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core.scheduler import Scheduler, SchedulerConfig
from sim.core.speculation import build_batch_view
from sim.policies.base import BatchView


def _scheduler(prompt, generated, output, arrival) -> Scheduler:
    """A scheduler whose first slots hold these requests (state set directly)."""
    sched = Scheduler(SchedulerConfig(kv_blocks=1000, max_num_seqs=8))
    n = len(prompt)
    sched.prompt[:n] = prompt
    sched.generated[:n] = generated
    sched.output[:n] = output
    sched.arrival[:n] = arrival
    return sched


def _view(sched, slots, now_s=10.0, k_max=4) -> BatchView:
    return build_batch_view(sched, np.asarray(slots, dtype=np.int64), now_s, k_max, 2.0, 0.04,
                            None, None)


def test_view_of_three_requests_by_hand():
    sched = _scheduler([100, 7, 50], [3, 1, 20], [10, 2, 30], [1.5, 4.0, 9.25])
    view = _view(sched, [2, 0, 1])  # admission order, not slot order
    assert view.prompt_tokens.tolist() == [50, 100, 7]
    assert view.generated_tokens.tolist() == [20, 3, 1]
    assert view.context_tokens.tolist() == [70, 103, 8]
    assert view.elapsed_s.tolist() == [0.75, 8.5, 6.0]
    # min(output - generated - 1, k_max = 4): min(9, 4), min(6, 4), min(0, 4)
    assert view.max_draft_tokens.tolist() == [4, 4, 0]
    assert view.total_context_tokens == 181
    assert view.least_max_draft_tokens == 0
    assert view.batch_size == 3 and view.now_s == 10.0 and view.queue_len == 0


def test_empty_batch():
    view = _view(_scheduler([5], [1], [9], [0.0]), [])
    assert view.batch_size == 0
    assert view.total_context_tokens == 0 and view.least_max_draft_tokens == 0


def test_context_tokens_of_a_batch_by_hand():
    sched = _scheduler([100, 7, 50], [3, 1, 20], [10, 2, 30], [0.0, 0.0, 0.0])
    assert sched.context_tokens(np.array([0, 2], dtype=np.int64)) == 173
    assert sched.context_tokens(np.array([], dtype=np.int64)) == 0
    assert type(sched.context_tokens(np.array([1], dtype=np.int64))) is int


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4000), st.integers(1, 300), st.integers(0, 400),
                          st.floats(0.0, 100.0)), min_size=1, max_size=8),
       st.integers(0, 8), st.randoms(use_true_random=False))
def test_view_matches_the_numpy_formulas(rows, k_max, random):
    prompt = [r[0] for r in rows]
    generated = [r[1] for r in rows]
    output = [r[1] + r[2] for r in rows]
    arrival = [r[3] for r in rows]
    sched = _scheduler(prompt, generated, output, arrival)
    slots = list(range(len(rows)))
    random.shuffle(slots)
    slots = np.asarray(slots, dtype=np.int64)
    view = _view(sched, slots, now_s=123.0, k_max=k_max)
    p, g = sched.prompt[slots], sched.generated[slots]
    limits = np.minimum(sched.output[slots] - g - 1, k_max)
    assert np.array_equal(view.context_tokens, p + g)
    assert np.array_equal(view.elapsed_s, 123.0 - sched.arrival[slots])
    assert np.array_equal(view.max_draft_tokens, limits)
    # the values the gather sets equal the computed-once definitions
    assert view.total_context_tokens == int(sum((p + g).tolist()))
    assert view.least_max_draft_tokens == int(min(limits.tolist()))
    assert view.total_context_tokens == sched.context_tokens(slots)


def test_the_one_gather_of_both_paths_by_hand():
    """``batch_limits_into`` (called by the view's gather and by the compiled loop's decode
    iteration, interpreted here): contexts, limits min(output - generated - 1, k_max), and
    the sum, least and largest limit; zeros for an empty batch."""
    from sim.compiled.jit import compiled
    from sim.core.speculation import batch_limits_into

    sched = _scheduler([100, 7, 50], [3, 1, 20], [10, 2, 30], [0.0, 0.0, 0.0])
    slots = np.array([2, 0, 1], dtype=np.int64)
    for gather in (batch_limits_into, compiled(batch_limits_into)):
        context = np.zeros(3, dtype=np.int64)
        limits = np.zeros(3, dtype=np.int64)
        assert gather(sched.state.si, slots, 3, 8, context, limits) == (181, 0, 8)
        assert context.tolist() == [70, 103, 8]
        assert limits.tolist() == [8, 6, 0]  # min(9, 8), min(6, 8), min(0, 8)
        assert gather(sched.state.si, slots, 0, 8, context, limits) == (0, 0, 0)
