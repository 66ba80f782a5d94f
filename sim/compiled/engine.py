"""One engine iteration, compiled: ``decode_iteration`` (a decode iteration: the policy's
drafting and verification, the acceptance draws, the prices) and its helpers; the loop that
runs iterations and arrivals back to back is ``sim.compiled.loop.run_chunk``.

Each iteration calls the same rules as the protocol path (``sim.compiled`` lists them):
``prepare_decode`` / ``finish_decode`` of the scheduler, the policy's rules
(``sim.policies.*``: begin, continue, verify, observe, through the same driver steps as
``sim.core.speculation.run_decode_iteration``), the acceptance draws (``draw_cells`` /
``draw_fixed`` on uniforms drawn from the run's generator in the original order),
``decode_shape_into`` and the truth's prices (``sim.compiled.tables``). What it records goes
to preallocated buffers that ``sim.compiled.run`` hands to the ``IterationLog``. The
estimator's prices of the options (``price_steps``, the oracle's plan) are in
``sim.compiled.pricing``.
"""

from __future__ import annotations

from sim.acceptance.base import accepted_prefix_into, draw_fixed
from sim.acceptance.model import draw_cells, quantile_cell
from sim.compiled.jit import inlined, jitable, prefetch
from sim.compiled.layout import (
    A_PARAMETRIC, E_ACCEPTANCE, E_ASKS_EACH_STEP, E_DECAYS,
    E_EXPANDED, E_FIN_NEW, E_KMAX, E_LAST_KIND, E_LEN_N, E_METHOD, E_NEED_AT,
    E_NEED_ROW,
    E_NEEDS_ORACLE, E_PADDING, E_POLICY, E_REC_N, E_STEP_N, F_TPOT_SLO,
    K_DECODE, P_ADASPEC, P_DISABLE_BY_BATCH, P_ORACLE, P_SGLANG, P_SMARTSPEC,
    P_STATIC, P_THRESHOLD, P_TRTLLM, P_VLLM_V1, RI_ACCEPTED, RI_BATCH, RI_CONTEXT, RI_DRAFTED,
    RI_EMITTED, RI_KIND, RI_KV, RI_PADDED_BATCH, W_INT, RI_PADDED_TOKENS, RI_QUEUE, RI_STEPS,
    RI_VERIFY_ROWS, RI_VERIFY_TOKENS, W_ACCEPTED, W_CAP, W_CONTEXT, W_DRAFTED, W_DRAFTING,
    W_EMITTED, W_KV, W_ROWS, W_SLOTS, W_VERIFY)
from sim.compiled.stream import fill_columns, open_block, take_block
from sim.compiled.pricing import (oracle_begin, padded, price_steps, price_tree_plan,
                                  price_verify)
from sim.compiled.tables import (method_prefill, method_step, prefill_priced, truth_draft,
                                 truth_prefill, truth_verify)
from sim.core.scheduler import C_QLEN, S_BONUS, S_GEN, SF_KEY, finish_decode
from sim.core.speculation import batch_limits_into, decode_shape_into
from sim.drafters.plan import tree_shape_into
from sim.drafters.trim import tree_trim_keeps, tree_trim_select
from sim.latency.iteration import upkeep_with_tax_s
from sim.policies.adaspec_rules import (AI_TRIM, AI_UNIFORM, TRIM_OFF, TRIM_REQUEST,
                                        adaspec_begin, adaspec_continue, adaspec_verify)
from sim.policies.disable_by_batch import disable_by_batch_k
from sim.policies.engine_rules import R_OFF, R_TAX, UPKEEP_SYNC, catchup_into, upkeep_step
from sim.policies.goodput import draft_counts_into
from sim.policies.sglang_adaptive import sglang_begin, sglang_observe
from sim.policies.smartspec import smartspec_begin, smartspec_observe
from sim.policies.threshold import threshold_continue
from sim.policies.trtllm import trtllm_begin, trtllm_observe, trtllm_speculation_off
from sim.policies.vllm_dynamic import vllm_begin

