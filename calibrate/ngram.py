"""Measure prompt-lookup (n-gram) acceptance per category on real prompts, on the CPU
(``adaspec-calibrate ngram``).

The target decodes each prompt greedily through realrun's n-gram executor
(``realrun.ngram.NgramDecodeExecutor``, the code ``adaspec-realrun --method ngram`` runs): every
round each request looks up a proposal of at most ``k`` tokens (capped so that full acceptance
never passes ``max_new_tokens``) in its prompt and output so far, the target verifies it in
one pass and the greedy-matching prefix plus one target token is emitted (lossless: the text is
the target's own greedy decoding). A request with no proposal decodes one token that round.
Decoding stops at ``max_new_tokens`` or at the tokenizer's EOS.

Per category (and ``overall``; ``conversation`` pools Spec-Bench's eight MT-Bench
categories, the leaderboard's "conversation" column):

- ``mean_accepted_tokens``: tokens emitted per verification step (accepted drafts + the
  target's token, 1.0 for plain decoding; steps without a proposal count, as in Spec-Bench's
  "#Mean Accepted Tokens"); ``mean_accepted_drafts`` the accepted drafts alone;
- ``proposal_rate``: share of steps that found a proposal; ``mean_proposal_tokens`` its
  mean length over those steps; ``acceptance_rate``: accepted / proposed tokens;
- per position j (0-based): ``conditional_acceptance[j]`` = P(token j accepted | tokens
  0..j-1 accepted and the proposal has a token j), with its sample count, and
  ``acceptance_at_position[j]`` = P(token j accepted) over steps with a proposal (what serving
  engines report as per-position acceptance, e.g. vLLM's accepted-per-position / drafts);
- ``by_ngram``: steps, proposed and accepted tokens per matched n-gram length;
- ``lookup_ms_per_step``: the measured CPU time of the lookups per request and step.

The output is a JSON document (``schema_version``, ``kind = ngram-acceptance``, ``config``,
``inputs`` with sha256, ``seed``, hardware, software, the model's shape and origin) and,
optionally, the per-step log as CSV. ``--acceptance-out`` also fits the simulator's acceptance
model (``calibrate.acceptance_fit``) on the drafted-token log of the rounds that proposed
(confidences are the executor's empirical ones); steps without a proposal are not in that
log, so the fitted model describes a lookup that always finds a proposal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from calibrate.acceptance import Prompt
from realrun.kvcache import SlotKVCache
from realrun.lookup import NgramConfig
from realrun.ngram import NgramDecodeExecutor
from sim.errors import ConfigError

NGRAM_KIND = "ngram-acceptance"
MT_BENCH = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem",
            "humanities")
STEP_COLUMNS = ("request", "category", "step", "proposed", "ngram", "verified", "accepted",
                "emitted", "lookup_s")
# calibrate.acceptance_fit's log columns plus the matched n; ``match`` is known only where
# ``reached`` (verification stops at the first rejection) and False elsewhere.
TOKEN_COLUMNS = ("request", "category", "step", "position", "conf", "match", "reached",
                 "ngram")


@dataclass(frozen=True)
class NgramRun:
    """Per-step and per-drafted-token logs, and each prompt's output (greedy, lossless)."""

    steps: pd.DataFrame
    tokens: pd.DataFrame
    outputs: dict[int, list[int]]


def per_category(prompts: Sequence[Prompt], count: int) -> list[Prompt]:
    """The first ``count`` prompts of every category, categories in order of appearance."""
    if count < 1:
        raise ConfigError(f"prompts per category must be >= 1, got {count}")
    taken: dict[str, int] = {}
    out = []
    for p in prompts:
        if taken.get(p.category, 0) < count:
            taken[p.category] = taken.get(p.category, 0) + 1
            out.append(p)
    return out


