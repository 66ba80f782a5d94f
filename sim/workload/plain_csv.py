"""A pandas-free reader for plain numeric CSV traces (the common case), with pandas behind it.

Loading pandas costs a command about a quarter of a second, more than reading a trace of
the size of the Azure 2023 hour takes. Most trace files are *plain*: one header line of
distinct names, then rows of exactly as many comma-separated fields, no quotes, no blank
lines, no spaces around numbers. This module reads such files with the ``csv``-free string
operations of Python and numpy, in the very chunks the pandas reader uses
(:func:`sim.workload.tabular.chunk_sizes`, so a limit stops reading at the same row), and
turns fields into arrays that are bit for bit what the pandas reader and its checks give:

* :func:`whole_numbers`: ``[0-9]{1,18}`` -> int64 (pandas parses such a column as int64);
* :func:`decimals`: ``[0-9]{1,18}`` or ``[0-9]+.[0-9]*`` -> float64 with ``float``, the
  correctly rounded value, which is what pandas (>= 3.1: its only float converter) gives for
  every such field (checked on 200,000 random fields of up to 24 digits and on AdaSpec's
  traces, whose 17-digit times older pandas' default converter could round differently);
* :func:`timestamps_ns`: ``YYYY-MM-DD HH:MM:SS[.f{1,9}][+00:00]`` (``T`` also separating date
  and time, years 1678-2261: the nanosecond range) -> int64 nanoseconds since the epoch, UTC,
  what ``pd.to_datetime(format="ISO8601", utc=True)`` gives (checked on both Azure years).

Anything else, and any value a loader's checks would refuse (a token count below 1, times
out of order), raises :class:`NotPlain`; the loader then reads the whole file again with
pandas (:mod:`sim.workload.tabular`), which gives the same arrays or the same error message
with its line and column. The plain reader never reports an error itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from operator import methodcaller
from pathlib import Path

import numpy as np

from sim.workload.tabular import CHUNK_ROWS, chunk_sizes, open_text


class NotPlain(Exception):
    """The file (or a value in it) is not plain: the caller reads it with pandas instead."""


_WHOLE = re.compile(r"[0-9]{1,18}(?:,[0-9]{1,18})*")
_ONE_DECIMAL = r"(?:[0-9]+\.[0-9]*|[0-9]{1,18})"
_DECIMAL = re.compile(f"{_ONE_DECIMAL}(?:,{_ONE_DECIMAL})*")
_ONE_TIMESTAMP = (r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}"
                  r"(?:\.[0-9]{1,9})?(?:\+00:00)?")
_TIMESTAMP = re.compile(f"{_ONE_TIMESTAMP}(?:,{_ONE_TIMESTAMP})*")
_NS_YEARS = (1678, 2261)  # whole years inside datetime64[ns]'s range
_DAY_NS = 86_400 * 10 ** 9


def iter_plain_chunks(path: str | Path, usecols: Sequence[str], *, chunk_rows: int = CHUNK_ROWS,
                      rows_wanted: Callable[[], int | None] | None = None
                      ) -> Iterator[dict[str, list[str]]]:
    """Yield chunks as ``{column: fields}`` (text), the rows ``iter_chunks`` would yield.

    Raises NotPlain at the first thing that is not plain (see the module docstring)."""
    with open_text(path) as handle:
        header = handle.readline()
        if not header.endswith("\n") or '"' in header:
            raise NotPlain
        names = [name.strip() for name in header.rstrip("\r\n").split(",")]
        if len(set(names)) != len(names) or "" in names or "\r" in header.rstrip("\r\n"):
            raise NotPlain
        try:
            positions = [names.index(name) for name in usecols]
        except ValueError:
            raise NotPlain from None
        width = len(names)
        for size in chunk_sizes(chunk_rows, rows_wanted):
            lines = list(islice(handle, size))
            if not lines:
                return
            yield _split(lines, width, usecols, positions)
            if len(lines) < size:
                return


def _split(lines: list[str], width: int, usecols: Sequence[str],
           positions: list[int]) -> dict[str, list[str]]:
    """The chunk's fields per wanted column; NotPlain unless every line is a plain row."""
    text = "".join(lines)
    if '"' in text:
        raise NotPlain
    if "\r" in text:
        if text.count("\r") != text.count("\r\n"):
            raise NotPlain
        text = text.replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"  # the file's last line without a line break
    if text.count("\n") != len(lines) or text.startswith("\n") or "\n\n" in text:
        raise NotPlain  # a blank line (pandas keeps it as an empty row)
    rows = text[:-1].split("\n")
    if set(map(methodcaller("count", ","), rows)) != {width - 1}:
        raise NotPlain
    fields = ",".join(rows).split(",")
    return {name: fields[pos::width] for name, pos in zip(usecols, positions)}


