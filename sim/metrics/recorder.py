"""Per-iteration log of a run (simulated or real: one schema), kept as column lists (cheap to
append) and turned into a DataFrame once at the end."""

from __future__ import annotations

import numpy as np
import pandas as pd

ITERATION_COLUMNS = (
    "start_s", "duration_s", "kind", "batch_size", "padded_batch", "draft_steps",
    "drafted_tokens", "verify_tokens", "padded_tokens", "emitted_tokens", "accepted_tokens",
    "queue_len", "context_tokens", "verify_rows", "kv_tokens_read", "verify_lengths",
    "draft_rows", "draft_kv_tokens",
)
_SCALAR_COLUMNS = ITERATION_COLUMNS[:-3]


class IterationLog:
    """One row per engine iteration.

    ``verify_tokens`` counts every position the target computes (sum of k_i + 1 in a decode
    iteration, prompt tokens in a prefill), ``padded_tokens`` the CUDA-graph size it ran at,
    ``verify_lengths`` the per-request k_i in batch order joined by ';' (empty when the
    iteration did not speculate) so "k over time" can be plotted. The lengths are kept as
    small arrays while the run goes and turned into text once, in ``to_frame``.

    The shape of each decode iteration's passes (``sim.latency.iteration.DecodeShape``) is
    recorded so that an iteration's duration can be recomputed from its row alone:
    ``context_tokens`` (sum of the batch's KV lengths before the pass; 0 for a prefill),
    ``verify_rows`` (sequences in the target pass: B single-pass, B + sum k_i under batch
    expansion; a prefill's prompts), ``kv_tokens_read`` (KV positions the target pass reads),
    ``draft_rows`` / ``draft_kv_tokens`` (per draft step, joined by ';').
    """

    def __init__(self) -> None:
        self._rows: list[tuple] = []
        self._lengths: list[np.ndarray | None] = []
        self._draft_rows: list[tuple[int, ...]] = []
        self._draft_kv: list[tuple[int, ...]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add_prefill(self, start_s: float, duration_s: float, batch: int, tokens: int,
                    emitted: int, queue_len: int) -> None:
        self._rows.append((start_s, duration_s, "prefill", batch, batch, 0, 0, tokens, tokens,
                           emitted, 0, queue_len, 0, batch, 0))
        self._lengths.append(None)
        self._draft_rows.append(())
        self._draft_kv.append(())

    def add_decode(self, start_s: float, duration_s: float, shape, padded_batch: int,
                   padded_tokens: int, drafted: int, emitted: int, accepted: int,
                   queue_len: int, verify_lengths: np.ndarray | None) -> None:
        """One decode iteration of ``shape`` (a ``DecodeShape``); ``drafted``: draft tokens."""
        self._rows.append((start_s, duration_s, "decode", shape.batch, padded_batch,
                           len(shape.draft_rows), drafted, shape.verify_tokens, padded_tokens,
                           emitted, accepted, queue_len, shape.context_tokens,
                           shape.verify_rows, shape.verify_kv_tokens))
        # a copy: k_i <= MAX_DRAFT_TOKENS (64) fits a byte, and callers may reuse the array
        self._lengths.append(None if verify_lengths is None
                             else np.asarray(verify_lengths).astype(np.uint8))
        self._draft_rows.append(shape.draft_rows)
        self._draft_kv.append(shape.draft_kv_tokens)

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame.from_records(self._rows, columns=list(_SCALAR_COLUMNS))
        frame["verify_lengths"] = pd.Series(join_lengths(self._lengths), dtype=object)
        frame["draft_rows"] = pd.Series([";".join(map(str, r)) for r in self._draft_rows],
                                        dtype=object)
        frame["draft_kv_tokens"] = pd.Series([";".join(map(str, r)) for r in self._draft_kv],
                                             dtype=object)
        if frame.empty:
            return frame.astype({"start_s": float, "duration_s": float, "kind": str})
        return frame


def split_steps(text) -> tuple[int, ...]:
    """A ';'-joined per-step column value ("64;64;60", "" or NaN) as integers."""
    if not isinstance(text, str) or not text:
        return ()
    return tuple(int(v) for v in text.split(";"))


def join_lengths(lengths: list[np.ndarray | None]) -> list[str]:
    """Each array as its values joined by ';' ("" for None), e.g. [3, 0, 2] -> "3;0;2".

    Vectorised for single-digit values (every k_i < 10): one byte buffer "3;0;2;..." for the
    whole run, decoded once and sliced per row; otherwise row by row.
    """
    present = [a for a in lengths if a is not None]
    flat = np.concatenate(present) if present else np.zeros(0, dtype=np.uint8)
    if flat.size and int(flat.max()) > 9:
        return ["" if a is None else ";".join(map(str, a.tolist())) for a in lengths]
    buf = np.full(2 * flat.size, ord(";"), dtype=np.uint8)
    buf[0::2] = flat + ord("0")
    text = buf.tobytes().decode("ascii")
    out: list[str] = []
    pos = 0
    for a in lengths:
        if a is None:
            out.append("")
        else:
            end = pos + 2 * a.size
            out.append(text[pos:end - 1])
            pos = end
    return out
