"""Prompt token ids for the requests the real engine serves.

A trace gives each request a prompt *length*; the real engine needs token ids. Two sources:

- ``synthetic``: ids drawn uniformly from the model's vocabulary with a generator seeded by
  ``(seed, request id)``, exactly ``prompt_tokens`` long (random-weight models have no
  tokenizer; their latency does not depend on the ids).
- Spec-Bench text (``spec-bench`` or a JSONL path with ``turns``/``prompt`` per line): the
  request gets a real prompt of its category (round-robin within the category in file order;
  all prompts in turn when the category is absent or not in the file), tokenised with the
  model's tokenizer (its chat template when it has one). The request's ``prompt_tokens`` then
  becomes the *actual tokenised length*, not the trace's.

``max_prompt_tokens`` keeps a prompt's last N ids (the chat template's generation prompt stays
at the end); ``max_output_tokens`` caps each output length. The adjusted requests are what the
run serves and what its ``requests.csv`` records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sim.errors import ConfigError, InputError
from sim.workload.request import Workload

SOURCES = ("auto", "synthetic", "spec-bench")


@dataclass(frozen=True)
class ServedWorkload:
    """The workload as served (adjusted lengths) and each request's prompt ids by id."""

    workload: Workload
    prompt_ids: Mapping[int, tuple[int, ...]]
    prompt_source: str  # "synthetic" or "spec-bench:<path>"


def synthetic_ids(request_id: int, length: int, vocab_size: int, seed: int) -> tuple[int, ...]:
    """``length`` token ids in ``[0, vocab_size)`` from a generator seeded by (seed, id)."""
    rng = np.random.default_rng([int(seed), int(request_id), 0x9E37])
    return tuple(int(t) for t in rng.integers(0, vocab_size, size=int(length)))


def read_prompt_records(path: str | Path) -> list[tuple[int, dict]]:
    """(1-based line, object) of each non-blank line of a prompts JSONL file; one-line
    InputError for a missing or unreadable file, bad JSON, a non-object line or no lines."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError("prompts file not found", path=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read prompts file ({exc.__class__.__name__})", path=str(p)) from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg})", path=str(p), line=number) from None
        if not isinstance(rec, dict):
            raise InputError("each line must be a JSON object", path=str(p), line=number)
        records.append((number, rec))
    if not records:
        raise InputError("prompts file has no prompts", path=str(p))
    return records


def first_turn(rec: dict) -> str | None:
    """The text a prompt record asks: Spec-Bench's first turn, or ``prompt``."""
    turns = rec.get("turns") or ([rec["prompt"]] if "prompt" in rec else None)
    if not turns or not isinstance(turns[0], str) or not turns[0].strip():
        return None
    return turns[0]


def read_text_prompts(path: str | Path) -> list[tuple[str, str]]:
    """(category, text) of each line of a Spec-Bench-style JSONL (first turn, or ``prompt``)."""
    out = []
    for number, rec in read_prompt_records(path):
        text = first_turn(rec)
        if text is None:
            raise InputError("expected a non-empty 'turns' list (Spec-Bench) or 'prompt'",
                             path=str(path), line=number)
        out.append((str(rec.get("category", "") or ""), text))
    return out


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a user message (through the chat template when the tokenizer has one)."""
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                            add_generation_prompt=True, tokenize=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return [int(t) for t in ids]
    return [int(t) for t in tokenizer(text)["input_ids"]]


def check_unique_ids(workload: Workload) -> None:
    """The real engine keys each request's prompt, acceptance level and outcome by its id, so
    every request needs its own (the simulator reads a request by its position and allows
    repeats, e.g. two traces merged); refuse repeated ids in one line."""
    ids = np.fromiter((r.id for r in workload.requests), np.int64, len(workload.requests))
    values, counts = np.unique(ids, return_counts=True)
    if values.size < ids.size:
        repeated = values[counts > 1]
        raise ConfigError(f"the real engine needs a distinct id per request: "
                          f"{repeated.size} ids are repeated (e.g. id {int(repeated[0])}, "
                          f"{int(counts[counts > 1][0])} requests); renumber the workload")


def _cap_output(n: int, max_output_tokens: int | None) -> int:
    return n if max_output_tokens is None else min(n, max_output_tokens)


def build_prompts(workload: Workload, *, source: str = "auto", tokenizer: Any | None = None,
                  vocab_size: int, seed: int = 0, max_prompt_tokens: int | None = None,
                  max_output_tokens: int | None = None) -> ServedWorkload:
    """Token ids for every request and the workload with its served lengths (module doc).

    ``source``: ``auto`` (Spec-Bench when a tokenizer is given, else synthetic),
    ``synthetic``, ``spec-bench`` or a JSONL path.
    """
    for name, cap in (("max_prompt_tokens", max_prompt_tokens), ("max_output_tokens", max_output_tokens)):
        if cap is not None and cap < 1:
            raise ConfigError(f"{name} must be >= 1, got {cap}")
    check_unique_ids(workload)
    if vocab_size < 1:
        raise ConfigError(f"vocab_size must be >= 1, got {vocab_size}")
    if source == "auto":
        source = "spec-bench" if tokenizer is not None else "synthetic"
    requests, ids = [], {}
    if source == "synthetic":
        for r in workload.requests:
            length = r.prompt_tokens if max_prompt_tokens is None else min(r.prompt_tokens, max_prompt_tokens)
            ids[r.id] = synthetic_ids(r.id, length, vocab_size, seed)
            requests.append(replace(r, prompt_tokens=length,
                                    output_tokens=_cap_output(r.output_tokens, max_output_tokens)))
        label = "synthetic"
    else:
        if tokenizer is None:
            raise ConfigError("text prompts need a tokenizer; random-weight models have none "
                              "(use --prompts synthetic)")
        if source == "spec-bench":
            from sim.workload.lengths import data_path
            path = data_path("spec-bench")  # package data: present in a regular install
        else:
            path = Path(source)
        texts = read_text_prompts(path)
        by_cat: dict[str, list[str]] = {}
        for cat, text in texts:
            by_cat.setdefault(cat, []).append(text)
        all_texts = [t for _, t in texts]
        used: dict[str | None, int] = {}
        encoded: dict[str, list[int]] = {}
        for r in workload.requests:
            key = r.category if r.category in by_cat else None
            pool = by_cat[key] if key is not None else all_texts
            n = used.get(key, 0)
            used[key] = n + 1
            text = pool[n % len(pool)]
            if text not in encoded:
                encoded[text] = encode(tokenizer, text)
            tokens = encoded[text]
            if max_prompt_tokens is not None:
                tokens = tokens[-max_prompt_tokens:]
            if not tokens:
                raise ConfigError(f"request {r.id}: the tokenizer returned an empty prompt")
            ids[r.id] = tuple(tokens)
            requests.append(replace(r, prompt_tokens=len(tokens),
                                    output_tokens=_cap_output(r.output_tokens, max_output_tokens)))
        label = f"spec-bench:{path}"
    notes = [f"prompts={label}"]
    if max_prompt_tokens is not None:
        notes.append(f"max_prompt_tokens={max_prompt_tokens}")
    if max_output_tokens is not None:
        notes.append(f"max_output_tokens={max_output_tokens}")
    served = Workload(tuple(requests), source=workload.source, format=workload.format,
                      sha256=workload.sha256, transforms=workload.transforms + tuple(notes))
    return ServedWorkload(served, ids, label)
