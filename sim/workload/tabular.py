"""Shared CSV reading and validation for the trace loaders: the pandas reader.

Plain numeric files are first read without pandas (:mod:`sim.workload.plain_csv`, same
arrays); everything else, and every error message, comes from here (pandas is imported when
a file is first read this way, not with the module). Files are read with pandas in chunks
(bounded memory), keeping blank lines as all-empty rows so that a row's position maps to its
line as a text editor counts it: header = line 1, data row ``i`` (0-based) = line ``i + 2``.
Every problem becomes one :class:`InputError` naming the file, the line and the column.
:class:`WindowCollector` applies a time window and a request limit while chunks stream in,
so that reading stops as soon as the result is complete: chunks start small and grow
(:data:`FIRST_CHUNK_ROWS` doubling up to :data:`CHUNK_ROWS`), and never ask for more rows
than a request limit still needs, so rows past a limit are never parsed.

A UTF-8 byte-order mark at the start of a file (spreadsheets save CSV with one) is skipped.
"""

from __future__ import annotations

import csv
import gzip
import math
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.errors import InputError
from sim.workload.arrays import MAX_TOKENS, Columns

if TYPE_CHECKING:
    import pandas as pd

CHUNK_ROWS = 65_536
"""Rows per pandas chunk at most: ~6 MB of parsed strings for the 2024 Azure files, so a
window deep into a file reads at most this many rows past its end, and no read of any length
holds more than one such chunk of raw rows."""
FIRST_CHUNK_ROWS = 4096
"""Rows of the first chunk; each later chunk doubles, up to CHUNK_ROWS (a short window of a
huge file parses a few thousand rows, not a million)."""
ENCODING = "utf-8-sig"
"""UTF-8, skipping a leading byte-order mark."""


def open_text(path: str | Path):
    """Open a (possibly gzip-compressed) text file."""
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding=ENCODING, newline="")
    return open(path, encoding=ENCODING, newline="")


def read_header(path: str | Path) -> list[str]:
    """The header's column names (stripped; a quoted name, as R's ``write.csv`` writes them,
    unquoted as the CSV reader reads it). Raises InputError for an empty or binary file."""
    try:
        with open_text(path) as f:
            first = f.readline()
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(f"cannot read the file as UTF-8 text ({exc})", path=str(path)) from None
    if not first.strip():
        raise InputError("empty file: no header and no data rows", path=str(path), line=1)
    return [c.strip() for c in next(csv.reader([first.rstrip("\r\n")]))]


def line_of(row_index: int) -> int:
    """1-based file line of 0-based data row ``row_index`` (header = line 1)."""
    return int(row_index) + 2


def check_columns(path: str | Path, header: Sequence[str], required: Sequence[str],
                  fmt: str, optional: Sequence[str] = ()) -> None:
    """Raise InputError (line 1) naming the first required column missing from ``header``,
    or the first column the format reads that the header names twice (which one holds the
    data would be a guess)."""
    present = set(header)
    for col in (*required, *optional):
        if list(header).count(col) > 1:
            raise InputError(f"column {col!r} appears {list(header).count(col)} times in the "
                             f"header ({','.join(header)}); name each column once",
                             path=str(path), line=1, column=col)
    for col in required:
        if col not in present:
            expected = ",".join(list(required) + [f"[{c}]" for c in optional])
            near = [h for h in header if h.lower().replace(" ", "") == col.lower().replace(" ", "")]
            hint = f" (found {near[0]!r}: names are case-sensitive)" if near else ""
            raise InputError(f"missing column {col!r}{hint}; the {fmt} format expects columns "
                             f"{expected}; the header has {','.join(header)}",
                             path=str(path), line=1, column=col)


def _blank_rows(chunk: pd.DataFrame) -> np.ndarray:
    """Rows whose every cell is empty (blank lines, kept only to preserve line numbers)."""
    blank = np.ones(len(chunk), dtype=bool)
    for col in chunk.columns:
        s = chunk[col]
        if s.dtype.kind in "iub":
            return np.zeros(len(chunk), dtype=bool)
        if s.dtype.kind == "f":
            blank &= np.isnan(s.to_numpy())
        else:
            blank &= s.isna().to_numpy() | (s.astype(str).str.strip() == "").to_numpy()
        if not blank.any():
            break
    return blank


