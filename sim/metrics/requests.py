"""Per-request table: times, token counts, speculation counters and per-request SLO verdict.

Definitions (seconds): TTFT = first token - arrival; E2E = finish - arrival;
TPOT = (E2E - TTFT) / (output tokens - 1), undefined (NaN) for one-token outputs, which then
meet any TPOT SLO. A request meets the SLO when it finished, TTFT <= ttft_slo and
TPOT <= tpot_slo; a rejected request never does. ``rejected_reason`` is the
``sim.core.scheduler.REJECT_REASONS`` key of a rejected request ("" otherwise).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from sim.core.scheduler import FinishedRequest, reject_reason_kind

REQUEST_COLUMNS = (
    "id", "category", "status", "rejected_reason", "arrival_s", "admitted_s", "first_token_s", "finish_s",
    "prompt_tokens", "output_tokens", "generated_tokens", "ttft_s", "tpot_s", "e2e_s",
    "drafted_tokens", "verified_tokens", "accepted_tokens", "preemptions", "slo_met",
)


def requests_frame(finished: Sequence[FinishedRequest], ttft_slo_s: float,
                   tpot_slo_s: float) -> pd.DataFrame:
    """Build the per-request table (sorted by id) from the engine's finish records."""
    rows = [(f.request.id, f.request.category, f.status,
             reject_reason_kind(f.reason) if f.status == "rejected" else "",
             f.request.arrival_s, f.admitted_s,
             f.first_token_s, f.finish_s, f.request.prompt_tokens, f.request.output_tokens,
             f.generated_tokens, f.drafted_tokens, f.verified_tokens, f.accepted_tokens,
             f.preemptions) for f in finished]
    base = pd.DataFrame.from_records(rows, columns=[
        "id", "category", "status", "rejected_reason", "arrival_s", "admitted_s", "first_token_s", "finish_s",
        "prompt_tokens", "output_tokens", "generated_tokens", "drafted_tokens",
        "verified_tokens", "accepted_tokens", "preemptions"])
    base = base.sort_values("id", kind="stable").reset_index(drop=True)
    base["ttft_s"] = base["first_token_s"] - base["arrival_s"]
    base["e2e_s"] = base["finish_s"] - base["arrival_s"]
    decode_tokens = base["output_tokens"].to_numpy() - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(decode_tokens > 0,
                        (base["e2e_s"] - base["ttft_s"]).to_numpy() / np.maximum(decode_tokens, 1),
                        np.nan)
    base["tpot_s"] = tpot
    ok = (base["status"] == "finished") & (base["ttft_s"] <= ttft_slo_s)
    ok &= np.isnan(tpot) | (tpot <= tpot_slo_s)
    base["slo_met"] = ok.astype(bool)
    return base[list(REQUEST_COLUMNS)]
