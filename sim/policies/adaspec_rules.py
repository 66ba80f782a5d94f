"""AdaSpec's rules as jitable functions over its state arrays (``sim.policies.adaspec`` has
the policy class, the module doc says the rules in words): the state layout, the drafter
(``adaspec_begin``, ``adaspec_continue``), the verifier and the cbar update
(``adaspec_verify``). The Python class and the compiled loop (``sim.compiled.engine``) call
these same functions."""

from __future__ import annotations

import math

import numpy as np

from sim.compiled.jit import inlined, jitable
from sim.policies.goodput import array_sum, ddot_ones, feasible_time, pairwise_sum, slo_limit
from sim.policies.recovery import (STATE_FLOATS, STATE_INTS, recovery_drafted,
                                   recovery_value)
from sim.policies.trim_selection import lowest_tokens_in, trim_requests_into

# ---- state layout ------------------------------------------------------------------------------
SLO_OFF, SLO_STRICT, SLO_TOKENS = 0, 1, 2
TRIM_TOKEN, TRIM_REQUEST, TRIM_OFF = 0, 1, 2
TRIM_NONE, TRIM_KEPT, TRIM_REJECTED = 0, 1, 2
_TRIM_OUTCOMES = ("none", "kept", "rejected")
STAT_NAMES = ("iterations", "slo_lost", "precheck_plain", "stop_after_step", "stop_before_step",
              "trim_kept", "trim_rejected", "recovering")
(AI_K, AI_SLO, AI_LOST, AI_TRIM, AI_CBAR_MODE, AI_CONF_COUNT, AI_ACTIVE, AI_BATCH, AI_UNIFORM,
 AI_ABSORBED, AI_CHECKED, AI_PRED_AT, AI_PER_TOKEN, AI_LAST_TRIM, AI_TOKENS_MODE) = range(15)
AI_STATS = 15  # the STAT_NAMES counters
(ST_ITERATIONS, ST_SLO_LOST, ST_PRECHECK_PLAIN, ST_STOP_AFTER, ST_STOP_BEFORE, ST_TRIM_KEPT,
 ST_TRIM_REJECTED, ST_RECOVERING) = range(AI_STATS, AI_STATS + 8)
AI_REC = AI_STATS + 8  # the recovery rule's ints
AI_SIZE = AI_REC + STATE_INTS
(AF_CBAR, AF_CBAR_USED, AF_CONF_TOTAL, AF_CBAR_WEIGHT, AF_G0, AF_BEST, AF_PREDICTED, AF_SLO_S,
 AF_BUDGET_S, AF_EXPECTED, AF_LAST_SUM, AF_PRED_TIME) = range(12)
AF_REC = 12  # the recovery rule's floats
AF_SIZE = AF_REC + STATE_FLOATS


# ---- the rules ---------------------------------------------------------------------------------
@jitable
def _score(pi, pf, expected, time_s, min_tokens):
    """G = E / T, or -inf for an infeasible configuration (the strict form is the budget
    ``AF_BUDGET_S``, inf when unconstrained)."""
    if time_s > pf[AF_BUDGET_S] or (
            pi[AI_PER_TOKEN] and not feasible_time(time_s, min_tokens, pf[AF_SLO_S], True)):
        return -math.inf
    return expected / time_s if time_s > 0.0 else 0.0


@jitable
def adaspec_begin(pi, pf, batch, tpot_slo_s, counts, uniform, prices_v, prices_d, cap_max):
    """The pre-check (module doc, rule 1); returns the most draft steps this iteration may
    run. ``prices_v[s]`` / ``prices_d[s]``: verification / drafting seconds of s steps
    (needed here: s = 0, and s = 1 when anyone may draft)."""
    k = _begin(pi, pf, batch, tpot_slo_s, counts, uniform, prices_v, prices_d, cap_max)
    recovery_drafted(pi[AI_REC:AI_REC + STATE_INTS], pf[AF_REC:AF_REC + STATE_FLOATS], k > 0)
    return k


