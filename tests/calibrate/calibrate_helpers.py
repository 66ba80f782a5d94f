"""Test helpers: synthetic drafted-token logs from a known acceptance model, synthetic
latency samples and profiles from known coefficients."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.acceptance.model import AcceptanceParams, CalibrationCurve, CategoryProfile, ParametricAcceptance

TRUE_CURVE = CalibrationCurve(((0.0, 0.05), (0.3, 0.2), (0.6, 0.55), (0.9, 0.85), (1.0, 0.97)))
TRUE_DECAY = (1.0, 0.95, 0.9, 0.86, 0.82)


def true_params() -> AcceptanceParams:
    return AcceptanceParams(
        name="truth", source="test",
        categories={"": CategoryProfile(0.6, 15.0), "qa": CategoryProfile(0.45, 15.0),
                    "rag": CategoryProfile(0.75, 15.0)},
        calibration=TRUE_CURVE, confidence_concentration=3.0, position_decay=TRUE_DECAY)


def synthetic_log(n_requests: int = 600, steps: int = 30, k: int = 5, seed: int = 0) -> pd.DataFrame:
    model = ParametricAcceptance(true_params())
    rng = np.random.default_rng(seed)
    cats = np.array(["qa", "rag"])[np.arange(n_requests) % 2]
    levels = model.request_levels(list(cats), rng)
    conf, accept = model.draw(np.repeat(levels, steps), k, rng)
    reached = np.cumprod(np.concatenate([np.ones((conf.shape[0], 1), bool), accept[:, :-1]], axis=1),
                         axis=1).astype(bool)
    rows = conf.shape[0]
    return pd.DataFrame({
        "request": np.repeat(np.repeat(np.arange(n_requests), steps), k),
        "category": np.repeat(np.repeat(cats, steps), k),
        "step": np.repeat(np.tile(np.arange(steps), n_requests), k),
        "position": np.tile(np.arange(k), rows),
        "conf": conf.ravel(), "match": accept.ravel(), "reached": reached.ravel()})


# ---- synthetic latency profiles ---------------------------------------------------------------
#: Known coefficients per operation, in OP_FEATURES order (seconds per feature unit).
TRUE_COEFS = {
    "target_prefill": (2.0e-3, 4.0e-5, 3.0e-4, 2.0e-8),
    "draft_prefill": (5.0e-4, 1.0e-5, 1.0e-4, 5.0e-9),
    "target_verify": (3.0e-3, 6.0e-5, 2.0e-4, 1.0e-6, 4.0e-9),
    "draft_step": (8.0e-4, 1.5e-4, 3.0e-7),
}
SYNTH_GRID = {"batch_sizes": (1, 2, 4, 8), "prompt_lengths": (16, 64, 256),
              "context_lengths": (64, 256, 1024), "tokens_per_seq": (1, 2, 3, 4, 5, 6)}


def synthetic_samples(noise: float = 0.0, seed: int = 0) -> dict:
    """Timing samples on a grid whose seconds follow TRUE_COEFS (times lognormal noise)."""
    from calibrate.grid import Grid, grid_points
    from sim.latency.profile import sample_features

    grid = Grid("synthetic", **SYNTH_GRID, repeats=1, warmup=0)
    rng = np.random.default_rng(seed)
    samples: dict = {}
    for op, batch, tokens, context, prompt in grid_points(grid, 5):
        s = {"op": op, "batch": batch, "tokens_per_seq": tokens, "context_per_seq": context,
             "prompt_len": prompt}
        t = float(np.dot(sample_features(op, s), TRUE_COEFS[op]))
        t *= float(np.exp(rng.normal(0.0, noise))) if noise else 1.0
        s["seconds_median"] = t
        s["seconds_all"] = [t]
        samples.setdefault(op, []).append(s)
    return samples


def synthetic_profile_doc(noise: float = 0.0, draft_overhead_s: float = 5e-4) -> dict:
    from calibrate.fit import fit_all
    from calibrate.grid import Grid
    from calibrate.profile_io import build_profile

    models = {name: {"spec": f"synthetic:{name}", "random_weights": True} for name in ("target", "draft")}
    return build_profile(config={"target": "tiny-llama", "draft": "tiny-llama-draft",
                                 "dtype": "float32", "device": "synthetic"},
                         hardware={"cpu": "synthetic"}, software={"python": "3"}, models=models,
                         grid=Grid("synthetic", **SYNTH_GRID).to_dict(5),
                         ops=fit_all(synthetic_samples(noise)), seed=0, wall_s=0.0,
                         draft_overhead_s=draft_overhead_s)
