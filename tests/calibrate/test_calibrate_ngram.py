"""adaspec-calibrate ngram: prompt-lookup acceptance per category on a tiny model (the code
path of the CPU measurement on the real target): lossless decoding, the statistics'
definitions, the document (schema version, config, input hashes, seed), the optional
acceptance-model fit and one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "realrun"))

from realrun_helpers import VOCAB, greedy_reference, lookup_friendly_model  # noqa: E402

from calibrate.acceptance import Prompt  # noqa: E402
from calibrate.cli import main as calibrate_main  # noqa: E402
from calibrate.ngram import (NGRAM_KIND, category_stats, per_category,  # noqa: E402
                             run_ngram_acceptance, summarize_run)
from realrun.lookup import NgramConfig  # noqa: E402
from sim.errors import ConfigError  # noqa: E402


def _prompts(n_per_cat: int = 3) -> list[Prompt]:
    rng = np.random.default_rng(4)
    out = []
    for c, cat in enumerate(("summarization", "translation", "writing", "coding")):
        for i in range(n_per_cat):
            base = rng.integers(0, VOCAB, 5).tolist()
            # summarization-like prompts repeat themselves (a copy source), others do not
            ids = base * 3 if cat == "summarization" else rng.integers(0, VOCAB, 12).tolist()
            out.append(Prompt(100 * c + i, cat, tuple(ids)))
    return out


@pytest.fixture(scope="module")
def model():
    return lookup_friendly_model()


@pytest.fixture(scope="module")
def run(model):
    return run_ngram_acceptance(model, _prompts(), k=4, max_new_tokens=30, batch_size=3,
                                config=NgramConfig(1, 3), eos_token_ids=())


def test_decoding_is_the_targets_greedy_text(run, model):
    for p in _prompts():
        assert run.outputs[p.id] == greedy_reference(model, list(p.token_ids), 30), p.id


def test_statistics_follow_their_definitions(run):
    steps = run.steps
    assert set(steps["category"]) == {"summarization", "translation", "writing", "coding"}
    assert (steps["accepted"] <= steps["proposed"]).all()
    assert (steps["emitted"] == steps["accepted"] + 1).all()
    assert (steps["proposed"] <= 4).all() and (steps["proposed"] > 0).any()
    assert 0 < steps["accepted"].sum() < steps["proposed"].sum()
    # every prompt's tokens are counted once: the first comes from the prefill
    per_request = steps.groupby("request")["emitted"].sum()
    assert (per_request == 29).all()
    stats = category_stats(steps, 4)
    assert stats["mean_accepted_tokens"] == pytest.approx(steps["emitted"].mean(), abs=1e-6)
    assert stats["proposal_rate"] == pytest.approx((steps["proposed"] > 0).mean(), abs=1e-6)
    with_proposal = steps[steps["proposed"] > 0]
    for j in range(4):
        reached = with_proposal[(with_proposal["proposed"] > j) & (with_proposal["accepted"] >= j)]
        if len(reached):
            expected = (reached["accepted"] > j).mean()
            assert stats["conditional_acceptance"][j] == pytest.approx(expected, abs=1e-6)
        assert stats["acceptance_at_position"][j] == pytest.approx(
            (with_proposal["accepted"] > j).mean(), abs=1e-6)
    # acceptance at position j never rises with j
    at = [v for v in stats["acceptance_at_position"] if v is not None]
    assert all(a >= b for a, b in zip(at, at[1:]))
    assert sum(v["steps"] for v in stats["by_ngram"].values()) == int((steps["proposed"] > 0).sum())
    tokens = run.tokens
    assert len(tokens) == steps["proposed"].sum()
    assert tokens[tokens["reached"]]["match"].sum() == steps["accepted"].sum()


def test_summary_groups_conversation_categories(run):
    summary = summarize_run(run.steps, 4)
    assert set(summary["categories"]) == {"summarization", "translation", "writing", "coding"}
    conv = summary["groups"]["conversation"]
    assert conv["categories"] == ["writing", "coding"] and conv["requests"] == 6
    assert summary["overall"]["requests"] == 12
    # the repeating prompts are where lookup pays
    cats = summary["categories"]
    assert cats["summarization"]["mean_accepted_tokens"] > cats["translation"]["mean_accepted_tokens"]


def test_per_category_takes_the_first_n():
    prompts = _prompts(3)
    picked = per_category(prompts, 2)
    assert len(picked) == 8 and [p.id for p in picked[:2]] == [0, 1]
    with pytest.raises(ConfigError):
        per_category(prompts, 0)


def test_cli_writes_the_document(tmp_path, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt_token_ids": list(p.token_ids),
                                           "category": p.category, "id": p.id}) + "\n"
                               for p in _prompts(2)), encoding="utf-8")
    out, log, acc = tmp_path / "ngram.json", tmp_path / "steps.csv", tmp_path / "acc.json"
    rc = calibrate_main(["ngram", "--target", "random:tiny-llama", "--prompts", str(prompts),
                         "--per-category", "1", "--k", "3", "--max-new-tokens", "24",
                         "--threads", "1", "--seed", "7", "--out", str(out), "--log-out",
                         str(log), "--acceptance-out", str(acc), "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0 and "overall" in printed and "wrote" in printed
    doc = json.loads(out.read_text())
    assert doc["kind"] == NGRAM_KIND and doc["schema_version"] >= 2 and doc["seed"] == 7
    assert doc["inputs"]["prompts"]["sha256"] and doc["config"]["k"] == 3
    assert doc["inputs"]["target"] == {"spec": "random:tiny-llama", "random_weights": True}
    assert doc["config"]["ngram"]["max_n"] == 3 and doc["config"]["per_category"] == 1
    assert doc["models"]["target"]["random_weights"] and "random weights" in doc["warning"]
    assert doc["hardware"]["cpu"] and doc["software"]["torch"]
    assert set(doc["categories"]) == {"summarization", "translation", "writing", "coding"}
    for block in doc["categories"].values():
        assert len(block["acceptance_at_position"]) == 3 and block["requests"] == 1
    steps = pd.read_csv(log)
    assert len(steps) == doc["overall"]["steps"]
    if acc.exists():  # written when some round proposed
        from sim.acceptance.io import load_acceptance
        assert load_acceptance(acc).name == "acc"


def test_cli_errors_are_one_line(tmp_path, capsys):
    base = ["ngram", "--target", "random:tiny-llama", "--out", str(tmp_path / "x.json")]
    assert calibrate_main([*base, "--k", "0"]) != 0
    assert calibrate_main([*base, "--ngram-min", "3", "--ngram-max", "2"]) != 0
    assert calibrate_main([*base, "--prompts", str(tmp_path / "missing.jsonl")]) != 0
    err = capsys.readouterr().err
    assert "--k must be >= 1" in err and "min_n 3 exceeds max_n 2" in err and "missing" in err
    assert all(len(line) < 300 for line in err.splitlines())
    with pytest.raises(SystemExit):  # no draft model in this subcommand
        calibrate_main([*base, "--draft", "random:tiny-llama"])
