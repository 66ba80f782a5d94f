"""The compiled iteration path against the protocol path: every compiled policy and option
on small workloads, both engines, with preemption, chunked prefill, rejections, eager mode,
the exact estimator and both acceptance models: every output table and the summary must be
identical (issue 11), and the summary must say which path ran."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sim.drafters.checks import policy_fits_method
from sim.drafters.presets import METHODS
from sim.policies.registry import make_policy
from sim.run import SimConfig, simulate
from sim.workload.load import load_trace
from sim.workload.request import Workload

ROOT = Path(__file__).resolve().parents[2]
CONV = ROOT / "traces" / "azure2023" / "AzureLLMInferenceTrace_conv.csv"
MOONCAKE = ROOT / "traces" / "adaspec" / "mooncake.csv"

COMPILED_POLICIES = (
    "nospec", "static:1", "static:5", "disable-by-batch:4,8",
    "adaspec:8", "adaspec:4", "adaspec:8,artifact", "adaspec:8,slo=strict",
    "adaspec:8,slo=strict,lost=plain", "adaspec:6,slo=tokens", "adaspec:8,cbar=ema",
    "adaspec:8,trim=request", "adaspec:6,slo=tokens,trim=request", "adaspec:8,trim=off",
    "adaspec:8,recover=probe,recover_after=8", "adaspec:8,recover=reset", "adaspec-nv:8",
    "smartspec:8", "smartspec:4", "smartspec:8,artifact", "smartspec:8,rate=ema",
    "smartspec:8,recover=none", "threshold:0.6,8", "threshold:0.8,3", "oracle:8", "oracle:3",
    "vllm-v1", "vllm-v1:4,sched=1-3:4/4-6:2/7-512:0", "vllm-v1:5,sched=1-2:5/6-9:0",
    "vllm-v1:4,sched=1-3:4/4-6:2/7-512:0,zero=free", "vllm-v1:4,sched=1-5:3/6-512:0,tax=0.19",
    "vllm-v1:3,sched=1-4:3/5-512:0,zero=free,tax=0.1",
    "vllm-v1:3,sched=1-6:3/7-512:0,zero=catchup",
    "trtllm", "trtllm:4,zero=sync", "trtllm:4,window=4,threshold=0.6",
    "trtllm:4,cap=8,zero=free,tax=0.1", "trtllm:3,sched=2:3/6:1,floor=1,zero=sync",
    "sglang", "sglang:3,zero=catchup,tax=0.1",
    "sglang:1,slots=1:1+3+5/8:0+1+3,warmup=2,interval=1,ema=0.5,pad=none",
)


def _slice(path: Path, count: int, scale: float = 1.0) -> Workload:
    """The first ``count`` requests, arrivals compressed ``scale`` times (more batching)."""
    workload = load_trace(path)
    requests = tuple(replace(r, arrival_s=r.arrival_s / scale)
                     for r in workload.requests[:count])
    return Workload(requests, workload.source, workload.format)


@pytest.fixture(scope="module")
def conv() -> Workload:
    return _slice(CONV, 160, scale=6.0)


def _both(workload: Workload, policy: str, config: SimConfig, acceptance=None, seed: int = 3):
    compiled = simulate(workload, policy, config, seed=seed, acceptance=acceptance)
    protocol = simulate(workload, policy, replace(config, engine_path="protocol"), seed=seed,
                        acceptance=acceptance)
    return compiled, protocol


def _assert_same(compiled, protocol) -> None:
    assert compiled.summary.pop("iteration_path") == "compiled", \
        compiled.summary.get("iteration_path_reason")
    assert protocol.summary.pop("iteration_path") == "protocol"
    assert protocol.summary.pop("iteration_path_reason").startswith("asked for")
    pd.testing.assert_frame_equal(compiled.requests, protocol.requests, check_exact=True)
    pd.testing.assert_frame_equal(compiled.iterations, protocol.iterations, check_exact=True)
    assert compiled.summary == protocol.summary
    # the CSV bytes too (what adaspec-sim writes)
    assert compiled.iterations.to_csv(index=False) == protocol.iterations.to_csv(index=False)
    assert compiled.requests.to_csv(index=False) == protocol.requests.to_csv(index=False)


@pytest.mark.parametrize("engine", ["single-pass", "vllm-0.6"])
@pytest.mark.parametrize("policy", COMPILED_POLICIES)
def test_compiled_path_gives_the_protocol_paths_tables(conv, policy, engine):
    _assert_same(*_both(conv, policy, SimConfig(engine=engine)))


@pytest.mark.parametrize("policy", ["nospec", "static:3", "adaspec:8", "smartspec:8", "trtllm:4,sched=4:4",
                                    "sglang:3,slots=1:1+3/4:0,zero=catchup"])
def test_preemption_and_a_small_pool(conv, policy):
    """A pool of 300 blocks: requests are preempted and readmitted (the engine rules' forms
    here turn drafting off above batch 4 and catch up when it resumes, some requests
    preempted and re-prefilled in between)."""
    compiled, protocol = _both(conv, policy, SimConfig(kv_blocks=300, max_num_seqs=24))
    assert compiled.summary["preemptions"] > 0
    _assert_same(compiled, protocol)


@pytest.mark.parametrize("policy", ["nospec", "static:4", "adaspec:8", "smartspec:8", "trtllm:4,sched=4:4",
                                    "sglang:3,slots=1:1+3/4:0,zero=catchup"])
def test_chunked_prefill_and_long_prompts(policy):
    """Mooncake's long prompts, chunked at 2048 tokens, a few above the context (rejected)."""
    workload = _slice(MOONCAKE, 40, scale=4.0)
    config = SimConfig(chunked_prefill=True, max_num_batched_tokens=2048)
    _assert_same(*_both(workload, policy, config))


