"""``load_trace``: detect a trace file's format, load it and return a validated Workload.

Formats (one module each): ``azure`` (Azure LLM inference 2023/2024), ``mooncake`` (JSONL),
``burstgpt``, ``arrivals`` (arrival times only; lengths from a length source) and ``native``
(this tool's own CSV). Detection uses the extension (``.jsonl``/``.json`` -> Mooncake; ``.csv``,
``.txt`` and their ``.gz`` forms -> the CSV formats) and then the header: the CSV format whose
columns best match the header wins, so a misspelt column is reported as missing from the
nearest format instead of as an unknown format.

Arrival times are seconds from the first request (first = 0.0), except for ``arrivals`` and
``native`` files, which keep their own zero. Request ids are 0..N-1 in arrival order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from sim.errors import ConfigError, InputError
from sim.workload import arrivals, azure, burstgpt, mooncake, native
from sim.workload.arrays import (Columns, check_limit, check_window, file_sha256, select_window,
                                 to_workload, window_label)
from sim.workload.lengths import LengthSource, make_length_source, source_name
from sim.workload.request import Workload
from sim.workload.tabular import check_columns, read_header

CSV_FORMATS = {
    azure.NAME: (azure.COLUMNS, ()),
    burstgpt.NAME: (burstgpt.COLUMNS, burstgpt.OPTIONAL),
    arrivals.NAME: (arrivals.COLUMNS, ()),
    native.NAME: (native.COLUMNS, native.OPTIONAL),
}
FORMATS = (azure.NAME, mooncake.NAME, burstgpt.NAME, arrivals.NAME, native.NAME)
KNOWN_FORMATS = (
    "azure (CSV: TIMESTAMP,ContextTokens,GeneratedTokens); "
    "mooncake (JSONL: timestamp,input_length,output_length[,hash_ids]); "
    "burstgpt (CSV: Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type); "
    "arrivals (CSV: Timestamp); "
    "native (CSV: arrival_s,prompt_tokens,output_tokens[,category])")
JSON_SUFFIXES = (".jsonl", ".json")
CSV_SUFFIXES = (".csv", ".txt")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return Path(name[:-3]).suffix if name.endswith(".gz") else path.suffix.lower()


def _norm(name: str) -> str:
    return name.strip().lower().replace(" ", "").replace("_", "")


def _detect_csv(path: Path, header: list[str]) -> str:
    have = {_norm(h) for h in header}
    best, best_score = None, 0.0
    for fmt, (required, optional) in CSV_FORMATS.items():
        hits = sum(_norm(c) in have for c in required) + sum(_norm(c) in have for c in optional)
        if hits == 0:
            continue
        # fraction of the format's columns present; ties go to the format needing fewer columns
        score = hits / (len(required) + len(optional)) + hits
        if score > best_score:
            best, best_score = fmt, score
    if best is None:
        raise InputError(f"unknown trace format: header {','.join(header)!r} matches none of "
                         f"the known formats: {KNOWN_FORMATS}", path=str(path), line=1)
    return best


def _detect_json(path: Path) -> str:
    for line_no, obj in mooncake.iter_json_lines(path):
        if isinstance(obj, dict) and {"timestamp", "input_length", "output_length"} & set(obj):
            return mooncake.NAME
        keys = ",".join(obj) if isinstance(obj, dict) else type(obj).__name__
        raise InputError(f"unknown trace format: JSON fields {keys!r} match none of the "
                         f"known formats: {KNOWN_FORMATS}", path=str(path), line=line_no)
    raise InputError("empty file: no data rows", path=str(path), line=1)


def detect_format(path: str | Path) -> str:
    """The format name of a trace file (one of :data:`FORMATS`); InputError if unknown."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such file", path=str(path))
    if p.is_dir():
        raise InputError("is a directory, not a trace file", path=str(path))
    suffix = _suffix(p)
    if suffix in JSON_SUFFIXES:
        return _detect_json(p)
    if suffix in CSV_SUFFIXES:
        return _detect_csv(p, read_header(p))
    raise InputError(f"unknown trace format: extension {suffix or '(none)'!r} (expected "
                     f".csv or .jsonl, optionally .gz); known formats: {KNOWN_FORMATS}",
                     path=str(path))


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ConfigError(f"rng must be a numpy Generator or an integer seed, got {rng!r}")


