"""sim.compiled.uniforms: the loop's pool is the run generator's stream, whoever draws it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.compiled.uniforms import UniformBlocks


def _helper_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("adaspec-uniforms")}


@settings(max_examples=40, deadline=None)
@given(block=st.integers(1, 50), headroom=st.integers(0, 20), seed=st.integers(0, 2**32),
       uses=st.lists(st.integers(0, 60), min_size=1, max_size=8),
       growth=st.integers(0, 4))
def test_the_pools_hold_the_generators_stream_in_order(block, headroom, seed, uses, growth):
    """Whatever the loop used of each pool, the unused rest followed by the new uniforms is
    the generator's stream drawn in one go, block after block; blocks double up to the
    largest (``growth`` doublings)."""
    largest = block << growth
    stream = np.random.default_rng(seed).random(largest * (len(uses) + 2))
    blocks = UniformBlocks(np.random.default_rng(seed), block, headroom, largest)
    pool, taken, size = np.zeros(0), 0, block
    try:
        for use in uses:
            rest = pool[min(use, pool.size):]
            if rest.size > headroom:
                rest = rest[rest.size - headroom:]  # the loop asks before it has more left
            taken += pool.size - rest.size
            pool = blocks.refill(rest)
            np.testing.assert_array_equal(pool, stream[taken:taken + pool.size])
            assert pool.size == rest.size + size
            size = min(2 * size, largest)
    finally:
        blocks.close()


def test_blocks_double_up_to_the_largest():
    blocks = UniformBlocks(np.random.default_rng(3), 3, 0, 10)
    try:
        assert [blocks.refill(np.zeros(0)).size for _ in range(5)] == [3, 6, 10, 10, 10]
    finally:
        blocks.close()


def test_a_block_is_drawn_ahead_and_close_stops_the_thread():
    rng = np.random.default_rng(7)
    expected = np.random.default_rng(7).random(8)
    before = _helper_threads()  # of other runs' objects not yet collected, if any
    blocks = UniformBlocks(rng, 4, 2)
    assert _helper_threads() == before  # no thread before the first refill
    first = blocks.refill(np.zeros(0))
    np.testing.assert_array_equal(first, expected[:4])
    second = blocks.refill(first[3:])  # one left over, then the block drawn ahead
    np.testing.assert_array_equal(second, expected[3:8])
    assert _helper_threads() - before
    blocks.close()
    blocks.close()  # twice is fine
    assert _helper_threads() == before


def test_more_leftovers_than_the_headroom_and_bad_sizes_are_refused():
    blocks = UniformBlocks(np.random.default_rng(0), 4, 2)
    with pytest.raises(ValueError, match="exceed the headroom 2"):
        blocks.refill(np.zeros(3))
    blocks.close()
    with pytest.raises(ValueError, match="block must be >= 1"):
        UniformBlocks(np.random.default_rng(0), 0, 2)


def test_a_gil_free_entry_point_is_compiled_without_the_gil():
    """``@gil_free``: the compiled dispatcher runs with ``nogil`` (so the next block can be
    drawn meanwhile); a plain jitable keeps the GIL."""
    from sim.compiled import jit
    from sim.compiled.loop import run_chunk

    def plain(a):
        return a + 1

    jit.jitable(plain)
    assert jit.compiled(run_chunk).targetoptions.get("nogil") is True
    assert not jit.compiled(plain).targetoptions.get("nogil", False)


def test_a_compiled_run_leaves_no_helper_thread_and_refills_its_pool():
    """A run that drafts draws its pool through ``UniformBlocks`` (here many refills: a small
    block) and stops the helper thread when it is done."""
    from dataclasses import replace
    from pathlib import Path

    from sim.compiled import run as compiled_run
    from sim.run import SimConfig, simulate
    from sim.workload.load import load_trace
    from sim.workload.request import Workload

    trace = Path(__file__).resolve().parents[2] / "traces" / "azure2023" / \
        "AzureLLMInferenceTrace_conv.csv"
    workload = load_trace(trace)
    workload = Workload(workload.requests[:60], workload.source, workload.format)
    before = _helper_threads()
    default = simulate(workload, "adaspec:8", SimConfig(), seed=5)
    saved = compiled_run.POOL
    compiled_run.POOL = 1  # the block is then 4 n k_max: refilled many times
    try:
        small = simulate(workload, "adaspec:8", replace(SimConfig(), max_num_seqs=4), seed=5)
        protocol = simulate(workload, "adaspec:8",
                            replace(SimConfig(), max_num_seqs=4, engine_path="protocol"),
                            seed=5)
    finally:
        compiled_run.POOL = saved
    assert _helper_threads() == before
    assert default.summary["iteration_path"] == small.summary["iteration_path"] == "compiled"
    assert small.requests.equals(protocol.requests)


def test_the_decode_scratch_grows_with_n_k_not_n_squared():
    """``scratch_arrays``: at the widest engine (16,384 sequences) the bool scratch is 3 n k
    bytes (it was 3 n max(k, n): 805 MB), and doubling n doubles every scratch array."""
    from sim.compiled.run import scratch_arrays
    from sim.core.scheduler_state import MAX_NUM_SEQS

    wi, wf, wb = scratch_arrays(MAX_NUM_SEQS, 8)
    assert wb.nbytes == 3 * MAX_NUM_SEQS * 8
    assert wf.shape == (2, MAX_NUM_SEQS, 8)
    small = [a.nbytes for a in scratch_arrays(1024, 8)]
    large = [a.nbytes for a in scratch_arrays(2048, 8)]
    assert [2 * s for s in small] == large
    _, _, none = scratch_arrays(4, 0)  # no drafting: still a usable (empty-k) layout
    assert none.shape == (3, 4)
