"""sim.compiled.run: the compiled loop's arrays."""

from __future__ import annotations


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
