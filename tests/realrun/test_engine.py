"""The real engine loop: lossless end to end for every real policy (joins, leaves, preemption),
controlled acceptance, rejections, prompts, the results schema of a run."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from realrun.engine import EngineLimits, RealEngine  # noqa: E402
from realrun.prompts import ServedWorkload, build_prompts  # noqa: E402
from realrun.results import build_estimator, to_run_result  # noqa: E402
from realrun_helpers import (greedy_reference, perturbed_copy, served_workload,  # noqa: E402
                             tiny_model)
from sim.acceptance.presets import make_acceptance  # noqa: E402
from sim.errors import ConfigError  # noqa: E402
from sim.latency.models import get_model  # noqa: E402
from sim.policies.registry import make_policy  # noqa: E402
from sim.workload.request import Request, Workload  # noqa: E402

REAL_POLICIES = ("nospec", "static:1", "static:3", "threshold:0.6,4", "disable-by-batch:3,3",
                 "smartspec:4", "adaspec:4", "adaspec-nv:4")
# (prompt, output, arrival_s): four at once, then joiners while the first ones decode.
SHAPES = [(5, 14, 0.0), (9, 20, 0.0), (3, 9, 0.0), (7, 16, 0.0), (12, 12, 0.003),
          (4, 18, 0.006), (6, 10, 0.01), (8, 15, 0.02)]
# A pool of 16 blocks of 4 tokens for 4 slots of 64: the first four requests alone outgrow it.
SMALL_POOL = EngineLimits(max_num_seqs=4, max_len=64, block_size=4, kv_blocks=16)


def _served(shapes=SHAPES, seed: int = 0) -> ServedWorkload:
    return served_workload(shapes, seed)


@pytest.fixture(scope="module")
def estimator():
    # The paper's setting, where speculation pays: every speculative policy drafts.
    return build_estimator(get_model("vicuna-7b"), get_model("vicuna-68m"), gpu="A100-80G")


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def pair(request):
    target = tiny_model(request.param, seed=3, dtype=torch.float32)
    return request.param, target, perturbed_copy(target, 0.02)


@pytest.fixture(scope="module")
def references(pair):
    _, target, _ = pair
    served = _served()
    return {r.id: greedy_reference(target, list(served.prompt_ids[r.id]), r.output_tokens)
            for r in served.workload.requests}


def _run(target, draft, spec, estimator, limits=SMALL_POOL, served=None, **kwargs):
    engine = RealEngine(target, draft, make_policy(spec), estimator, limits, **kwargs)
    return engine, engine.run(served or _served())


def test_every_real_policy_is_lossless_with_joins_leaves_and_preemption(pair, references, estimator):
    arch, target, draft = pair
    policies = REAL_POLICIES if arch == "llama" else ("nospec", "static:3", "adaspec:4")
    preemptions = 0
    for spec in policies:
        engine, run = _run(target, draft, spec, estimator)
        assert run.outputs == references, spec
        assert not run.rejections
        assert all(f.status == "finished" and f.generated_tokens == f.request.output_tokens
                   for f in run.finished)
        preemptions += sum(f.preemptions for f in run.finished)
        assert not engine.executor.rows and engine.target_cache.free_slots == 4
        drafted = sum(f.drafted_tokens for f in run.finished)
        accepted = sum(f.accepted_tokens for f in run.finished)
        if spec == "nospec":
            assert drafted == 0 and engine.draft_cache is None
        else:
            assert 0 < accepted <= drafted, spec
        frame = run.iterations.to_frame()
        assert (frame["duration_s"] > 0).all() and (np.diff(frame["start_s"]) >= 0).all()
        # a recompute prefill emits the next token: every token is emitted exactly once
        assert frame["emitted_tokens"].sum() == sum(r.output_tokens for r in _served().workload.requests)
    assert preemptions > 0


def test_run_result_uses_sim_metrics(pair, estimator):
    _, target, draft = pair
    _, run = _run(target, draft, "static:3", estimator)
    result = to_run_result("static:3", run, SMALL_POOL)
    req = result.requests
    assert list(req["id"]) == list(range(len(SHAPES)))
    assert (req["status"] == "finished").all()
    assert (req["first_token_s"] >= req["arrival_s"]).all()
    assert (req["finish_s"] >= req["first_token_s"]).all()
    assert result.summary["finished"] == len(SHAPES)
    assert result.summary["mean_tokens_per_step"] > 1.0
    assert result.summary["preemptions"] == int(req["preemptions"].sum())


def test_arrivals_are_replayed_on_the_wall_clock(estimator):
    target = tiny_model("llama", seed=3, dtype=torch.float32)
    served = _served([(4, 3, 0.0), (4, 3, 0.25)])
    _, run = _run(target, None, "nospec", estimator, served=served)
    second = next(f for f in run.finished if f.request.id == 1)
    assert second.admitted_s >= 0.25  # it was not served before it arrived
    frame = run.iterations.to_frame()
    assert frame["start_s"].iloc[-1] >= 0.25


def test_controlled_acceptance_matches_the_acceptance_model(estimator):
    target = tiny_model("llama", seed=3, dtype=torch.float32)
    draft = perturbed_copy(target, 0.02)
    alpha, k = 0.6, 3
    served = _served([(4, 80, 0.0)] * 8)
    limits = EngineLimits(max_num_seqs=8, max_len=96, block_size=16)
    _, run = _run(target, draft, f"static:{k}", estimator, limits, served,
                  acceptance=make_acceptance(f"fixed:{alpha}"), keep_outcomes=True, seed=5)
    verify = np.concatenate([v for v, _ in run.outcomes])
    accepted = np.concatenate([a for _, a in run.outcomes])
    full = accepted[verify == k]
    assert full.size > 200
    expected = np.array([alpha**j * (1 - alpha) for j in range(k)] + [alpha**k])
    observed = np.bincount(full, minlength=k + 1) / full.size
    assert 0.5 * np.abs(observed - expected).sum() < 0.08, (observed, expected)
    # each request emitted exactly its output length, the accepted tokens included
    assert all(len(run.outputs[f.request.id]) == f.request.output_tokens for f in run.finished)


def test_controlled_acceptance_with_a_parametric_preset(estimator):
    target = tiny_model("llama", seed=3, dtype=torch.float32)
    draft = perturbed_copy(target, 0.02)
    _, run = _run(target, draft, "adaspec:4", estimator, EngineLimits(max_num_seqs=4, max_len=64),
                  _served([(4, 30, 0.0)] * 4), acceptance=make_acceptance("spec-bench-vicuna-68m"))
    assert all(f.status == "finished" for f in run.finished)
    assert sum(f.accepted_tokens for f in run.finished) > 0


def test_requests_that_never_fit_are_rejected_and_the_run_continues(estimator):
    target = tiny_model("llama", seed=3, dtype=torch.float32)
    served = _served([(4, 6, 0.0), (60, 10, 0.0), (4, 6, 0.0)])
    _, run = _run(target, None, "nospec", estimator, served=served)
    assert set(run.rejections) == {1}
    assert "exceed the slot length max_len=64" in run.rejections[1]
    status = {f.request.id: f.status for f in run.finished}
    assert status == {0: "finished", 1: "rejected", 2: "finished"}
    # the KV pool can be the binding limit too
    small = EngineLimits(max_num_seqs=2, max_len=64, block_size=4, kv_blocks=4)
    _, run = _run(target, None, "nospec", estimator, small, _served([(4, 4, 0.0), (10, 10, 0.0)]))
    assert set(run.rejections) == {1} and "KV blocks" in run.rejections[1]


def test_sampling_temperature_runs(estimator):
    target = tiny_model("llama", seed=3, dtype=torch.float32)
    draft = perturbed_copy(target, 0.02)
    limits = EngineLimits(max_num_seqs=4, max_len=64, temperature=0.8)
    _, run = _run(target, draft, "static:3", estimator, limits, _served(SHAPES[:4]))
    assert all(len(run.outputs[i]) == SHAPES[i][1] for i in range(4))


def test_engine_refuses_oracle_and_missing_draft(estimator):
    target = tiny_model("llama", seed=3, dtype=torch.float32)
    with pytest.raises(ConfigError, match="simulation-only"):
        RealEngine(target, target, make_policy("oracle:4"), estimator, SMALL_POOL)
    with pytest.raises(ConfigError, match="needs a draft"):
        RealEngine(target, None, make_policy("static:2"), estimator, SMALL_POOL)
    with pytest.raises(ConfigError, match="positions"):
        RealEngine(target, None, make_policy("nospec"), estimator, EngineLimits(max_len=4096))
    with pytest.raises(ConfigError, match="kv_blocks"):
        EngineLimits(max_num_seqs=2, max_len=32, block_size=16, kv_blocks=5)
    with pytest.raises(ConfigError, match="single pass"):
        RealEngine(target, target, make_policy("static:2"), estimator, SMALL_POOL,
                   engine="vllm-0.6")


class _FakeTokenizer:
    chat_template = None

    def __call__(self, text):
        return {"input_ids": [ord(c) % 97 for c in text]}


def test_prompts_synthetic_and_spec_bench():
    reqs = (Request(0, 0.0, 7, 5, "qa"), Request(1, 0.1, 3, 50, "qa"), Request(2, 0.2, 9, 5, "nope"))
    workload = Workload(reqs, "t", "native")
    a = build_prompts(workload, source="synthetic", vocab_size=50, seed=1, max_output_tokens=20)
    b = build_prompts(workload, source="synthetic", vocab_size=50, seed=1)
    assert a.prompt_ids == b.prompt_ids and [len(a.prompt_ids[i]) for i in range(3)] == [7, 3, 9]
    assert max(max(v) for v in a.prompt_ids.values()) < 50
    assert [r.output_tokens for r in a.workload.requests] == [5, 20, 5]
    text = build_prompts(workload, tokenizer=_FakeTokenizer(), vocab_size=97, max_prompt_tokens=40)
    assert text.prompt_source.startswith("spec-bench:")
    for r in text.workload.requests:  # prompt lengths are the tokenised lengths
        assert r.prompt_tokens == len(text.prompt_ids[r.id]) <= 40
    assert text.prompt_ids[0] != text.prompt_ids[1]  # round-robin within the category
    with pytest.raises(ConfigError, match="tokenizer"):
        build_prompts(workload, source="spec-bench", vocab_size=50)
