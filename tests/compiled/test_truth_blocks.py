"""The truth's token tables fill a block of ``BLOCK`` token counts per missing entry
(``sim.compiled.tables.TruthTables``): the same bits as the scalar calls, only the blocks
asked for, no warnings; and runs whose prefills span many blocks and the measured rows'
end stay byte-identical to the protocol path, warnings included."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from sim.compiled.tables import BLOCK, D_DENSE, D_LOGITS, T_DENSE, T_LOGITS, TruthTables
from sim.core.padding import GraphPadding
from sim.latency.presets import roofline_for
from sim.run import SimConfig, simulate
from tests.compiled.test_compiled_equivalence import CONV, _assert_same, _slice


def _tables(draft="default") -> TruthTables:
    return TruthTables(roofline_for("vicuna-7b", draft, "A100-80G", 1), GraphPadding(), 300)


def test_a_miss_fills_its_aligned_block_with_the_calls_bits():
    tables = _tables()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tables.fill(D_DENSE, 1500)
        tables.fill(T_LOGITS, 3)
    table = tables.table
    assert table.shape[1] >= 2 * BLOCK
    filled = ~np.isnan(table[D_DENSE])
    assert filled[BLOCK:2 * BLOCK].all() and not filled[:BLOCK].any()
    assert not filled[2 * BLOCK:].any()
    expected = [tables.draft.dense_s(n) for n in range(BLOCK, 2 * BLOCK)]
    assert table[D_DENSE, BLOCK:2 * BLOCK].tobytes() == np.array(expected).tobytes()
    expected = [tables.target.logits_s(n) for n in range(BLOCK)]  # 0 included: 0.0
    assert table[T_LOGITS, :BLOCK].tobytes() == np.array(expected).tobytes()
    assert table[T_LOGITS, 0] == 0.0
    assert np.isnan(table[T_DENSE]).all() and np.isnan(table[D_LOGITS]).all()


def test_a_prefill_fills_the_blocks_of_its_entries_only():
    tables = _tables()
    tables.fill_prefill(3, 5000)
    table = tables.table
    for row, block in ((T_DENSE, 5000 // BLOCK), (D_DENSE, 5000 // BLOCK), (T_LOGITS, 0),
                       (D_LOGITS, 0)):
        filled = ~np.isnan(table[row])
        assert filled[block * BLOCK:(block + 1) * BLOCK].all()
        assert filled.sum() == BLOCK
    # beyond the measured rows (4096): the closed form scaled, as the call gives it
    assert table[T_DENSE, 5000] == tables.target.dense_s(5000)


def test_without_a_draft_model_the_draft_rows_are_zero():
    tables = _tables(draft=None)
    tables.fill(D_DENSE, 10)
    assert (tables.table[D_DENSE, :BLOCK] == 0.0).all()


def test_padded_sizes_fill_their_blocks():
    tables = _tables()
    tables.fill_padded(700)
    assert tables.high_water == 700
    assert not np.isnan(tables.table[:, :BLOCK]).any()


def _warned_runs(workload, policy, config):
    out = []
    for path_config in (config, replace(config, engine_path="protocol")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = simulate(workload, policy, path_config, seed=4)
        out.append((result, [(type(w.message), str(w.message)) for w in caught]))
    return out


@pytest.mark.parametrize("policy", ["nospec", "adaspec:8"])
def test_prefills_over_many_blocks_match_the_protocol_path_and_its_warnings(policy):
    """Bursty arrivals and a 16,384-token budget: prefills of up to several thousand tokens,
    past the measured rows' 4,096 (the closed form scaled) and over several blocks."""
    workload = _slice(CONV, 400, scale=60.0)
    config = SimConfig(max_num_batched_tokens=16384)
    (compiled, c_warned), (protocol, p_warned) = _warned_runs(workload, policy, config)
    prefill = compiled.iterations[compiled.iterations["kind"] == "prefill"]
    tokens = prefill["verify_tokens"]
    assert tokens.max() > 4096 and len(set(tokens // BLOCK)) >= 4
    assert c_warned == p_warned
    _assert_same(compiled, protocol)
