"""Index constants of the compiled loop's arrays (plain Python: importable without numba)."""

# ---- engine integers ``ei`` ----------------------------------------------------------------
(E_STATUS, E_KMAX, E_POLICY, E_EXPANDED, E_USES_DRAFT, E_NEEDS_ORACLE, E_ACCEPTANCE,
 E_DECAYS, E_REC_N, E_LEN_N, E_STEP_N, E_FIN_N, E_FIN_LAST, E_LAST_KIND,
 E_PENDING, E_NEED_ROW, E_NEED_AT, E_HIGH_WATER, E_COUNT, E_ESTIMATOR, E_PAD_SIZE,
 E_ASKS_EACH_STEP, E_PADDING, E_PHASE, E_A_STATE, E_NEXT_ARR, E_A_EID, E_E_EID,
 E_EID, E_FIN_NEW, E_LOOKAHEAD, E_PREPARED, E_METHOD, E_SEQ_POSITIONS,
 E_RNG_HI, E_RNG_LO, E_RNG_INC_HI, E_RNG_INC_LO, E_RNG_U_HI, E_RNG_U_LO, E_RNG_V_HI,
 E_RNG_V_LO, E_RNG_NEXT_HI, E_RNG_NEXT_LO, E_RNG_COLS, E_RNG_VCOLS) = range(46)
ENGINE_INTS = 46
# E_RNG_*: the run generator's stream (``sim.compiled.stream``): its state after the last
# block a draw took, its increment, the next column's first row of the opened block's u and
# v, the state after that block, its columns of u and of v filled (the jumps:
# ``CI_RNG_JUMPS``).
# E_METHOD: 1 when a method's drafter replaces the draft model (``sim.drafters``: its
# arrays are ``CF_METHOD``, ``CI_METHOD``, ``CI_NODES``, ``CI_STEP_TOKENS``).
# E_SEQ_POSITIONS: the most positions one sequence adds to a decode pass (K + 1 for a
# chain; a method's 1 + nodes of its deepest verify, or its widest drafting step).
# E_PREPARED: the batch size of a decode batch already prepared whose iteration waits for
# the entries of a draft prefill (an engine rule's catch-up: ``ST_NEED_ENTRY``); else 0.
# E_FIN_N: finish records in ``done_*``; the first E_FIN_LAST are complete, the rest belong
# to the iteration in flight. E_A_EID / E_E_EID: SimPy event ids of the arrival process's and
# the engine process's pending events (E_EID: the next id), which order simultaneous events.
# ---- engine floats ``ef`` ------------------------------------------------------------------
# F_NOW: the clock (time of the last event); F_A_T: the arrival process's pending timeout;
# F_E_T: the engine process's pending event (its iteration's end, or its wake-up)
F_NOW, F_A_T, F_E_T, F_TTFT_SLO, F_TPOT_SLO = range(5)
ENGINE_FLOATS = 5

# ---- statuses (why run_chunk returned) -----------------------------------------------------
ST_DONE = 0  # every arrival has arrived and every request left
ST_TAKE = 1  # the finish records buffer is full: take the complete records
ST_FLUSH = 2  # record buffers full: drain them (and take the finish records)
ST_NEED_ENTRY = 3  # a prefill's truth entries are missing: ``E_NEED_ROW`` chunks,
#                   ``E_NEED_AT`` tokens (``TruthTables.fill_prefill``)
ST_NEED_PADDED = 4  # the padded decode sizes must be filled up to ``E_NEED_AT``
ST_STALLED = 6  # nothing to prefill or decode and no preemption (a scheduler bug)
ST_BAD_POLICY = 7  # a policy rule returned a negative k
ST_NEED_REQUESTS = 8  # every request index is taken: reserve more (``SchedulerState``)

# ---- the two SimPy processes the loop plays (``sim.compiled.loop``) -------------------------
# the engine process: deciding an iteration at F_NOW, an iteration in flight (ends at F_E_T),
# idle waiting for an arrival, woken (resumes at F_E_T), finished
PH_DECIDE, PH_FLIGHT, PH_WAIT, PH_WOKEN, PH_DONE = range(5)
# the arrival process: waiting for its timeout (F_A_T) or done, running its step at F_NOW
# (the next arrival comes now if not in the future), its timeout just fired (it comes now)
A_TIMEOUT, A_STEP, A_FIRED = range(3)

