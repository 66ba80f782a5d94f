"""Log real draft/target agreement for acceptance calibration (DESIGN.md §5, §7).

The target/draft pair runs greedy speculative decoding with a fixed draft length ``k`` on a
batch of prompts through realrun's forward passes (``prefill``/``decode``/``truncate``): each
round the draft proposes k tokens one step at a time (recording the probability it gives its
own token), the target scores all k + 1 positions in one pass, and the accepted prefix (drafted
tokens equal to the target's greedy token) plus the target's bonus token are emitted. Every
drafted token is logged, accepted or not: request, category, round, draft position,
confidence, whether it matches the target, whether it was reached (all earlier positions
matched). ``calibrate.acceptance_fit`` turns the log into an acceptance model.

Prompts: Spec-Bench (``question_id, category, turns``; the first turn, through the tokenizer's
chat template when it has one) needs a real model with a tokenizer; a JSONL of
``{"prompt_token_ids": [...], "category": ...}`` works with any model, including the tiny
random ones of the tests. ``--limit`` takes prompts round-robin over categories.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import torch

from realrun.forward import allocate, decode, free, prefill, truncate
from realrun.kvcache import SlotKVCache
from realrun.prompts import encode, first_turn, read_prompt_records
from sim.errors import ConfigError, InputError



@dataclass(frozen=True)
class Prompt:
    """One calibration prompt: its id, category and token ids."""

    id: int
    category: str
    token_ids: tuple[int, ...]


def default_prompts_path() -> Path:
    """The Spec-Bench questions shipped as package data (``sim/workload/data``)."""
    from sim.workload.lengths import data_path
    path = data_path("spec-bench")
    if not path.is_file():
        raise ConfigError(f"Spec-Bench prompts not found at {path} (the installed package is "
                          f"incomplete); pass --prompts FILE")
    return path


def _round_robin(records: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    by_cat: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_cat.setdefault(rec["category"], []).append(rec)
    out: list[dict[str, Any]] = []
    queues = list(by_cat.values())
    while queues and (limit is None or len(out) < limit):
        for queue in queues:
            if queue and (limit is None or len(out) < limit):
                out.append(queue.pop(0))
        queues = [q for q in queues if q]
    return out


def load_prompts(path: str | Path, *, tokenizer: Any | None, limit: int | None = None,
                 max_prompt_tokens: int = 512) -> list[Prompt]:
    """Prompts from a JSONL file (Spec-Bench turns or pre-tokenised ``prompt_token_ids``)."""
    p = Path(path)
    records = []
    for number, rec in read_prompt_records(p):
        if "prompt_token_ids" in rec:
            ids = rec["prompt_token_ids"]
            if not isinstance(ids, list) or not ids or not all(isinstance(t, int) and t >= 0 for t in ids):
                raise InputError("prompt_token_ids must be a non-empty list of token ids",
                                 path=str(p), line=number, column="prompt_token_ids")
            text = None
        else:
            text = first_turn(rec)
            if text is None:
                raise InputError("expected 'turns' (Spec-Bench), 'prompt' or 'prompt_token_ids'",
                                 path=str(p), line=number)
            ids = None
        records.append({"id": rec.get("question_id", rec.get("id", number)), "line": number,
                        "category": str(rec.get("category", "") or ""), "ids": ids, "text": text})
    prompts = []
    for rec in _round_robin(records, limit):
        ids = rec["ids"]
        if ids is None:
            if tokenizer is None:
                raise ConfigError(f"{p}: text prompts need a tokenizer; random-weight models have "
                                  "none (use real models or prompt_token_ids)")
            ids = encode(tokenizer, rec["text"])
        prompts.append(Prompt(int(rec["id"]), rec["category"], tuple(ids[-max_prompt_tokens:])))
    return prompts


@dataclass(frozen=True)
class AcceptanceRun:
    """The drafted-token log and each prompt's generated tokens (greedy, lossless)."""

    log: pd.DataFrame
    outputs: dict[int, list[int]]


class _Row:
    """One prompt being decoded: pending tokens the draft has not seen, output so far."""

    def __init__(self, prompt: Prompt, t_slot: int, d_slot: int) -> None:
        self.prompt = prompt
        self.t_slot = t_slot
        self.d_slot = d_slot
        self.pending: list[int] = []
        self.output: list[int] = []
        self.round = 0
        self.done = False


def _log_round(rows: list[_Row], drafts: torch.Tensor, confs: torch.Tensor,
               matches: torch.Tensor, log: dict[str, list]) -> None:
    k = drafts.shape[1]
    for b, row in enumerate(rows):
        reached = True
        for j in range(k):
            match = bool(matches[b, j])
            log["request"].append(row.prompt.id)
            log["category"].append(row.prompt.category)
            log["step"].append(row.round)
            log["position"].append(j)
            log["conf"].append(float(confs[b, j]))
            log["match"].append(match)
            log["reached"].append(reached)
            reached = reached and match