def chunk_sizes(chunk_rows: int = CHUNK_ROWS,
                rows_wanted: Callable[[], int | None] | None = None) -> Iterator[int]:
    """Rows to read per chunk: FIRST_CHUNK_ROWS doubling up to ``chunk_rows``, each capped by
    ``rows_wanted()`` (the rows a limit still needs; None = no cap)."""
    size = min(FIRST_CHUNK_ROWS, chunk_rows)
    while True:
        wanted = rows_wanted() if rows_wanted is not None else None
        yield max(1, size if wanted is None else min(size, wanted))
        size = min(2 * size, chunk_rows)


def iter_chunks(path: str | Path, usecols: Sequence[str], *, dtype: dict | None = None,
                chunk_rows: int = CHUNK_ROWS,
                rows_wanted: Callable[[], int | None] | None = None) -> Iterator[pd.DataFrame]:
    """Yield DataFrame chunks of the named columns; the index is the 0-based data-row number.

    Chunk sizes follow :func:`chunk_sizes`: a caller that stops iterating once it has what it
    needs (``WindowCollector.add`` returned True) never makes pandas parse the rest.

    Cells are not turned into NaN (``na_filter=False``): an empty cell stays ``""`` so that
    checks can tell "missing" from "NaN". Rows whose every cell is empty (blank lines) are
    dropped but keep their row number, so later lines stay correct. A row with more fields
    than the header, or bad encoding, becomes an InputError with the line; a file that cannot
    be read to its end (a .gz cut short) an InputError naming it.
    """
    import pandas as pd
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            reader = pd.read_csv(path, dtype=dtype, chunksize=chunk_rows, index_col=False,
                                 skip_blank_lines=False, na_filter=False, encoding=ENCODING)
            with reader:
                for size in chunk_sizes(chunk_rows, rows_wanted):
                    try:
                        chunk = reader.get_chunk(size)
                    except StopIteration:
                        return
                    chunk.columns = [str(c).strip() for c in chunk.columns]
                    blank = _blank_rows(chunk)
                    if blank.any():
                        chunk = chunk[~blank]
                    if len(chunk):
                        yield chunk[list(usecols)]
    except pd.errors.ParserWarning:
        raise InputError("malformed CSV row: more fields than the header", path=str(path),
                         line=2) from None
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        line = int(m.group(1)) if m else None
        detail = re.sub(r"^Error tokenizing data\. C error: ", "", str(exc).strip())
        raise InputError(f"malformed CSV row: {detail}", path=str(path), line=line) from None
    except pd.errors.EmptyDataError:
        raise InputError("empty file: no header and no data rows", path=str(path),
                         line=1) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"cannot read the file as UTF-8 text ({exc.reason})",
                         path=str(path)) from None
    except (OSError, EOFError) as exc:  # a .gz that is cut short or not gzip after all
        raise InputError(f"cannot read the file as UTF-8 text ({exc})", path=str(path)) from None


def _first_bad(mask: np.ndarray, index: pd.Index) -> int:
    return int(index[int(np.argmax(mask))])


