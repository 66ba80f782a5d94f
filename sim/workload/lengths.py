"""Length sources: where prompt/output lengths (and categories) come from when a trace has
only arrival times (AdaSpec's arrival files) or arrivals are synthetic.

All sources sample *with replacement* from a passed ``numpy.random.Generator``, so the same
seed gives the same workload.

* :class:`ShareGPTLengths` -- the Sarathi-Serve / Vidur ShareGPT length file
  (microsoft/sarathi-serve,
  ``data/processed_traces/sharegpt_8k_filtered_stats_llama2_tokenizer.csv``:
  ``num_prefill_tokens,num_decode_tokens``; Llama-2 tokenizer). No categories ("").
* :class:`SpecBenchLengths` -- Spec-Bench prompts (hemingkx/Spec-Bench ``question.jsonl``, shipped
  by AdaSpec as ``origin-spec-bench.jsonl``: ``question_id, category, turns``). Each sampled
  request gets its prompt's category.

  Prompt length is *estimated* from the first turn's text (no tokenizer at run time):
  ``ceil(characters / 4)`` -- the usual ~4 characters per token of English text for
  Llama-family BPE tokenizers -- at least 1. Chat-template tokens are not added.

  Output length: Spec-Bench publishes no outputs (AdaSpec generates them with vicuna-7b-v1.5).
  We draw them from a per-category log-normal, ``round(median * exp(sigma * z))`` clipped to
  ``[1, max_output_tokens=1024]`` (1024 = the ``--max-new-tokens`` default of Spec-Bench's
  ``evaluation/inference_*.py``).
  Defaults (:data:`SPEC_BENCH_OUTPUT`), an assumption, chosen from what each task asks for:
  the eight MT-Bench categories (open-ended chat) use median 400 tokens, close to the ShareGPT
  decode-length median (415) -- vicuna was fine-tuned on ShareGPT; translation (one WMT14
  sentence) 40; summarization (CNN/DailyMail) 120; qa (Natural Questions) 100;
  math_reasoning (GSM8K step-by-step) 150; rag (NQ with retrieved passages) 120. Unknown
  categories use median 250. Override with ``output_lengths=``.
* :class:`WorkloadLengths` -- resample the (prompt, output, category) triples of a workload.

:func:`make_length_source` turns a CLI name (``spec-bench``, ``sharegpt``) or a file path into
a source; the named files are package data (``sim/workload/data/``, linked from the
repository's ``traces/``), so a regular install has them. :func:`check_length_source` validates
a name or path without reading the file, so commands can check ``--lengths`` up front and load
it only for traces that need it (arrival-only traces, synthetic arrivals).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from sim.errors import ConfigError, InputError
from sim.workload.arrays import empty_categories, to_columns
from sim.workload.mooncake import iter_json_lines
from sim.workload.plain_csv import NotPlain, iter_plain_chunks, whole_numbers
from sim.workload.request import Workload
from sim.workload.tabular import check_columns, iter_chunks, read_header, token_column

CHARS_PER_TOKEN = 4.0
MAX_OUTPUT_TOKENS = 1024
MT_BENCH_OUTPUT = (400.0, 0.6)
SPEC_BENCH_OUTPUT: dict[str, tuple[float, float]] = {
    "writing": MT_BENCH_OUTPUT, "roleplay": MT_BENCH_OUTPUT, "reasoning": MT_BENCH_OUTPUT,
    "math": MT_BENCH_OUTPUT, "coding": MT_BENCH_OUTPUT, "extraction": MT_BENCH_OUTPUT,
    "stem": MT_BENCH_OUTPUT, "humanities": MT_BENCH_OUTPUT,
    "translation": (40.0, 0.5),
    "summarization": (120.0, 0.4),
    "qa": (100.0, 0.7),
    "math_reasoning": (150.0, 0.4),
    "rag": (120.0, 0.6),
}
"""Per-category output length (median tokens, log-normal sigma); see the module doc."""
OTHER_OUTPUT = (250.0, 0.7)

NAMED_SOURCES = {
    "spec-bench": "origin-spec-bench.jsonl",
    "sharegpt": "sharegpt_8k_filtered_stats_llama2_tokenizer.csv",
}
DEFAULT_SOURCE = "spec-bench"


@runtime_checkable
class LengthSource(Protocol):
    """Draws ``n`` requests' lengths: (prompt_tokens int64[n], output_tokens int64[n],
    categories object[n] of str, "" = none). The shipped sources also have a ``name`` used in
    the workload's transform record (see :func:`source_name`)."""

    def sample(self, n: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def source_name(source: LengthSource) -> str:
    """A source's ``name`` attribute, or its class name."""
    return str(getattr(source, "name", type(source).__name__))


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"number of requests to sample must be a whole number >= 0, got {n!r}")
    return int(n)