def _category_weights(categories: Mapping[str, float] | Sequence[str]
                      ) -> tuple[list[str], np.ndarray]:
    if isinstance(categories, Mapping):
        names = [str(k) for k in categories]
        weights = np.array([float(v) for v in categories.values()])
    else:
        names = [str(c) for c in categories]
        weights = np.ones(len(names))
    if not names or any(not n for n in names):
        raise ConfigError("categories must name at least one non-empty category")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ConfigError(f"category weights must be >= 0 with a positive sum, got {categories!r}")
    return names, weights / weights.sum()


def _fill_categories(cols: Columns, default_category: str,
                     categories: Mapping[str, float] | Sequence[str] | None,
                     rng: np.random.Generator | int | None) -> Columns:
    missing = cols.category == ""
    if not missing.any():
        return cols
    cat = cols.category.copy()
    if categories is not None:
        names, p = _category_weights(categories)
        drawn = _as_rng(rng).choice(len(names), size=int(missing.sum()), p=p)
        cat[missing] = np.asarray(names, dtype=object)[drawn]
    elif default_category:
        cat[missing] = default_category
    return Columns(cols.arrival_s, cols.prompt_tokens, cols.output_tokens, cat)


def load_trace(path: str | Path, *, length_source: LengthSource | str | None = None,
               rng: np.random.Generator | int | None = None, default_category: str = "",
               categories: Mapping[str, float] | Sequence[str] | None = None,
               start_s: float | None = None, end_s: float | None = None,
               limit: int | None = None, format: str | None = None) -> Workload:
    """Load a trace file into a Workload.

    ``length_source``: for arrival-only traces, a :class:`LengthSource` or a name/path for
    :func:`make_length_source` (default ``spec-bench``); ignored by formats with lengths.
    ``rng``: Generator or integer seed for every random draw (None = seed 0).
    ``categories``: for requests without a category, draw one per request from these names
    (a sequence = equal weights, a mapping = name -> weight); otherwise they get
    ``default_category``.
    ``start_s``/``end_s``/``limit``: the :func:`sim.workload.transforms.window` and
    ``limit`` transforms applied while reading (large CSVs are read only as far as needed).
    ``format``: skip detection and force one of :data:`FORMATS`.
    Raises InputError for bad files and ConfigError for bad parameters.
    """
    p = Path(path)
    if format is None:
        fmt = detect_format(p)
    elif format in FORMATS:
        if not p.is_file():
            raise InputError("no such file", path=str(path))
        fmt = format
    else:
        raise ConfigError(f"unknown format {format!r}; known formats: {', '.join(FORMATS)}")
    if rng is not None:
        rng = _as_rng(rng)
    windowed = start_s is not None or end_s is not None
    w_start, w_end = check_window(start_s, end_s)
    n_limit = check_limit(limit)

    if fmt in CSV_FORMATS:
        required, optional = CSV_FORMATS[fmt]
        check_columns(p, read_header(p), required, fmt, optional)
    notes: tuple[str, ...] = ()
    if fmt == arrivals.NAME:
        t = arrivals.load_arrivals(p)
        data_rows = t.size
        if data_rows:
            source = (length_source if isinstance(length_source, LengthSource)
                      else make_length_source(length_source))
            rng = _as_rng(rng)
            prompt, output, cats = source.sample(t.size, rng)
            cols = Columns(t, np.asarray(prompt, np.int64), np.asarray(output, np.int64),
                           np.asarray(cats, dtype=object))
            notes = (f"lengths={source_name(source)}",)
            cols = select_window(cols, w_start, w_end)
            if n_limit is not None:
                cols = cols.take(slice(0, n_limit))
    else:
        loader = {azure.NAME: azure.load, mooncake.NAME: mooncake.load,
                  burstgpt.NAME: burstgpt.load, native.NAME: native.load}[fmt]
        loaded = loader(p, start_s=w_start, end_s=w_end, limit=n_limit)
        cols, notes, data_rows = loaded.columns, loaded.notes, loaded.data_rows
    if data_rows == 0:
        raise InputError("empty file: a header but no data rows", path=str(path), line=2)
    transforms = list(notes)
    if windowed:
        transforms.append(window_label(w_start, w_end))
    if n_limit is not None:
        transforms.append(f"limit={n_limit}")
    if len(cols) == 0:
        raise ConfigError(f"no requests in {path} fall inside the window "
                          f"[{w_start!r} s, {w_end!r} s)")
    cols = _fill_categories(cols, default_category, categories, rng)
    return to_workload(cols, source=str(path), format=fmt, sha256=file_sha256(p),
                       transforms=tuple(transforms))
