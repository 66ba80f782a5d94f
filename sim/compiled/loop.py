"""The compiled loop: ``run_chunk`` plays the server's two SimPy processes, the arrival process
and the engine process (``sim.server.ServerSimulation``'s protocol path), over the whole
trace, until Python must act (a buffer to drain, a table entry to compute, more room).

The trace's arrivals are handed over up front as typed arrays (``arrival_s``, acceptance
``keys``, ``prompts`` and ``outputs`` in tokens; the arrival number is the position: for a
``RequestColumns`` workload, its own arrays, not copies). The
loop orders the two processes' events exactly as SimPy does: by time, then by the order in
which they were scheduled (SimPy's event id, counted here in ``ei[E_EID]``). The arrival
process's step at time t admits (``enqueue_request``) or rejects (``rejection_kind``, the
rule ``Scheduler.arrive`` calls) every request whose delay ``arrival_s - t`` is not positive,
wakes an idle engine, and schedules a timeout at SimPy's own sum ``t + (arrival_s - t)`` for
the next one. The engine process's step finishes the iteration in flight (its finish records
and its queue length, as the protocol path records them when the engine resumes), then
decides the next iteration (prefill or decode, ``sim.compiled.engine``) or waits for an
arrival.

Finish records go to ``done_i``/``done_f`` in the order the protocol path appends them:
a request rejected while an iteration is in flight comes before that iteration's finishes.
"""

from __future__ import annotations

import numpy as np

from sim.compiled.arenas import f1, f2, i1, i2, policy_work
from sim.compiled.engine import NEED_CATCHUP_ENTRIES, decode_iteration
from sim.compiled.pricing import padded
from sim.compiled.jit import borrowed, gil_free, inlined, jitable
from sim.compiled.layout import (
    A_FIRED, A_STEP, A_TIMEOUT, CF_ATT, CF_CELLS, CF_DECAY, CF_ED_BUCKETS, CF_ED_EAGER,
    CF_ED_KNOTS, CF_ED_SLOPES, CF_ED_VALUES, CF_EV_BUCKETS, CF_EV_EAGER, CF_EV_SLOPES,
    CF_EV_TOKEN, CF_EV_VALUES, CF_METHOD, CF_OVERHEADS, CF_PARAMS, CF_SCALARS, CI_ED_INDEX,
    CI_ED_OFFSETS, CI_EV_BELOW, CI_EV_INDEX, CI_METHOD, CI_NODES, CI_PAD, CI_SCALARS, CI_SIZES,
    CI_RNG_JUMPS, CI_STEP_TOKENS, D_ACCEPTED, D_DRAFTED, D_GEN,
    D_PREEMPT, D_STATUS, D_TAG, D_VERIFIED, DF_ADMITTED, DF_FINISH, DF_FIRST, E_A_EID,
    E_A_STATE, E_COUNT, E_E_EID, E_EID, E_FIN_LAST, E_FIN_N, E_FIN_NEW, E_HIGH_WATER, E_KMAX,
    E_LAST_KIND, E_LEN_N, E_LOOKAHEAD, E_METHOD, E_NEED_AT, E_NEED_ROW, E_NEXT_ARR,
    E_PAD_SIZE, E_PENDING, E_PHASE, E_PREPARED, E_REC_N, E_SEQ_POSITIONS,
    E_STATUS, E_STEP_N, E_USES_DRAFT, F_A_T, F_E_T, F_NOW, K_DECODE, K_PREFILL, PH_DECIDE,
    PH_DONE, PH_FLIGHT, PH_WAIT, PH_WOKEN, RI_BATCH,
    RI_EMITTED, RI_KIND, RI_QUEUE, RI_VERIFY_TOKENS, ST_BAD_POLICY, ST_DONE, ST_FLUSH,
    ST_NEED_ENTRY, ST_NEED_PADDED, ST_NEED_REQUESTS, ST_STALLED, ST_TAKE,
    W_PLAN, W_SLOTS, W_WANTED)
