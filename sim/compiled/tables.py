"""Per-run tables of the compiled loop, built by calling the Python models (so every number
is the one the protocol path computes), and the truth's pass prices over them.

* Padding: ``pad[0, n]`` = ``GraphPadding.pad(n)``, ``pad[1, n]`` = ``next_smaller(n)`` for
  every n a decode pass can reach (B (K + 1) tokens at most).
* Ground truth (``RooflineLatency``, also on a Vidur profile's measured costs): the terms
  that depend only on a token count, ``dense_s(n)`` and ``logits_s(n)`` of the target and
  the draft, are tabulated lazily in blocks (NaN until asked: the loop returns to Python,
  which fills the aligned block of ``BLOCK`` token counts around the missing entry in one
  numpy pass of ``PassCosts.dense_s_at`` / ``logits_s_at``, the same code as ``dense_s`` /
  ``logits_s`` on exact arrays (``sim.latency.exact``), the same bits, and resumes; the
  full Azure conversation hour returns 6 times for prefill entries, not 1,921, and fills in
  about 0.03 s instead of 0.1 s). These models never warn (a measured row range is
  extended by its closed form silently; the profile's domain warnings are
  ``ProfileTables``', per query), so a block priced and never asked for says nothing. The
  loop adds the KV-dependent
  attention term with ``sim.latency.pass_costs.decode_attention`` / ``prefill_attention``,
  the functions ``PassCosts`` itself calls, in the same order of float operations as
  ``RooflineLatency`` (``(dense + logits) + attention + overhead``), so both paths give the
  same bits.
* Ground truth ``ProfileLatency`` (a calibrated profile): no tables; the loop prices each
  pass with the profile's own rules (``profile_verify_s``, ``profile_draft_step_s``,
  ``profile_prefill_s`` of ``sim.latency.profile``) on its coefficients (``params``, one row
  per operation), and records per operation the first query outside the measured domain
  (``att``: the domain, then the record), which Python turns into the profile's own
  warning (``ProfileTables.warn``, ``ProfileLatency.check_domain``) after each return.
  ``overheads[O_TRUTH]`` says which truth the arrays hold.
* A method's drafter (``MethodLatency`` over a ``RooflineLatency``, ``sim.drafters``): its
  token-only terms (``PassCosts.layer_dense_s``, the feature head's FC, each step's
  ``DrafterCosts._head_dense_s``) are rows of the same table after the four above, filled
  by calling those functions one count at a time, and ``method_step`` / ``method_prefill``
  run the drafter's own rules (``drafter_step_s`` / ``drafter_prefill_s``) over them.
* The table estimator: ``TableEstimator``'s surfaces as arrays (``arrays()``), read by the
  same ``verify_surface`` / ``draft_surface`` rules.
"""

from __future__ import annotations

import math

import numpy as np

from sim.compiled.jit import inlined, jitable
from sim.drafters.costs import MI_KIND, MK_FEATURE_HEAD, drafter_prefill_s, drafter_step_s
from sim.latency.estimator import draft_surface, verify_surface
from sim.latency.pass_costs import decode_attention, prefill_attention
from sim.latency.profile import (OP_DOMAIN_VARS, OP_FEATURES, outside_domain,
                                 prefill_shape, profile_draft_step_s, profile_prefill_s,
                                 profile_verify_s)

#: a missing entry of the truth table fills the aligned block of this many token counts
#: around it (``TruthTables.fill``)
BLOCK = 1024
#: rows of the truth table
T_DENSE, T_LOGITS, D_DENSE, D_LOGITS = range(4)
#: a method's rows after them: ``layer_dense_s``, the feature head's FC, then the heads'
#: token-only part of each drafting step (``M_HEAD + step``)
M_LAYER, M_FC, M_HEAD = 4, 5, 6
#: the truth's overheads (``overheads`` array)
#: (``O_TRUTH``: which truth the arrays hold, ``TRUTH_ROOFLINE`` or ``TRUTH_PROFILE``)
O_TARGET, O_DRAFT_STEP, O_DRAFTING, O_TARGET_PREFILL, O_DRAFT_PREFILL, O_TRUTH = range(6)
TRUTH_ROOFLINE, TRUTH_PROFILE = 0.0, 1.0
#: a profile's operations: rows of its ``params`` (coefficients) and ``att`` (domain, record)
PR_TARGET_PREFILL, PR_DRAFT_PREFILL, PR_VERIFY, PR_DRAFT_STEP = range(4)
#: ``att`` columns of a profile: lo, hi of up to three domain variables, then whether a query
#: fell outside (0: none; else the rank of that record among the operations') and that
#: query's raw arguments
PR_SEEN, PR_ARGS = 6, 7