@pytest.mark.parametrize("policy", ["static:5", "adaspec:8", "smartspec:8", "oracle:8", "trtllm",
                                    "sglang"])
def test_eager_mode_and_the_exact_estimator(conv, policy):
    config = SimConfig(cuda_graphs=False, estimator="exact")
    _assert_same(*_both(conv, policy, config))


@pytest.mark.parametrize("engine", ["single-pass", "vllm-0.6"])
@pytest.mark.parametrize("policy", ["adaspec:8", "smartspec:8", "oracle:8"])
def test_estimator_above_the_largest_graph_size(conv, policy, engine):
    """Graphs captured up to 64 only: most passes run eager and the policies read the
    estimator's token knots above the largest size (every 32 tokens) on both paths."""
    _assert_same(*_both(conv, policy, SimConfig(graph_max_size=64, engine=engine)))


def test_compiled_estimator_reads_the_python_surface():
    """``estimate_verify`` over ``estimator_arrays`` (compiled) gives the estimator's bits,
    below, between and beyond the token knots above the largest size."""
    from sim.compiled.jit import compiled
    from sim.compiled.tables import estimate_verify, estimator_arrays
    from sim.core.padding import GraphPadding
    from sim.latency.estimator import TableEstimator
    from sim.latency.presets import roofline_for
    truth = roofline_for("vicuna-7b", gpu="a100")
    for tail_max in (1100, 32768):
        est = TableEstimator.from_model(truth, GraphPadding(), tail_max_tokens=tail_max)
        ev, _ = estimator_arrays(est)
        read = compiled(estimate_verify)
        dummy = np.zeros((1, 1))
        for batch, tokens, kv in ((5, 8, 3500), (64, 1024, 64 * 1300), (120, 1025, 120 * 128),
                                  (120, 1080, 0), (200, 1100, 200 * 512), (300, 1200, 9000),
                                  (2048, 18432, 2048 * 128), (1, 40000, 1)):
            assert read(0, ev, dummy, dummy, dummy, np.zeros(6), batch, tokens, kv) == \
                est.target_verify_s(batch, tokens, kv)


@pytest.mark.parametrize("policy", ["static:5", "adaspec:8", "smartspec:4"])
def test_fixed_acceptance(conv, policy):
    from sim.acceptance.presets import make_acceptance
    _assert_same(*_both(conv, policy, SimConfig(), acceptance=make_acceptance("fixed:0.58")))


def test_a_users_policy_takes_the_protocol_path_and_says_why(conv):
    from fakes import FixedK
    result = simulate(conv, FixedK(3), SimConfig(), seed=1)
    assert result.summary["iteration_path"] == "protocol"
    assert "FixedK" in result.summary["iteration_path_reason"]


