"""Per-run tables of the compiled loop, built by calling the Python models (so every number
is the one the protocol path computes), and the truth's pass prices over them.

* Padding: ``pad[0, n]`` = ``GraphPadding.pad(n)``, ``pad[1, n]`` = ``next_smaller(n)`` for
  every n a decode pass can reach (B (K + 1) tokens at most).
* Ground truth (``RooflineLatency``, also on a Vidur profile's measured costs): the terms
  that depend only on a token count, ``dense_s(n)`` and ``logits_s(n)`` of the target and
  the draft, are tabulated lazily (NaN until asked: the loop returns to Python, which calls
  ``PassCosts.dense_s`` / ``logits_s`` and resumes), and the loop adds the KV-dependent
  attention term with ``sim.latency.pass_costs.decode_attention`` / ``prefill_attention``,
  the functions ``PassCosts`` itself calls, in the same order of float operations as
  ``RooflineLatency`` (``(dense + logits) + attention + overhead``), so both paths give the
  same bits.
* The table estimator: ``TableEstimator``'s surfaces as arrays (``arrays()``), read by the
  same ``verify_surface`` / ``draft_surface`` rules.
"""

from __future__ import annotations

import math

import numpy as np

from sim.compiled.jit import jitable
from sim.latency.estimator import draft_surface, verify_surface
from sim.latency.pass_costs import decode_attention, prefill_attention

#: rows of the truth table
T_DENSE, T_LOGITS, D_DENSE, D_LOGITS = range(4)
#: the truth's overheads (``overheads`` array)
O_TARGET, O_DRAFT_STEP, O_DRAFTING, O_TARGET_PREFILL, O_DRAFT_PREFILL = range(5)


def supports_truth(latency) -> bool:
    """Whether the compiled loop can price passes of this ground truth."""
    from sim.latency.roofline import RooflineLatency
    return type(latency) is RooflineLatency


class TruthTables:
    """The lazily filled token tables of one ``RooflineLatency`` and its constants."""

    def __init__(self, latency, padding, size: int) -> None:
        self.latency = latency
        self.padding = padding
        self.target = latency.target_costs
        self.draft = latency.draft_costs
        self.table = np.full((4, max(size, 16)), np.nan)
        self.high_water = 0  # every padded size <= this is filled
        self.rows = (T_DENSE, T_LOGITS, D_DENSE, D_LOGITS)  # the rows the run prices
        n = len(self.target._dec_floor)
        self.att = np.zeros((4, n))
        self.params = np.zeros((2, len(self.target.attention_params)))
        self.att[0] = self.target._dec_floor
        self.att[1] = self.target._dec_kv
        self.params[0] = self.target.attention_params
        if self.draft is not None:
            self.att[2] = self.draft._dec_floor
            self.att[3] = self.draft._dec_kv
            self.params[1] = self.draft.attention_params
        self.overheads = np.array([latency.target_overhead_s, latency.draft_step_overhead_s,
                                   latency.draft_overhead_s, latency.target_prefill_overhead_s,
                                   latency.draft_prefill_overhead_s], dtype=np.float64)

    def _grow(self, index: int) -> None:
        have = self.table.shape[1]
        if index < have:
            return
        table = np.full((4, max(index + 1, 2 * have)), np.nan)
        table[:, :have] = self.table
        self.table = table

    def fill(self, row: int, index: int) -> None:
        """Compute one entry by calling the Python model."""
        self._grow(index)
        costs = self.target if row in (T_DENSE, T_LOGITS) else self.draft
        if costs is None:
            value = 0.0
        elif row in (T_DENSE, D_DENSE):
            value = costs.dense_s(index)
        else:
            value = costs.logits_s(index)
        self.table[row, index] = value

    def fill_prefill(self, chunks: int, tokens: int) -> None:
        """Every entry a prefill of ``chunks`` chunks and ``tokens`` new tokens is priced
        with: the dense terms at ``tokens``, the logits at ``chunks`` (of the rows the run
        prices: the draft's too when it uses a draft), in one return from the loop."""
        self._grow(max(chunks, tokens))
        table = self.table
        for row, at in ((T_DENSE, tokens), (T_LOGITS, chunks), (D_DENSE, tokens),
                        (D_LOGITS, chunks)):
            if row in self.rows and table[row, at] != table[row, at]:
                self.fill(row, at)

    def fill_padded(self, upto: int) -> None:
        """Fill every row at every size a padded decode pass can run at, up to ``upto``."""
        self._grow(upto)
        pad = self.padding.pad
        for n in range(self.high_water + 1, upto + 1):
            if pad(n) != n:
                continue
            for row in self.rows:
                if self.table[row, n] != self.table[row, n]:
                    self.fill(row, n)
        self.high_water = max(self.high_water, upto)