def supports_truth(latency) -> bool:
    """Whether the compiled loop can price passes of this ground truth (a method's drafter
    over a ``RooflineLatency`` included)."""
    from sim.drafters.costs import MethodLatency
    from sim.latency.profile import ProfileLatency
    from sim.latency.roofline import RooflineLatency
    if type(latency) is MethodLatency:
        return type(latency.base) is RooflineLatency
    return type(latency) in (RooflineLatency, ProfileLatency)


def truth_tables(latency, padding, size: int):
    """The loop's truth arrays of ``latency`` (``supports_truth``)."""
    from sim.latency.profile import ProfileLatency
    if type(latency) is ProfileLatency:
        return ProfileTables(latency, size)
    return TruthTables(latency, padding, size)


class TruthTables:
    """The lazily filled token tables of one ``RooflineLatency`` and its constants."""

    def __init__(self, latency, padding, size: int) -> None:
        from sim.drafters.costs import MethodLatency
        self.latency = latency
        self.padding = padding
        # a method's drafter replaces the draft model (``MethodLatency``)
        self.drafter = latency.drafter if type(latency) is MethodLatency else None
        base = latency.base if self.drafter is not None else latency
        self.target = base.target_costs
        self.draft = base.draft_costs if self.drafter is None else None
        depth = self.drafter.method.tree.depth if self.drafter is not None else 0
        self.table = np.full((M_HEAD + depth if depth else 4, max(size, 16)), np.nan)
        self.high_water = 0  # every padded size <= this is filled
        # the rows the run prices
        self.rows = ((T_DENSE, T_LOGITS, D_DENSE, D_LOGITS) if self.drafter is None
                     else (T_DENSE, T_LOGITS) + tuple(range(M_LAYER, M_HEAD + depth)))
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
        self.overheads = np.array([base.target_overhead_s, base.draft_step_overhead_s,
                                   latency.draft_overhead_s, base.target_prefill_overhead_s,
                                   base.draft_prefill_overhead_s, TRUTH_ROOFLINE],
                                  dtype=np.float64)

    def _grow(self, index: int) -> None:
        have = self.table.shape[1]
        if index < have:
            return
        table = np.full((self.table.shape[0], max(index + 1, 2 * have)), np.nan)
        table[:, :have] = self.table
        self.table = table

    def fill(self, row: int, index: int) -> None:
        """Fill the aligned block of ``BLOCK`` entries of ``row`` that holds ``index``, in
        one numpy pass of the Python model (``PassCosts.dense_s_at`` / ``logits_s_at``: the
        bits of its calls one by one; 0 tokens: the call itself)."""
        lo = index - index % BLOCK
        hi = lo + BLOCK
        self._grow(hi - 1)
        if row >= M_LAYER:  # a method's term, in one numpy pass of its Python function
            counts = np.arange(max(lo, 1), hi, dtype=np.int64)
            if row == M_LAYER:
                values = self.target.layer_dense_s_at(counts)
            elif row == M_FC:
                values = self.drafter.fc_s_at(counts)
            else:
                values = self.drafter.head_dense_s_at(counts, row - M_HEAD)
            self.table[row, max(lo, 1):hi] = values
            if lo == 0:
                self.table[row, 0] = 0.0  # never read: passes of no tokens cost nothing
            return
        costs = self.target if row in (T_DENSE, T_LOGITS) else self.draft
        if costs is None:
            self.table[row, lo:hi] = 0.0
            return
        dense = row in (T_DENSE, D_DENSE)
        first = max(lo, 1)
        counts = np.arange(first, hi, dtype=np.int64)
        self.table[row, first:hi] = (costs.dense_s_at(counts) if dense
                                     else costs.logits_s_at(counts))
        if lo == 0:
            self.table[row, 0] = costs.dense_s(0) if dense else costs.logits_s(0)

    def fill_prefill(self, chunks: int, tokens: int) -> None:
        """Every entry a prefill of ``chunks`` chunks and ``tokens`` new tokens is priced
        with (with its block): the dense terms at ``tokens``, the logits at ``chunks`` (of
        the rows the run prices: the draft's too when it uses a draft; a method's layer and
        FC at ``tokens``, its heads at ``chunks``), in one return from the loop."""
        self._grow(max(chunks, tokens))
        table = self.table
        for row, at in ((T_DENSE, tokens), (T_LOGITS, chunks), (D_DENSE, tokens),
                        (D_LOGITS, chunks), (M_LAYER, tokens), (M_FC, tokens),
                        (M_HEAD, chunks)):
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


