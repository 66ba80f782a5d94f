"""The simulator's own workload format (read and written by this tool).

CSV with header ``arrival_s,prompt_tokens,output_tokens[,category]``: arrival time in seconds
(its own zero is kept, so write -> read is the identity), prompt and output lengths in tokens
(>= 1), and an optional category (text; empty = none). Rows sorted by arrival.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from sim.workload.arrays import Columns, Loaded, empty_categories
from sim.workload.request import Workload
from sim.workload.tabular import (CHUNK_ROWS, SortedCheck, WindowCollector, check_nonnegative,
                                  iter_chunks, number_column, read_header, token_column)

NAME = "native"
COLUMNS = ("arrival_s", "prompt_tokens", "output_tokens")
OPTIONAL = ("category",)


def load(path: str | Path, *, start_s: float = 0.0, end_s: float = math.inf,
         limit: int | None = None, chunk_rows: int = CHUNK_ROWS) -> Loaded:
    """Read a native CSV (own time zero), windowed and limited while streaming."""
    has_category = "category" in read_header(path)
    usecols = COLUMNS + (("category",) if has_category else ())
    dtype = {"category": str} if has_category else None
    collector = WindowCollector(start_s, end_s, limit)
    check_sorted = SortedCheck(path, "arrival_s")
    rows = 0
    for chunk in iter_chunks(path, usecols, dtype=dtype, chunk_rows=chunk_rows,
                             rows_wanted=collector.rows_wanted):
        rows += len(chunk)
        t = number_column(chunk, "arrival_s", path, "arrival time")
        check_nonnegative(t, chunk.index, path, "arrival_s", "arrival time")
        check_sorted(t, chunk.index)
        prompt = token_column(chunk, "prompt_tokens", path, "prompt length")
        output = token_column(chunk, "output_tokens", path, "output length")
        if has_category:
            cats = chunk["category"].astype(str).str.strip().to_numpy(dtype=object)
        else:
            cats = empty_categories(len(chunk))
        if collector.add(Columns(t, prompt, output, cats)):
            break
    return Loaded(collector.result(), (), rows)


def write_native(workload: Workload, path: str | Path) -> None:
    """Write ``workload`` in the native format (floats in shortest round-trip form)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS + OPTIONAL)
        for r in workload.requests:
            w.writerow((repr(float(r.arrival_s)), r.prompt_tokens, r.output_tokens, r.category))