def _speculate(target, draft, t_cache, d_cache, rows: list[_Row], k: int,
               log: dict[str, list]) -> list[list[int]]:
    """One greedy round for ``rows``; returns the tokens each row emits."""
    batch = len(rows)
    # Draft step 0 feeds the 1-2 tokens the draft has not seen; later steps one token.
    width = max(len(r.pending) for r in rows)
    ids = torch.zeros((batch, width), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, :len(r.pending)] = torch.tensor(r.pending)
    d_slots = [r.d_slot for r in rows]
    logits = decode(draft, d_cache, d_slots, ids, [len(r.pending) for r in rows])
    last = torch.tensor([len(r.pending) - 1 for r in rows])
    step_logits = logits[torch.arange(batch), last]
    drafts, confs = [], []
    for step in range(k):
        probs = torch.softmax(step_logits, dim=-1)
        conf, token = probs.max(dim=-1)
        drafts.append(token)
        confs.append(conf)
        if step + 1 < k:
            step_logits = decode(draft, d_cache, d_slots, token[:, None])[:, 0]
    drafted = torch.stack(drafts, dim=1)  # [B, k]
    confidences = torch.stack(confs, dim=1)
    last_tok = torch.tensor([r.pending[-1] for r in rows])
    verify_ids = torch.cat([last_tok[:, None], drafted], dim=1)  # [B, k+1]
    t_before = [t_cache.lengths[r.t_slot] for r in rows]
    greedy = decode(target, t_cache, [r.t_slot for r in rows], verify_ids).argmax(dim=-1)
    matches = drafted == greedy[:, :k]
    _log_round(rows, drafted, confidences, matches, log)
    emitted = []
    for b, r in enumerate(rows):
        a = int(matches[b].long().cumprod(0).sum())
        out = drafted[b, :a].tolist() + [int(greedy[b, a])]
        truncate(t_cache, [r.t_slot], [t_before[b] + 1 + a])
        # The draft saw the pending tokens and drafts 1..k-1; keep what was accepted.
        d_keep = d_cache.lengths[r.d_slot] - (k - 1) + min(a, k - 1)
        truncate(d_cache, [r.d_slot], [d_keep])
        r.pending = ([int(drafted[b, k - 1])] if a == k else []) + [out[-1]]
        emitted.append(out)
        r.round += 1
    return emitted


@torch.inference_mode()
def run_acceptance(target: torch.nn.Module, draft: torch.nn.Module, prompts: Sequence[Prompt], *,
                   k: int = 5, max_new_tokens: int = 128, batch_size: int = 8,
                   eos_token_ids: Sequence[int] = (), progress: bool = False) -> AcceptanceRun:
    """Greedy speculative decoding over ``prompts``: the drafted-token log (see the module
    docstring) and the outputs, which equal the target's own greedy decoding."""
    if k < 1:
        raise ConfigError(f"draft length k must be >= 1, got {k}")
    if not prompts:
        raise ConfigError("no prompts to calibrate acceptance on")
    limits = [getattr(m.config, "max_position_embeddings", 1 << 30) for m in (target, draft)]
    max_len = max(len(p.token_ids) for p in prompts) + max_new_tokens + k + 2
    if max_len > min(limits):
        raise ConfigError(f"prompts + {max_new_tokens} new tokens need {max_len} positions, "
                          f"the models allow {min(limits)}")
    slots = min(batch_size, len(prompts))
    t_cache = SlotKVCache.for_model(target, max_slots=slots, max_len=max_len)
    d_cache = SlotKVCache.for_model(draft, max_slots=slots, max_len=max_len)
    eos = set(int(t) for t in eos_token_ids)
    log: dict[str, list] = {c: [] for c in ("request", "category", "step", "position", "conf",
                                            "match", "reached")}
    outputs: dict[int, list[int]] = {}
    from tqdm import tqdm

    bar = tqdm(total=len(prompts), desc="calibrate acceptance", unit="prompt", disable=not progress)
    for start in range(0, len(prompts), slots):
        chunk = prompts[start:start + slots]
        rows = [_Row(p, allocate(t_cache), allocate(d_cache)) for p in chunk]
        token_lists = [list(p.token_ids) for p in chunk]
        first = prefill(target, t_cache, [r.t_slot for r in rows], token_lists).argmax(dim=-1)
        prefill(draft, d_cache, [r.d_slot for r in rows], token_lists)
        for r, tok in zip(rows, first.tolist()):
            r.pending = [int(tok)]
            r.output = [int(tok)]
            r.done = int(tok) in eos or max_new_tokens <= 1
        while True:
            active = [r for r in rows if not r.done]
            if not active:
                break
            for r, out in zip(active, _speculate(target, draft, t_cache, d_cache, active, k, log)):
                r.output.extend(out)
                if len(r.output) >= max_new_tokens or eos.intersection(out):
                    r.done = True
        for r in rows:
            outputs[r.prompt.id] = r.output[:max_new_tokens]
            free(t_cache, r.t_slot)
            free(d_cache, r.d_slot)
        bar.update(len(chunk))
    bar.close()
    return AcceptanceRun(pd.DataFrame(log), outputs)
