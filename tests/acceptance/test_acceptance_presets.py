"""Presets: the Spec-Bench vicuna-68m numbers, fixed:ALPHA, and make_acceptance errors.

Spec-Bench (hemingkx/Spec-Bench Leaderboard.md @fd2c1cd, A100, Vicuna-7B-v1.3, SpS with
vicuna-68m, batch 1) reports 2.28 mean accepted tokens per step: a ratio of sums over every
step of every answer. The preset is placed so that the simulator's Spec-Bench workload at
batch 1 and static k = 5 reaches it; checked here analytically (independently of the
preset's own fit inputs: categories counted from the shipped question file) and by stepping
requests through the model's draws.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from sim.acceptance.base import FixedAcceptance, accepted_prefix
from sim.acceptance.finite_length import lognormal_length_pmf, workload_tokens_per_step
from sim.acceptance.model import ParametricAcceptance
from sim.acceptance.presets import (
    SPEC_BENCH_CATEGORY_TASK,
    SPEC_BENCH_QUESTIONS,
    SPEC_BENCH_SPS_SPEEDUP,
    make_acceptance,
    preset_names,
    spec_bench_targets,
)
from sim.errors import ConfigError
from sim.workload.lengths import MAX_OUTPUT_TOKENS, SPEC_BENCH_OUTPUT, traces_dir

K = 5


def _question_counts() -> Counter:
    path = traces_dir() / "spec-bench" / "origin-spec-bench.jsonl"
    with open(path, encoding="utf-8") as f:
        return Counter(json.loads(line)["category"] for line in f if line.strip())


def _category_tokens_per_step(model, categories) -> float:
    """Analytic batch-1 tokens per decode step at static k = 5 of these Spec-Bench
    categories (one request per question, the length source's output model)."""
    counts = _question_counts()
    tokens = steps = 0.0
    for cat in categories:
        prof = model.category_profile(cat)
        pmf = lognormal_length_pmf(*SPEC_BENCH_OUTPUT[cat], MAX_OUTPUT_TOKENS)
        decode = float(pmf @ np.maximum(np.arange(pmf.size) - 1, 0))
        tps = workload_tokens_per_step([prof.mean], prof.concentration, K, [(1.0, pmf)],
                                       model.params.position_decay)[0]
        tokens += counts[cat] * decode
        steps += counts[cat] * decode / tps
    return tokens / steps


def test_spec_bench_cites_the_current_leaderboard():
    model = make_acceptance("spec-bench-vicuna-68m")
    assert isinstance(model, ParametricAcceptance)
    assert "spec-bench-vicuna-68m" in preset_names()
    assert "Spec-Bench" in model.params.source and "@fd2c1cd" in model.params.source
    assert model.params.meta["leaderboard_commit"].startswith("fd2c1cd7d220")
    # SpS row of the A100 / Vicuna-7B-v1.3 table at that commit
    assert SPEC_BENCH_SPS_SPEEDUP == {"multi_turn": 1.66, "translation": 1.13,
                                      "summarization": 1.71, "qa": 1.50,
                                      "math_reasoning": 1.47, "rag": 1.66}
    assert dict(_question_counts()) == SPEC_BENCH_QUESTIONS


def test_spec_bench_batch1_tokens_per_step_at_k5():
    model = make_acceptance("spec-bench-vicuna-68m")
    overall = _category_tokens_per_step(model, SPEC_BENCH_OUTPUT)
    assert overall == pytest.approx(2.28, rel=0.02)
    assert overall == pytest.approx(2.28, abs=0.005)  # the fit itself is exact to rounding
    # a category-less request behaves like an average Spec-Bench request
    default = model.category_profile("")
    mix = [(float(n), lognormal_length_pmf(*SPEC_BENCH_OUTPUT[c], MAX_OUTPUT_TOKENS))
           for c, n in _question_counts().items()]
    assert workload_tokens_per_step([default.mean], default.concentration, K, mix,
                                    model.params.position_decay)[0] == pytest.approx(2.28, abs=0.005)


def test_spec_bench_tasks_follow_the_published_speedups():
    model = make_acceptance("spec-bench-vicuna-68m")
    tasks = {task: [c for c in SPEC_BENCH_OUTPUT if SPEC_BENCH_CATEGORY_TASK[c] == task]
             for task in SPEC_BENCH_SPS_SPEEDUP}
    tps = {task: _category_tokens_per_step(model, cats) for task, cats in tasks.items()}
    for task, speedup in SPEC_BENCH_SPS_SPEEDUP.items():
        # tokens per step relative to each other as the speedups are
        ratio = tps[task] / tps["multi_turn"]
        assert ratio == pytest.approx(speedup / SPEC_BENCH_SPS_SPEEDUP["multi_turn"], abs=0.005)
        assert tps[task] == pytest.approx(spec_bench_targets()[task], abs=0.005)
    assert min(tps, key=tps.get) == "translation"
    assert max(tps, key=tps.get) == "summarization"


def test_spec_bench_preset_matches_stepped_draws():
    """Step 7,680 batch-1 requests (16 per question) through the model's draws as the server
    does (draft min(k, remaining - 1), emit the accepted prefix + 1): within 2 % of 2.28."""
    model = make_acceptance("spec-bench-vicuna-68m")
    counts = _question_counts()
    rng = np.random.default_rng(20)
    cats = [c for c, n in counts.items() for _ in range(16 * n)]
    outputs = np.concatenate([
        np.clip(np.rint(SPEC_BENCH_OUTPUT[c][0]
                        * np.exp(SPEC_BENCH_OUTPUT[c][1] * rng.standard_normal(16 * n))),
                1, MAX_OUTPUT_TOKENS) for c, n in counts.items()]).astype(np.int64)
    levels = model.request_levels(cats, rng)
    remaining = outputs - 1
    tokens, steps = int(remaining.sum()), 0
    while (active := remaining > 0).any():
        idx = np.flatnonzero(active)
        _, accept = model.draw(levels[idx], K, rng)
        remaining[idx] -= accepted_prefix(accept, np.minimum(K, remaining[idx] - 1)) + 1
        steps += idx.size
    assert tokens / steps == pytest.approx(2.28, rel=0.02)


def test_mt_bench_categories_share_the_multi_turn_level():
    model = make_acceptance("spec-bench-vicuna-68m")
    mt = {model.category_profile(c).mean for c, t in SPEC_BENCH_CATEGORY_TASK.items()
          if t == "multi_turn"}
    assert len(mt) == 1
    for cat in ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem",
                "humanities"):
        assert SPEC_BENCH_CATEGORY_TASK[cat] == "multi_turn"
    assert model.category_profile("") == model.category_profile("azure-unknown")