from sim.compiled.tables import method_prefill, prefill_priced, truth_prefill
from sim.core.scheduler import (ADMIT, C_NPREFILLING, C_NRUN, C_PREEMPTIONS, C_QLEN, P_CACHED,
                                P_COMPLETES, P_SLOT, P_TOKENS, R_ACCEPTED, R_DRAFTED, R_GEN,
                                R_PREEMPT, R_TAG, R_VERIFIED, RF_ADMITTED, RF_FINISH, RF_FIRST,
                                RF_KEY, S_BONUS, S_REQ, SF_KEY, finish_prefill, next_prefill,
                                prepare_decode)
from sim.core.scheduler_state import enqueue_request, rejection_kind, release_request

_GOING = -1  # an arrival step that needs nothing from Python


@gil_free
def run_chunk(cfg, sc, si, sf, ri, rf, running, free_slots, queue, free_reqs, ei, ef, cf, ci,
              table, pi, pf, uniforms, rec_i, rec_f, rec_len, rec_steps, fin, done_i, done_f,
              arrival_s, keys, prompts, outputs, wi, wf, wb, pwf, pwi):
    """Play the arrival and engine processes from where the loop stopped until a status
    (``sim.compiled.layout``) says why Python must act; returns it (also ``ei[E_STATUS]``)."""
    # Python holds every argument until this returns: the loop borrows them (``borrowed``)
    cfg, sc, si, sf, ri, rf = (borrowed(cfg), borrowed(sc), borrowed(si), borrowed(sf),
                               borrowed(ri), borrowed(rf))
    running, free_slots, queue, free_reqs = (borrowed(running), borrowed(free_slots),
                                             borrowed(queue), borrowed(free_reqs))
    ei, ef, cf, ci, table = borrowed(ei), borrowed(ef), borrowed(cf), borrowed(ci), borrowed(table)
    pi, pf, uniforms = borrowed(pi), borrowed(pf), borrowed(uniforms)
    rec_i, rec_f, rec_len, rec_steps = (borrowed(rec_i), borrowed(rec_f), borrowed(rec_len),
                                        borrowed(rec_steps))
    fin, done_i, done_f = borrowed(fin), borrowed(done_i), borrowed(done_f)
    arrival_s, keys, prompts, outputs = (borrowed(arrival_s), borrowed(keys), borrowed(prompts),
                                         borrowed(outputs))
    wi, wf, wb, pwf, pwi = borrowed(wi), borrowed(wf), borrowed(wb), borrowed(pwf), borrowed(pwi)
    att = f2(cf, ci, CF_ATT)
    params = f2(cf, ci, CF_PARAMS)
    overheads = f1(cf, ci, CF_OVERHEADS)
    pad = i2(ci, CI_PAD)
    scal_f = f1(cf, ci, CF_SCALARS)
    scal_i = i1(ci, CI_SCALARS)
    ev = (f1(cf, ci, CF_EV_TOKEN), scal_f[0], scal_i[2], i1(ci, CI_EV_INDEX),
          f1(cf, ci, CF_EV_BUCKETS),
          f2(cf, ci, CF_EV_VALUES), f2(cf, ci, CF_EV_SLOPES), i2(ci, CI_EV_BELOW),
          f2(cf, ci, CF_EV_EAGER), scal_i[0])
    ed = (f1(cf, ci, CF_ED_KNOTS), f1(cf, ci, CF_ED_VALUES), f1(cf, ci, CF_ED_SLOPES),
          i1(ci, CI_ED_OFFSETS), i1(ci, CI_ED_INDEX), f1(cf, ci, CF_ED_BUCKETS),
          f2(cf, ci, CF_ED_EAGER), scal_i[1])
    cells = f2(cf, ci, CF_CELLS)
    jumps = i2(ci, CI_RNG_JUMPS)
    decay = f1(cf, ci, CF_DECAY)
    sizes = i1(ci, CI_SIZES)
    # a method's drafter (``sim.drafters``): its constants, nodes per depth, step tokens
    method = (i1(ci, CI_METHOD), f1(cf, ci, CF_METHOD), i2(ci, CI_NODES),
              i1(ci, CI_STEP_TOKENS))
    has_method = ei[E_METHOD] != 0
    n_slots = si.shape[1]
    n_arrivals = arrival_s.shape[0]
    k_max = ei[E_KMAX]
    uses_draft = ei[E_USES_DRAFT] != 0
    plan = wi[W_PLAN:W_PLAN + 4]
    rec_cap = rec_i.shape[1]
    work = policy_work(pwf, pwi, n_slots, k_max)
    status = ST_DONE
    while True:
        if ei[E_A_STATE] != A_TIMEOUT:  # the arrival process's step runs to its end first
            status = arrival_step(cfg, sc, ri, rf, queue, free_reqs, ei, ef, done_i, done_f,
                                  arrival_s, keys, prompts, outputs)
            if status != _GOING:
                break
            continue
        phase = ei[E_PHASE]
        if phase == PH_DONE:
            status = ST_DONE
            break
        if phase != PH_DECIDE:
            # the next event: the arrival process's timeout or the engine's (ties: the one
            # scheduled first, as SimPy orders them)
            scheduled = phase == PH_FLIGHT or phase == PH_WOKEN
            if ei[E_NEXT_ARR] < n_arrivals and (
                    not scheduled or ef[F_A_T] < ef[F_E_T]
                    or (ef[F_A_T] == ef[F_E_T] and ei[E_A_EID] < ei[E_E_EID])):
                ef[F_NOW] = ef[F_A_T]
                ei[E_A_STATE] = A_FIRED
                continue
            if not scheduled:
                status = ST_STALLED  # waiting for an arrival that never comes (cannot happen)
                break
            ef[F_NOW] = ef[F_E_T]
            if phase == PH_FLIGHT:  # the engine resumes after its iteration
                if ei[E_LAST_KIND] == K_DECODE:  # the queue when it resumes (arrivals too)
                    rec_i[RI_QUEUE, ei[E_REC_N] - 1] = sc[C_QLEN]
                ei[E_FIN_LAST] = ei[E_FIN_N]
            ei[E_PHASE] = PH_DECIDE
        # ---- the engine process decides at F_NOW
        now = ef[F_NOW]
        if ei[E_PENDING] == 0 and ei[E_PREPARED] == 0:
            if sc[C_QLEN] == 0 and sc[C_NRUN] == 0:
                ei[E_PHASE] = PH_DONE if ei[E_NEXT_ARR] >= n_arrivals else PH_WAIT
                continue
            if (ei[E_REC_N] >= rec_cap or ei[E_LEN_N] + n_slots > rec_len.shape[0]
                    or ei[E_STEP_N] + k_max + 1 > rec_steps.shape[1]
                    or ei[E_FIN_N] + n_slots > done_i.shape[1]):
                status = ST_FLUSH
                break
            n = next_prefill(cfg, sc, si, sf, ri, rf, running, free_slots, queue, now, plan)
            ei[E_PENDING] = n
        n = ei[E_PENDING]
        if n > 0:
            # ---- a prefill iteration (the plan survives a return for a missing entry)
            total = 0
            for c in range(n):
                total += plan[P_TOKENS, c]
            if not prefill_priced(table, n, total, True, uses_draft, has_method):
                ei[E_NEED_ROW] = n  # Python fills every entry this prefill prices
                ei[E_NEED_AT] = total
                status = ST_NEED_ENTRY
                break
            news = plan[P_TOKENS]
            cached = plan[P_CACHED]
            duration = truth_prefill(table, att, params, overheads, False, news, cached, n, total)
            if uses_draft and has_method:  # the method's drafter (``MethodLatency``)
                duration += method_prefill(table, params, method[0], method[1], news, cached,
                                           n, total)
            elif uses_draft:
                duration += truth_prefill(table, att, params, overheads, True, news, cached,
                                          n, total)
            emitted = 0
            for c in range(n):
                slot = plan[P_SLOT, c]
                if plan[P_CACHED, c] == 0:
                    sf[SF_KEY, slot] = rf[RF_KEY, si[S_REQ, slot]]
                    si[S_BONUS, slot] = 0
                if plan[P_COMPLETES, c]:
                    emitted += 1
            queue_len = sc[C_QLEN]
            end = now + duration
            done = finish_prefill(sc, si, ri, rf, running, free_slots, plan, n, end, fin)
            collect_finished(sc, ri, rf, free_reqs, fin, done, done_i, done_f, ei)
            r = ei[E_REC_N]
            rec_f[0, r] = now
            rec_f[1, r] = duration
            rec_i[RI_KIND, r] = K_PREFILL
            rec_i[RI_BATCH, r] = n
            rec_i[RI_VERIFY_TOKENS, r] = total
            rec_i[RI_EMITTED, r] = emitted
            rec_i[RI_QUEUE, r] = queue_len
            ei[E_REC_N] = r + 1
            ei[E_LAST_KIND] = K_PREFILL
            ei[E_PENDING] = 0
        else:
            ei[E_PENDING] = 0
            b = ei[E_PREPARED]
            if b == 0:
                # ---- a decode iteration: the sizes it can price must be in the table
                ready = sc[C_NRUN] - sc[C_NPREFILLING]
                bound = ready * ei[E_SEQ_POSITIONS]
                if 2 * ready > bound:
                    bound = 2 * ready
                if bound >= ei[E_PAD_SIZE]:
                    bound = ei[E_PAD_SIZE] - 1
                if padded(pad, bound) > ei[E_HIGH_WATER]:
                    ei[E_NEED_AT] = padded(pad, bound)
                    status = ST_NEED_PADDED
                    break
                before = sc[C_PREEMPTIONS]
                # the KV lookahead: K, or a method's nodes (``MethodPreset.kv_slots``)
                b = prepare_decode(cfg, sc, si, ri, running, free_slots, queue,
                                   ei[E_LOOKAHEAD], wi[W_SLOTS], wi[W_WANTED:W_WANTED + 2])
                if b == 0:
                    if sc[C_PREEMPTIONS] == before:
                        status = ST_STALLED
                        break
                    continue  # only preemptions: decide again at the same time
            ei[E_PREPARED] = 0
            duration = decode_iteration(
                cfg, sc, si, sf, ri, rf, running, free_slots, ei, ef, pi, pf, uniforms, att, params,
                overheads, table, pad, ev, ed, cells, jumps, decay, sizes, b, now, rec_i,
                rec_f, rec_len, rec_steps, fin, wi, wf, wb, work, method)
            if duration == NEED_CATCHUP_ENTRIES:
                # the batch stays prepared (``wi[W_SLOTS, :b]``); its iteration runs once
                # Python has filled the draft prefill's entries
                ei[E_PREPARED] = b
                status = ST_NEED_ENTRY
                break
            if duration < 0.0:
                status = ST_BAD_POLICY
                break
            end = now + duration
            collect_finished(sc, ri, rf, free_reqs, fin, ei[E_FIN_NEW], done_i, done_f, ei)
        ei[E_COUNT] += 1
        ef[F_E_T] = end  # the engine's timeout: SimPy's now + duration
        ei[E_E_EID] = ei[E_EID]
        ei[E_EID] += 1
        ei[E_PHASE] = PH_FLIGHT
    ei[E_STATUS] = status
    return status