#: ``decode_iteration``'s answer when an engine rule's catch-up needs draft prefill entries
#: the truth's table lacks (nothing of the iteration has run; ``E_NEED_ROW`` / ``E_NEED_AT``
#: say which): the loop returns ``ST_NEED_ENTRY`` and runs the prepared batch afterwards
NEED_CATCHUP_ENTRIES = -2.0


@jitable
def decode_iteration(cfg, sc, si, sf, ri, rf, running, free_slots, ei, ef, pi, pf, uniforms, att,
                     params, overheads, table, pad, ev, ed, cells, jumps, decay, sizes, b,
                     start, rec_i, rec_f, rec_len, rec_steps, fin, wi, wf, wb, work, method):
    """One decode iteration of batch ``wi[W_SLOTS, :b]`` starting at ``start``; returns its
    duration (negative: the policy broke the protocol). ``method``: a method's arrays
    (``method_ints``, ``method_floats``, nodes and depth sums per depth, tokens per step;
    ``E_METHOD`` says whether there is one)."""
    mi, mf, tree, step_tokens = method
    has_method = ei[E_METHOD] != 0
    k_max = ei[E_KMAX]
    slots = wi[W_SLOTS]
    context = wi[W_CONTEXT]
    cap = wi[W_CAP]
    drafted = wi[W_DRAFTED]
    verify = wi[W_VERIFY]
    accepted = wi[W_ACCEPTED]
    emitted = wi[W_EMITTED]
    drafting = wi[W_DRAFTING]
    rows = wi[W_ROWS]
    kv = wi[W_KV]
    context_sum, cap_min, cap_max = batch_limits_into(si, slots, b, k_max, context, cap)
    batch_context = context_sum
    r = ei[E_REC_N]
    steps = 0
    accepted_total = 0
    drafted_total = 0
    if k_max == 0:
        # plain decoding (nospec): one target pass over the batch
        duration = 0.0 + truth_verify(table, att, params, overheads, b, padded(pad, b),
                                      context_sum)
        for i in range(b):
            emitted[i] = 1
        verify_rows = b
        tokens = b
        verify_kv = context_sum
        speculated = False
    else:
        conf_drawn = wf[0, :b, :k_max]
        conf = wf[1, :b, :k_max]
        accept = wb[0, :b * k_max].reshape((b, k_max))
        alive = wb[1, :b]
        bonus = wb[2, :b]
        expanded = ei[E_EXPANDED] != 0
        bonus_rows = 0
        bonus_context = 0
        if expanded:  # batch expansion: who received a bonus token last iteration
            for i in range(b):
                bonus[i] = si[S_BONUS, slots[i]] != 0
                if bonus[i]:
                    bonus_rows += 1
                    bonus_context += context[i]
            if bonus_rows:
                bonus_context -= bonus_rows
        (cum, sum_c, gain, prices_v, prices_d, fscratch, goodputs, counts, hist, tokens_cum,
         new, iscratch, keys) = work
        drawn = False
        # the block of uniforms a draw would take (``sim.compiled.stream``), computed
        # column by column as steps draft
        open_block(ei, jumps, b, ei[E_ACCEPTANCE] == A_PARAMETRIC)
        if not ei[E_NEEDS_ORACLE]:  # the first draft step's cells, while the policy decides
            for i in range(b):
                keys[i] = sf[SF_KEY, slots[i]]
            prefetch_position(ei, uniforms, jumps, keys, b, k_max, cells, 0)
        if ei[E_NEEDS_ORACLE]:
            draw(ei, uniforms, jumps, sf, slots, b, k_max, cells, decay, conf_drawn, accept, keys,
                 True)
            drawn = True
        kind = ei[E_POLICY]
        uniform = True
        priced = 0  # prices_v / prices_d hold s = 0..priced-1 steps
        if kind == P_ADASPEC or kind == P_SMARTSPEC:
            # the cost model (IterationCost): who may draft each step, and the estimator's
            # price of s steps (drafting and verification): every s for SmartSpec; s <= 1
            # for AdaSpec's pre-check, more when its drafter or verifier reads them
            uniform = draft_counts_into(cap, b, k_max, counts, hist)
            tokens_cum[0] = 0
            for t in range(k_max):
                tokens_cum[t + 1] = tokens_cum[t] + counts[t]
            priced = k_max + 1 if kind == P_SMARTSPEC else 2
            price_steps(ei, ev, ed, table, att, params, overheads, pad, method, b, context_sum,
                        bonus_rows, bonus_context, counts, tokens_cum, prices_v, prices_d,
                        0, priced)
        if kind == P_ADASPEC:
            k = adaspec_begin(pi, pf, b, ef[F_TPOT_SLO], counts, uniform, prices_v, prices_d,
                              cap_max)
        elif kind == P_SMARTSPEC:
            k = smartspec_begin(pi, pf, b, cap, uniform, prices_v, prices_d, goodputs,
                                fscratch)
        elif kind == P_ORACLE:
            k = oracle_begin(ei, ev, ed, table, att, params, overheads, pad, method, sizes, pi, b,
                             context_sum, bonus_rows, bonus_context, accept, cap, iscratch,
                             new, fscratch)
        elif kind == P_SGLANG:
            k = sglang_begin(pi, b, padded(pad, b))
        else:
            k = policy_begin(kind, pi, pf, b, k_max)
        if k < 0:
            return -1.0
        # the engine rules' drafter upkeep (``sim.policies.engine_rules``), planned on the
        # rule's k, before the driver's clamp to the requests' room
        configured = kind >= P_VLLM_V1 and not (kind == P_TRTLLM
                                                and trtllm_speculation_off(pi))
        upkeep = 0
        catchup = 0
        catchup_tokens = 0
        catchup_news = iscratch[:b]  # unused by the engine rules otherwise
        catchup_cached = iscratch[b:2 * b]
        if configured:
            if k > 0 and pi[R_OFF] > 0:  # zero=catchup resumes drafting
                for i in range(b):
                    new[i] = si[S_GEN, slots[i]]
                catchup = catchup_into(pi[R_OFF], context, new, cap, b, catchup_news,
                                       catchup_cached)
                for c in range(catchup):
                    catchup_tokens += catchup_news[c]
                if catchup and not prefill_priced(table, catchup, catchup_tokens, False, True,
                                                  has_method):
                    ei[E_NEED_ROW] = catchup
                    ei[E_NEED_AT] = catchup_tokens
                    return NEED_CATCHUP_ENTRIES
            upkeep = upkeep_step(pi, k)
        if k and b and cap_min < k:
            k = min(k, cap_max)
        everyone = True  # no mask yet: every request drafts
        if k > 0:
            for i in range(b):
                drafted[i] = 0
            for step in range(k):
                if ei[E_ASKS_EACH_STEP]:
                    if kind == P_ADASPEC:
                        need = step + 2 if step + 2 <= k_max else k_max + 1
                        if need > priced:
                            # one step further than asked: a call passes about twenty
                            # arrays, dearer than pricing one more s; prices do not
                            # depend on when they are computed
                            ahead = need + 1 if need + 1 <= k_max + 1 else k_max + 1
                            price_steps(ei, ev, ed, table, att, params, overheads, pad, method, b,
                                        context_sum, bonus_rows, bonus_context, counts,
                                        tokens_cum, prices_v, prices_d, priced, ahead)
                            priced = ahead
                        decision = adaspec_continue(pi, pf, step, conf, k == 1, b, cum, sum_c,
                                                    gain, counts, hist, tokens_cum, prices_v,
                                                    prices_d, cap)
                    elif kind == P_THRESHOLD:
                        decision = threshold_continue(pf[0], step, conf, drafted, b, fscratch)
                    elif kind == P_ORACLE:
                        decision = 2  # a mask: the requests whose plan reaches this step
                    else:
                        decision = policy_continue(kind, pi, pf, step, conf, drafted, b)
                    if decision == 0:
                        break
                    if decision == 2:
                        for i in range(b):
                            keep = new[i] > step
                            alive[i] = keep if everyone else alive[i] and keep
                        everyone = False
                if step >= cap_min:  # some requests have no room for this step
                    if everyone:
                        for i in range(b):
                            alive[i] = cap[i] > step
                        everyone = False
                    else:
                        for i in range(b):
                            alive[i] = alive[i] and cap[i] > step
                if everyone:
                    if not drawn:
                        draw(ei, uniforms, jumps, sf, slots, b, k_max, cells, decay, conf_drawn,
                             accept, keys, False)
                        drawn = True
                    if not ei[E_NEEDS_ORACLE]:
                        draw_positions(ei, uniforms, jumps, b, k_max, cells, decay, conf_drawn,
                                       accept, keys, step, step + 1)
                        if step + 1 < k:
                            prefetch_position(ei, uniforms, jumps, keys, b, k_max, cells, step + 1)
                    for i in range(b):
                        conf[i, step] = conf_drawn[i, step]
                        drafted[i] += 1
                    drafting[steps] = b
                    steps += 1
                    continue
                n = 0
                for i in range(b):
                    if alive[i]:
                        n += 1
                if n == 0:
                    break
                if not drawn:
                    draw(ei, uniforms, jumps, sf, slots, b, k_max, cells, decay, conf_drawn, accept,
                         keys, False)
                    drawn = True
                if not ei[E_NEEDS_ORACLE]:
                    draw_positions(ei, uniforms, jumps, b, k_max, cells, decay, conf_drawn, accept,
                                   keys, step, step + 1)
                    if step + 1 < k:
                        prefetch_position(ei, uniforms, jumps, keys, b, k_max, cells, step + 1)
                for i in range(b):
                    if alive[i]:
                        conf[i, step] = conf_drawn[i, step]
                        drafted[i] += 1
                    else:
                        conf[i, step] = 0.0
                drafting[steps] = n
                steps += 1
        if steps == 0:
            for i in range(b):
                drafted[i] = 0
        for i in range(b):
            verify[i] = drafted[i]
        if kind == P_ORACLE and k > 0:
            for i in range(b):
                v = new[i] if new[i] < drafted[i] else drafted[i]
                verify[i] = v if v > 0 else 0
        if kind == P_ADASPEC and k > 0:
            total = b
            if pi[AI_UNIFORM]:
                total += b * steps
            else:
                for i in range(b):
                    total += drafted[i]
            target = total
            chain_trims = ei[E_PADDING] != 0 and not has_method  # a tree trims below
            if chain_trims:
                target = pad[1, total]
            if steps + 1 > priced:
                price_steps(ei, ev, ed, table, att, params, overheads, pad, method, b, context_sum,
                            bonus_rows, bonus_context, counts, tokens_cum, prices_v,
                            prices_d, priced, steps + 1)
                priced = steps + 1
            v_target = 0.0
            if b <= target < total:
                v_target = price_verify(ei, ev, table, att, params, overheads, pad, method, b,
                                        context_sum, target)
            changed = adaspec_verify(pi, pf, conf, steps, k == 1, drafted, b, cum, sum_c,
                                     counts, prices_v, prices_d, chain_trims, total, target,
                                     v_target, new, fscratch, iscratch)
            if has_method and ei[E_PADDING] and pi[AI_TRIM] != TRIM_OFF:
                # a tree trims whole depths (``sim.drafters.trim.trim_tree``)
                changed = steps > 0 and tree_trim(
                    ei, ev, table, att, params, overheads, pad, method, pi, pf, cum, context,
                    drafted, b, steps, context_sum, prices_d[steps], new, fscratch)
            if changed:
                for i in range(b):  # the driver's clamp: 0 <= k_i <= drafted_i
                    v = new[i]
                    if v < 0:
                        v = 0
                    if v > drafted[i]:
                        v = drafted[i]
                    verify[i] = v
        if steps:
            accepted_prefix_into(accept, verify, b, accepted)
        else:
            for i in range(b):
                accepted[i] = 0
        if kind == P_SMARTSPEC:
            smartspec_observe(pi, pf, verify, accepted, b)
        elif kind == P_TRTLLM:
            trtllm_observe(pi, pf, verify, accepted, b)
        elif kind == P_SGLANG:
            sglang_observe(pi, pf, accepted, b)
        for i in range(b):
            emitted[i] = accepted[i] + 1
            accepted_total += accepted[i]
        for s in range(steps):
            drafted_total += drafting[s]
        step_tokens_out = wi[W_INT]  # a method's query tokens per drafting step
        if has_method:
            context_sum, verify_rows, tokens, verify_kv = tree_shape_into(
                tree[0], tree[1], step_tokens, expanded, context, drafted, verify, b,
                drafting, steps, rows, kv, step_tokens_out)
        else:
            context_sum, verify_rows, tokens, verify_kv = decode_shape_into(
                context, drafted, verify, b, drafting, steps, expanded, bonus, expanded, rows,
                kv)
        if expanded:
            for i in range(b):
                si[S_BONUS, slots[i]] = 1 if accepted[i] == verify[i] and verify[i] > 0 else 0
        duration = 0.0
        if steps:
            duration = overheads[2]
            for s in range(steps):
                if has_method:  # ``draft_tree_pass_s``
                    if rows[s] > 0 and step_tokens_out[s] > 0:
                        duration += method_step(table, att, params, mi, mf, rows[s],
                                                padded(pad, step_tokens_out[s]), kv[s], s)
                    else:
                        duration += 0.0
                elif rows[s] > 0:
                    duration += truth_draft(table, att, params, overheads,
                                            padded(pad, rows[s]), kv[s])
                else:
                    duration += 0.0
        duration = duration + truth_verify(table, att, params, overheads, verify_rows,
                                           padded(pad, tokens), verify_kv)
        if configured:  # the drafter's upkeep (``drafter_upkeep_s``), with its tax
            if upkeep == UPKEEP_SYNC:
                # zero=sync at k = 0: the proposer is called and runs one draft pass over the
                # batch's one-token rows, reading its whole context
                if has_method:  # MethodLatency.draft_step_s: a one-token row each
                    extra = overheads[2] + method_step(table, att, params, mi, mf,
                                                       padded(pad, b), padded(pad, b),
                                                       batch_context, 0)
                else:
                    extra = overheads[2] + truth_draft(table, att, params, overheads,
                                                       padded(pad, b), batch_context)
                duration += upkeep_with_tax_s(extra, pf[R_TAX], duration)
            elif catchup:  # zero=catchup resumes: one draft prefill of what was missed
                if has_method:
                    extra = 0.0 + method_prefill(table, params, mi, mf, catchup_news,
                                                 catchup_cached, catchup, catchup_tokens)
                else:
                    extra = 0.0 + truth_prefill(table, att, params, overheads, True,
                                                catchup_news, catchup_cached, catchup,
                                                catchup_tokens)
                duration += upkeep_with_tax_s(extra, pf[R_TAX], duration)
            elif pf[R_TAX] != 0.0:  # only the tax
                duration += upkeep_with_tax_s(0.0, pf[R_TAX], duration)
        speculated = True
    now = start + duration
    ei[E_FIN_NEW] = finish_decode(sc, si, ri, rf, running, free_slots, slots, b, emitted,
                                  drafted, verify, accepted, speculated, now, fin)
    rec_f[0, r] = start
    rec_f[1, r] = duration
    rec_i[RI_KIND, r] = K_DECODE
    rec_i[RI_BATCH, r] = b
    rec_i[RI_PADDED_BATCH, r] = padded(pad, b)
    rec_i[RI_STEPS, r] = steps
    rec_i[RI_DRAFTED, r] = drafted_total
    rec_i[RI_VERIFY_TOKENS, r] = tokens
    rec_i[RI_PADDED_TOKENS, r] = padded(pad, tokens)
    rec_i[RI_EMITTED, r] = b + accepted_total
    rec_i[RI_ACCEPTED, r] = accepted_total
    rec_i[RI_QUEUE, r] = sc[C_QLEN]
    rec_i[RI_CONTEXT, r] = context_sum
    rec_i[RI_VERIFY_ROWS, r] = verify_rows
    rec_i[RI_KV, r] = verify_kv
    if steps:  # appended after the previous drafting row's (``CompiledRun.drain``)
        at = ei[E_LEN_N]
        for i in range(b):
            rec_len[at + i] = verify[i]
        ei[E_LEN_N] = at + b
        at = ei[E_STEP_N]
        for s in range(steps):
            rec_steps[0, at + s] = rows[s]
            rec_steps[1, at + s] = kv[s]
        ei[E_STEP_N] = at + steps
    ei[E_REC_N] = r + 1
    ei[E_LAST_KIND] = K_DECODE
    return duration


