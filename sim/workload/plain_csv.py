"""A pandas-free reader for plain numeric CSV traces (the common case), with pandas behind it.

Importing pandas costs a command about a quarter of a second, more than reading the Azure
2023 hour takes. Most trace files are *plain*: one header line of distinct names, then rows of
exactly as many comma-separated fields, ASCII, no quotes, no blank lines, no spaces around
numbers. This module reads such files in the very chunks the pandas reader uses
(:func:`sim.workload.tabular.chunk_sizes`, so a limit stops reading at the same row), finds
every field's byte span with numpy (:class:`PlainChunk`) and turns the fields into arrays that
are bit for bit what the pandas reader and its checks give:

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
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from sim.workload.tabular import CHUNK_ROWS, chunk_sizes, open_text


class NotPlain(Exception):
    """The file (or a value in it) is not plain: the caller reads it with pandas instead."""


_ONE_DECIMAL = r"(?:[0-9]+\.[0-9]*|[0-9]{1,18})"
_DECIMAL = re.compile(f"{_ONE_DECIMAL}(?:,{_ONE_DECIMAL})*")
_MAX_WHOLE_DIGITS = 18  # below 10**18: int64
_NS_YEARS = (1678, 2261)  # whole years inside datetime64[ns]'s range
_DAY_NS = 86_400 * 10 ** 9
_DIGIT = np.zeros(256, dtype=bool)
_DIGIT[ord("0"):ord("9") + 1] = True
_PUNCTUATION = {4: b"-", 7: b"-", 10: b" T", 13: b":", 16: b":", 19: b"."}
"""Byte position in a timestamp -> the bytes allowed there (every other position: a digit)."""


@dataclass(frozen=True)
class PlainChunk:
    """Consecutive rows of a plain file: their bytes and, per wanted column, each row's field
    as a byte span ``[start, end)``."""

    chars: np.ndarray
    spans: dict[str, tuple[np.ndarray, np.ndarray]]

    def __len__(self) -> int:
        return int(next(iter(self.spans.values()))[0].shape[0])

    def fields(self, column: str) -> list[str]:
        """A column's fields as text."""
        text = self.chars.tobytes().decode("ascii")
        starts, ends = self.spans[column]
        return [text[a:b] for a, b in zip(starts.tolist(), ends.tolist())]


def iter_plain_chunks(path: str | Path, usecols: Sequence[str], *, chunk_rows: int = CHUNK_ROWS,
                      rows_wanted: Callable[[], int | None] | None = None
                      ) -> Iterator[PlainChunk]:
    """Yield the rows ``sim.workload.tabular.iter_chunks`` would yield, chunk for chunk.

    Raises NotPlain at the first thing that is not plain (see the module docstring)."""
    try:
        with open_text(path) as handle:
            header = handle.readline()
            names = [name.strip() for name in header.rstrip("\r\n").split(",")]
            if (not header.endswith("\n") or '"' in header or "\r" in header.rstrip("\r\n")
                    or len(set(names)) != len(names) or "" in names
                    or not set(usecols) <= set(names)):
                raise NotPlain
            positions = [names.index(name) for name in usecols]
            for size in chunk_sizes(chunk_rows, rows_wanted):
                lines = list(islice(handle, size))
                if not lines:
                    return
                yield _chunk(lines, len(names), dict(zip(usecols, positions)))
                if len(lines) < size:
                    return
    except (UnicodeError, OSError, EOFError):
        raise NotPlain from None  # pandas reports it