@jitable
def _begin(pi, pf, batch, tpot_slo_s, counts, uniform, prices_v, prices_d, cap_max):
    pi[ST_ITERATIONS] += 1
    pi[AI_ACTIVE] = 0
    if batch == 0:
        return 0
    cbar = recovery_value(pi[AI_REC:AI_REC + STATE_INTS], pf[AF_REC:AF_REC + STATE_FLOATS],
                          pf[AF_CBAR])
    pf[AF_CBAR_USED] = cbar
    if pi[AI_REC + 3]:  # recovering
        pi[ST_RECOVERING] += 1
    pi[AI_ACTIVE] = 1
    pi[AI_BATCH] = batch
    slo_s = slo_limit(tpot_slo_s, pi[AI_SLO] == SLO_OFF)
    t0 = prices_v[0]
    if pi[AI_LOST] == 0 and t0 > slo_s:
        # even plain decoding misses the TPOT budget: no configuration can meet it this
        # iteration, so maximise goodput unconstrained (fewer seconds per token for all)
        slo_s = math.inf
        pi[ST_SLO_LOST] += 1
    constrained = slo_s != math.inf
    pi[AI_PER_TOKEN] = 1 if constrained and pi[AI_SLO] == SLO_TOKENS else 0
    pf[AF_BUDGET_S] = slo_s if constrained and pi[AI_SLO] == SLO_STRICT else math.inf
    pf[AF_SLO_S] = slo_s
    g0 = batch / t0
    pf[AF_G0] = g0
    pf[AF_BEST] = g0
    n1 = counts[0] if counts.shape[0] else 0
    if n1 == 0:
        pi[ST_PRECHECK_PLAIN] += 1
        return 0
    min_tokens = 1.0 + cbar if n1 == batch else 1.0
    time1 = prices_d[1] + prices_v[1]
    pi[AI_PRED_AT] = 1  # T(1 step): reused after step 0 ran
    pf[AF_PRED_TIME] = time1
    g1 = _score(pi, pf, batch + cbar * n1, time1, min_tokens)
    pf[AF_PREDICTED] = g1
    if not g1 > g0:
        pi[ST_PRECHECK_PLAIN] += 1
        return 0
    # Every request that may draft step t does (max_draft_tokens > t; the driver enforces
    # that), so the drafter only ever answers True or False.
    pi[AI_UNIFORM] = 1 if uniform else 0
    pf[AF_LAST_SUM] = float(batch)
    pi[AI_TOKENS_MODE] = 1 if pi[AI_SLO] == SLO_TOKENS else 0
    pi[AI_ABSORBED] = 0
    pi[AI_CHECKED] = 0  # draft steps whose after-step check has run
    pf[AF_EXPECTED] = float(batch)
    if uniform:
        return pi[AI_K]
    return min(pi[AI_K], cap_max)  # the longest any request may draft


@inlined
def _absorb(pi, pf, conf, upto, batch, cum, sum_c):
    """Fold draft steps absorbed..upto-1 into the cumulative confidences (row t of ``cum``),
    their batch sum and the expected emitted tokens (``conf`` is 0 where a request did not
    draft, so c drops to 0 for requests that stopped)."""
    for t in range(pi[AI_ABSORBED], upto):
        if t == 0:
            for i in range(batch):
                cum[0, i] = conf[i, 0]
        else:
            for i in range(batch):
                cum[t, i] = cum[t - 1, i] * conf[i, t]
        last = ddot_ones(cum[t], 0, batch, 1, True)
        pf[AF_LAST_SUM] = last
        pf[AF_EXPECTED] += last
        if pi[AI_TOKENS_MODE]:
            for i in range(batch):
                sum_c[i] += cum[t, i]
    if upto > pi[AI_ABSORBED]:
        pi[AI_ABSORBED] = upto