@jitable
def arrival_step(cfg, sc, ri, rf, queue, free_reqs, ei, ef, done_i, done_f, arrival_s, keys,
                 prompts, outputs):
    """The arrival process's step at ``ef[F_NOW]`` (``sim.server``'s ``_arrivals``): the
    request whose timeout fired arrives, then every next one whose delay is not positive;
    then the timeout of the next one (or the end). Returns ``_GOING``, or a status when
    Python must make room first (the step resumes where it stopped)."""
    now = ef[F_NOW]
    n_arrivals = arrival_s.shape[0]
    while True:
        j = ei[E_NEXT_ARR]
        if j >= n_arrivals:  # every request has arrived: an idle engine wakes to finish
            ei[E_A_STATE] = A_TIMEOUT
            wake_engine(ei, ef, now)
            return _GOING
        if ei[E_A_STATE] == A_STEP:
            delay = arrival_s[j] - now
            if delay > 0:
                ef[F_A_T] = now + delay  # SimPy's own sum
                ei[E_A_EID] = ei[E_EID]
                ei[E_EID] += 1
                ei[E_A_STATE] = A_TIMEOUT
                return _GOING
        prompt = prompts[j]
        output = outputs[j]
        kind = rejection_kind(cfg, ei[E_LOOKAHEAD], prompt, output)
        if kind != ADMIT:
            if ei[E_FIN_N] >= done_i.shape[1]:
                return ST_TAKE
            reject_record(ei, done_i, done_f, j, kind)
        else:
            req = enqueue_request(sc, ri, rf, queue, free_reqs, prompt, output, arrival_s[j],
                                  keys[j], j)
            if req < 0:
                return ST_NEED_REQUESTS
            wake_engine(ei, ef, now)
        ei[E_NEXT_ARR] = j + 1
        ei[E_A_STATE] = A_STEP


