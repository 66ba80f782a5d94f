"""The estimator's prices of a decode iteration's options, compiled: ``price_verify`` (and
``price_verify_called``, the same as a call) and ``price_steps`` (``IterationCost``'s prices,
for AdaSpec and SmartSpec), ``oracle_begin``
(the oracle's plan from the prices of what ``oracle_queries`` asks for) and ``padded`` (the
CUDA-graph size of a pass, from the run's padding table). Called by
``sim.compiled.engine.decode_iteration``. Under a method (``E_METHOD``; ``method``: its
arrays, ``sim.compiled.engine``) the prices are ``MethodPlan``'s: the verification of depths
spread evenly over the tree (``tree_spread_shape``), the drafter's steps
(``tree_draft_share``, ``method_step``), a plan of depths (``tree_verify_shape``).
"""

from __future__ import annotations

import numpy as np

from sim.compiled.jit import inlined, jitable
from sim.compiled.layout import E_ESTIMATOR, E_EXPANDED, E_METHOD
from sim.compiled.tables import O_DRAFTING, estimate_draft, estimate_verify, method_step
from sim.drafters.plan import tree_draft_share, tree_spread_shape, tree_verify_shape
from sim.policies.goodput import draft_share, next_draft_total, spread_kv_tokens
from sim.policies.oracle import oracle_choose, oracle_queries, water_fill_into


@inlined
def padded(pad, n):
    """``GraphPadding.pad(n)`` from the table (built for every reachable n)."""
    return pad[0, n]


@inlined
def price_verify(ei, ev, table, att, params, overheads, pad, method, batch, context_sum,
                 tokens):
    """``IterationCost.verify_s(tokens)``: the estimator's verification of B + sum k_i =
    ``tokens`` positions (under batch expansion, spread evenly over the batch; under a
    method, k_i are depths spread evenly over its tree)."""
    if ei[E_METHOD]:
        tree = method[2]
        rows, total, kv = tree_spread_shape(tree[0], tree[1], ei[E_EXPANDED] != 0, batch,
                                            context_sum, tokens)
    elif ei[E_EXPANDED]:
        rows, total, kv = tokens, tokens, spread_kv_tokens(batch, context_sum, tokens)
    else:
        rows, total, kv = batch, tokens, context_sum
    # one inlined estimator read for every form (each site costs the cold compile seconds)
    return estimate_verify(ei[E_ESTIMATOR], ev, table, att, params, overheads, rows,
                           padded(pad, total), kv)


@jitable
def price_verify_called(ei, ev, table, att, params, overheads, pad, method, batch,
                        context_sum, tokens):
    """``price_verify`` as a call of its own: for the oracle's plan (``oracle_begin``), whose
    prices are not on the adaptive policies' hot path; each site that inlines
    ``price_verify`` costs the loop's cold compile about 4.6 s ("Ninth look")."""
    return price_verify(ei, ev, table, att, params, overheads, pad, method, batch,
                        context_sum, tokens)


@jitable
def price_tree_plan(ei, ev, table, att, params, overheads, pad, method, context, verify,
                    batch, context_sum):
    """``IterationCost.verify_plan_s`` under a method: the estimator's verification of the
    depths ``verify`` (``tree_verify_shape``)."""
    tree = method[2]
    rows, total, kv = tree_verify_shape(tree[0], tree[1], ei[E_EXPANDED] != 0, context,
                                        verify, batch, context_sum)
    return estimate_verify(ei[E_ESTIMATOR], ev, table, att, params, overheads, rows,
                           padded(pad, total), kv)


@inlined
def price_draft_step(ei, ed, table, att, params, overheads, pad, method, batch, context_sum,
                     bonus_rows, bonus_context, drafting, step):
    """``IterationCost.draft_step_s(drafting, step)``: the estimator's draft step over
    ``drafting`` requests (their share of the context and of batch expansion's copy rows;
    under a method, its drafter's step over their share of the context)."""
    if ei[E_METHOD]:
        tokens, kv = tree_draft_share(batch, context_sum, drafting, step, method[3])
        if drafting <= 0 or tokens <= 0:
            return 0.0
        return method_step(table, att, params, method[0], method[1], drafting,
                           padded(pad, tokens), kv, step)
    rows, kv = draft_share(batch, context_sum, bonus_rows, bonus_context, drafting, step)
    if rows > 0:
        return estimate_draft(ei[E_ESTIMATOR], ed, table, att, params, overheads,
                              padded(pad, rows), kv)
    return 0.0


