"""Per-iteration log of a run (simulated or real: one schema), kept in bounded memory.

Rows are appended as tuples (the cheapest thing to do once per iteration) and every
:data:`CHUNK_ROWS` rows turned into one :class:`IterationChunk` of typed column arrays. A chunk
then feeds the run's running statistics (:class:`IterationStats`: everything the summary needs
from the iterations, exact) and is either kept in memory (compact arrays), written to a spool
folder as raw arrays (``spool_dir``: memory no longer grows with the number of iterations) or
dropped (``keep=False``: no iteration table, e.g. for sweeps). ``tables()`` yields the table
chunk by chunk as ``sim.table.Table`` columns (what the CSV writer streams, no pandas),
``frames()`` the same chunks as pandas DataFrames and ``to_frame()`` the whole table.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from sim.metrics.load import QueueLoad
from sim.table import Coded, Ragged, Table

if TYPE_CHECKING:
    import pandas as pd

ITERATION_COLUMNS = (
    "start_s", "duration_s", "kind", "batch_size", "padded_batch", "draft_steps",
    "drafted_tokens", "verify_tokens", "padded_tokens", "emitted_tokens", "accepted_tokens",
    "queue_len", "context_tokens", "verify_rows", "kv_tokens_read", "verify_lengths",
    "draft_rows", "draft_kv_tokens",
)
_SCALAR_COLUMNS = ITERATION_COLUMNS[:-3]
_RAGGED = ("verify_lengths", "draft_rows", "draft_kv_tokens")
CHUNK_ROWS = 16384
"""Rows buffered as tuples before they become one typed chunk (a few MB at most)."""
_KIND_NAMES = np.array(["prefill", "decode"], dtype=object)
_INT32 = np.iinfo(np.int32)


@dataclass(frozen=True)
class IterationChunk:
    """Consecutive rows as typed arrays: ``scalars`` (``kind`` as 0 prefill / 1 decode) and,
    per ragged column, the values of every row back to back with each row's count (-1: none,
    written as an empty field like a row with no values)."""

    scalars: dict[str, np.ndarray]
    ragged: dict[str, tuple[np.ndarray, np.ndarray]]

    def __len__(self) -> int:
        return int(self.scalars["start_s"].shape[0])

    def table(self) -> Table:
        """The rows as the iteration table's columns as stored (counts int32 where they fit,
        ``kind`` as ``Coded`` text, the ragged columns as ``Ragged``: text only in the writer)."""
        data = dict(self.scalars)
        data["kind"] = Coded(self.scalars["kind"], _KIND_NAMES)
        for name in _RAGGED:
            data[name] = Ragged(*self.ragged[name])
        return Table({k: data[k] for k in ITERATION_COLUMNS})

    def frame(self) -> pd.DataFrame:
        """The rows as the iteration table (the columns and cell values of ``to_frame``: counts
        int64, ``kind`` and the ragged columns as text of pandas' ``object`` type)."""
        import pandas as pd
        columns = self.table().columns
        frame = pd.DataFrame({k: columns[k].astype(np.int64) if columns[k].dtype == np.int32
                              else columns[k] for k in _SCALAR_COLUMNS if k != "kind"})
        frame.insert(_SCALAR_COLUMNS.index("kind"), "kind", columns["kind"].text())
        for name in _RAGGED:
            frame[name] = pd.Series(columns[name].text(), dtype=object)
        return frame

    def save(self, path: Path) -> None:
        """Write the chunk to ``path`` as one line of JSON naming each array (name, dtype,
        length) and then the arrays' bytes back to back, each padded to 8 bytes: no archive
        and no checksum to compute or check (a spool file lives only as long as its run)."""
        arrays = {f"s_{k}": v for k, v in self.scalars.items()}
        for name, (flat, counts) in self.ragged.items():
            arrays[f"f_{name}"], arrays[f"c_{name}"] = flat, counts
        arrays = {k: np.ascontiguousarray(v).reshape(-1) for k, v in arrays.items()}
        head = json.dumps([[k, v.dtype.str, v.shape[0]] for k, v in arrays.items()])
        with open(path, "wb") as handle:
            handle.write(head.encode("ascii") + b"\n")
            for values in arrays.values():
                handle.write(values.data)
                handle.write(bytes(-values.nbytes % 8))

    @staticmethod
    def load(path: Path) -> IterationChunk:
        """A chunk written by :meth:`save` (its arrays share one writable buffer)."""
        with open(path, "rb") as handle:
            head = json.loads(handle.readline())
            body = bytearray(os.fstat(handle.fileno()).st_size - handle.tell())
            handle.readinto(body)
        data, at = {}, 0
        for name, dtype, length in head:
            dtype = np.dtype(dtype)
            data[name] = np.frombuffer(body, dtype, length, at)
            at += length * dtype.itemsize
            at += -at % 8
        scalars = {k: data[f"s_{k}"] for k in _SCALAR_COLUMNS}
        ragged = {k: (data[f"f_{k}"], data[f"c_{k}"]) for k in _RAGGED}
        return IterationChunk(scalars, ragged)


class IterationStats:
    """What the run summary needs from the iterations, accumulated chunk by chunk (integer
    sums, so the means equal those of the whole table): counts and sums of the decode
    iterations and, given the arrival span, the waiting-queue report (``QueueLoad``)."""

    def __init__(self, arrival_span_s: tuple[float, float] | None = None) -> None:
        self.iterations = 0
        self.decode = 0
        self.decode_batch = 0
        self.decode_emitted = 0
        self.decode_draft_steps = 0
        self.load = QueueLoad(*arrival_span_s) if arrival_span_s is not None else None

    def add(self, start_s: np.ndarray, kind_decode: np.ndarray, batch: np.ndarray,
            emitted: np.ndarray, draft_steps: np.ndarray, queue: np.ndarray) -> None:
        self.iterations += int(start_s.shape[0])
        decode = np.asarray(kind_decode, dtype=bool)
        self.decode += int(decode.sum())
        self.decode_batch += int(batch[decode].sum())
        self.decode_emitted += int(emitted[decode].sum())
        self.decode_draft_steps += int(draft_steps[decode].sum())
        if self.load is not None:
            self.load.add(start_s, queue)

    @staticmethod
    def of_frame(iterations: pd.DataFrame,
                 arrival_span_s: tuple[float, float] | None) -> IterationStats:
        """The statistics of a whole iteration table (e.g. read back from CSV)."""
        stats = IterationStats(arrival_span_s)
        if len(iterations):
            stats.add(iterations["start_s"].to_numpy(dtype=float),
                      (iterations["kind"] == "decode").to_numpy(),
                      iterations["batch_size"].to_numpy(), iterations["emitted_tokens"].to_numpy(),
                      iterations["draft_steps"].to_numpy(), iterations["queue_len"].to_numpy())
        return stats


class IterationLog:
    """One row per engine iteration.

    ``verify_tokens`` counts every position the target computes (sum of k_i + 1 in a decode
    iteration, prompt tokens in a prefill), ``padded_tokens`` the CUDA-graph size it ran at,
    ``verify_lengths`` the per-request k_i in batch order joined by ';' (empty when the
    iteration did not speculate) so "k over time" can be plotted. The lengths are kept as
    small arrays while the run goes and turned into text only when the table is written.

    The shape of each decode iteration's passes (``sim.latency.iteration.DecodeShape``) is
    recorded so that an iteration's duration can be recomputed from its row alone:
    ``context_tokens`` (sum of the batch's KV lengths before the pass; 0 for a prefill),
    ``verify_rows`` (sequences in the target pass: B single-pass, B + sum k_i under batch
    expansion; a prefill's prompts), ``kv_tokens_read`` (KV positions the target pass reads),
    ``draft_rows`` / ``draft_kv_tokens`` (per draft step, joined by ';').

    ``keep=False`` keeps only the statistics (``stats``); ``spool_dir`` writes full chunks to
    a temporary folder made inside it (removed by :meth:`close` or when the log is collected);
    ``arrival_span_s`` (first, last arrival) lets ``stats`` include the waiting-queue report.
    """

    def __init__(self, *, keep: bool = True, spool_dir: str | Path | None = None,
                 arrival_span_s: tuple[float, float] | None = None,
                 chunk_rows: int = CHUNK_ROWS) -> None:
        self.keep = keep
        self.stats = IterationStats(arrival_span_s)
        self._chunk_rows = chunk_rows
        self._chunks: list[IterationChunk | Path] = []
        self._spool: Path | None = None
        if keep and spool_dir is not None:
            self._spool = Path(tempfile.mkdtemp(prefix=".iterations-", dir=spool_dir))
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._spool, True)
        self._count = 0
        self._parts: list[IterationChunk] = []  # typed rows (add_columns) waiting for flush
        self._parts_rows = 0
        self._reset_buffer()

    def _reset_buffer(self) -> None:
        self._rows: list[tuple] = []
        self._lengths: list[np.ndarray | None] = []
        self._draft_rows: list[tuple[int, ...]] = []
        self._draft_kv: list[tuple[int, ...]] = []

    def __len__(self) -> int:
        return self._count + self._parts_rows + len(self._rows)

    def add_columns(self, scalars: dict[str, np.ndarray],
                    ragged: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        """Append rows given as columns: every scalar column (``kind`` 0 prefill / 1 decode)
        and, per ragged column, its values back to back with each row's count (-1: none), the
        form of :class:`IterationChunk`. The compiled loop hands its records over this way, with
        no Python object per row; rows added before by ``add_prefill``/``add_decode`` stay
        first."""
        if self._rows:
            self._park_rows()
        part = IterationChunk({k: _typed_column(k, scalars[k]) for k in _SCALAR_COLUMNS},
                              {k: (np.asarray(ragged[k][0]), np.asarray(ragged[k][1], np.int32))
                               for k in _RAGGED})
        self._parts.append(part)
        self._parts_rows += len(part)
        if self._parts_rows >= self._chunk_rows:
            self.flush()

    def _park_rows(self) -> None:
        """Move the buffered tuple rows into the typed parts (order kept)."""
        part = _make_chunk(self._rows, self._lengths, self._draft_rows, self._draft_kv)
        self._reset_buffer()
        self._parts.append(part)
        self._parts_rows += len(part)

    def add_prefill(self, start_s: float, duration_s: float, batch: int, tokens: int,
                    emitted: int, queue_len: int) -> None:
        self._rows.append((start_s, duration_s, 0, batch, batch, 0, 0, tokens, tokens,
                           emitted, 0, queue_len, 0, batch, 0))
        self._lengths.append(None)
        self._draft_rows.append(())
        self._draft_kv.append(())
        if len(self._rows) >= self._chunk_rows:
            self.flush()

    def add_decode(self, start_s: float, duration_s: float, shape, padded_batch: int,
                   padded_tokens: int, drafted: int, emitted: int, accepted: int,
                   queue_len: int, verify_lengths: np.ndarray | None) -> None:
        """One decode iteration of ``shape`` (a ``DecodeShape``); ``drafted``: draft tokens."""
        self._rows.append((start_s, duration_s, 1, shape.batch, padded_batch,
                           len(shape.draft_rows), drafted, shape.verify_tokens, padded_tokens,
                           emitted, accepted, queue_len, shape.context_tokens,
                           shape.verify_rows, shape.verify_kv_tokens))
        # a copy: k_i <= MAX_DRAFT_TOKENS (64) fits a byte, and callers may reuse the array
        self._lengths.append(None if verify_lengths is None
                             else np.asarray(verify_lengths).astype(np.uint8))
        self._draft_rows.append(shape.draft_rows)
        self._draft_kv.append(shape.draft_kv_tokens)
        if len(self._rows) >= self._chunk_rows:
            self.flush()

    def flush(self) -> None:
        """Turn the buffered rows into one chunk (statistics, then keep / spool / drop)."""
        if self._rows and self._parts:
            self._park_rows()
        if self._parts:
            chunk = _concat_chunks(self._parts)
            self._parts, self._parts_rows = [], 0
        elif self._rows:
            chunk = _make_chunk(self._rows, self._lengths, self._draft_rows, self._draft_kv)
            self._reset_buffer()
        else:
            return
        self._count += len(chunk)
        s = chunk.scalars
        self.stats.add(s["start_s"], s["kind"], s["batch_size"], s["emitted_tokens"],
                       s["draft_steps"], s["queue_len"])
        if not self.keep:
            return
        if self._spool is not None:
            path = self._spool / f"{len(self._chunks):06d}.chunk"
            chunk.save(path)
            self._chunks.append(path)
        else:
            self._chunks.append(chunk)

    def chunks(self) -> Iterator[IterationChunk]:
        """Every row so far as chunks, in order (buffered rows flushed first)."""
        self.flush()
        for item in self._chunks:
            yield IterationChunk.load(item) if isinstance(item, Path) else item

    def _chunks_or_empty(self) -> Iterator[tuple[IterationChunk, bool]]:
        """(chunk, False) for each of ``chunks``, or (an empty chunk, True) when the log has
        none (no rows, or not kept)."""
        empty = True
        for chunk in self.chunks():
            empty = False
            yield chunk, False
        if empty:
            yield _make_chunk([], [], [], []), True

    def tables(self) -> Iterator[Table]:
        """The table chunk by chunk (one empty table when it has no rows or was not kept)."""
        return (chunk.table() for chunk, _ in self._chunks_or_empty())

    def frames(self) -> Iterator[pd.DataFrame]:
        """The table chunk by chunk as DataFrames (one empty frame when it has no rows or was
        not kept, its columns typed)."""
        for chunk, placeholder in self._chunks_or_empty():
            frame = chunk.frame()
            yield frame.astype({"start_s": float, "duration_s": float, "kind": str}) \
                if placeholder else frame

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd
        frames = list(self.frames())
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def close(self) -> None:
        """Remove the spool folder (the kept chunks are gone after this)."""
        if self._spool is not None:
            self._cleanup()
            self._chunks = []


def _typed_column(name: str, values) -> np.ndarray:
    """A scalar column as stored in a chunk: times float64, ``kind`` uint8, counts int32
    when they fit (half the bytes; int64 again in ``frame``)."""
    if name in ("start_s", "duration_s"):
        return np.array(values, dtype=np.float64)
    if name == "kind":
        return np.array(values, dtype=np.uint8)
    array = np.array(values)
    if array.dtype.kind not in "if":
        array = array.astype(np.int64)
    if array.dtype.kind == "i" and (not array.size or (
            int(array.min()) >= _INT32.min and int(array.max()) <= _INT32.max)):
        array = array.astype(np.int32)
    return array


def _concat_chunks(parts: list[IterationChunk]) -> IterationChunk:
    """Consecutive chunks as one."""
    if len(parts) == 1:
        return parts[0]
    scalars = {k: _typed_column(k, np.concatenate([p.scalars[k] for p in parts]))
               for k in _SCALAR_COLUMNS}
    ragged = {k: (np.concatenate([p.ragged[k][0] for p in parts]),
                  np.concatenate([p.ragged[k][1] for p in parts])) for k in _RAGGED}
    return IterationChunk(scalars, ragged)


def _make_chunk(rows: list[tuple], lengths: list, draft_rows: list,
                draft_kv: list) -> IterationChunk:
    columns = list(zip(*rows)) if rows else [()] * len(_SCALAR_COLUMNS)
    scalars = {name: _typed_column(name, values)
               for name, values in zip(_SCALAR_COLUMNS, columns)}
    counts = np.fromiter((-1 if a is None else a.size for a in lengths), np.int32, len(lengths))
    present = [a for a in lengths if a is not None]
    flat = np.concatenate(present) if present else np.zeros(0, dtype=np.uint8)
    ragged = {"verify_lengths": (flat.astype(np.uint8), counts)}
    for name, tuples in (("draft_rows", draft_rows), ("draft_kv_tokens", draft_kv)):
        sizes = np.fromiter(map(len, tuples), np.int32, len(tuples))
        values = np.fromiter((v for t in tuples for v in t), np.int64, int(sizes.sum()))
        ragged[name] = (values, sizes)
    return IterationChunk(scalars, ragged)


def split_steps(text) -> tuple[int, ...]:
    """A ';'-joined per-step column value ("64;64;60", "" or NaN) as integers."""
    if not isinstance(text, str) or not text:
        return ()
    return tuple(int(v) for v in text.split(";"))


def join_lengths(lengths: list[np.ndarray | None]) -> list[str]:
    """Each array as its values joined by ';' ("" for None), e.g. [3, 0, 2] -> "3;0;2"."""
    counts = np.fromiter((-1 if a is None else a.size for a in lengths), np.int32, len(lengths))
    present = [np.asarray(a).ravel() for a in lengths if a is not None]
    flat = np.concatenate(present) if present else np.zeros(0, dtype=np.uint8)
    return Ragged(flat, counts).text().tolist()