@jitable
def wake_engine(ei, ef, now):
    """An engine waiting for an arrival resumes at ``now`` (SimPy's ``wake.succeed()``)."""
    if ei[E_PHASE] == PH_WAIT:
        ei[E_PHASE] = PH_WOKEN
        ef[F_E_T] = now
        ei[E_E_EID] = ei[E_EID]
        ei[E_EID] += 1


@jitable
def reject_record(ei, done_i, done_f, tag, kind):
    """Arrival ``tag``'s rejection record, before the finishes of the iteration in flight
    (the protocol path appends those when the engine resumes, after this arrival)."""
    at = ei[E_FIN_LAST]
    for q in range(ei[E_FIN_N], at, -1):
        done_i[:, q] = done_i[:, q - 1]
        done_f[:, q] = done_f[:, q - 1]
    done_i[:, at] = 0
    done_i[D_TAG, at] = tag
    done_i[D_STATUS, at] = kind
    done_f[:, at] = np.nan
    ei[E_FIN_LAST] = at + 1
    ei[E_FIN_N] += 1


@inlined
def collect_finished(sc, ri, rf, free_reqs, fin, count, done_i, done_f, ei):
    """The finish records of the ``count`` requests in ``fin`` (request indices) into
    ``done_i``/``done_f``; their indices are free again."""
    at = ei[E_FIN_N]
    for c in range(count):
        req = fin[c]
        done_i[D_TAG, at] = ri[R_TAG, req]
        done_i[D_STATUS, at] = 0
        done_i[D_GEN, at] = ri[R_GEN, req]
        done_i[D_DRAFTED, at] = ri[R_DRAFTED, req]
        done_i[D_VERIFIED, at] = ri[R_VERIFIED, req]
        done_i[D_ACCEPTED, at] = ri[R_ACCEPTED, req]
        done_i[D_PREEMPT, at] = ri[R_PREEMPT, req]
        done_f[DF_ADMITTED, at] = rf[RF_ADMITTED, req]
        done_f[DF_FIRST, at] = rf[RF_FIRST, req]
        done_f[DF_FINISH, at] = rf[RF_FINISH, req]
        release_request(sc, free_reqs, req)
        at += 1
    ei[E_FIN_N] = at
