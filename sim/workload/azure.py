"""Azure LLM inference traces, 2023 (Splitwise) and 2024 (DynamoLLM week-long).

Source: Azure/AzurePublicDataset (data CC-BY 4.0), ``data/AzureLLMInferenceTrace_{conv,code}.csv``
(2023; Patel et al., "Splitwise", ISCA 2024) and ``AzureLLMInferenceTrace_{conv,code}_1week.csv``
(2024; Stojkovic et al., "DynamoLLM", HPCA 2025; hosted on Azure blob storage).

Columns ``TIMESTAMP,ContextTokens,GeneratedTokens``. Timestamps are wall-clock: 2023 has 7
fractional digits (``2023-11-16 18:15:46.6805900``), 2024 a UTC offset
(``2024-05-10 00:00:00.009930+00:00``). They are parsed at nanosecond resolution and turned
into seconds from the file's first row. The 2024 files are ~1 GB, so the file is read in
chunks and reading stops as soon as a requested window / limit is complete.

A plain file (both years as published) is read without pandas
(:mod:`sim.workload.plain_csv`); any other, and every error, with pandas: the same arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.errors import InputError
from sim.workload.arrays import Columns, Loaded, empty_categories
from sim.workload.plain_csv import (NotPlain, iter_plain_chunks, nondecreasing, timestamps_ns,
                                    whole_numbers)
from sim.workload.tabular import (CHUNK_ROWS, SortedCheck, WindowCollector, iter_chunks,
                                  line_of, token_column)

if TYPE_CHECKING:
    import pandas as pd

NAME = "azure"
COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


def _timestamps_ns(chunk: pd.DataFrame, path: str | Path) -> np.ndarray:
    import pandas as pd
    raw = chunk["TIMESTAMP"]
    if raw.dtype.kind not in "OSUT":       # pandas inferred numbers: not a wall-clock time
        raw = raw.astype(str)
    ts = pd.to_datetime(raw, format="ISO8601", errors="coerce", utc=True)
    # a time outside nanosecond timestamps' range (e.g. "-2", year -2) cannot be parsed here,
    # as the plain reader says too (pandas keeps it at a coarser unit, which cannot be cast)
    ts = ts.where((ts >= pd.Timestamp.min.tz_localize("UTC"))
                  & (ts <= pd.Timestamp.max.tz_localize("UTC")))
    bad = ts.isna().to_numpy()
    if bad.any():
        row = int(chunk.index[int(np.argmax(bad))])
        value = raw.loc[row]
        text = "" if not isinstance(value, str) else value.strip()
        msg = ("missing timestamp" if text == "" else
               f"cannot parse timestamp {text!r} (expected e.g. 2023-11-16 18:15:46.6805900)")
        raise InputError(msg, path=str(path), line=line_of(row), column="TIMESTAMP")
    return ts.dt.tz_convert(None).astype("datetime64[ns]").to_numpy().view(np.int64)


Rows = Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]
"""Chunks of (timestamps in ns, prompt tokens, output tokens), checked."""


def load(path: str | Path, *, start_s: float = 0.0, end_s: float = math.inf,
         limit: int | None = None, chunk_rows: int = CHUNK_ROWS) -> Loaded:
    """Read an Azure trace; arrival_s = seconds since the first row, windowed and limited."""
    try:
        return _collect(lambda wanted: _plain_rows(path, chunk_rows, wanted),
                        start_s, end_s, limit)
    except NotPlain:
        return _collect(lambda wanted: _pandas_rows(path, chunk_rows, wanted),
                        start_s, end_s, limit)


def _collect(rows_of: Callable[[Callable[[], int | None]], Rows], start_s: float,
             end_s: float, limit: int | None) -> Loaded:
    """The window / limit of the rows ``rows_of(rows_wanted)`` yields, read only as far as
    needed."""
    collector = WindowCollector(start_s, end_s, limit)
    first_ns: int | None = None
    rows = 0
    for ns, prompt, output in rows_of(collector.rows_wanted):
        if first_ns is None:
            first_ns = int(ns[0])
        rows += len(ns)
        arrival_s = (ns - first_ns) / 1e9
        if collector.add(Columns(arrival_s, prompt, output, empty_categories(len(ns)))):
            break
    return Loaded(collector.result(), (), rows)


def _plain_rows(path: str | Path, chunk_rows: int, rows_wanted) -> Rows:
    """The rows of a plain file (``sim.workload.plain_csv``); NotPlain otherwise."""
    last = None
    for chunk in iter_plain_chunks(path, COLUMNS, chunk_rows=chunk_rows,
                                   rows_wanted=rows_wanted):
        ns = timestamps_ns(chunk, "TIMESTAMP")
        nondecreasing(ns, last)
        last = ns[-1]
        yield ns, whole_numbers(chunk, "ContextTokens"), whole_numbers(chunk, "GeneratedTokens")


def _pandas_rows(path: str | Path, chunk_rows: int, rows_wanted) -> Rows:
    """The rows of any file pandas reads, each problem an InputError with its line."""
    check_sorted = SortedCheck(path, "TIMESTAMP")
    for chunk in iter_chunks(path, COLUMNS, chunk_rows=chunk_rows, rows_wanted=rows_wanted):
        ns = _timestamps_ns(chunk, path)
        check_sorted(ns, chunk.index, render=_render_ns)
        prompt = token_column(chunk, "ContextTokens", path, "prompt length (ContextTokens)")
        output = token_column(chunk, "GeneratedTokens", path, "output length (GeneratedTokens)")
        yield ns, prompt, output


def _render_ns(value) -> str:
    import pandas as pd
    return str(pd.Timestamp(int(value)))