@torch.inference_mode()
def run_ngram_acceptance(target: torch.nn.Module, prompts: Sequence[Prompt], *, k: int = 5,
                         max_new_tokens: int = 64, batch_size: int = 4,
                         config: NgramConfig | None = None, eos_token_ids: Sequence[int] = (),
                         progress: bool = False) -> NgramRun:
    """Greedy prompt-lookup decoding of ``prompts`` (module doc); the logs and outputs."""
    if k < 1:
        raise ConfigError(f"draft length k must be >= 1, got {k}")
    if max_new_tokens < 1 or batch_size < 1:
        raise ConfigError("max_new_tokens and batch_size must be >= 1")
    if not prompts:
        raise ConfigError("no prompts to measure prompt lookup on")
    config = config or NgramConfig()
    limit = getattr(target.config, "max_position_embeddings", 1 << 30)
    max_len = max(len(p.token_ids) for p in prompts) + max_new_tokens + 1
    if max_len > limit:
        raise ConfigError(f"prompts + {max_new_tokens} new tokens need {max_len} positions, "
                          f"the model allows {limit}")
    slots = min(batch_size, len(prompts))
    cache = SlotKVCache.for_model(target, max_slots=slots, max_len=max_len)
    # One executor for the whole run: its confidence estimate learns across prompts, as in
    # a serving run.
    ex = NgramDecodeExecutor(target, cache, config)
    eos = {int(t) for t in eos_token_ids}
    steps: dict[str, list] = {c: [] for c in STEP_COLUMNS}
    tokens: dict[str, list] = {c: [] for c in TOKEN_COLUMNS}
    outputs: dict[int, list[int]] = {}
    from tqdm import tqdm

    bar = tqdm(total=len(prompts), desc="calibrate ngram", unit="prompt", disable=not progress)
    for start in range(0, len(prompts), slots):
        chunk = list(prompts[start:start + slots])
        rows = list(range(len(chunk)))
        first = ex.prefill(rows, [list(p.token_ids) for p in chunk])
        out = {r: [int(t)] for r, t in zip(rows, first)}
        done = {r for r in rows if first[r] in eos or max_new_tokens <= 1}
        round_no = {r: 0 for r in rows}
        while True:
            active = [r for r in rows if r not in done]
            if not active:
                break
            ex.begin(active)
            caps = np.array([min(k, max_new_tokens - len(out[r]) - 1) for r in active])
            lengths = ex.propose(np.maximum(caps, 0))
            for step in range(int(lengths.max(initial=0))):
                ex.draft_step(step, lengths > step)
            lookup_s = ex.draft_cpu_s / len(active)
            accepted = ex.verify(lengths)
            for i, r in enumerate(active):
                p = chunk[r]
                a, d, n = int(accepted[i]), int(lengths[i]), ex.matched_n[i]
                emitted = ex.last_emitted[i]
                for name, value in (("request", p.id), ("category", p.category),
                                    ("step", round_no[r]), ("proposed", d), ("ngram", n),
                                    ("verified", d), ("accepted", a), ("emitted", len(emitted)),
                                    ("lookup_s", lookup_s)):
                    steps[name].append(value)
                confs = ex.confidences[i]
                for j in range(d):
                    for name, value in (("request", p.id), ("category", p.category),
                                        ("step", round_no[r]), ("position", j),
                                        ("conf", confs[j]), ("match", j < a),
                                        ("reached", j <= a), ("ngram", n)):
                        tokens[name].append(value)
                round_no[r] += 1
                out[r].extend(emitted)
                if len(out[r]) >= max_new_tokens or eos.intersection(emitted):
                    done.add(r)
        for r in rows:
            outputs[chunk[r].id] = out[r][:max_new_tokens]
            ex.release(r)
        bar.update(len(chunk))
    bar.close()
    return NgramRun(pd.DataFrame(steps), pd.DataFrame(tokens), outputs)


def _position_stats(steps: pd.DataFrame, k: int) -> dict[str, list]:
    proposed = steps["proposed"].to_numpy(dtype=np.int64)
    accepted = steps["accepted"].to_numpy(dtype=np.int64)
    with_proposal = int((proposed > 0).sum())
    conditional, judged_n, at_position = [], [], []
    for j in range(k):
        judged = (proposed > j) & (accepted >= j)
        hits = int((accepted[judged] > j).sum())
        n = int(judged.sum())
        conditional.append(round(hits / n, 6) if n else None)
        judged_n.append(n)
        at_position.append(round(int((accepted > j).sum()) / with_proposal, 6)
                           if with_proposal else None)
    return {"conditional_acceptance": conditional, "conditional_samples": judged_n,
            "acceptance_at_position": at_position}


