"""Per-request table: times, token counts, speculation counters and per-request SLO verdict.

Definitions (seconds): TTFT = first token - arrival; E2E = finish - arrival;
TPOT = (E2E - TTFT) / (output tokens - 1), undefined (NaN) for one-token outputs, which then
meet any TPOT SLO. A request meets the SLO when it finished, TTFT <= ttft_slo and
TPOT <= tpot_slo; a rejected request never does. ``rejected_reason`` is the
``sim.core.scheduler.REJECT_REASONS`` key of a rejected request ("" otherwise).

:class:`RequestTable` is where the engine puts each request when it leaves (``append`` /
``extend``, like a list, or ``add_columns``): it keeps one row of typed numbers per request
(about 70 bytes; the ``FinishedRequest`` and its ``Request`` are not kept) and gives the
table sorted by id, whole (``frame``) or in slices: ``tables`` (``sim.table.Table`` columns,
what the CSV writer streams, no pandas) or ``frames`` (the same slices as DataFrames).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import numpy as np

from sim.core.scheduler import FinishedRequest, reject_reason_kind
from sim.table import Coded, Table

if TYPE_CHECKING:
    import pandas as pd

REQUEST_COLUMNS = (
    "id", "category", "status", "rejected_reason", "arrival_s", "admitted_s", "first_token_s", "finish_s",
    "prompt_tokens", "output_tokens", "generated_tokens", "ttft_s", "tpot_s", "e2e_s",
    "drafted_tokens", "verified_tokens", "accepted_tokens", "preemptions", "slo_met",
)
_FLOATS = ("arrival_s", "admitted_s", "first_token_s", "finish_s")
_COUNTS = ("prompt_tokens", "output_tokens", "generated_tokens", "drafted_tokens",
           "verified_tokens", "accepted_tokens", "preemptions")
_CODED = ("category", "status", "rejected_reason")  # strings kept as small codes
BUFFER_ROWS = 8192
FRAME_ROWS = 65536
"""Rows per slice of ``frames`` (a few MB of formatted text when written)."""


class RequestTable:
    """The engine's finish records as typed columns (a list-like sink: ``append``/``extend``)."""

    def __init__(self, ttft_slo_s: float, tpot_slo_s: float) -> None:
        self.ttft_slo_s = ttft_slo_s
        self.tpot_slo_s = tpot_slo_s
        self._rows: list[tuple] = []
        self._parts: list[dict[str, np.ndarray]] = []
        self._names: dict[str, dict[str, int]] = {c: {} for c in _CODED}
        self._sorted: dict[str, np.ndarray] | None = None

    def append(self, f: FinishedRequest) -> None:
        r = f.request
        self._rows.append((r.id, r.category, f.status,
                           reject_reason_kind(f.reason) if f.status == "rejected" else "",
                           r.arrival_s, f.admitted_s, f.first_token_s, f.finish_s,
                           r.prompt_tokens, r.output_tokens, f.generated_tokens,
                           f.drafted_tokens, f.verified_tokens, f.accepted_tokens, f.preemptions))
        if len(self._rows) >= BUFFER_ROWS:
            self._flush()

    def extend(self, records: Iterable[FinishedRequest]) -> None:
        for record in records:
            self.append(record)

    def __len__(self) -> int:
        return sum(len(p["id"]) for p in self._parts) + len(self._rows) + (
            len(self._sorted["id"]) if self._sorted is not None else 0)

    def _flush(self) -> None:
        if not self._rows:
            return
        columns = list(zip(*self._rows))
        self._rows = []
        self._add_part(columns[0], columns[1:4], columns[4:8], columns[8:])

    def add_columns(self, ids, coded, floats, counts) -> None:
        """Rows given as columns (the compiled engine's hand-over), after those appended so
        far: ``ids``; ``coded``: category, status, rejected_reason (strings); ``floats``:
        arrival, admitted, first token, finish (s); ``counts``: prompt, output, generated,
        drafted, verified, accepted tokens and preemptions."""
        self._flush()
        self._add_part(ids, coded, floats, counts)

    def _add_part(self, ids, coded, floats, counts) -> None:
        part = {"id": np.array(ids, dtype=np.int64)}  # copies: the table owns its rows
        for name, values in zip(_CODED, coded):
            codes = self._names[name]
            part[name] = np.fromiter((codes.setdefault(v, len(codes)) for v in values),
                                     np.int32, len(values))
        for name, values in zip(_FLOATS, floats):
            part[name] = np.array(values, dtype=np.float64)
        for name, values in zip(_COUNTS, counts):
            part[name] = np.array(values, dtype=np.int64).astype(np.int32)
        self._parts.append(part)

    def columns(self) -> dict[str, np.ndarray]:
        """Every stored column, rows sorted by id (stable: finish order among equal ids)."""
        self._flush()
        if self._parts:
            parts = self._parts + ([self._sorted] if self._sorted is not None else [])
            merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            self._parts = []
            order = np.argsort(merged["id"], kind="stable")
            self._sorted = {k: v[order] for k, v in merged.items()}
        if self._sorted is None:
            empty = {"id": np.zeros(0, np.int64), **{c: np.zeros(0, np.int32) for c in _CODED}}
            empty.update({c: np.zeros(0, np.float64) for c in _FLOATS})
            empty.update({c: np.zeros(0, np.int32) for c in _COUNTS})
            return empty
        return self._sorted

    def names(self, column: str) -> np.ndarray:
        """The strings of a coded column, indexed by code."""
        codes = self._names[column]
        out = np.empty(len(codes), dtype=object)
        out[:] = list(codes)
        return out

    def metrics(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """TTFT, TPOT, E2E (s) and the SLO verdict of rows ``start:stop`` (sorted by id)."""
        cols = self.columns()
        window = slice(start, stop)
        arrival = cols["arrival_s"][window]
        ttft = cols["first_token_s"][window] - arrival
        e2e = cols["finish_s"][window] - arrival
        decode_tokens = cols["output_tokens"][window].astype(np.int64) - 1
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = np.where(decode_tokens > 0, (e2e - ttft) / np.maximum(decode_tokens, 1),
                            np.nan)
        finished = cols["status"][window] == self._names["status"].get("finished", -1)
        ok = finished & (ttft <= self.ttft_slo_s)
        ok &= np.isnan(tpot) | (tpot <= self.tpot_slo_s)
        return {"ttft_s": ttft, "tpot_s": tpot, "e2e_s": e2e, "slo_met": ok.astype(bool)}

    def frames(self, rows: int = FRAME_ROWS) -> Iterator[pd.DataFrame]:
        """``tables`` as pandas DataFrames."""
        for table in self.tables(rows):
            yield table.to_frame()

    def tables(self, rows: int = FRAME_ROWS) -> Iterator[Table]:
        """The table (columns ``REQUEST_COLUMNS``, sorted by id) in slices of ``rows`` rows."""
        cols = self.columns()
        n = len(cols["id"])
        names = {c: self.names(c) for c in _CODED}
        for start in range(0, max(n, 1), rows):
            stop = min(start + rows, n)
            data: dict[str, np.ndarray] = {"id": cols["id"][start:stop]}
            for c in _CODED:
                data[c] = Coded(cols[c][start:stop], names[c])
            for c in _FLOATS:
                data[c] = cols[c][start:stop]
            for c in _COUNTS:
                data[c] = cols[c][start:stop].astype(np.int64)
            data.update(self.metrics(start, stop))
            yield Table({c: data[c] for c in REQUEST_COLUMNS})

    def frame(self) -> pd.DataFrame:
        """The whole table, sorted by id."""
        return next(self.frames(rows=max(len(self), 1)))


def requests_frame(finished: Sequence[FinishedRequest], ttft_slo_s: float,
                   tpot_slo_s: float) -> pd.DataFrame:
    """Build the per-request table (sorted by id) from the engine's finish records."""
    table = RequestTable(ttft_slo_s, tpot_slo_s)
    table.extend(finished)
    return table.frame()