# ---- finish records ``done_i`` rows / ``done_f`` rows ----------------------------------------
# D_STATUS: 0 finished, else the ``rejection_kind``; D_TAG: the arrival number
D_TAG, D_STATUS, D_GEN, D_DRAFTED, D_VERIFIED, D_ACCEPTED, D_PREEMPT = range(7)
DONE_INTS = 7
DF_ADMITTED, DF_FIRST, DF_FINISH = range(3)

# ---- policy kinds --------------------------------------------------------------------------
(P_NOSPEC, P_STATIC, P_ADASPEC, P_SMARTSPEC, P_THRESHOLD, P_DISABLE_BY_BATCH, P_ORACLE,
 P_VLLM_V1, P_TRTLLM, P_SGLANG) = range(10)
# the production engines' rules (``sim.policies.engine_rules``): the kinds from P_VLLM_V1 on

# ---- acceptance kinds ----------------------------------------------------------------------
A_PARAMETRIC, A_FIXED = range(2)

# ---- iteration records ``rec_i`` rows ------------------------------------------------------
(RI_KIND, RI_BATCH, RI_PADDED_BATCH, RI_STEPS, RI_DRAFTED, RI_VERIFY_TOKENS, RI_PADDED_TOKENS,
 RI_EMITTED, RI_ACCEPTED, RI_QUEUE, RI_CONTEXT, RI_VERIFY_ROWS, RI_KV) = range(13)
RECORD_INTS = 13
# a drafting decode row's verify lengths and draft steps' shapes go to ``rec_len`` /
# ``rec_steps`` after the previous drafting row's: their filled parts are the ragged columns
K_PREFILL, K_DECODE = 1, 2

# ---- scratch ``wi`` rows (length max_num_seqs, or more) ---------------------------------
(W_SLOTS, W_CONTEXT, W_CAP, W_DRAFTED, W_VERIFY, W_ACCEPTED, W_EMITTED, W_WANTED,
 W_NEED, W_PLAN, W_PLAN_TOKENS, W_PLAN_CACHED, W_PLAN_COMPLETES, W_DRAFTING, W_ROWS,
 W_KV, W_INT) = range(17)
WORK_INTS = 17
# float scratch ``wf`` planes: [0] the drawn confidences, [1] the policy-visible confidences
# bool scratch ``wb`` planes of n k bools: [0] accept outcomes (the first B k as (B, k)),
# [1] alive mask (B), [2] bonus mask (B)

# ---- constant arenas -----------------------------------------------------------------------
# float arena entries
(CF_ATT, CF_PARAMS, CF_OVERHEADS, CF_EV_TOKEN, CF_EV_BUCKETS, CF_EV_VALUES, CF_EV_SLOPES,
 CF_EV_EAGER, CF_ED_KNOTS, CF_ED_VALUES, CF_ED_SLOPES, CF_ED_BUCKETS, CF_ED_EAGER, CF_CELLS,
 CF_DECAY, CF_SCALARS, CF_METHOD) = range(17)
FLOAT_ENTRIES = 17
# int arena entries
(CI_PAD, CI_EV_INDEX, CI_EV_BELOW, CI_ED_OFFSETS, CI_ED_INDEX, CI_SCALARS, CI_SIZES,
 CI_METHOD, CI_NODES, CI_STEP_TOKENS, CI_RNG_JUMPS) = range(11)
INT_ENTRIES = 11
# CF_SCALARS: verify surface token tail; CI_SCALARS: surfaces' max sizes (verify, draft),
# the verify surface's token step above its largest size; CI_SIZES: the
# captured graph sizes (one entry -1 when padding is off); CF_METHOD / CI_METHOD: a
# method's ``method_floats`` / ``method_ints`` (``sim.drafters.costs``); CI_NODES: its nodes
# and depth sums per verify depth (2 rows); CI_STEP_TOKENS: tokens per row per drafting step;
# CI_RNG_JUMPS: the stream's jumps of B k steps (``sim.compiled.stream.jump_table``)
