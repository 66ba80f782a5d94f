"""Column arrays <-> Workload conversion, the shared window/limit selection, and file hashing.

Loaders and transformations work on numpy columns (fast, vectorised) and build the frozen
``Workload`` only at the end; its requests stay columns (``RequestColumns``: a ``Request``
record is made only when read); this module holds that conversion.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.errors import ConfigError
from sim.workload.request import RequestColumns, Workload

MAX_TOKENS = 10 ** 18 - 1
"""Largest token count a trace may give (18 digits; every model's context is far shorter, so
such a request is rejected on arrival): a prompt plus an output stays inside the int64 the
engine counts tokens in (two 9e18 counts would wrap around)."""


@dataclass(frozen=True)
class Columns:
    """A workload as parallel arrays (sorted by arrival).

    ``arrival_s`` float64, ``prompt_tokens`` / ``output_tokens`` int64, ``category`` an object
    array of str ("" = no category).
    """

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    category: np.ndarray

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])

    def take(self, index: np.ndarray | slice) -> Columns:
        """The rows selected by a boolean mask, an index array or a slice."""
        return Columns(self.arrival_s[index], self.prompt_tokens[index],
                       self.output_tokens[index], self.category[index])

    @staticmethod
    def empty() -> Columns:
        return Columns(np.empty(0, np.float64), np.empty(0, np.int64), np.empty(0, np.int64),
                       np.empty(0, object))

    @staticmethod
    def concat(parts: list[Columns]) -> Columns:
        if not parts:
            return Columns.empty()
        return Columns(np.concatenate([p.arrival_s for p in parts]),
                       np.concatenate([p.prompt_tokens for p in parts]),
                       np.concatenate([p.output_tokens for p in parts]),
                       np.concatenate([p.category for p in parts]))


def empty_categories(n: int) -> np.ndarray:
    """An object array of ``n`` empty category strings."""
    out = np.empty(n, dtype=object)
    out[:] = ""
    return out


def to_columns(workload: Workload) -> Columns:
    """The workload's requests as arrays (the inverse of :func:`to_workload`)."""
    reqs = workload.requests
    if isinstance(reqs, RequestColumns):
        cats = np.empty(len(reqs), dtype=object)
        cats[:] = reqs.categories()
        return Columns(reqs.arrival_s, reqs.prompt_tokens, reqs.output_tokens, cats)
    cats = np.empty(len(reqs), dtype=object)
    cats[:] = [r.category for r in reqs]
    return Columns(np.fromiter((r.arrival_s for r in reqs), np.float64, len(reqs)),
                   np.fromiter((r.prompt_tokens for r in reqs), np.int64, len(reqs)),
                   np.fromiter((r.output_tokens for r in reqs), np.int64, len(reqs)),
                   cats)


def to_workload(cols: Columns, *, source: str, format: str, sha256: str | None = None,
                transforms: tuple[str, ...] = ()) -> Workload:
    """Build a Workload; request ids are 0..N-1 in the (already sorted) arrival order.

    The requests stay columns (``RequestColumns``): a record is made only when read."""
    requests = RequestColumns(cols.arrival_s, cols.prompt_tokens, cols.output_tokens,
                              cols.category)
    return Workload(requests=requests, source=source, format=format, sha256=sha256,
                    transforms=tuple(transforms))


def check_window(start_s: float | None, end_s: float | None) -> tuple[float, float]:
    """Validate window bounds; None means open (0 and +inf). Raises ConfigError."""
    start = 0.0 if start_s is None else float(start_s)
    end = math.inf if end_s is None else float(end_s)
    if math.isnan(start) or math.isnan(end) or start < 0 or math.isinf(start):
        raise ConfigError(f"window start must be a finite number >= 0 s, got {start_s!r}")
    if not end > start:
        raise ConfigError(f"window end ({end_s!r} s) must be after its start ({start_s!r} s)")
    return start, end


def check_limit(n: int | None) -> int | None:
    """Validate a request limit (a positive whole number, or None for no limit)."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"request limit must be a whole number >= 1, got {n!r}")
    return int(n)


def window_label(start_s: float, end_s: float) -> str:
    """The readable transform record of a window, e.g. ``window=3000.0:inf``."""
    return f"window={float(start_s)!r}:{float(end_s)!r}"


def select_window(cols: Columns, start_s: float, end_s: float) -> Columns:
    """Rows with ``start_s <= arrival_s < end_s``, shifted so that ``start_s`` becomes 0.

    The shift keeps gaps (e.g. AdaSpec's code.csv = the Azure code trace from 3000 s on,
    shifted by -3000 s, so it starts at 72.99 s).
    """
    mask = (cols.arrival_s >= start_s) & (cols.arrival_s < end_s)
    out = cols.take(mask)
    if start_s:
        out = Columns(out.arrival_s - start_s, out.prompt_tokens, out.output_tokens, out.category)
    return out


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of the file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Loaded:
    """What a format loader returns: the selected rows and provenance notes.

    ``notes`` are extra transform records (e.g. ``burstgpt_dropped_failed=3``);
    ``data_rows`` counts the data rows the loader saw (0 means the file has none).
    """

    columns: Columns
    notes: tuple[str, ...] = ()
    data_rows: int = 0