def whole_numbers(fields: list[str], minimum: int = 1) -> np.ndarray:
    """Token counts as int64; NotPlain unless every field is digits with a value >= minimum."""
    if not _WHOLE.fullmatch(",".join(fields)):
        raise NotPlain
    values = np.array(list(map(int, fields)), dtype=np.int64)
    if values.size and int(values.min()) < minimum:
        raise NotPlain
    return values


def decimals(fields: list[str]) -> np.ndarray:
    """Non-negative decimals as float64, the bits pandas' parser gives (module docstring)."""
    if not _DECIMAL.fullmatch(",".join(fields)):
        raise NotPlain
    return np.array(list(map(float, fields)), dtype=np.float64)


def timestamps_ns(fields: list[str]) -> np.ndarray:
    """UTC wall-clock timestamps as int64 nanoseconds since the epoch (module docstring)."""
    if not fields or not _TIMESTAMP.fullmatch(",".join(fields)):
        raise NotPlain
    offset = np.fromiter(map(methodcaller("endswith", "+00:00"), fields), bool, len(fields))
    layout = np.fromiter(map(len, fields), np.int64, len(fields)) * 2 + offset
    out = np.empty(len(fields), dtype=np.int64)
    for key in np.unique(layout).tolist():  # one fixed-width layout per length and offset
        rows = np.flatnonzero(layout == key)
        chosen = [fields[i] for i in rows.tolist()] if rows.size < len(fields) else fields
        out[rows] = _fixed_width_ns(chosen, key // 2, bool(key % 2))
    return out


def _fixed_width_ns(fields: list[str], length: int, offset: bool) -> np.ndarray:
    """``timestamps_ns`` of fields of one layout (length, with or without ``+00:00``)."""
    raw = np.frombuffer("".join(fields).encode("ascii"), dtype=np.uint8).reshape(-1, length)
    digits = raw.astype(np.int64) - ord("0")

    def number(start: int, stop: int) -> np.ndarray:
        value = np.zeros(raw.shape[0], dtype=np.int64)
        for col in range(start, stop):
            value = value * 10 + digits[:, col]
        return value

    year, month = number(0, 4), number(5, 7)
    hour, minute, second = number(11, 13), number(14, 16), number(17, 19)
    body = length - 6 if offset else length
    fraction_ns = np.zeros(raw.shape[0], dtype=np.int64)
    if body > 19:  # ".f..." with body - 20 digits
        fraction_ns = number(20, body) * 10 ** (9 - (body - 20))
    if (year.min() < _NS_YEARS[0] or year.max() > _NS_YEARS[1] or hour.max() > 23
            or minute.max() > 59 or second.max() > 59):
        raise NotPlain
    try:
        dates = raw[:, :10].copy().view("S10").ravel().astype("datetime64[D]")
    except ValueError:  # not a calendar date (2023-02-30)
        raise NotPlain from None
    if (month != dates.astype("datetime64[M]").astype(np.int64) % 12 + 1).any():
        raise NotPlain  # a date numpy rolled over instead of refusing
    return (dates.astype(np.int64) * _DAY_NS
            + ((hour * 60 + minute) * 60 + second) * 10 ** 9 + fraction_ns)


def nondecreasing(values: np.ndarray, last) -> None:
    """NotPlain unless ``values`` never decrease, from ``last`` (None: the first chunk) on."""
    if values.size and ((last is not None and values[0] < last)
                        or bool((values[1:] < values[:-1]).any())):
        raise NotPlain
