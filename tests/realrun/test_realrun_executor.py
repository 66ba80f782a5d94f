"""RealDecodeExecutor: lossless greedy speculative decoding with continuous batching."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from realrun.executor import RealDecodeExecutor  # noqa: E402
from realrun.kvcache import SlotKVCache  # noqa: E402
from realrun_helpers import (Req, RandomPolicy, StaticPolicy, greedy_reference,  # noqa: E402
                             perturbed_copy, run_engine, tiny_model)
from sim.acceptance.base import accepted_prefix  # noqa: E402
from sim.errors import ConfigError  # noqa: E402


def _requests() -> list[Req]:
    """Rows of different lengths that join and leave at different iterations."""
    return [Req(0, [1, 2, 3, 4, 5], 12), Req(0, [7, 8], 20), Req(2, [9, 10, 11, 12, 13, 14, 15], 9),
            Req(5, [20], 14), Req(6, [30, 31, 32], 17), Req(9, [40, 41, 42, 43], 6)]


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def pair(request):
    target = tiny_model(request.param, seed=3)
    return request.param, target, perturbed_copy(target, 0.02)


@pytest.fixture(scope="module")
def references(pair):
    _, target, _ = pair
    return [greedy_reference(target, r.prompt, r.new_tokens) for r in _requests()]


@pytest.mark.parametrize("k", [0, 1, 3, 5])
def test_static_k_is_lossless(pair, references, k):
    _, target, draft = pair
    reqs = _requests()
    ex, outcomes = run_engine(target, draft, reqs, StaticPolicy(k), max_slots=3, log_acceptance=True)
    for r, ref in zip(reqs, references):
        assert r.output == ref
    assert not ex.rows and ex.target_cache.free_slots == 3 and ex.draft_cache.free_slots == 3
    if k:
        accepted = sum(int(o.accepted.sum()) for o in outcomes)
        verified = sum(int(o.verify.sum()) for o in outcomes)
        assert 0 < accepted < verified  # the perturbed draft is right sometimes, not always
        confs = np.concatenate([o.conf[o.conf > 0] for o in outcomes])
        assert confs.size and np.all((confs > 0) & (confs <= 1))
        assert ex.acceptance_log and all(0 < c <= 1 for c, _, _ in ex.acceptance_log)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_drafting_and_verify_lengths_are_lossless(pair, references, seed):
    _, target, draft = pair
    reqs = _requests()
    run_engine(target, draft, reqs, RandomPolicy(4, seed=seed), max_slots=4)
    assert [r.output for r in reqs] == references


def test_identical_draft_accepts_everything(pair, references):
    _, target, _ = pair
    reqs = _requests()
    _, outcomes = run_engine(target, target, reqs, StaticPolicy(4), max_slots=3)
    assert [r.output for r in reqs] == references
    for o in outcomes:
        np.testing.assert_array_equal(o.accepted, o.verify)


def test_draft_cache_catches_up_after_plain_iterations():
    target = tiny_model("llama", seed=5)
    draft = perturbed_copy(target, 0.01)
    tc = SlotKVCache.for_model(target, max_slots=2, max_len=64)
    dc = SlotKVCache.for_model(draft, max_slots=2, max_len=64)
    ex = RealDecodeExecutor(target, tc, draft, dc)
    prompt = [3, 1, 4, 1, 5]
    ex.prefill([1], [prompt])
    for _ in range(3):  # plain decoding: the draft falls 4 tokens behind
        ex.begin([1])
        assert ex.verify(np.array([0]))[0] == 0
    assert len(ex.rows[1].draft_pending) == 4
    ex.begin([1])
    ex.draft_step(0, np.array([True]))  # one pass feeds all 4 pending tokens
    assert dc.lengths[1] == len(prompt) + 4 and not ex.rows[1].draft_pending
    ex.draft_step(1, np.array([True]))
    a = int(ex.verify(np.array([2]))[0])
    out = ex.generated(1)
    assert out == greedy_reference(target, prompt, len(out))
    # target holds all but the last emitted token; the draft all but its pending tokens
    assert tc.lengths[1] == len(prompt) + len(out) - 1
    assert dc.lengths[1] == len(prompt) + len(out) - len(ex.rows[1].draft_pending)
    assert ex.rows[1].draft_pending[-1] == out[-1] and len(ex.rows[1].draft_pending) == (2 if a == 2 else 1)


def test_controlled_acceptance_follows_the_matrix():
    target = tiny_model("qwen2", seed=7)
    draft = perturbed_copy(target, 0.5)
    rng = np.random.default_rng(0)
    drawn = []

    def controlled(batch, k):
        conf = rng.uniform(0.1, 1.0, (batch, k))
        accept = rng.random((batch, k)) < 0.7
        drawn.append((conf, accept))
        return conf, accept

    reqs = _requests()[:4]
    ex, outcomes = run_engine(target, draft, reqs, StaticPolicy(3), controlled=controlled)
    assert len(drawn) == len(outcomes)
    for (conf, accept), o in zip(drawn, outcomes):
        np.testing.assert_array_equal(o.accepted, accepted_prefix(accept, o.verify))
        for i in range(conf.shape[0]):
            np.testing.assert_allclose(o.conf[i, :o.drafted[i]], conf[i, :o.drafted[i]])
    total = sum(int(o.accepted.sum()) for o in outcomes)
    assert total > 0  # far more than the real (near-zero) acceptance of this noisy draft
    assert all(len(r.output) == r.new_tokens for r in reqs)


def test_temperature_sampling_is_seeded_and_in_vocab():
    target = tiny_model("llama", seed=2)
    draft = perturbed_copy(target, 0.05)
    runs = []
    for _ in range(2):
        reqs = _requests()[:3]
        run_engine(target, draft, reqs, StaticPolicy(3), temperature=0.8, seed=11)
        runs.append([r.output for r in reqs])
    assert runs[0] == runs[1]
    assert all(0 <= t < target.config.vocab_size for out in runs[0] for t in out)


def test_executor_errors():
    target = tiny_model("llama")
    tc = SlotKVCache.for_model(target, max_slots=2, max_len=16)
    with pytest.raises(ConfigError):
        RealDecodeExecutor(target, tc, target, None)
    ex = RealDecodeExecutor(target, tc)
    with pytest.raises(ConfigError, match="max_len"):
        ex.prefill([0, 1], [[1, 2], list(range(17))])
    assert tc.free_slots == 2 and not ex.rows
    ex.prefill([0], [[1, 2]])
    with pytest.raises(ConfigError, match="already holds"):
        ex.prefill([0], [[1]])
    with pytest.raises(ConfigError, match="holds no request"):
        ex.begin([1])
    ex.begin([0])
    with pytest.raises(ConfigError, match="no draft model"):
        ex.draft_step(0, np.array([True]))
    with pytest.raises(ValueError):
        ex.verify(np.array([1]))  # nothing drafted
    assert ex.verify(np.array([0]))[0] == 0 and len(ex.last_emitted[0]) == 1
