"""Index constants of the compiled loop's arrays (plain Python: importable without numba)."""

# ---- engine integers ``ei`` ----------------------------------------------------------------
(E_STATUS, E_KMAX, E_POLICY, E_EXPANDED, E_USES_DRAFT, E_NEEDS_ORACLE, E_ACCEPTANCE,
 E_DECAYS, E_POOL_POS, E_REC_N, E_LEN_N, E_STEP_N, E_FIN_N, E_FIN_LAST, E_LAST_KIND,
 E_PENDING, E_NEED_ROW, E_NEED_AT, E_HIGH_WATER, E_COUNT, E_HAS_HORIZON, E_ESTIMATOR,
 E_PAD_SIZE, E_ASKS_EACH_STEP, E_PADDING, E_DRAW_AT) = range(26)
ENGINE_INTS = 26
# ---- engine floats ``ef`` ------------------------------------------------------------------
F_NOW, F_HORIZON, F_HORIZON_CREATED, F_TTFT_SLO, F_TPOT_SLO = range(5)
ENGINE_FLOATS = 5

# ---- statuses (why run_chunk returned) -----------------------------------------------------
ST_IDLE = 0  # nothing waiting or running
ST_ARRIVAL = 1  # the next arrival happens before the next decision
ST_FLUSH = 2  # record buffers full: drain them
ST_NEED_ENTRY = 3  # a truth table entry is missing: ``E_NEED_ROW``/``E_NEED_AT``
ST_NEED_PADDED = 4  # the padded decode sizes must be filled up to ``E_NEED_AT``
ST_NEED_POOL = 5  # the uniform pool runs short: draw more from the run's generator
ST_STALLED = 6  # nothing to prefill or decode and no preemption (a scheduler bug)
ST_BAD_POLICY = 7  # a policy rule returned a negative k

# ---- policy kinds --------------------------------------------------------------------------
P_NOSPEC, P_STATIC, P_ADASPEC, P_SMARTSPEC, P_THRESHOLD, P_DISABLE_BY_BATCH, P_ORACLE = range(7)

# ---- acceptance kinds ----------------------------------------------------------------------
A_PARAMETRIC, A_FIXED = range(2)

# ---- iteration records ``rec_i`` rows ------------------------------------------------------
(RI_KIND, RI_BATCH, RI_PADDED_BATCH, RI_STEPS, RI_DRAFTED, RI_VERIFY_TOKENS, RI_PADDED_TOKENS,
 RI_EMITTED, RI_ACCEPTED, RI_QUEUE, RI_CONTEXT, RI_VERIFY_ROWS, RI_KV, RI_LEN_AT,
 RI_STEP_AT) = range(15)
RECORD_INTS = 15
K_PREFILL, K_DECODE = 1, 2

# ---- scratch ``wi`` rows (length max_num_seqs, or more) ---------------------------------
(W_SLOTS, W_CONTEXT, W_CAP, W_DRAFTED, W_VERIFY, W_ACCEPTED, W_EMITTED, W_WANTED,
 W_NEED, W_PLAN, W_PLAN_TOKENS, W_PLAN_CACHED, W_PLAN_COMPLETES, W_DRAFTING, W_ROWS,
 W_KV, W_INT) = range(17)
WORK_INTS = 17
# float scratch ``wf`` planes: [0] the drawn confidences, [1] the policy-visible confidences
# bool scratch ``wb`` planes: [0] accept outcomes (B, k), [1, 0] alive mask, [2, 0] bonus mask

# ---- constant arenas -----------------------------------------------------------------------
# float arena entries
(CF_ATT, CF_PARAMS, CF_OVERHEADS, CF_EV_TOKEN, CF_EV_BUCKETS, CF_EV_VALUES, CF_EV_SLOPES,
 CF_EV_EAGER, CF_ED_KNOTS, CF_ED_VALUES, CF_ED_SLOPES, CF_ED_BUCKETS, CF_ED_EAGER, CF_CELLS,
 CF_DECAY, CF_SCALARS) = range(16)
FLOAT_ENTRIES = 16
# int arena entries
CI_PAD, CI_EV_INDEX, CI_EV_BELOW, CI_ED_OFFSETS, CI_ED_INDEX, CI_SCALARS, CI_SIZES = range(7)
INT_ENTRIES = 7
# CF_SCALARS: verify surface token tail; CI_SCALARS: surfaces' max sizes; CI_SIZES: the
# captured graph sizes (one entry -1 when padding is off)
