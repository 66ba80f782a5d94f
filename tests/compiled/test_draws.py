"""sim.compiled.draws: the loop's acceptance draws read the run generator's stream where the
protocol path reads it, and leave the generator where the protocol path leaves it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sim.compiled import pcg64
from sim.compiled.draws import stream_array, sync_generator
from sim.compiled.layout import G_HI, G_LO, G_ROW_ADD_HI, G_ROW_ADD_LO, G_ROW_MUL_HI, G_ROW_MUL_LO

TRACE = Path(__file__).resolve().parents[2] / "traces" / "azure2023" / \
    "AzureLLMInferenceTrace_conv.csv"


def test_the_stream_starts_where_the_generator_is_and_rows_jump_k_max():
    rng = np.random.default_rng(11)
    rng.random(5)
    gen = stream_array(rng, 4, 3)
    state = rng.bit_generator.state["state"]
    assert pcg64.join(gen[G_HI], gen[G_LO]) == state["state"]
    mul = pcg64.join(gen[G_ROW_MUL_HI], gen[G_ROW_MUL_LO])
    add = pcg64.join(gen[G_ROW_ADD_HI], gen[G_ROW_ADD_LO])
    assert (mul, add) == pcg64.jump(4, state["inc"])
    assert gen.size == 12 + 4 * 3  # two int64 per row, 2 n rows


def test_sync_moves_the_generator_to_the_streams_position_and_keeps_the_rest():
    rng = np.random.default_rng(3)
    rng.integers(0, 10, dtype=np.uint32)  # numpy buffers half of a 64-bit draw
    buffered = rng.bit_generator.state["has_uint32"], rng.bit_generator.state["uinteger"]
    ahead = np.random.default_rng(3)
    ahead.integers(0, 10, dtype=np.uint32)
    ahead.random(17)
    gen = stream_array(rng, 2, 2)
    gen[G_HI], gen[G_LO] = pcg64.split(ahead.bit_generator.state["state"]["state"])
    sync_generator(gen, rng)
    assert rng.bit_generator.state == ahead.bit_generator.state
    assert (rng.bit_generator.state["has_uint32"], rng.bit_generator.state["uinteger"]) == \
        buffered
    assert rng.random() == ahead.random()


def test_a_generator_other_than_pcg64_is_refused():
    with pytest.raises(ValueError, match="PCG64 stream.*Philox.*engine_path='protocol'"):
        stream_array(np.random.Generator(np.random.Philox(1)), 4, 2)


@pytest.mark.parametrize("policy, acceptance", [("adaspec:8", "spec-bench-vicuna-68m"),
                                                ("static:4", "fixed:0.6"),
                                                ("oracle:5", "spec-bench-vicuna-68m")])
def test_a_compiled_run_leaves_the_generator_where_the_protocol_path_does(monkeypatch, policy,
                                                                         acceptance):
    """The same requests, and the run's generator at the same state afterwards: the loop took
    exactly the uniforms the protocol path drew (two blocks an iteration that drafts, one
    with fixed acceptance, every position for the oracle)."""
    from sim.run import SimConfig, simulate
    from sim.workload.load import load_trace
    from sim.workload.request import Workload

    made = []

    def default_rng(seed=None):
        made.append(np.random.Generator(np.random.PCG64(seed)))
        return made[-1]

    monkeypatch.setattr(np.random, "default_rng", default_rng)
    workload = load_trace(TRACE)
    workload = Workload(workload.requests[:50], workload.source, workload.format)
    config = replace(SimConfig(), max_num_seqs=6, acceptance=acceptance)
    compiled = simulate(workload, policy, config, seed=5)
    protocol = simulate(workload, policy, replace(config, engine_path="protocol"), seed=5)
    assert compiled.summary["iteration_path"] == "compiled"
    assert protocol.summary["iteration_path"] == "protocol"
    assert compiled.requests.equals(protocol.requests)
    states = [rng.bit_generator.state for rng in made]
    assert states[0] == states[1]
    assert states[0] != np.random.Generator(np.random.PCG64(5)).bit_generator.state
