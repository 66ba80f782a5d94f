"""Per-iteration log of a run, kept as column lists (cheap to append) and turned into a
DataFrame once at the end."""

from __future__ import annotations

import numpy as np
import pandas as pd

ITERATION_COLUMNS = (
    "start_s", "duration_s", "kind", "batch_size", "padded_batch", "draft_steps",
    "drafted_tokens", "verify_tokens", "padded_tokens", "emitted_tokens", "accepted_tokens",
    "queue_len", "verify_lengths",
)


class IterationLog:
    """One row per engine iteration.

    ``verify_tokens`` counts every position the target computes (sum of k_i + 1 in a decode
    iteration, prompt tokens in a prefill), ``padded_tokens`` the CUDA-graph size it ran at,
    ``verify_lengths`` the per-request k_i in batch order joined by ';' (empty when the
    iteration did not speculate) so "k over time" can be plotted.
    """

    def __init__(self) -> None:
        self._rows: list[tuple] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add_prefill(self, start_s: float, duration_s: float, batch: int, tokens: int,
                    emitted: int, queue_len: int) -> None:
        self._rows.append((start_s, duration_s, "prefill", batch, batch, 0, 0, tokens, tokens,
                           emitted, 0, queue_len, ""))

    def add_decode(self, start_s: float, duration_s: float, batch: int, padded_batch: int,
                   draft_steps: int, drafted: int, verify_tokens: int, padded_tokens: int,
                   emitted: int, accepted: int, queue_len: int,
                   verify_lengths: np.ndarray | None) -> None:
        lengths = "" if verify_lengths is None else ";".join(map(str, verify_lengths.tolist()))
        self._rows.append((start_s, duration_s, "decode", batch, padded_batch, draft_steps,
                           drafted, verify_tokens, padded_tokens, emitted, accepted, queue_len,
                           lengths))

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame.from_records(self._rows, columns=list(ITERATION_COLUMNS))
        if frame.empty:
            return frame.astype({"start_s": float, "duration_s": float, "kind": str})
        return frame