def test_fixed_preset():
    model = make_acceptance("fixed:0.7")
    assert isinstance(model, FixedAcceptance) and model.alpha == 0.7 and model.name == "fixed:0.7"
    conf, accept = model.draw(np.full(20_000, 0.7), 2, np.random.default_rng(0))
    assert abs(accept.mean() - 0.7) < 0.01


@pytest.mark.parametrize("name", ["fixed:", "fixed:abc", "fixed:1.5", "fixed:-0.1", "fixed:nan",
                                  "no-such-model", ""])
def test_bad_names(name):
    with pytest.raises(ConfigError) as err:
        make_acceptance(name)
    assert "\n" not in str(err.value)


def test_spec_bench_fit_is_cached_and_equal_to_a_fresh_fit(tmp_path, monkeypatch):
    """The preset's fit is read back from the table cache, bit for bit what fitting gives."""
    from sim.acceptance import presets, table_cache

    monkeypatch.setenv(table_cache.ENV_VAR, "off")
    fresh = presets.spec_bench_vicuna_68m()
    monkeypatch.setenv(table_cache.ENV_VAR, str(tmp_path))
    assert presets.spec_bench_vicuna_68m() == fresh  # built and stored
    assert len(list(tmp_path.glob("acceptance-*.npz"))) == 1
    monkeypatch.setattr(presets, "_spec_bench_fit", lambda: pytest.fail("fitted again"))
    assert presets.spec_bench_vicuna_68m() == fresh  # read back