@jitable
def tree_trim(ei, ev, table, att, params, overheads, pad, method, pi, pf, cum, context,
              drafted, b, steps, context_sum, draft_s, new, fscratch):
    """``sim.drafters.trim.trim_tree``: when the tree's pass (B + sum nodes(k_i) positions)
    is past a graph size, the trimmed depths into ``new``; True when AdaSpec keeps them."""
    tree = method[2]
    deepest = tree.shape[1] - 1
    total = b
    for i in range(b):
        total += tree[0, drafted[i] if drafted[i] < deepest else deepest]
    target = pad[1, total]
    if target < b or target >= total:
        return False
    removed_conf = fscratch[:b]
    tree_trim_select(cum, drafted, b, steps, tree[0], total - target,
                     pi[AI_TRIM] == TRIM_REQUEST, new, removed_conf)
    verify_full_s = price_tree_plan(ei, ev, table, att, params, overheads, pad, method,
                                    context, drafted, b, context_sum)
    verify_trimmed_s = price_tree_plan(ei, ev, table, att, params, overheads, pad, method,
                                       context, new, b, context_sum)
    return tree_trim_keeps(pi, pf, cum, removed_conf, b, steps, draft_s, verify_full_s,
                           verify_trimmed_s)


@inlined
def draw(ei, uniforms, jumps, sf, slots, b, k, cells, decay, conf, accept, keys, every):
    """Take the iteration's (B, k) block of uniforms (``open_block``) from the run's stream
    (the executor's ``draw_with_keys``); with ``every`` compute every position now (the
    oracle reads them all), else ``draw_positions`` computes a position when a step drafts
    it. ``uniforms``: the block's, filled column by column (``fill_columns``)."""
    for i in range(b):
        keys[i] = sf[SF_KEY, slots[i]]
    take_block(ei)
    if every:
        draw_positions(ei, uniforms, jumps, b, k, cells, decay, conf, accept, keys, 0, k)


