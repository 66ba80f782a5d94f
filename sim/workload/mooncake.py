"""Mooncake traces (kvcache-ai/Mooncake, Apache-2.0; Qin et al., "Mooncake: Trading More
Storage for Less Computation", FAST'25), e.g.
``FAST25-release/traces/{conversation,toolagent,synthetic}_trace.jsonl`` and
``FAST25-release/arxiv-trace/mooncake_trace.jsonl``.

JSONL, one request per line: ``timestamp`` (ms from trace start), ``input_length`` and
``output_length`` (tokens), ``hash_ids`` (prefix-block hashes; read but not used: the simulator
has no prefix cache). Blank lines are skipped.

Slot spreading: the real Mooncake traces quantise timestamps to ~3 s slots, so many requests
share one slot. Released traces carry a few ms of jitter around the slot times (e.g. 2998 ms,
3001 ms), so the rule works on the nearest slot: when every timestamp lies within
:data:`SLOT_TOLERANCE_MS` (100 ms) of a multiple of the slot (3000 ms) and some slot holds two
or more requests, each timestamp is rounded to its nearest slot and the ``n`` requests of a
slot are spread evenly inside it, ``t = slot + 3 s * i / n`` (i = 0..n-1, file order kept) --
the same rule AdaSpec's ``mooncake.csv`` arrival file follows. Traces with finer timestamps
(the synthetic trace: 3,982 distinct values, 3,721 more than 100 ms from a slot) are left
unchanged, including their few exact ties. ``load(..., spread=False)`` never spreads.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from sim.errors import InputError
from sim.workload.arrays import MAX_TOKENS, Columns, Loaded, empty_categories
from sim.workload.tabular import WindowCollector, open_text

NAME = "mooncake"


def iter_json_lines(path: str | Path):
    """Yield (1-based line number, parsed object) for each non-blank line of a JSONL file
    (gzip-compressed if it ends in .gz); a line that is not JSON, or a file that cannot be
    read as UTF-8 text (not gzip, cut short), is an InputError naming the file (and line)."""
    try:
        with open_text(path) as f:
            for line_no, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InputError(f"not valid JSON ({exc.msg} at character {exc.colno})",
                                     path=str(path), line=line_no) from None
                yield line_no, obj
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise InputError(f"cannot read the file as UTF-8 text ({reason})",
                         path=str(path)) from None
COLUMNS = ("timestamp", "input_length", "output_length")
OPTIONAL = ("hash_ids",)
SLOT_MS = 3000
SLOT_TOLERANCE_MS = 100.0
"""Largest distance of a timestamp from its slot for the trace to count as slot-quantised."""


def _number(obj: dict, key: str, path: str, line: int, *, integer: bool) -> float | int:
    if key not in obj:
        raise InputError(f"missing field {key!r}; the mooncake format expects fields "
                         f"{', '.join(COLUMNS)} (and optionally hash_ids); this line has "
                         f"{', '.join(obj) or 'none'}", path=path, line=line, column=key)
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InputError(f"{key} is not a finite number: {v!r}", path=path, line=line, column=key)
    if integer:
        if v != int(v):
            raise InputError(f"{key} must be a whole number of tokens, got {v!r}",
                             path=path, line=line, column=key)
        if v < 1:
            raise InputError(f"{key} must be >= 1, got {v!r}", path=path, line=line, column=key)
        if v > MAX_TOKENS:
            raise InputError(f"{key} must be at most {MAX_TOKENS} tokens, got {v!r}",
                             path=path, line=line, column=key)
        return int(v)
    if v < 0:
        raise InputError(f"{key} must be >= 0, got {v!r}", path=path, line=line, column=key)
    return v


def spread_slots(timestamp_ms: np.ndarray, slot_ms: int = SLOT_MS,
                 tolerance_ms: float = SLOT_TOLERANCE_MS) -> np.ndarray:
    """Spread sorted, slot-quantised timestamps evenly inside their slot (see module doc).

    Returns float64 ms; the input unchanged (as float) unless every value is within
    ``tolerance_ms`` of a multiple of ``slot_ms`` and two or more share a slot.
    """
    t = np.asarray(timestamp_ms, dtype=np.float64)
    if t.size < 2:
        return t
    slot = np.round(t / slot_ms) * slot_ms
    if np.any(np.abs(t - slot) > tolerance_ms) or np.all(np.diff(slot) > 0):
        return t
    starts = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1]])
    counts = np.diff(np.r_[starts, t.size])
    group = np.repeat(np.arange(starts.size), counts)
    rank = np.arange(t.size) - starts[group]
    return slot + slot_ms * rank / counts[group]


def load(path: str | Path, *, start_s: float = 0.0, end_s: float = math.inf,
         limit: int | None = None, spread: bool = True) -> Loaded:
    """Read a Mooncake JSONL trace; arrival_s = seconds from the first request.

    ``spread``: apply the automatic slot spreading of the module doc (False: never).
    The whole file is parsed (slot spreading needs complete slots); the window/limit is
    applied afterwards.
    """
    p = str(path)
    ts: list[float] = []
    inp: list[int] = []
    out: list[int] = []
    last_line = 0
    for line_no, obj in iter_json_lines(path):
        if not isinstance(obj, dict):
            raise InputError("each line must be a JSON object", path=p, line=line_no)
        t = _number(obj, "timestamp", p, line_no, integer=False)
        if ts and t < ts[-1]:
            raise InputError(f"timestamps are not sorted: {t!r} ms comes after "
                             f"{ts[-1]!r} ms (rows must be in arrival order)",
                             path=p, line=line_no, column="timestamp")
        ts.append(t)
        inp.append(_number(obj, "input_length", p, line_no, integer=True))
        out.append(_number(obj, "output_length", p, line_no, integer=True))
        last_line = line_no
    if not ts:
        raise InputError("empty file: no data rows", path=p, line=max(last_line, 1))
    t_ms = np.asarray(ts, dtype=np.float64)
    notes: tuple[str, ...] = ()
    if spread:
        spread_ms = spread_slots(t_ms)
        if spread_ms is not t_ms:
            notes = (f"mooncake_spread_slots={SLOT_MS}ms",)
            t_ms = spread_ms
    arrival_s = (t_ms - t_ms[0]) / 1e3
    cols = Columns(arrival_s, np.asarray(inp, np.int64), np.asarray(out, np.int64),
                   empty_categories(len(ts)))
    collector = WindowCollector(start_s, end_s, limit)
    collector.add(cols)
    return Loaded(collector.result(), notes, len(ts))