def test_the_engine_rules_state_moves_on_the_compiled_path(conv, monkeypatch):
    """What the equivalence tests above compare is exercised on the compiled path: TensorRT-LLM's
    gate closes, SGLang's slots change steps, and catch-up resumes drafting with a draft
    prefill whose entries the truth's table lacked, so the loop returned for them with the
    decode batch prepared and ran it afterwards (``E_PREPARED``)."""
    import sys
    from sim.compiled import layout as L
    from sim.compiled.tables import TruthTables
    from sim.policies.registry import make_policy
    waits = []
    fill = TruthTables.fill_prefill

    def spy(self, chunks, tokens):
        if sys._getframe(1).f_locals["ei"][L.E_PREPARED]:
            waits.append((chunks, tokens))
        return fill(self, chunks, tokens)

    monkeypatch.setattr(TruthTables, "fill_prefill", spy)
    gated = make_policy("trtllm:4,window=4,threshold=0.6")
    assert simulate(conv, gated, SimConfig(), seed=3).summary["iteration_path"] == "compiled"
    assert gated.disabled and gated.gate.disabled_after == 4
    moving = make_policy("sglang:1,slots=1:1+3+5/8:0+1+3,warmup=2,interval=1,ema=0.5,pad=none")
    simulate(conv, moving, SimConfig(), seed=3)
    assert moving.slots[8].current != 1 and moving.slots[8].batches > 100
    assert not waits
    result = simulate(conv, "trtllm", SimConfig(), seed=3)
    assert result.summary["iteration_path"] == "compiled" and waits


def test_vllm_v1s_compiled_runs_charge_the_drafter_at_k_0(conv):
    """The schedule turns drafting off above batch 6 and on below; at k = 0 the compiled loop
    charges zero=sync's draft pass (the first such iteration takes longer than zero=free's;
    the runs part there), and the tax lengthens every decode iteration (the same tables as
    the protocol path: above)."""
    runs = {zero: simulate(conv, f"vllm-v1:4,sched=1-6:4/7-512:0{zero}", SimConfig(), seed=3)
            for zero in ("", ",zero=free", ",tax=0.5")}
    assert {r.summary["iteration_path"] for r in runs.values()} == {"compiled"}
    frames = {zero: r.iterations for zero, r in runs.items()}
    sync, free, taxed = frames[""], frames[",zero=free"], frames[",tax=0.5"]
    decode = sync["kind"] == "decode"
    plain = decode & (sync["draft_steps"] == 0) & (sync["batch_size"] > 6)
    assert plain.sum() > 10 and (decode & (sync["draft_steps"] > 0)).sum() > 10
    first = plain.idxmax()  # the two runs agree up to their first k = 0 iteration
    pd.testing.assert_frame_equal(sync[:first], free[:first], check_exact=True)
    pd.testing.assert_frame_equal(sync.drop(columns="duration_s")[first:first + 1],
                                  free.drop(columns="duration_s")[first:first + 1])
    assert sync["duration_s"][first] > free["duration_s"][first]
    assert taxed["duration_s"][decode].iloc[0] == pytest.approx(
        1.5 * sync["duration_s"][decode].iloc[0])


def test_a_subclass_of_a_built_in_policy_takes_the_protocol_path(conv):
    """A subclass may override a rule, so only the built-in classes themselves compile."""
    from sim.policies.static import StaticPolicy

    class Mine(StaticPolicy):
        def begin(self, view):
            return 1 if view.batch_size > 4 else self.k_max

    result = simulate(conv, Mine(3), SimConfig(), seed=1)
    assert result.summary["iteration_path"] == "protocol"
    assert "Mine" in result.summary["iteration_path_reason"]