@inlined
def draw_positions(ei, uniforms, jumps, b, k, cells, decay, conf, accept, keys, first, stop):
    """Positions ``first..stop-1`` of the block ``draw`` took."""
    size = b * k
    parametric = ei[E_ACCEPTANCE] == A_PARAMETRIC
    fill_columns(ei, jumps, uniforms, b, k, stop, parametric)
    if parametric:
        draw_cells(uniforms[:size], uniforms[size:2 * size], keys, b, k, cells, decay,
                   ei[E_DECAYS] != 0, conf, accept, first, stop)
    else:
        draw_fixed(uniforms[:size], keys, b, k, conf, accept, first, stop)


@inlined
def prefetch_position(ei, uniforms, jumps, keys, b, k, cells, j):
    """A hint, no effect on results: the cache lines of the quantile cells that position
    ``j`` of the opened block will read (``draw_positions``), asked for while the policy
    decides whether to draft it (its uniforms computed now, ``fill_columns``). The table
    (2 MB) does not stay in the core's caches, and a step's draws otherwise wait on each
    cell in turn."""
    if ei[E_ACCEPTANCE] == A_PARAMETRIC:
        fill_columns(ei, jumps, uniforms, b, k, j + 1, False)  # u: the cells
        for i in range(b):
            prefetch(cells, quantile_cell(uniforms[i * k + j], keys[i]))


@jitable
def policy_begin(kind, pi, pf, b, k_max):
    """The policy's ``begin``: draft steps this iteration may run at most."""
    if kind == P_STATIC or kind == P_THRESHOLD:
        return k_max
    if kind == P_DISABLE_BY_BATCH:
        return disable_by_batch_k(b, pi[0], k_max)
    if kind == P_VLLM_V1:
        return vllm_begin(pi, b, k_max)
    if kind == P_TRTLLM:
        return trtllm_begin(pi, b, k_max)
    return 0


@jitable
def policy_continue(kind, pi, pf, step, conf, drafted, b):
    """The policy's ``continue_drafting``: 0 = nobody drafts step ``step``, 1 = everyone
    still drafting continues."""
    return 1