class ProfileTables:
    """A ``ProfileLatency``'s arrays: coefficients, domains, the drafting overhead; its token
    table stays zero (the profile has no token-only terms), grown to the sizes the loop asks
    for."""

    def __init__(self, latency, size: int) -> None:
        self.latency = latency
        self.table = np.zeros((4, max(size, 16)))
        self.high_water = 0
        self.rows = ()
        ops = tuple(OP_FEATURES)
        self.ops = ops
        self.params = np.zeros((len(ops), max(len(f) for f in OP_FEATURES.values())))
        self.att = np.zeros((len(ops), PR_ARGS + 3))
        self.att[:, 0:6:2] = -np.inf
        self.att[:, 1:6:2] = np.inf
        for row, op in enumerate(ops):
            fit = latency.ops[op]
            self.params[row, :len(fit.coefficients)] = fit.coefficients
            for j, var in enumerate(OP_DOMAIN_VARS[op]):
                if var in fit.domain:
                    self.att[row, 2 * j:2 * j + 2] = fit.domain[var]
        self.overheads = np.array([0.0, 0.0, latency.draft_overhead_s, 0.0, 0.0,
                                   TRUTH_PROFILE])
        self._reported: set[str] = set()

    def _grow(self, index: int) -> None:
        have = self.table.shape[1]
        if index >= have:
            self.table = np.zeros((4, max(index + 1, 2 * have)))

    def fill_prefill(self, chunks: int, tokens: int) -> None:
        self._grow(max(chunks, tokens))

    def fill_padded(self, upto: int) -> None:
        self._grow(upto)
        self.high_water = max(self.high_water, upto)

    def warn(self, att: np.ndarray) -> None:
        """The profile's warning for every operation the loop recorded outside its domain
        (``att``: the loop's copy of ``self.att``), in the order the loop met them."""
        for row in sorted(range(len(self.ops)), key=lambda r: att[r, PR_SEEN]):
            op = self.ops[row]
            if att[row, PR_SEEN] == 0.0 or op in self._reported:
                continue
            self._reported.add(op)
            a, b, c = (int(v) for v in att[row, PR_ARGS:PR_ARGS + 3])
            if row == PR_VERIFY:
                values = {"batch": a, "tokens_per_seq": b / a, "context_per_seq": c / a}
            elif row == PR_DRAFT_STEP:
                values = {"batch": a, "context_per_seq": c / a}
            else:
                values = {"batch": a, "prompt_len": b}
            self.latency.check_domain(op, **values)


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
    """``target_verify_s`` of the truth (``tokens`` already padded)."""
    if tokens <= 0:
        return 0.0
    if overheads[O_TRUTH] == TRUTH_PROFILE:
        b = batch if batch > 0 else 1
        note_query(att, PR_VERIFY, b, tokens / b, context_tokens / b, b, tokens,
                   context_tokens)
        return profile_verify_s(params[PR_VERIFY], batch, tokens, context_tokens)
    dense = table[T_DENSE, tokens] + table[T_LOGITS, tokens]
    batch = batch if batch > 0 else 1
    return (dense + decode_attention(params[0], att[0], att[1], batch, tokens, context_tokens)
            + overheads[O_TARGET])


@jitable
def truth_draft(table, att, params, overheads, batch, context_tokens):
    """``draft_step_s`` of the truth (``batch`` already padded)."""
    if batch <= 0:
        return 0.0
    if overheads[O_TRUTH] == TRUTH_PROFILE:
        note_query(att, PR_DRAFT_STEP, batch, context_tokens / batch, 0.0, batch, 0,
                   context_tokens)
        return profile_draft_step_s(params[PR_DRAFT_STEP], batch, context_tokens)
    dense = table[D_DENSE, batch] + table[D_LOGITS, batch]
    return (dense + decode_attention(params[1], att[2], att[3], batch, batch, context_tokens)
            + overheads[O_DRAFT_STEP])


