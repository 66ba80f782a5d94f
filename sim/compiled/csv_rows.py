"""A ``sim.table.Table``'s rows as CSV bytes, written by one compiled function: the bytes of
``sim.csv_text``'s numpy path (pandas' ``to_csv(float_format="%.9g")``), for processes that
have numba set up anyway (a run on the compiled iteration path).

The numpy path builds a byte matrix per column, zeros where a field is shorter than the
column's widest, and deletes the zeros of the rows put side by side. A ``Ragged`` column's
matrix is as wide as its longest row (an AdaSpec iteration table's ``verify_lengths``: one
place per request of the largest batch), so most of what that path builds, copies and scans
is zeros. Here ``write_rows`` writes each row field by field instead:

* a ``Ragged`` column of integers that int64 holds from its values, joined by ';'
  (``write_integer``);
* every other column from the numpy path's byte matrix (``sim.csv_text``: the formatting of
  floats, integers, text is written once, there), its nonzero bytes copied.

The full Azure hour's ``iterations.csv`` under adaspec:8 (13.2 MB) takes about 0.075 s of
CPU this way against 0.13 s (``docs/compiled_engine.md``); a table without ``Ragged`` columns
takes longer (the numpy path deletes zeros faster than this copies the other columns), so
``sim.csv_text`` uses this path only where ``saves_time``. ``rows_pieces`` returns None where a
column is left to pandas, exactly where the numpy path does."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from sim.compiled.jit import compiled, jitable
from sim.table import Ragged

FIELD_BYTES, FIELD_RAGGED = 0, 1
"""``layout[c, 0]``: how column ``c`` is written (``layout[c, 1]``: its row in
``byte_ranges`` or ``ragged_offsets``)."""

_INTEGER_BYTES = 20
"""The most bytes an int64 takes as text ('-' and 19 digits)."""

BLOCK_BYTES = 1 << 20
"""About how many bytes of text each piece holds (a block of rows)."""


@jitable
def write_integer(out, at, value):
    """``value`` (int64) as decimal text at ``out[at:]``; returns the place after it."""
    if 0 <= value < 10:  # most values of a ragged column (a step's counts)
        out[at] = 48 + value
        return at + 1
    if value < 0:
        out[at] = 45  # '-'
        at += 1
        magnitude = np.uint64(-(value + 1)) + np.uint64(1)  # int64's minimum too
    else:
        magnitude = np.uint64(value)
    digits = 1
    rest = magnitude // np.uint64(10)
    while rest:
        digits += 1
        rest //= np.uint64(10)
    end = at + digits
    for place in range(end - 1, at - 1, -1):
        quotient = magnitude // np.uint64(10)
        out[place] = np.uint8(magnitude - quotient * np.uint64(10)) + 48
        magnitude = quotient
    return end


@jitable
def write_rows(out, first, stop, layout, byte_matrix, byte_ranges, ragged_values,
               ragged_offsets):
    """Rows ``first..stop-1`` as CSV text into ``out`` (large enough); returns the bytes
    written. Column ``c`` of a row: the nonzero bytes of
    ``byte_matrix[row, byte_ranges[k, 0]:byte_ranges[k, 1]]`` (``layout[c] = FIELD_BYTES,
    k``), or ``ragged_values[ragged_offsets[k, row]:ragged_offsets[k, row + 1]]`` joined by
    ';' (``FIELD_RAGGED``); ',' between columns, '\\n' after the last."""
    columns = layout.shape[0]
    at = 0
    for row in range(first, stop):
        fields = byte_matrix[row]
        for c in range(columns):
            k = layout[c, 1]
            if layout[c, 0] == FIELD_BYTES:
                for b in range(byte_ranges[k, 0], byte_ranges[k, 1]):
                    byte = fields[b]
                    out[at] = byte
                    at += byte != 0  # the zeros a shorter field leaves are not text
            else:
                begin = ragged_offsets[k, row]
                end = ragged_offsets[k, row + 1]
                for q in range(begin, end):
                    at = write_integer(out, at, ragged_values[q])
                    out[at] = 59  # ';'
                    at += 1
                at -= end > begin  # no ';' after the last value
            out[at] = 44 if c < columns - 1 else 10  # ',' or a line break
            at += 1
    return at


def _int64_ragged(values) -> bool:
    """Whether a column is ``Ragged`` with integers that int64 holds whatever they are
    (signed integers, unsigned of up to 32 bits)."""
    if not isinstance(values, Ragged):
        return False
    dtype = np.asarray(values.values).dtype
    return dtype.kind == "i" or (dtype.kind == "u" and dtype.itemsize <= 4)


def saves_time(columns: list) -> bool:
    """Whether writing these columns here is faster than the numpy path: where a ``Ragged``
    column holds values (measured on the Azure hour's tables: adaspec:8's iteration table
    0.073 s against 0.10 s of CPU; nospec's, whose ragged columns are empty, 0.060 s against
    0.048 s; a requests table, no ragged column, 0.027 s against 0.024 s)."""
    return any(_int64_ragged(values) and bool((np.asarray(values.counts) > 0).any())
               for values in columns)


def rows_pieces(columns: list, byte_matrix_of) -> Iterator[bytes] | None:
    """A table's rows (its columns' values, in order, at least one row) as CSV bytes, about
    ``BLOCK_BYTES`` a piece; None when ``byte_matrix_of`` (``sim.csv_text``'s byte matrix of
    a column) leaves a column to pandas. Every byte matrix is made before this returns."""
    rows = len(columns[0])
    layout = np.empty((len(columns), 2), np.int64)
    matrices, ragged = [], []
    for c, values in enumerate(columns):
        if _int64_ragged(values):
            layout[c] = FIELD_RAGGED, len(ragged)
            ragged.append(values)
        else:
            matrix = byte_matrix_of(values)
            if matrix is None:
                return None
            layout[c] = FIELD_BYTES, len(matrices)
            matrices.append(matrix)
    byte_ranges = np.zeros((len(matrices), 2), np.int64)
    byte_ranges[:, 1] = np.cumsum([m.shape[1] for m in matrices], dtype=np.int64)
    byte_ranges[1:, 0] = byte_ranges[:-1, 1]
    byte_matrix = (np.concatenate(matrices, axis=1) if matrices
                   else np.zeros((rows, 0), np.uint8))
    ragged_offsets = np.zeros((len(ragged), rows + 1), np.int64)
    parts: list[np.ndarray] = []
    for k, column in enumerate(ragged):
        sizes = np.maximum(np.asarray(column.counts), 0)
        np.cumsum(sizes, out=ragged_offsets[k, 1:])
        ragged_offsets[k] += sum(part.shape[0] for part in parts)
        parts.append(np.asarray(column.values)[:int(sizes.sum(dtype=np.int64))]
                     .astype(np.int64))
    ragged_values = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    row_bytes = len(columns) + byte_matrix.shape[1]
    return _pieces(rows, row_bytes, (layout, byte_matrix, byte_ranges, ragged_values,
                                     ragged_offsets))


def _pieces(rows: int, row_bytes: int, arrays: tuple) -> Iterator[bytes]:
    """``write_rows`` a block of rows at a time into one buffer, sized for the widest text
    any block could be (``row_bytes`` a row, ``_INTEGER_BYTES`` and a ';' a ragged value)."""
    ragged_offsets = arrays[-1]
    values_per_row = int(ragged_offsets[:, -1].sum() - ragged_offsets[:, 0].sum()) / rows
    per_row = row_bytes + (_INTEGER_BYTES + 1) * values_per_row
    block = max(1, min(rows, int(BLOCK_BYTES // per_row)))
    starts = np.arange(0, rows + block, block)
    starts[-1] = rows
    starts = np.unique(starts)
    values = ragged_offsets[:, starts].sum(axis=0)
    bounds = np.diff(starts) * row_bytes + (_INTEGER_BYTES + 1) * np.diff(values)
    buffer = np.empty(int(bounds.max()), np.uint8)
    write = compiled(write_rows)
    for first, stop in zip(starts[:-1].tolist(), starts[1:].tolist()):
        size = write(buffer, first, stop, *arrays)
        yield buffer[:size].tobytes()
