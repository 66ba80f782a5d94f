"""Helpers for the sweep tests: tiny native traces and sweep files in a temporary folder."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def write_native_trace(path: Path, n: int = 24, rate_per_s: float = 4.0, seed: int = 1,
                       output_tokens: tuple[int, int] = (20, 60)) -> Path:
    """A small native CSV trace (arrival_s,prompt_tokens,output_tokens)."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_per_s, n))
    lines = ["arrival_s,prompt_tokens,output_tokens"]
    for t in arrivals:
        lines.append(f"{t:.6f},{int(rng.integers(50, 400))},{int(rng.integers(*output_tokens))}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_sweep(folder: Path, body: str, name: str = "sweep.toml") -> Path:
    path = folder / name
    path.write_text(body)
    return path


def small_sweep(folder: Path, traces=("a.csv",), policies=("nospec", "static:3"),
                rate_scales=(1.0, 4.0), slo_scales=(1.0,), seeds=(0,), limit: int = 24,
                extra: str = "") -> Path:
    """A sweep over small native traces written into ``folder`` (made if missing)."""
    for i, trace in enumerate(traces):
        if not (folder / trace).exists():
            write_native_trace(folder / trace, seed=i + 1)
    quote = lambda items: "[" + ", ".join(f'"{x}"' for x in items) + "]"  # noqa: E731
    numbers = lambda items: "[" + ", ".join(repr(x) for x in items) + "]"  # noqa: E731
    body = f"""[sweep]
name = "tiny"
traces = {quote(traces)}
policies = {quote(policies)}
rate_scales = {numbers(rate_scales)}
slo_scales = {numbers(slo_scales)}
seeds = {numbers(seeds)}
limit = {limit}
{extra}
[config]
ttft_slo_s = 1.0
tpot_slo_s = 0.030
"""
    return write_sweep(folder, body)


def sweep_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "sim.sweep.cli", *args]


def comparable(frame):
    """A results table without its wall-time columns (the only nondeterministic ones), with
    missing values as NaN (Parquet reads an all-missing column back as None, CSV an empty
    string as NaN)."""
    frame = frame.drop(columns=["sim_wall_s", "wall_s"]).reset_index(drop=True)
    return frame.apply(lambda column: column.where(column.notna() & (column.astype(str) != ""),
                                                   np.nan)).infer_objects()