def test_the_cli_records_the_path(tmp_path):
    import json

    from sim.cli import main
    out = tmp_path / "run"
    assert main(["--trace", str(CONV), "--limit", "30", "--policy", "adaspec:8", "--quiet",
                 "--out", str(out), "--engine-path", "protocol"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["simulated"]["engine_path"] == "protocol"
    assert summary["policies"]["adaspec:8"]["iteration_path"] == "protocol"


@pytest.mark.parametrize("policy", ["adaspec:8", "smartspec:8", "static:4"])
def test_a_sliced_or_merged_workload_keeps_its_ids_as_labels(conv, policy):
    """A workload's request ids are labels: a slice of a trace (ids from 100) and two traces'
    requests merged (ids repeated) run on both paths (they raised IndexError or, with
    repeated ids, drew another request's acceptance), and the ids change nothing but the
    ``request_id`` column."""
    plain = Workload(conv.requests[:40], conv.source, conv.format)
    offset = Workload(tuple(replace(r, id=r.id + 100) for r in plain.requests),
                      conv.source, conv.format)
    repeated = Workload(tuple(replace(r, id=i % 7) for i, r in enumerate(plain.requests)),
                        conv.source, conv.format)
    base, _ = _both(plain, policy, SimConfig())
    for workload, shift in ((offset, 100), (repeated, None)):
        compiled, protocol = _both(workload, policy, SimConfig())
        _assert_same(compiled, protocol)
        pd.testing.assert_frame_equal(compiled.iterations, base.iterations, check_exact=True)
        rows, expected = compiled.requests.drop(columns="id"), base.requests.drop(columns="id")
        if shift is not None:
            assert compiled.requests.id.tolist() == (base.requests.id + shift).tolist()
        else:  # the table is ordered by id: the same rows, in another order
            rows, expected = (f.sort_values(list(f.columns)).reset_index(drop=True)
                              for f in (rows, expected))
        pd.testing.assert_frame_equal(rows, expected, check_exact=True)


_RANDOM_MODELS = ({}, {"gpu": "H100"}, {"gpu": "H100", "target": "llama-2-70b", "tp": 4},
                  {"target": "llama-3-8b", "draft": "llama-3.2-1b"}, {"dense_ops": "fitted"},
                  {"gpu": "H200"})


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_both_paths_agree_on_random_configs(data):
    """Differential check over random combinations of the options the fixed cases above
    take one at a time: workload slice and load, policy, model and GPU (measured and fitted
    dense ops), engine, chunked prefill, KV pool, sequence limit, CUDA graphs, estimator,
    SLOs, acceptance, overheads, block size, speculative method and seed. (Hunts of 1,000
    such runs, 2026-12-01, and of 2,816 with methods and calibrated profiles, 2026-12-02,
    found no difference.)"""
    workload = load_trace(data.draw(st.sampled_from([CONV, MOONCAKE]), label="trace"))
    start = data.draw(st.integers(0, 1000), label="start")  # mooncake.csv: 1,077 requests
    scale = data.draw(st.sampled_from([0.5, 3.0, 20.0]), label="arrival compression")
    requests = tuple(replace(r, arrival_s=r.arrival_s / scale)
                     for r in workload.requests[start:start + data.draw(st.integers(1, 60))])
    workload = Workload(requests, workload.source, workload.format)
    config = dict(data.draw(st.sampled_from(_RANDOM_MODELS), label="model"))
    config["engine"] = data.draw(st.sampled_from(["single-pass", "vllm-0.6"]))
    if data.draw(st.booleans(), label="chunked"):
        config.update(chunked_prefill=True,
                      max_num_batched_tokens=data.draw(st.sampled_from([512, 2048])))
    if data.draw(st.booleans(), label="small pool"):
        config["kv_blocks"] = data.draw(st.integers(60, 600))
    config["max_num_seqs"] = data.draw(st.sampled_from([1, 3, 16, 256]))
    config["cuda_graphs"] = data.draw(st.booleans())
    config["estimator"] = data.draw(st.sampled_from(["table", "exact"]))
    config["tpot_slo_s"] = data.draw(st.sampled_from([0.01, 0.04, 0.2]))
    config["acceptance"] = data.draw(st.sampled_from(["spec-bench-vicuna-68m", "fixed:0.4"]))
    if data.draw(st.booleans(), label="overheads"):
        config["pass_overheads_s"] = (0.001, 0.0005, 0.0)
    config["block_size"] = data.draw(st.sampled_from([16, 32]))
    policy = data.draw(st.sampled_from(COMPILED_POLICIES), label="policy")
    if data.draw(st.booleans(), label="a method"):
        config["method"] = data.draw(st.sampled_from(sorted(METHODS)), label="method")
        assume(policy_fits_method(make_policy(policy), config["method"]) is None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a method's rejections on arrival
        _assert_same(*_both(workload, policy, SimConfig(**config),
                            seed=data.draw(st.integers(0, 1000), label="seed")))