def _chunk(lines: list[str], width: int, positions: dict[str, int]) -> PlainChunk:
    """The lines as a PlainChunk; NotPlain unless every line is a plain row of ``width``
    fields."""
    text = "".join(lines)
    if "\r" in text:
        if text.count("\r") != text.count("\r\n"):
            raise NotPlain
        text = text.replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"  # the file's last line without a line break
    chars = np.frombuffer(text.encode("ascii"), dtype=np.uint8)  # UnicodeError: not plain
    ends = np.flatnonzero((chars == ord(",")) | (chars == ord("\n")))  # each field's end
    if ends.size != len(lines) * width:
        raise NotPlain
    ends = ends.reshape(len(lines), width)
    starts = np.empty_like(ends)
    starts[:, 1:] = ends[:, :-1] + 1
    starts[0, 0] = 0
    starts[1:, 0] = ends[:-1, -1] + 1
    if (bool((chars[ends[:, -1]] != ord("\n")).any()) or bool((ends == starts).all(axis=1).any())
            or bool((chars == ord('"')).any())):
        raise NotPlain  # a row of more or fewer fields, a blank line, a quote
    return PlainChunk(chars, {name: (starts[:, pos], ends[:, pos])
                              for name, pos in positions.items()})


def whole_numbers(chunk: PlainChunk, column: str, minimum: int = 1) -> np.ndarray:
    """Token counts as int64; NotPlain unless every field is digits with a value >= minimum."""
    starts, ends = chunk.spans[column]
    lengths = ends - starts
    if lengths.min() < 1 or lengths.max() > _MAX_WHOLE_DIGITS:
        raise NotPlain
    value = np.zeros(lengths.shape[0], dtype=np.int64)
    for k in range(int(lengths.max())):  # digit k of every field that has one
        has = lengths > k
        byte = chunk.chars[np.where(has, starts + k, 0)]
        if not bool(_DIGIT[byte][has].all()):
            raise NotPlain
        value = np.where(has, value * 10 + (byte.astype(np.int64) - ord("0")), value)
    if int(value.min()) < minimum:
        raise NotPlain
    return value


def decimals(chunk: PlainChunk, column: str) -> np.ndarray:
    """Non-negative decimals as float64, the bits pandas' parser gives (module docstring)."""
    fields = chunk.fields(column)
    if not _DECIMAL.fullmatch(",".join(fields)):
        raise NotPlain
    return np.array(list(map(float, fields)), dtype=np.float64)


def timestamps_ns(chunk: PlainChunk, column: str) -> np.ndarray:
    """UTC wall-clock timestamps as int64 nanoseconds since the epoch (module docstring)."""
    starts, ends = chunk.spans[column]
    lengths = ends - starts
    out = np.empty(lengths.shape[0], dtype=np.int64)
    for length in np.unique(lengths).tolist():  # one fixed width at a time
        rows = np.flatnonzero(lengths == length)
        if length < 19:
            raise NotPlain
        raw = chunk.chars[starts[rows, None] + np.arange(length)]
        offset = (raw[:, -6:] == np.frombuffer(b"+00:00", np.uint8)).all(axis=1)
        for has_offset in (False, True):  # the same width with and without "+00:00"
            part = offset == has_offset
            if part.any():
                out[rows[part]] = _fixed_width_ns(raw[part], has_offset)
    return out


def _fixed_width_ns(raw: np.ndarray, offset: bool) -> np.ndarray:
    """``timestamps_ns`` of rows of one layout (``raw``: one row of bytes per timestamp)."""
    body = raw.shape[1] - 6 if offset else raw.shape[1]  # without "+00:00"
    digit_columns = [c for c in range(body) if c not in _PUNCTUATION]
    if (body == 20 or body > 29 or not _DIGIT[raw[:, digit_columns]].all()
            or any(not np.isin(raw[:, c], np.frombuffer(allowed, np.uint8)).all()
                   for c, allowed in _PUNCTUATION.items() if c < body)):
        raise NotPlain
    def number(start: int, stop: int) -> np.ndarray:
        value = np.zeros(raw.shape[0], dtype=np.int64)
        for col in range(start, stop):
            value = value * 10 + (raw[:, col].astype(np.int64) - ord("0"))
        return value

    year, month = number(0, 4), number(5, 7)
    hour, minute, second = number(11, 13), number(14, 16), number(17, 19)
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