def _raw(series: pd.Series, row: int) -> str:
    value = series.loc[row]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def number_column(chunk: pd.DataFrame, col: str, path: str | Path, what: str) -> np.ndarray:
    """The column as finite float64; non-numeric, empty or infinite cells raise InputError."""
    s = chunk[col]
    if s.dtype.kind in "iuf":
        vals = s.to_numpy(np.float64)
    else:
        import pandas as pd
        vals = pd.to_numeric(s, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(vals)
    if bad.any():
        row = _first_bad(bad, chunk.index)
        raw = _raw(s, row)
        msg = f"missing {what}" if raw == "" else f"{what} is not a finite number: {raw!r}"
        raise InputError(msg, path=str(path), line=line_of(row), column=col)
    return vals


def token_column(chunk: pd.DataFrame, col: str, path: str | Path, what: str,
                 minimum: int = 1) -> np.ndarray:
    """The column as int64 token counts in ``[minimum, MAX_TOKENS]``; anything else raises
    InputError."""
    s = chunk[col]
    if s.dtype.kind in "iu":
        vals = s.to_numpy()  # int64, or uint64 for counts past int64
    else:
        vals = number_column(chunk, col, path, what)
        frac = vals != np.floor(vals)
        if frac.any():
            row = _first_bad(frac, chunk.index)
            raise InputError(f"{what} must be a whole number of tokens, got {_raw(s, row)!r}",
                             path=str(path), line=line_of(row), column=col)
    low = vals < minimum
    if low.any():
        row = _first_bad(low, chunk.index)
        raise InputError(f"{what} must be >= {minimum}, got {int(vals[np.argmax(low)])}",
                         path=str(path), line=line_of(row), column=col)
    high = vals >= MAX_TOKENS + 1  # exact for floats too (10**18 is one)
    if high.any():
        row = _first_bad(high, chunk.index)
        raise InputError(f"{what} must be at most {MAX_TOKENS} tokens, got {_raw(s, row)!r}",
                         path=str(path), line=line_of(row), column=col)
    return vals.astype(np.int64)


def check_nonnegative(values: np.ndarray, index: pd.Index, path: str | Path, col: str,
                      what: str) -> None:
    """Raise InputError at the first negative value."""
    neg = values < 0
    if neg.any():
        row = _first_bad(neg, index)
        raise InputError(f"{what} must be >= 0, got {values[np.argmax(neg)].item()!r}",
                         path=str(path), line=line_of(row), column=col)


class SortedCheck:
    """Checks that timestamps never decrease, across chunk boundaries."""

    def __init__(self, path: str | Path, col: str) -> None:
        self.path = str(path)
        self.col = col
        self.last: float | int | None = None

    def __call__(self, values: np.ndarray, index: pd.Index, render=repr) -> None:
        if values.size == 0:
            return
        prev = np.empty_like(values)
        prev[1:] = values[:-1]
        prev[0] = values[0] if self.last is None else self.last
        dec = values < prev
        if dec.any():
            k = int(np.argmax(dec))
            raise InputError(f"timestamps are not sorted: {render(values[k].item())} comes "
                             f"after {render(prev[k].item())} (rows must be in arrival order)",
                             path=self.path, line=line_of(index[k]), column=self.col)
        self.last = values[-1]


class WindowCollector:
    """Collects rows with ``start_s <= t < end_s`` (shifted by ``-start_s``) up to ``limit``.

    ``add`` returns True once no later row can be wanted (times are sorted), so a loader can
    stop reading the file early.
    """

    def __init__(self, start_s: float = 0.0, end_s: float = math.inf,
                 limit: int | None = None) -> None:
        self.start_s = start_s
        self.end_s = end_s
        self.limit = limit
        self.parts: list[Columns] = []
        self.count = 0

    def rows_wanted(self) -> int | None:
        """At most this many more rows can be kept (None: no limit); see :func:`chunk_sizes`."""
        return None if self.limit is None else max(1, self.limit - self.count)

    def add(self, cols: Columns) -> bool:
        t = cols.arrival_s
        keep = (t >= self.start_s) & (t < self.end_s)
        part = cols.take(keep)
        if self.limit is not None and self.count + len(part) > self.limit:
            part = part.take(slice(0, self.limit - self.count))
        if len(part):
            if self.start_s:
                part = Columns(part.arrival_s - self.start_s, part.prompt_tokens,
                               part.output_tokens, part.category)
            self.parts.append(part)
            self.count += len(part)
        past_end = t.size > 0 and t[-1] >= self.end_s
        return past_end or (self.limit is not None and self.count >= self.limit)

    def result(self) -> Columns:
        return Columns.concat(self.parts)