@inlined
def price_steps(ei, ev, ed, table, att, params, overheads, pad, method, batch, context_sum,
                bonus_rows, bonus_context, counts, tokens_cum, prices_v, prices_d, first, stop):
    """``IterationCost``'s prices of s = ``first``..``stop - 1`` draft steps where every
    request that may, drafts (those below ``first`` are priced already: the engine prices
    on demand, in order): ``prices_v[s]`` = ``verify_s(B + tokens_cum[s])``,
    ``prices_d[s]`` = ``draft_s(s)`` (overhead included); under batch expansion the draft
    steps carry their share of the batch's ``bonus_rows`` copy rows (``bonus_context``: their
    KV)."""
    for s in range(first, stop):
        prices_v[s] = price_verify(ei, ev, table, att, params, overheads, pad, method, batch,
                                   context_sum, batch + tokens_cum[s])
        if s == 0:
            prices_d[0] = 0.0
            continue
        t = s - 1
        n = counts[t]
        extra = 0.0
        if n > 0:
            extra = price_draft_step(ei, ed, table, att, params, overheads, pad, method, batch,
                                     context_sum, bonus_rows, bonus_context, n, t)
        prices_d[s] = next_draft_total(prices_d[t], extra, overheads[O_DRAFTING], t)


@jitable
def oracle_begin(ei, ev, ed, table, att, params, overheads, pad, method, sizes, pi, batch,
                 context_sum, bonus_rows, bonus_context, accept, max_draft, iscratch, plan,
                 fscratch):
    """``OraclePolicy.begin``: the plan (per-request verify lengths) into ``plan``; returns
    the most steps any request drafts."""
    k_cap = pi[0] if pi[0] < accept.shape[1] else accept.shape[1]
    for i in range(batch):
        plan[i] = 0
    if batch == 0 or k_cap == 0:
        return 0
    prefix = iscratch[:batch]
    useful = iscratch[batch:batch + k_cap + 1]
    avail = iscratch[batch + k_cap + 1:batch + 2 * (k_cap + 1)]
    top = oracle_queries(accept, k_cap, max_draft, batch, prefix, useful, avail)
    n_sizes = sizes.shape[0] if sizes[0] >= 0 else 0
    size_prices = np.zeros(max(n_sizes, 1))
    for j in range(n_sizes):
        if batch < sizes[j] < batch + avail[top]:
            size_prices[j] = price_verify_called(ei, ev, table, att, params, overheads, pad,
                                                 method, batch, context_sum, sizes[j])
    avail_prices = fscratch[:top + 1]
    draft_prices = fscratch[top + 1:2 * (top + 1)]
    draft_prices[0] = 0.0
    for s in range(top + 1):
        avail_prices[s] = price_verify_called(ei, ev, table, att, params, overheads, pad,
                                              method, batch, context_sum, batch + avail[s])
    for s in range(1, top + 1):
        draft_prices[s] = price_draft_step(ei, ed, table, att, params, overheads, pad, method,
                                           batch, context_sum, bonus_rows, bonus_context,
                                           useful[s - 1], s - 1)
    best = np.zeros(3)
    oracle_choose(batch, top, avail, sizes, n_sizes, avail_prices[0],  # avail[0] = 0
                  size_prices, avail_prices, overheads[O_DRAFTING], draft_prices, best)
    steps = int(best[1])
    if steps == 0:
        return 0
    capped = iscratch[batch + 2 * (k_cap + 1):2 * batch + 2 * (k_cap + 1)]
    for i in range(batch):
        capped[i] = prefix[i] if prefix[i] < steps else steps
    water_fill_into(capped, batch, int(best[2]), plan)
    k = 0
    for i in range(batch):
        if plan[i] > k:
            k = plan[i]
    return k