class ShareGPTLengths:
    """(prompt, output) pairs resampled from the sarathi-serve ShareGPT length file."""

    COLUMNS = ("num_prefill_tokens", "num_decode_tokens")

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.name = f"sharegpt:{Path(path).name}"
        if not Path(path).is_file():
            raise InputError("no such file", path=self.path)
        check_columns(path, read_header(path), self.COLUMNS, "sharegpt length")
        try:  # a plain file without pandas (sim.workload.plain_csv), else with: same values
            prompts, outputs = self._read_plain(path)
        except NotPlain:
            prompts, outputs = self._read_pandas(path)
        if not prompts:
            raise InputError("no data rows", path=self.path, line=2)
        self.prompt_tokens = np.concatenate(prompts)
        self.output_tokens = np.concatenate(outputs)

    def _read_plain(self, path: str | Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
        prompts, outputs = [], []
        for chunk in iter_plain_chunks(path, self.COLUMNS):
            prompts.append(whole_numbers(chunk, "num_prefill_tokens"))
            outputs.append(whole_numbers(chunk, "num_decode_tokens"))
        return prompts, outputs

    def _read_pandas(self, path: str | Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
        prompts, outputs = [], []
        for chunk in iter_chunks(path, self.COLUMNS):
            prompts.append(token_column(chunk, "num_prefill_tokens", path, "prompt length"))
            outputs.append(token_column(chunk, "num_decode_tokens", path, "output length"))
        return prompts, outputs

    def __len__(self) -> int:
        return int(self.prompt_tokens.size)

    def sample(self, n: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = rng.integers(0, len(self), size=_check_n(n))
        return self.prompt_tokens[idx], self.output_tokens[idx], empty_categories(idx.size)


def estimate_prompt_tokens(text: str) -> int:
    """Token estimate of a prompt: ``ceil(len(text) / 4)``, at least 1 (see module doc)."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


class SpecBenchLengths:
    """Spec-Bench prompts: category + estimated prompt length + modelled output length."""

    def __init__(self, path: str | Path, *, categories: Sequence[str] | None = None,
                 output_lengths: Mapping[str, tuple[float, float]] | None = None,
                 max_output_tokens: int = MAX_OUTPUT_TOKENS) -> None:
        self.path = str(path)
        self.name = f"spec-bench:{Path(path).name}"
        if isinstance(max_output_tokens, bool) or not isinstance(max_output_tokens, int) \
                or max_output_tokens < 1:
            raise ConfigError(f"max_output_tokens must be a whole number >= 1, "
                              f"got {max_output_tokens!r}")
        self.max_output_tokens = max_output_tokens
        self.output_lengths = dict(SPEC_BENCH_OUTPUT)
        for cat, (median, sigma) in (output_lengths or {}).items():
            if not (median >= 1 and sigma >= 0 and math.isfinite(median) and math.isfinite(sigma)):
                raise ConfigError(f"output length model for {cat!r} needs median >= 1 and "
                                  f"sigma >= 0, got ({median!r}, {sigma!r})")
            self.output_lengths[cat] = (float(median), float(sigma))
        prompts, cats = self._read(path)
        if categories is not None:
            wanted = set(categories)
            unknown = wanted - set(cats)
            if unknown:
                raise ConfigError(f"unknown Spec-Bench categories {sorted(unknown)}; "
                                  f"known: {sorted(set(cats))}")
            keep = [i for i, c in enumerate(cats) if c in wanted]
            prompts = [prompts[i] for i in keep]
            cats = [cats[i] for i in keep]
        self.prompt_tokens = np.asarray(prompts, dtype=np.int64)
        self.categories = np.empty(len(cats), dtype=object)
        self.categories[:] = cats
        self._median = np.array([self.output_lengths.get(c, OTHER_OUTPUT)[0] for c in cats])
        self._sigma = np.array([self.output_lengths.get(c, OTHER_OUTPUT)[1] for c in cats])

    def _read(self, path: str | Path) -> tuple[list[int], list[str]]:
        p = self.path
        if not Path(path).is_file():
            raise InputError("no such file", path=p)
        prompts: list[int] = []
        cats: list[str] = []
        for line_no, obj in iter_json_lines(path):
            if not isinstance(obj, dict):
                raise InputError("each line must be a JSON object", path=p, line=line_no)
            for key in ("category", "turns"):
                if key not in obj:
                    raise InputError(f"missing field {key!r}; Spec-Bench lines need "
                                     f"question_id, category, turns",
                                     path=p, line=line_no, column=key)
            turns = obj["turns"]
            if not isinstance(turns, list) or not turns or not isinstance(turns[0], str):
                raise InputError("turns must be a non-empty list of strings",
                                 path=p, line=line_no, column="turns")
            if not isinstance(obj["category"], str):
                raise InputError("category must be a string", path=p, line=line_no,
                                 column="category")
            prompts.append(estimate_prompt_tokens(turns[0]))
            cats.append(obj["category"])
        if not prompts:
            raise InputError("empty file: no prompts", path=p, line=1)
        return prompts, cats

    def __len__(self) -> int:
        return int(self.prompt_tokens.size)

    def sample(self, n: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = rng.integers(0, len(self), size=_check_n(n))
        z = rng.standard_normal(idx.size)
        out = np.rint(self._median[idx] * np.exp(self._sigma[idx] * z))
        out = np.clip(out, 1, self.max_output_tokens).astype(np.int64)
        return self.prompt_tokens[idx], out, self.categories[idx]


class WorkloadLengths:
    """Resamples the (prompt, output, category) triples of an existing workload."""

    def __init__(self, workload: Workload) -> None:
        if len(workload) == 0:
            raise ConfigError("cannot take lengths from an empty workload")
        self.name = f"workload:{workload.source}"
        self.columns = to_columns(workload)

    def sample(self, n: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        idx = rng.integers(0, len(self.columns), size=_check_n(n))
        c = self.columns
        return c.prompt_tokens[idx], c.output_tokens[idx], c.category[idx]


def traces_dir() -> Path:
    """The repository's ``traces/`` directory (next to the ``sim`` package; absent in a
    regular install: nothing in ``sim`` reads it, tests and examples do)."""
    return Path(__file__).resolve().parents[2] / "traces"


def data_path(name: str) -> Path:
    """The package-data file of a named length source (``spec-bench`` or ``sharegpt``)."""
    if name not in NAMED_SOURCES:
        raise ConfigError(f"unknown length source {name!r}; named sources: "
                          f"{', '.join(NAMED_SOURCES)}")
    return Path(__file__).resolve().parent / "data" / NAMED_SOURCES[name]


def check_length_source(name_or_path: str | Path | None) -> str:
    """Validate a length-source name or file path without reading it; returns it as text.

    A name must be one of :data:`NAMED_SOURCES`; a path must be an existing ``.jsonl``
    (Spec-Bench prompts) or ``.csv`` (num_prefill_tokens,num_decode_tokens) file."""
    key = DEFAULT_SOURCE if name_or_path is None else name_or_path
    if not isinstance(key, (str, Path)) or not str(key):
        raise ConfigError(f"length source must be a name ({', '.join(NAMED_SOURCES)}) or a "
                          f"file path, got {name_or_path!r}")
    key = str(key)
    if key in NAMED_SOURCES:
        path = data_path(key)
        if not path.is_file():
            raise ConfigError(f"length source {key!r} needs {path}, which is missing; "
                              f"the installed sim package is incomplete")
        return key
    path = Path(key)
    if not path.is_file():
        raise ConfigError(f"unknown length source {key!r}: not one of "
                          f"{', '.join(NAMED_SOURCES)} and no such file")
    if path.suffix not in (".jsonl", ".csv"):
        raise ConfigError(f"length source file {key!r} must be .jsonl (Spec-Bench prompts) or "
                          f".csv (num_prefill_tokens,num_decode_tokens)")
    return key


def make_length_source(name_or_path: str | Path | None = None) -> LengthSource:
    """A length source from a name (``spec-bench`` (default), ``sharegpt``) or a file path
    (``.jsonl`` = Spec-Bench-style prompts, ``.csv`` = ShareGPT-style length columns)."""
    key = check_length_source(name_or_path)
    path = data_path(key) if key in NAMED_SOURCES else Path(key)
    return SpecBenchLengths(path) if path.suffix == ".jsonl" else ShareGPTLengths(path)
