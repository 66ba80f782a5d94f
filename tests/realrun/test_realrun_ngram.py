"""Prompt-lookup (n-gram) drafting in the real engine: the lookup rule (vLLM's), the empirical
confidence, rows without a proposal draft nothing, losslessness end to end under
continuous batching (joins, leaves, preemption) for static, AdaSpec and SmartSpec, the
honest iteration log (no draft pass, CPU lookup time), one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from realrun.engine import EngineLimits, RealEngine  # noqa: E402
from realrun.kvcache import SlotKVCache  # noqa: E402
from realrun.lookup import LookupDraftLatency, NgramConfidence, NgramConfig, propose  # noqa: E402
from realrun.ngram import NgramDecodeExecutor  # noqa: E402
from realrun.results import build_estimator, to_run_result  # noqa: E402
from realrun_helpers import (VOCAB, Req, greedy_reference, lookup_friendly_model,  # noqa: E402
                             served_workload, tiny_model, view_for)
from sim.core.speculation import run_decode_iteration  # noqa: E402
from sim.errors import ConfigError  # noqa: E402
from sim.latency.models import get_model  # noqa: E402
from sim.policies.registry import make_policy  # noqa: E402

# (prompt, output, arrival_s): four at once, then joiners while the first ones decode.
SHAPES = [(5, 34, 0.0), (9, 40, 0.0), (3, 29, 0.0), (7, 36, 0.0), (12, 32, 0.003),
          (4, 38, 0.006), (6, 30, 0.01), (8, 35, 0.02)]
# 24 blocks of 4 tokens for 4 slots of 64: the first four requests alone outgrow it.
SMALL_POOL = EngineLimits(max_num_seqs=4, max_len=64, block_size=4, kv_blocks=24)
POLICIES = ("static:1", "static:3", "adaspec:4", "smartspec:4", "threshold:0.6,4",
            "adaspec:4,artifact", "nospec")


def _brute_force(tokens, k, min_n, max_n):
    """The rule spelt out: longest n first, earliest occurrence ending before the last token."""
    t = list(tokens)
    for n in range(max_n, min_n - 1, -1):
        if n >= len(t):
            continue
        suffix = t[-n:]
        for i in range(0, len(t) - n):
            if t[i:i + n] == suffix:
                return t[i + n:i + n + k], n
    return [], 0


# ---- the lookup ----------------------------------------------------------------------------
def test_lookup_follows_vllm():
    # vLLM's own docstring example: [4,2,3] has no earlier match, [2,3] does; 3 tokens follow
    proposal, n = propose([1, 2, 3, 4, 2, 3], 4, min_n=2, max_n=3)
    assert proposal.tolist() == [4, 2, 3] and n == 2
    # the longest n-gram wins over an earlier shorter one; its earliest occurrence is used
    proposal, n = propose([7, 9, 1, 2, 5, 1, 2, 6, 8, 1, 2], 2, min_n=1, max_n=3)
    assert proposal.tolist() == [5, 1] and n == 2
    proposal, n = propose([7, 1, 2, 8, 3, 1, 2], 3, min_n=1, max_n=3)
    assert proposal.tolist() == [8, 3, 1] and n == 2
    # an occurrence may overlap the suffix; the continuation stops at the last token
    assert propose([2, 2, 2], 5, 1, 2)[0].tolist() == [2]
    # nothing to match, min_n above every match, k = 0
    assert propose([1, 2, 3, 4], 3)[1] == 0 and propose([1, 2, 3, 4], 3)[0].size == 0
    assert propose([1, 2, 1, 3], 3, min_n=2, max_n=3)[1] == 0
    assert propose([1, 2, 1, 2], 0)[0].size == 0 and propose([5], 3)[1] == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=0, max_size=40), st.integers(0, 6),
       st.integers(1, 3), st.integers(0, 2))
def test_lookup_matches_the_rule(tokens, k, lo, extra):
    hi = lo + extra
    proposal, n = propose(tokens, k, lo, hi)
    if k == 0:
        assert proposal.size == 0 and n == 0
        return
    assert (proposal.tolist(), n) == _brute_force(tokens, k, lo, hi)
    # invariants: at most k tokens, a real continuation of an earlier occurrence
    assert proposal.size <= k and (n == 0) == (proposal.size == 0)
    if n:
        assert lo <= n <= hi and tokens[-n:] in [tokens[i:i + n] for i in range(len(tokens) - n)]


def test_ngram_config_is_checked():
    assert NgramConfig().to_dict()["min_n"] == 1 and NgramConfig().max_n == 3
    for bad in ({"min_n": 0}, {"max_n": 17}, {"min_n": 3, "max_n": 2}, {"min_n": 1.5},
                {"prior_accept": 0}):
        with pytest.raises(ConfigError):
            NgramConfig(**bad)


def test_confidence_is_the_running_conditional_acceptance():
    conf = NgramConfidence(max_n=3)
    assert conf.value(2, 0) == 0.5 and conf.value(1, 4) == 0.5  # Beta(1, 1) prior
    conf.observe(2, verified=3, accepted=1)  # position 0 accepted, 1 rejected, 2 not judged
    conf.observe(2, verified=2, accepted=2)  # both accepted
    conf.observe(0, verified=3, accepted=0)  # no proposal: nothing learnt
    conf.observe(1, verified=0, accepted=0)
    assert conf.value(2, 0) == pytest.approx(3 / 4)  # 2 of 2 judged, prior (1, 1)
    assert conf.value(2, 1) == pytest.approx(2 / 4)  # 1 of 2
    assert conf.value(2, 2) == 0.5 and conf.value(1, 0) == 0.5


def test_lookup_latency_prices_drafting_at_zero():
    est = build_estimator(get_model("vicuna-7b"), None, gpu="A100-80G", method="ngram")
    plain = build_estimator(get_model("vicuna-7b"), get_model("vicuna-68m"), gpu="A100-80G")
    assert est.draft_step_s(8, 8000) == 0.0 and est.draft_overhead_s == 0.0
    assert est.draft_prefill_s([100, 50]) == 0.0
    assert est.target_verify_s(8, 32, 8000) == pytest.approx(plain.target_verify_s(8, 32, 8000))
    wrapped = LookupDraftLatency(plain)
    assert wrapped.target_prefill_s([64]) == plain.target_prefill_s([64])
    assert wrapped.base is plain and wrapped.sizes == plain.sizes  # extras pass through


# ---- the executor --------------------------------------------------------------------------
def test_rows_without_a_proposal_draft_nothing():
    target = lookup_friendly_model()
    cache = SlotKVCache.for_model(target, max_slots=3, max_len=64)
    ex = NgramDecodeExecutor(target, cache)
    # row 0's first token occurs in its prompt; row 1 has distinct tokens and a first token
    # not among them (no match at all); row 2 repeats one token
    candidates = [list(range(s, s + 6)) for s in range(0, VOCAB - 6, 7)]
    firsts = [greedy_reference(target, p, 1)[0] for p in candidates]
    distinct = next(p for p, f in zip(candidates, firsts) if f not in p)
    repeated = next(p + [f] + p for p, f in zip(candidates, firsts)
                    if greedy_reference(target, p + [f] + p, 1)[0] in p)
    prompts = [repeated, distinct, [9, 9, 9, 9]]
    ex.prefill([0, 1, 2], prompts)
    ex.begin([0, 1, 2])
    caps = np.array([3, 3, 1])
    lengths = ex.propose(caps)
    for r, slot in enumerate([0, 1, 2]):
        expected, _ = _brute_force(ex.history[slot], int(caps[r]), 1, 3)
        assert ex.proposals[r].tolist() == expected
    assert lengths[1] == 0 and lengths[0] > 0 and lengths[2] <= 1
    running = [Req(0, p, 20) for p in prompts]
    for req, slot in zip(running, [0, 1, 2]):
        req.output = ex.generated(slot)
    view = view_for(running, 3)
    view = type(view)(**{**view.__dict__, "max_draft_tokens": np.minimum(view.max_draft_tokens, lengths)})
    outcome = run_decode_iteration(make_policy("static:3"), view, ex)
    assert outcome.drafted.tolist() == np.minimum(lengths, 3).tolist()
    assert outcome.conf[1].sum() == 0.0  # nothing drafted, nothing reported
    assert (outcome.conf[0, :lengths[0]] == 0.5).all()  # the prior, before any verdict
    for slot, prompt in zip([0, 1, 2], prompts):  # lossless: the target's greedy text
        out = ex.generated(slot)
        assert out == greedy_reference(target, prompt, len(out))
        assert ex.history[slot] == prompt + out
    with pytest.raises(ValueError):  # a row cannot draft past its proposal
        ex.begin([1])
        ex.propose(np.array([3]))
        ex.draft_step(0, np.array([True]))


def test_sampling_with_lookup_keeps_the_caches_consistent():
    """temperature > 0: rejection sampling against a point-mass proposal (not token-identical
    to greedy, but every emitted token was scored once and the cache holds the text)."""
    target = lookup_friendly_model()
    cache = SlotKVCache.for_model(target, max_slots=2, max_len=160)
    ex = NgramDecodeExecutor(target, cache, temperature=0.2, seed=3)
    prompts = [[3, 4, 5, 3, 4, 5, 3], [7, 8, 7, 8, 7]]
    ex.prefill([0, 1], prompts)
    accepted_total = drafted_total = 0
    for _ in range(30):
        ex.begin([0, 1])
        lengths = ex.propose(np.array([3, 3]))
        for step in range(int(lengths.max(initial=0))):
            ex.draft_step(step, lengths > step)
        accepted_total += int(ex.verify(lengths).sum())
        drafted_total += int(lengths.sum())
    for slot, prompt in zip([0, 1], prompts):
        assert cache.lengths[slot] == len(prompt) + len(ex.generated(slot)) - 1
    assert 0 < accepted_total < drafted_total


# ---- the engine ----------------------------------------------------------------------------
def _served(shapes=SHAPES, seed: int = 0):
    return served_workload(shapes, seed)


@pytest.fixture(scope="module")
def target():
    return lookup_friendly_model()


@pytest.fixture(scope="module")
def references(target):
    served = _served()
    return {r.id: greedy_reference(target, list(served.prompt_ids[r.id]), r.output_tokens)
            for r in served.workload.requests}


@pytest.fixture(scope="module")
def estimator():
    return build_estimator(get_model("vicuna-7b"), None, gpu="A100-80G", method="ngram")


def test_the_test_model_depends_on_its_context(target):
    """Its greedy text is not that of the same model without attention: a wrong KV cache
    would show in the lossless comparison."""
    blind = lookup_friendly_model(attention_scale=0.0)
    prompt = list(_served().prompt_ids[1])
    assert greedy_reference(target, prompt, 40) != greedy_reference(blind, prompt, 40)


@pytest.mark.parametrize("spec", POLICIES)
def test_ngram_is_lossless_with_joins_leaves_and_preemption(spec, target, references, estimator):
    engine = RealEngine(target, None, make_policy(spec), estimator, SMALL_POOL, method="ngram")
    run = engine.run(_served())
    assert run.outputs == references, spec
    assert not run.rejections and engine.draft_cache is None
    assert all(f.status == "finished" and f.generated_tokens == f.request.output_tokens
               for f in run.finished)
    assert sum(f.preemptions for f in run.finished) > 0
    assert not engine.executor.rows and not engine.executor.history
    drafted = sum(f.drafted_tokens for f in run.finished)
    accepted = sum(f.accepted_tokens for f in run.finished)
    result = to_run_result(spec, run, SMALL_POOL)
    frame = result.iterations
    assert len(run.lookup_steps) == len(run.draft_cpu_s) == len(frame)
    assert (frame["draft_rows"].fillna("") == "").all()  # no draft pass ever ran
    assert (frame["draft_kv_tokens"].fillna("") == "").all()
    assert (frame["draft_cpu_s"] <= frame["duration_s"]).all()
    if spec == "nospec":
        assert drafted == 0 and frame["draft_steps"].max() == 0
        return
    # the lookups found proposals, some accepted and some rejected
    assert 0 < accepted < drafted, spec
    decode = frame[frame["kind"] == "decode"]
    assert decode["draft_steps"].max() > 0 and decode["draft_cpu_s"].sum() > 0
    assert (frame.loc[frame["kind"] == "prefill", "draft_cpu_s"] == 0).all()
    assert decode["drafted_tokens"].sum() == drafted
    assert result.summary["mean_tokens_per_step"] > 1.0
    assert frame["emitted_tokens"].sum() == sum(o for _, o, _ in SHAPES)


def test_ngram_confidence_learns_during_a_run(target, estimator):
    engine = RealEngine(target, None, make_policy("static:3"), estimator, SMALL_POOL,
                        method="ngram")
    engine.run(_served())
    conf = engine.executor.confidence
    assert conf.judged.sum() > 0
    judged = conf.judged[:, 0] > 0
    assert not np.allclose([conf.value(n, 0) for n in np.flatnonzero(judged)], 0.5)


def test_controlled_acceptance_runs_with_lookup(target, estimator):
    from sim.acceptance.presets import make_acceptance

    engine = RealEngine(target, None, make_policy("static:3"), estimator, SMALL_POOL,
                        method="ngram", acceptance=make_acceptance("fixed:0.6"), seed=2)
    run = engine.run(_served())
    assert all(f.status == "finished" for f in run.finished)
    assert sum(f.drafted_tokens for f in run.finished) > 0


def test_engine_refuses_bad_method_setups(estimator):
    tiny = tiny_model("llama", seed=3, dtype=torch.float32)
    policy = make_policy("static:2")
    with pytest.raises(ConfigError, match="no draft model"):
        RealEngine(tiny, tiny, policy, estimator, SMALL_POOL, method="ngram")
    with pytest.raises(ConfigError, match="method must be"):
        RealEngine(tiny, None, policy, estimator, SMALL_POOL, method="eagle")
    with pytest.raises(ConfigError, match="ngram options"):
        RealEngine(tiny, tiny, policy, estimator, SMALL_POOL, ngram=NgramConfig())
    with pytest.raises(ConfigError, match="needs a draft model"):
        RealEngine(tiny, None, policy, estimator, SMALL_POOL)
