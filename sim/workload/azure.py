"""Azure LLM inference traces, 2023 (Splitwise) and 2024 (DynamoLLM week-long).

Source: Azure/AzurePublicDataset (data CC-BY 4.0), ``data/AzureLLMInferenceTrace_{conv,code}.csv``
(2023; Patel et al., "Splitwise", ISCA 2024) and ``AzureLLMInferenceTrace_{conv,code}_1week.csv``
(2024; Stojkovic et al., "DynamoLLM", HPCA 2025; hosted on Azure blob storage).

Columns ``TIMESTAMP,ContextTokens,GeneratedTokens``. Timestamps are wall-clock: 2023 has 7
fractional digits (``2023-11-16 18:15:46.6805900``), 2024 a UTC offset
(``2024-05-10 00:00:00.009930+00:00``). They are parsed at nanosecond resolution and turned
into seconds from the file's first row. The 2024 files are ~1 GB, so the file is read in
chunks and reading stops as soon as a requested window / limit is complete.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.workload.arrays import Columns, Loaded, empty_categories
from sim.workload.tabular import (CHUNK_ROWS, SortedCheck, WindowCollector, iter_chunks,
                                  line_of, token_column)

NAME = "azure"
COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


def _timestamps_ns(chunk: pd.DataFrame, path: str | Path) -> np.ndarray:
    raw = chunk["TIMESTAMP"]
    if raw.dtype.kind not in "OSUT":       # pandas inferred numbers: not a wall-clock time
        raw = raw.astype(str)
    ts = pd.to_datetime(raw, format="ISO8601", errors="coerce", utc=True)
    bad = ts.isna().to_numpy()
    if bad.any():
        row = int(chunk.index[int(np.argmax(bad))])
        value = raw.loc[row]
        text = "" if not isinstance(value, str) else value.strip()
        msg = ("missing timestamp" if text == "" else
               f"cannot parse timestamp {text!r} (expected e.g. 2023-11-16 18:15:46.6805900)")
        raise InputError(msg, path=str(path), line=line_of(row), column="TIMESTAMP")
    return ts.dt.tz_convert(None).astype("datetime64[ns]").to_numpy().view(np.int64)


def load(path: str | Path, *, start_s: float = 0.0, end_s: float = math.inf,
         limit: int | None = None, chunk_rows: int = CHUNK_ROWS) -> Loaded:
    """Read an Azure trace; arrival_s = seconds since the first row, windowed and limited."""
    collector = WindowCollector(start_s, end_s, limit)
    check_sorted = SortedCheck(path, "TIMESTAMP")
    first_ns: int | None = None
    rows = 0
    for chunk in iter_chunks(path, COLUMNS, chunk_rows=chunk_rows,
                             rows_wanted=collector.rows_wanted):
        ns = _timestamps_ns(chunk, path)
        check_sorted(ns, chunk.index,
                     render=lambda v: str(pd.Timestamp(int(v))))
        prompt = token_column(chunk, "ContextTokens", path, "prompt length (ContextTokens)")
        output = token_column(chunk, "GeneratedTokens", path, "output length (GeneratedTokens)")
        if first_ns is None:
            first_ns = int(ns[0])
        rows += len(chunk)
        arrival_s = (ns - first_ns) / 1e9
        if collector.add(Columns(arrival_s, prompt, output, empty_categories(len(chunk)))):
            break
    return Loaded(collector.result(), (), rows)
