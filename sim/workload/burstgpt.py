"""BurstGPT traces (HPMLL/BurstGPT, CC-BY 4.0; Wang et al., "BurstGPT: A Real-world Workload
Dataset to Optimize LLM Serving Systems", KDD 2025): ``BurstGPT_1.csv``, ``BurstGPT_2.csv`` and
the ``_without_fails_`` variants (Azure OpenAI GPT service logs).

Columns ``Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type``; only
``Timestamp`` (seconds), ``Request tokens`` and ``Response tokens`` are required and used.
Failed requests are logged with 0 response tokens: they are dropped and counted (the count is
recorded in the workload's transforms as ``burstgpt_dropped_failed=N``). Arrival times are
seconds from the first kept request. Read in chunks, stopping early for a window / limit.
"""

from __future__ import annotations

import math
from pathlib import Path

from sim.errors import InputError
from sim.workload.arrays import Columns, Loaded, empty_categories
from sim.workload.tabular import (CHUNK_ROWS, SortedCheck, WindowCollector, check_nonnegative,
                                  iter_chunks, number_column, token_column)

NAME = "burstgpt"
COLUMNS = ("Timestamp", "Request tokens", "Response tokens")
OPTIONAL = ("Model", "Total tokens", "Log Type")


def load(path: str | Path, *, start_s: float = 0.0, end_s: float = math.inf,
         limit: int | None = None, chunk_rows: int = CHUNK_ROWS) -> Loaded:
    """Read a BurstGPT CSV, dropping failed rows (0 response tokens)."""
    collector = WindowCollector(start_s, end_s, limit)
    check_sorted = SortedCheck(path, "Timestamp")
    origin: float | None = None
    rows = failed = 0
    for chunk in iter_chunks(path, COLUMNS, chunk_rows=chunk_rows,
                             rows_wanted=collector.rows_wanted):
        rows += len(chunk)
        t = number_column(chunk, "Timestamp", path, "timestamp")
        check_nonnegative(t, chunk.index, path, "Timestamp", "timestamp")
        check_sorted(t, chunk.index)
        response = token_column(chunk, "Response tokens", path, "response length", minimum=0)
        ok = response > 0
        failed += int((~ok).sum())
        kept = chunk[ok]
        if not len(kept):
            continue
        prompt = token_column(kept, "Request tokens", path, "request length")
        t = t[ok]
        if origin is None:
            origin = float(t[0])
        cols = Columns(t - origin, prompt, response[ok], empty_categories(len(kept)))
        if collector.add(cols):
            break
    if rows and origin is None:
        raise InputError(f"no requests left: all {rows} data rows are failed requests (0 "
                         "response tokens), which are dropped", path=str(path),
                         column="Response tokens")
    return Loaded(collector.result(), (f"burstgpt_dropped_failed={failed}",), rows)