@inlined
def _fold_step(pi, pf, conf, t, contiguous, batch, counts):
    """``cbar=cumulative``: fold draft step t's confidences into the mean since the start
    (each request that drafted the step counts once; ``conf`` is 0 where nobody drafted)."""
    pf[AF_CONF_TOTAL] += ddot_ones(conf[:, t], 0, batch, 1, contiguous)
    pi[AI_CONF_COUNT] += counts[t]
    pf[AF_CBAR] = pf[AF_CONF_TOTAL] / pi[AI_CONF_COUNT]
    if not pi[AI_REC + 3]:
        pf[AF_CBAR_USED] = pf[AF_CBAR]


@inlined
def _min_tokens(pi, sum_c, batch):
    """1 + min_i sum_t c_{i,t} in the tokens form, else 1."""
    if not pi[AI_TOKENS_MODE]:
        return 1.0
    low = sum_c[0]
    for i in range(1, batch):
        if sum_c[i] < low:
            low = sum_c[i]
    return 1.0 + low


@inlined
def adaspec_continue(pi, pf, step, conf, contiguous, batch, cum, sum_c, gain, counts, hist,
                     tokens_cum, prices_v, prices_d, max_draft):
    """The drafter (module doc, rule 2): whether everyone still drafting drafts step
    ``step`` (1) or nobody does (0). Needs the prices of ``step`` and ``step + 1`` steps."""
    if step == 0:
        return 1
    if not pi[AI_ACTIVE]:
        return 0
    # (a) after step `step - 1`: G(step) from the real cumulative confidences
    if pi[AI_ABSORBED] == 0 and pi[AI_TOKENS_MODE]:
        for i in range(batch):
            sum_c[i] = 0.0
    _absorb(pi, pf, conf, step, batch, cum, sum_c)
    if pi[AI_PRED_AT] == step:  # T(step) was computed for the prediction before it
        time_s = pf[AF_PRED_TIME]
    else:
        time_s = prices_d[step] + prices_v[step]
    g = _score(pi, pf, pf[AF_EXPECTED], time_s, _min_tokens(pi, sum_c, batch))
    pi[AI_CHECKED] = step
    if g < pf[AF_BEST]:
        pi[ST_STOP_AFTER] += 1
        return 0
    pf[AF_BEST] = g
    if pi[AI_CBAR_MODE] == 0:
        _fold_step(pi, pf, conf, step - 1, contiguous, batch, counts)
    # (b) before step `step`: predict G(step + 1), extrapolating c_{i,step+1} = c_{i,step} cbar
    if step >= pi[AI_K]:
        return 0
    n = counts[step]
    if n == 0:
        return 0
    cbar = pf[AF_CBAR_USED]
    last = pi[AI_ABSORBED] - 1  # the row of c_{i,step}
    if not pi[AI_TOKENS_MODE] and (pi[AI_UNIFORM] or hist[step] == 0):
        # every request that drafted step - 1 may draft step `step` (requests that stopped
        # earlier have c = 0), so the extrapolated gain is cbar times the last step's sum
        gain_sum = cbar * pf[AF_LAST_SUM]
        min_tokens = 1.0
    else:
        for i in range(batch):
            gain[i] = cum[last, i] * cbar
            if not pi[AI_UNIFORM] and not max_draft[i] > step:
                gain[i] = 0.0  # only requests with room draft step `step`
        gain_sum = array_sum(gain, batch)
        min_tokens = 1.0
        if pi[AI_TOKENS_MODE]:
            low = sum_c[0] + gain[0]
            for i in range(1, batch):
                if sum_c[i] + gain[i] < low:
                    low = sum_c[i] + gain[i]
            min_tokens = 1.0 + low
    time_next = prices_d[step + 1] + prices_v[step + 1]
    pi[AI_PRED_AT] = step + 1
    pf[AF_PRED_TIME] = time_next
    g_next = _score(pi, pf, pf[AF_EXPECTED] + gain_sum, time_next, min_tokens)
    pf[AF_PREDICTED] = g_next
    if g_next < pf[AF_BEST]:
        pi[ST_STOP_BEFORE] += 1
        return 0
    return 1