def category_stats(steps: pd.DataFrame, k: int) -> dict[str, Any]:
    """The statistics of one group of steps (module doc)."""
    proposed = steps["proposed"].to_numpy(dtype=np.int64)
    accepted = steps["accepted"].to_numpy(dtype=np.int64)
    emitted = steps["emitted"].to_numpy(dtype=np.int64)
    has = proposed > 0
    by_n = {}
    for n, rows in steps[has].groupby("ngram"):
        by_n[str(int(n))] = {"steps": int(len(rows)), "proposed": int(rows["proposed"].sum()),
                             "accepted": int(rows["accepted"].sum())}
    return {
        "requests": int(steps["request"].nunique()),
        "steps": int(len(steps)),
        "generated_tokens": int(emitted.sum()),
        "mean_accepted_tokens": round(float(emitted.mean()), 6) if len(steps) else None,
        "mean_accepted_drafts": round(float(accepted.mean()), 6) if len(steps) else None,
        "proposal_rate": round(float(has.mean()), 6) if len(steps) else None,
        "mean_proposal_tokens": round(float(proposed[has].mean()), 6) if has.any() else None,
        "acceptance_rate": (round(float(accepted.sum() / proposed.sum()), 6)
                            if proposed.sum() else None),
        **_position_stats(steps, k),
        "by_ngram": by_n,
        "lookup_ms_per_step": (round(float(steps["lookup_s"].mean()) * 1e3, 4)
                               if len(steps) else None),
    }


def summarize_run(steps: pd.DataFrame, k: int) -> dict[str, Any]:
    """``{"overall": ..., "categories": {...}, "groups": {"conversation": ...}}``."""
    if steps.empty:
        raise ConfigError("no decode steps were run")
    cats = {str(c): category_stats(rows, k) for c, rows in steps.groupby("category", sort=False)}
    out: dict[str, Any] = {"overall": category_stats(steps, k), "categories": cats, "groups": {}}
    conversation = steps[steps["category"].isin(MT_BENCH)]
    if not conversation.empty:
        out["groups"]["conversation"] = {"categories": [c for c in MT_BENCH if c in cats],
                                         **category_stats(conversation, k)}
    return out


def format_summary(result: dict[str, Any]) -> str:
    """One line per category: tokens per step, proposal rate, per-position acceptance."""
    lines = [f"{'category':<16}{'req':>4}{'steps':>7}{'tok/step':>9}{'proposed':>9}"
             f"{'accept':>8}  acceptance at positions 1..k"]

    def line(name: str, s: dict[str, Any]) -> str:
        def f(v, fmt=".3f"):
            return "-" if v is None else format(v, fmt)
        pos = " / ".join(f(v, ".2f") for v in s["acceptance_at_position"])
        return (f"{name:<16}{s['requests']:>4}{s['steps']:>7}{f(s['mean_accepted_tokens']):>9}"
                f"{f(s['proposal_rate']):>9}{f(s['acceptance_rate']):>8}  {pos}")

    for name, s in result["categories"].items():
        lines.append(line(name, s))
    for name, s in result["groups"].items():
        lines.append(line(name, s))
    lines.append(line("overall", result["overall"]))
    return "\n".join(lines)


def build_document(*, run: NgramRun, k: int, config: dict[str, Any], inputs: dict[str, Any],
                   seed: int, hardware: dict[str, Any], software: dict[str, Any],
                   model: dict[str, Any], wall_s: float,
                   warning: str | None = None) -> dict[str, Any]:
    """The ``ngram-acceptance`` JSON document (module doc)."""
    from datetime import datetime, timezone

    from sim import SCHEMA_VERSION, __version__

    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "kind": NGRAM_KIND,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tool": f"adaspec-calibrate ngram {__version__}",
        "config": config, "inputs": inputs, "seed": seed, "hardware": hardware,
        "software": software, "models": {"target": model}, "wall_s": round(wall_s, 3),
        "definitions": {
            "mean_accepted_tokens": "tokens emitted per verification step (accepted drafts + "
                                    "1), steps without a proposal included",
            "conditional_acceptance": "P(position j accepted | 0..j-1 accepted, proposal "
                                      "longer than j)",
            "acceptance_at_position": "P(position j accepted) over steps with a proposal",
        },
        **summarize_run(run.steps, k),
    }
    if warning:
        doc["warning"] = warning
    return doc