@jitable
def prefill_priced(table, chunks, tokens, target, draft, method):
    """Whether ``table`` holds every entry the truth prices a prefill of ``chunks`` chunks
    and ``tokens`` new tokens with (the target's rows with ``target``; with ``draft`` the
    draft model's, or the drafter's under a ``method``); the loop otherwise returns
    ``ST_NEED_ENTRY`` and Python fills them (``fill_prefill``)."""
    if tokens >= table.shape[1] or chunks >= table.shape[1]:
        return False
    if target and (table[T_DENSE, tokens] != table[T_DENSE, tokens]
                   or table[T_LOGITS, chunks] != table[T_LOGITS, chunks]):
        return False
    if draft and not method and (table[D_DENSE, tokens] != table[D_DENSE, tokens]
                                 or table[D_LOGITS, chunks] != table[D_LOGITS, chunks]):
        return False
    if draft and method and (table[M_LAYER, tokens] != table[M_LAYER, tokens]
                             or table[M_FC, tokens] != table[M_FC, tokens]
                             or table[M_HEAD, chunks] != table[M_HEAD, chunks]
                             or table[T_LOGITS, chunks] != table[T_LOGITS, chunks]):
        return False
    return True


@jitable
def method_step(table, att, params, mi, mf, rows, tokens, kv, step):
    """``MethodLatency.draft_tree_step_s`` of the truth: the drafter's rule
    (``drafter_step_s``) on the table's terms, the target's attention constants."""
    if rows <= 0 or tokens <= 0:
        return 0.0
    layer = table[M_LAYER, tokens] if mi[MI_KIND] == MK_FEATURE_HEAD else table[M_LAYER, rows]
    return drafter_step_s(mi, mf, params[0], att[0], att[1], table[M_HEAD + step, tokens],
                          layer, rows, tokens, kv, step)


@jitable
def method_prefill(table, params, mi, mf, news, cached, n, total):
    """``MethodLatency.draft_prefill_s`` of the truth (``drafter_prefill_s``) of ``n``
    chunks of ``total`` new tokens."""
    if n == 0:
        return 0.0
    return drafter_prefill_s(mi, mf, params[0], table[M_LAYER, total], table[M_FC, total],
                             table[T_LOGITS, n], table[M_HEAD, n], news, cached, n)


@jitable
def truth_prefill(table, att, params, overheads, draft, news, cached, n, total):
    """``target_prefill_s`` of the truth (``draft``: ``draft_prefill_s``) of ``n`` chunks
    of ``total`` new tokens (every chunk has at least one)."""
    if n == 0:
        return 0.0
    if overheads[O_TRUTH] == TRUTH_PROFILE:
        op = PR_DRAFT_PREFILL if draft else PR_TARGET_PREFILL
        batch, longest = prefill_shape(news, n)
        if batch == 0:
            return 0.0
        note_query(att, op, batch, longest, 0.0, batch, longest, 0)
        return profile_prefill_s(params[op], news, cached, n)
    if draft:
        return (table[D_DENSE, total] + table[D_LOGITS, n]
                + prefill_attention(params[1], news, cached, n) + overheads[O_DRAFT_PREFILL])
    return (table[T_DENSE, total] + table[T_LOGITS, n]
            + prefill_attention(params[0], news, cached, n) + overheads[O_TARGET_PREFILL])


@jitable
def note_query(att, op, v0, v1, v2, a0, a1, a2):
    """Record operation ``op``'s first query whose checked values ``v0..v2`` (in
    ``OP_DOMAIN_VARS`` order) fall outside the profile's domain: its raw arguments
    ``a0..a2`` (``ProfileLatency.check_domain`` rebuilds the values from them) and, in
    ``PR_SEEN``, its rank among the operations recorded (1 = first), so that the warnings
    come in the order the protocol path gives them."""
    if att[op, PR_SEEN] != 0.0:
        return
    if (outside_domain(v0, att[op, 0], att[op, 1]) or outside_domain(v1, att[op, 2], att[op, 3])
            or outside_domain(v2, att[op, 4], att[op, 5])):
        rank = 1.0
        for row in range(att.shape[0]):
            if att[row, PR_SEEN] != 0.0:
                rank += 1.0
        att[op, PR_SEEN] = rank
        att[op, PR_ARGS] = a0
        att[op, PR_ARGS + 1] = a1
        att[op, PR_ARGS + 2] = a2


@inlined
def estimate_verify(kind, ev, table, att, params, overheads, batch, tokens, context_tokens):
    """The policies' estimator: ``TableEstimator.target_verify_s`` (kind 0) or the truth
    itself (kind 1, ``--estimator exact``); ``tokens`` arrives padded."""
    if kind == 1:
        return truth_verify(table, att, params, overheads, batch, tokens, context_tokens)
    if tokens <= 0:
        return 0.0
    return verify_surface(ev[0], ev[1], ev[2], ev[3], ev[4], ev[5], ev[6], ev[7], ev[8], ev[9],
                          batch, tokens, context_tokens)


@inlined
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