@jitable
def _trim_pays(pi, pf, removed, draft_time, v_total, v_target):
    """Whether giving up ``removed`` expected tokens to verify the smaller pass keeps the
    predicted goodput (forms without a per-request SLO); records the decision."""
    expected = pf[AF_EXPECTED]
    full = _score(pi, pf, expected, draft_time + v_total, 1.0)
    trimmed = _score(pi, pf, expected - removed, draft_time + v_target, 1.0)
    kept = trimmed >= full
    _record_trim(pi, kept)
    return kept


@jitable
def _record_trim(pi, kept):
    """Count a trim decision (kept or rejected) and keep it as the last one."""
    if kept:
        pi[ST_TRIM_KEPT] += 1
        pi[AI_LAST_TRIM] = TRIM_KEPT
    else:
        pi[ST_TRIM_REJECTED] += 1
        pi[AI_LAST_TRIM] = TRIM_REJECTED


@jitable
def _trim_limit(pi, pf, draft_time, v_total, v_target):
    """A sum of removed expected tokens past which ``_trim_pays`` surely answers no (inf
    when none: an infeasible full plan keeps any trim). ``_trim_pays`` keeps the trim iff
    (E - removed) / T_trimmed >= G_full, so removed > E - G_full T_trimmed rejects it; the
    limit adds a relative 1e-6 and 1e-9 E to that, far above the rounding of any of these
    sums (each within 1e-13 E), so stopping there never changes a decision."""
    expected = pf[AF_EXPECTED]
    full = _score(pi, pf, expected, draft_time + v_total, 1.0)
    if not (full > 0.0 and full < math.inf):
        return math.inf
    return (expected - full * (draft_time + v_target)) * (1.0 + 1e-6) + 1e-9 * expected


@jitable
def _row_sum(cum, i, steps, batch):
    """``cum.T.sum(axis=1)[i]`` as numpy computes it (a pairwise sum along the row only when
    the batch has one request; otherwise step by step)."""
    if batch == 1:
        return 0.0 + pairwise_sum(cum[:, i], 0, steps)
    total = 0.0
    for t in range(steps):
        total += cum[t, i]
    return total


