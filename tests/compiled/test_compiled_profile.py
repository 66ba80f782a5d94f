"""The compiled path on a calibrated latency profile (``ProfileLatency``) against the protocol
path: every table, the summary and the out-of-domain warnings must be identical (issue 11),
on both engines, with and without chunked prefill; and the profile's pricing rules, which
``ProfileLatency`` and the compiled loop share, checked by hand."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.compiled.tables import (ProfileTables, truth_draft, truth_prefill, truth_verify,
                                 supports_truth)
from fakes import gpu_like_ops, profile_doc
from sim.latency.profile import profile_from_dict
from sim.run import SimConfig, simulate
from test_compiled_equivalence import CONV, MOONCAKE, _assert_same, _slice

ROOT = Path(__file__).resolve().parents[2]
CPU_PROFILE = ROOT / "calibrate" / "profiles" / "cpu-2core-qwen2.5-coder-1.5b-0.5b.json"

#: A GPU-like profile of the same models: the verify and draft domains are wide (the table
#: estimator's grid stays inside them), the prefill's narrow (the run warns, not the estimator).
GPU_LIKE = gpu_like_ops([1, 4], [16, 512], [1, 64])


@pytest.fixture(scope="module")
def gpu_profile(tmp_path_factory) -> Path:
    doc = json.loads(CPU_PROFILE.read_text())
    for op, (coefficients, domain) in GPU_LIKE.items():
        doc["ops"][op]["coefficients"] = coefficients
        doc["ops"][op]["domain"] = domain
    doc["draft_overhead_s"] = 4e-4
    path = tmp_path_factory.mktemp("profile") / "gpu-like.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def conv():
    return _slice(CONV, 120, scale=6.0)


def _both_warned(workload, policy: str, config: SimConfig):
    """Both paths' results and the text of the warnings each emitted."""
    out = []
    for path_config in (config, replace(config, engine_path="protocol")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = simulate(workload, policy, path_config, seed=5)
        out.append((result, [str(w.message) for w in caught  # the truth's, not the table's
                             if "queried outside its measured domain" in str(w.message)]))
    return out


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("engine", ["single-pass", "vllm-0.6"])
@pytest.mark.parametrize("policy", ["nospec", "static:3", "smartspec:8", "adaspec:8", "trtllm:4,sched=4:4",
                                    "sglang:3,slots=1:1+3/4:0,zero=catchup"])
def test_profile_runs_compile_to_the_protocol_paths_bytes(conv, gpu_profile, policy, engine,
                                                          chunked):
    config = SimConfig(profile=str(gpu_profile), engine=engine, chunked_prefill=chunked,
                       max_num_batched_tokens=512 if chunked else 2048)
    (compiled, compiled_warned), (protocol, protocol_warned) = _both_warned(conv, policy, config)
    _assert_same(compiled, protocol)
    assert compiled_warned == protocol_warned
    assert any("target_prefill" in text for text in compiled_warned)
    if chunked:
        assert (protocol.iterations["kind"] == "prefill").sum() > 0


@pytest.mark.parametrize("policy", ["static:3", "adaspec:8"])
def test_the_cpu_profile_long_prompts_and_preemption(gpu_profile, policy):
    """The repository's CPU profile (every operation warns) on Mooncake's long prompts,
    chunked, and the GPU-like one with a small KV pool (preemptions)."""
    workload = _slice(MOONCAKE, 30, scale=4.0)
    config = SimConfig(profile=str(CPU_PROFILE), chunked_prefill=True,
                       max_num_batched_tokens=2048)
    (compiled, warned), (protocol, protocol_warned) = _both_warned(workload, policy, config)
    _assert_same(compiled, protocol)
    # every operation the run used warns once; adaspec never drafts here (the estimator's
    # table of draft steps, far outside the domain, used to warn draft_step all the same)
    drafted = compiled.summary["mean_draft_steps"] > 0
    assert drafted == (policy == "static:3")
    assert warned == protocol_warned and len(warned) == (4 if drafted else 3)
    assert any("draft_step" in text for text in warned) == drafted
    small = SimConfig(profile=str(gpu_profile), kv_blocks=300, max_num_seqs=24)
    (compiled, warned), (protocol, protocol_warned) = _both_warned(
        _slice(CONV, 160, scale=6.0), policy, small)
    assert compiled.summary["preemptions"] > 0
    _assert_same(compiled, protocol)
    assert warned == protocol_warned


def test_the_exact_estimator_over_a_profile_takes_the_protocol_path(conv, gpu_profile):
    config = SimConfig(profile=str(gpu_profile), estimator="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = simulate(conv, "adaspec:8", config, seed=1)
    assert result.summary["iteration_path"] == "protocol"
    assert "calibrated profile" in result.summary["iteration_path_reason"]


# ---- the shared pricing rules, by hand -------------------------------------------------------
def _model(**domains):
    return profile_from_dict(profile_doc(GPU_LIKE, **domains))


def test_the_loops_truth_is_the_profiles_own_numbers():
    model = _model()
    assert supports_truth(model)
    t = ProfileTables(model, 64)
    table, att, params, overheads = t.table, t.att, t.params, t.overheads
    # verify: 8e-3 + 3e-5 * 12 + 1e-5 * 4 + 2e-8 * 400 + 1e-10 * 12 * (100 + 2)
    expected = 8e-3 + 3e-5 * 12 + 1e-5 * 4 + 2e-8 * 400 + 1e-10 * (12 * (400 / 4 + 2.0))
    assert truth_verify(table, att, params, overheads, 4, 12, 400) == pytest.approx(expected)
    assert truth_verify(table, att, params, overheads, 4, 12, 400) == model.target_verify_s(
        4, 12, 400)
    assert truth_verify(table, att, params, overheads, 4, 0, 400) == 0.0
    assert truth_draft(table, att, params, overheads, 8, 900) == 1e-3 + 5e-6 * 8 + 5e-9 * 900
    assert truth_draft(table, att, params, overheads, 0, 900) == 0.0
    # a prefill of chunks 100 (after 300 cached) and 40: padded 2 x 100 rows, plus the
    # chunk's attention to its prefix 2 c_sq * 100 * 300
    news, cached = np.array([100, 40]), np.array([300, 0])
    by_hand = (5e-3 + 6e-5 * 200 + 1e-4 * 2 + 1e-9 * 20000) + 2e-9 * 30000
    assert truth_prefill(table, att, params, overheads, False, news, cached, 2, 140) == \
        pytest.approx(by_hand)
    for draft, method in ((False, model.target_prefill_s), (True, model.draft_prefill_s)):
        assert truth_prefill(table, att, params, overheads, draft, news, cached, 2, 140) == \
            method([100, 40], [300, 0])
    assert not att[:, 6].any()  # every query inside the domain: nothing recorded


def test_a_query_outside_the_domain_warns_as_the_profile_does():
    narrow = {"target_verify": {"batch": [1, 8], "tokens_per_seq": [1, 2],
                                "context_per_seq": [0, 1000]},
              "draft_step": {"batch": [1, 8], "context_per_seq": [0, 50]},
              "target_prefill": {"batch": [1, 4], "prompt_len": [16, 64]}}
    loop_model, python_model = _model(**narrow), _model(**narrow)
    t = ProfileTables(loop_model, 64)
    args = (t.table, t.att, t.params, t.overheads)
    truth_verify(*args, 4, 8, 400)  # inside
    truth_verify(*args, 4, 12, 400)  # 3 tokens per sequence: the first outside
    truth_verify(*args, 16, 16, 400)  # outside too, not recorded
    truth_draft(*args, 2, 300)  # 150 per sequence
    truth_prefill(args[0], args[1], args[2], args[3], False, np.array([100]), np.array([0]),
                  1, 100)
    with pytest.warns(RuntimeWarning) as from_loop:
        t.warn(t.att)
    with pytest.warns(RuntimeWarning) as from_python:
        python_model.target_verify_s(4, 8, 400)
        python_model.target_verify_s(4, 12, 400)
        python_model.target_verify_s(16, 16, 400)
        python_model.draft_step_s(2, 300)
        python_model.target_prefill_s([100])
    texts = sorted(str(w.message) for w in from_loop)
    assert texts == sorted(str(w.message) for w in from_python)
    assert len(texts) == 3 and any("tokens_per_seq=3," in text for text in texts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t.warn(t.att)  # once per operation
    assert loop_model.warned_ops == {"target_verify", "draft_step", "target_prefill"}


def test_the_cli_runs_a_profile_compiled(tmp_path, gpu_profile):
    from sim.cli import main
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["--trace", str(CONV), "--limit", "30", "--policy", "adaspec:8",
                     "--quiet", "--out", str(out), "--profile", str(gpu_profile)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policies"]["adaspec:8"]["iteration_path"] == "compiled"



@settings(max_examples=60, deadline=None)
@given(coefficients=st.lists(st.floats(0.0, 1e-2), min_size=5, max_size=5),
       batch=st.integers(0, 512), tokens=st.integers(0, 5000),
       context=st.integers(0, 10**7), news=st.lists(st.integers(0, 40000), max_size=6),
       cached_seed=st.integers(0, 10**5))
def test_compiled_rules_give_the_interpreted_bits(coefficients, batch, tokens, context, news,
                                                  cached_seed):
    """The numba-compiled rules and the interpreted ones (``ProfileLatency``'s methods) agree
    to the last bit (no fused multiply-adds, the same summation order)."""
    from sim.compiled.jit import compiled
    from sim.latency.profile import profile_draft_step_s, profile_prefill_s, profile_verify_s

    c = np.array(coefficients)
    assert compiled(profile_verify_s)(c, batch, tokens, context) == profile_verify_s(
        tuple(coefficients), batch, tokens, context)
    assert compiled(profile_draft_step_s)(c, batch, context) == profile_draft_step_s(
        tuple(coefficients), batch, context)
    cached = [(cached_seed * (i + 7)) % 90001 for i in range(len(news))]
    assert compiled(profile_prefill_s)(c[:4], np.array(news + [0], dtype=np.int64),
                                       np.array(cached + [0], dtype=np.int64),
                                       len(news)) == profile_prefill_s(
        tuple(coefficients[:4]), news, cached, len(news))