def padding_table(padding, size: int) -> np.ndarray:
    """``pad`` and ``next_smaller`` of n = 0..size-1 (calls ``GraphPadding``)."""
    table = np.zeros((2, size), dtype=np.int64)
    for n in range(size):
        table[0, n] = padding.pad(n)
        table[1, n] = padding.next_smaller(n) if n else 0
    return table


def estimator_arrays(estimator) -> tuple[tuple, tuple]:
    """``TableEstimator``'s verify and draft surfaces as arrays (draft: empty arrays when the
    estimated model has no draft)."""
    verify = estimator._verify.arrays()
    if estimator._draft is not None:
        draft = estimator._draft.arrays()
    else:
        empty_f, empty_i = np.zeros(1), np.zeros(2, dtype=np.int64)
        draft = (empty_f, empty_f, empty_f, empty_i, empty_i, empty_f, np.zeros((2, 1)), 0)
    return verify, draft


# ---- prices on the tables (the compiled loop's ground truth) -------------------------------
@jitable
def truth_verify(table, att, params, overheads, batch, tokens, context_tokens):
    """``RooflineLatency.target_verify_s`` (``tokens`` already padded)."""
    if tokens <= 0:
        return 0.0
    dense = table[T_DENSE, tokens] + table[T_LOGITS, tokens]
    batch = batch if batch > 0 else 1
    return (dense + decode_attention(params[0], att[0], att[1], batch, tokens, context_tokens)
            + overheads[O_TARGET])


@jitable
def truth_draft(table, att, params, overheads, batch, context_tokens):
    """``RooflineLatency.draft_step_s`` (``batch`` already padded)."""
    if batch <= 0:
        return 0.0
    dense = table[D_DENSE, batch] + table[D_LOGITS, batch]
    return (dense + decode_attention(params[1], att[2], att[3], batch, batch, context_tokens)
            + overheads[O_DRAFT_STEP])


@jitable
def truth_prefill(table, params, overheads, draft, news, cached, n, total):
    """``RooflineLatency.target_prefill_s`` (``draft``: ``draft_prefill_s``) of ``n`` chunks
    of ``total`` new tokens (every chunk has at least one)."""
    if n == 0:
        return 0.0
    if draft:
        return (table[D_DENSE, total] + table[D_LOGITS, n]
                + prefill_attention(params[1], news, cached, n) + overheads[O_DRAFT_PREFILL])
    return (table[T_DENSE, total] + table[T_LOGITS, n]
            + prefill_attention(params[0], news, cached, n) + overheads[O_TARGET_PREFILL])


@jitable
def estimate_verify(kind, ev, table, att, params, overheads, batch, tokens, context_tokens):
    """The policies' estimator: ``TableEstimator.target_verify_s`` (kind 0) or the truth
    itself (kind 1, ``--estimator exact``); ``tokens`` arrives padded."""
    if kind == 1:
        return truth_verify(table, att, params, overheads, batch, tokens, context_tokens)
    if tokens <= 0:
        return 0.0
    return verify_surface(ev[0], ev[1], ev[2], ev[3], ev[4], ev[5], ev[6], ev[7], ev[8], batch,
                          tokens, context_tokens)


@jitable
def estimate_draft(kind, ed, table, att, params, overheads, batch, context_tokens):
    """The estimator's ``draft_step_s`` (kinds as ``estimate_verify``)."""
    if kind == 1:
        return truth_draft(table, att, params, overheads, batch, context_tokens)
    if batch <= 0:
        return 0.0
    return draft_surface(ed[0], ed[1], ed[2], ed[3], ed[4], ed[5], ed[6], ed[7], batch,
                         context_tokens)


def nan_free(values) -> bool:
    return not any(math.isnan(v) for v in values)