@jitable
def adaspec_verify(pi, pf, conf, steps, contiguous, drafted, batch, cum, sum_c, counts,
                   prices_v, prices_d, padding, total, target, v_target, new, fscratch,
                   iscratch):
    """The verifier (module doc, rule 3) and the cbar update (rule 4). ``total`` = B + sum
    drafted_i, ``target`` its next smaller graph size and ``v_target`` the verification
    price there (when it lies in [B, total)); needs the prices of ``steps`` steps. Writes the
    verify lengths to ``new`` and returns 1 when they differ from ``drafted``."""
    pi[AI_LAST_TRIM] = TRIM_NONE
    if steps == 0 or not pi[AI_ACTIVE]:
        return 0
    if pi[AI_ABSORBED] == 0 and pi[AI_TOKENS_MODE]:
        for i in range(batch):
            sum_c[i] = 0.0
    _absorb(pi, pf, conf, steps, batch, cum, sum_c)  # cum[:steps] holds every c_{i,t}
    if pi[AI_CBAR_MODE] == 0:
        if pi[AI_CHECKED] < steps:  # the driver, not the drafter, ended the loop
            pi[AI_CHECKED] = steps
            time_s = prices_d[steps] + prices_v[steps]
            if _score(pi, pf, pf[AF_EXPECTED], time_s, _min_tokens(pi, sum_c, batch)) \
                    >= pf[AF_BEST]:
                _fold_step(pi, pf, conf, steps - 1, contiguous, batch, counts)
    else:  # cbar=ema over the draft steps that ran of their mean single-token confidence
        w = pf[AF_CBAR_WEIGHT]
        cbar = pf[AF_CBAR]
        for t in range(steps):
            column = 0.0
            for i in range(batch):
                column += conf[i, t]
            cbar = (1.0 - w) * cbar + w * (column / max(counts[t], 1))
        pf[AF_CBAR] = cbar
    if pi[AI_TRIM] == TRIM_OFF or not padding:
        return 0
    if target < batch or target >= total:
        return 0
    drop = total - target
    draft_time = prices_d[steps]
    v_total = prices_v[steps]
    tokens_mode = pi[AI_TOKENS_MODE] != 0
    uniform = pi[AI_UNIFORM] != 0
    vals = fscratch
    rows = iscratch
    if pi[AI_TRIM] == TRIM_TOKEN and not tokens_mode:
        # Fast decision: the d lowest cumulative confidences sum to the same value whatever
        # the tie-breaking, so G(trimmed) is known before choosing which tokens go.
        m = lowest_tokens_in(cum, drafted, steps, batch, drop, vals, rows, fscratch, iscratch,
                             _trim_limit(pi, pf, draft_time, v_total, v_target))
        if m < 0:  # the lowest tokens taken so far already remove too much
            _record_trim(pi, False)
            return 0
        if drop < m:
            lowest = 0.0 + pairwise_sum(vals, 0, drop)
        else:
            lowest = pf[AF_EXPECTED] - batch
        if not _trim_pays(pi, pf, lowest, draft_time, v_total, v_target):
            return 0
        for i in range(batch):
            new[i] = drafted[i]
        for j in range(min(drop, m)):
            new[rows[j]] -= 1
        return 1
    if uniform and not tokens_mode:  # trim=request, everyone drafted `steps` tokens:
        # the `whole` lowest-final requests lose everything, the next one `part` tokens
        finals = np.empty(batch)
        for i in range(batch):
            finals[i] = cum[steps - 1, i]
        order = np.argsort(finals, kind="mergesort")
        whole = drop // steps
        part = drop % steps
        gone = fscratch
        m = 0
        for t in range(steps):  # cum[:, gone] in row-major order
            for j in range(whole):
                gone[m] = cum[t, order[j]]
                m += 1
        removed = 0.0 + pairwise_sum(gone, 0, m)
        if part:
            tail = np.empty(part)
            for t in range(part):
                tail[t] = cum[steps - part + t, order[whole]]
            removed += 0.0 + pairwise_sum(tail, 0, part)
        if not _trim_pays(pi, pf, removed, draft_time, v_total, v_target):
            return 0
        for i in range(batch):
            new[i] = drafted[i]
        for j in range(whole):
            new[order[j]] = 0
        if part:
            new[order[whole]] -= part
        return 1
    # the general rule (tokens form, or non-uniform request trimming)
    row_sums = np.empty(batch)
    for i in range(batch):
        row_sums[i] = _row_sum(cum, i, steps, batch)
    low = row_sums[0]
    for i in range(1, batch):
        if row_sums[i] < low:
            low = row_sums[i]
    full = _score(pi, pf, batch + array_sum(row_sums, batch), draft_time + v_total,
                  1.0 + low if tokens_mode else 1.0)
    kept = np.empty(batch)
    if pi[AI_TRIM] == TRIM_TOKEN:
        m = lowest_tokens_in(cum, drafted, steps, batch, drop, vals, rows, fscratch, iscratch,
                             math.inf)
        for i in range(batch):
            new[i] = drafted[i]
            kept[i] = 0.0
        for j in range(min(drop, m)):
            new[rows[j]] -= 1
            kept[rows[j]] += vals[j]  # bincount(weights): in the order dropped
        for i in range(batch):
            kept[i] = row_sums[i] - kept[i]
    else:
        trim_requests_into(cum, drafted, batch, steps, drop, new, kept, iscratch)
    low = kept[0]
    verified = 0
    for i in range(batch):
        verified += new[i]
        if kept[i] < low:
            low = kept[i]
    trimmed = _score(pi, pf, batch + array_sum(kept, batch), draft_time + v_target,
                     1.0 + low if tokens_mode else 1.0)
    kept = trimmed >= full
    _record_trim(pi, kept)
    return 1 if kept else 0
