"""A latency model read straight from a Vidur profile folder (``--profile DIR``).

``DIR`` holds a Vidur ``mlp.csv`` (the non-attention ops of one layer of the target model,
profiled by Vidur's ``vidur.profiling.mlp`` on one GPU type) and optionally an
``attention.csv``. What comes from where:

* the target's per-layer non-attention kernels (norms, q/k/v, rotary, output projection,
  gate+up, SiLU-mul, down projection, residual add) at ``tp``: the measured medians, as the
  profiled presets use their generated rows (``sim.latency.measured``: linear between the
  profiled ``num_tokens``, the closed form scaled to the largest one above it);
* attention: with ``attention.csv``, the closed forms of ``sim.latency.ops`` with constants
  fitted to its rows at ``tp`` (decode: floor + per-sequence + KV read; prefill: constant
  causal and prefix efficiencies); without it, the fitted closed forms every preset uses;
* the embedding, the final norm, the lm_head, the all-reduces: the fitted formulas for the
  ``gpu`` preset (Vidur's mlp.csv has no lm_head, and its emb is the same fit's data);
* the draft model (not in the folder) and the per-pass overheads: the preset model (the
  draft's layers measured or fitted as ``dense_ops`` chooses, ``sim.latency.measured``).

The target preset must have the profiled shape (hidden size, heads, KV heads, MLP width;
Vidur pads the vocabulary, so that is not compared); ``tp`` must be a profiled degree.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import ConfigError, InputError
from sim.latency.fitted_constants import ATTENTION
from sim.latency.hardware import GpuSpec
from sim.latency.measured import LayerRows, layer_points, layer_shape
from sim.latency.models import ModelSpec
from sim.latency.ops import AttentionFit
from sim.latency.roofline import RooflineLatency, pass_costs_for
from sim.latency.vidur_csv import AttentionRow, read_attention_csv, read_mlp_csv


def measured_layer(mlp_csv: Path, target: ModelSpec, tp: int) -> LayerRows:
    """The target's measured per-layer non-attention seconds at ``tp`` from ``mlp_csv``."""
    rows = read_mlp_csv(mlp_csv)
    first = rows[0]
    profiled = (first.hidden, first.heads, first.kv_heads, first.ffn)
    wanted = layer_shape(target)
    if profiled != wanted:
        raise ConfigError(f"{mlp_csv}: profiled shape (hidden, heads, kv heads, ffn) "
                          f"{profiled} is not {target.name}'s {wanted}; pick the matching "
                          f"--target preset")
    degrees = sorted({r.tp for r in rows})
    if tp not in degrees:
        raise ConfigError(f"{mlp_csv}: no rows at tp={tp} (profiled: {degrees})")
    points = layer_points(rows, tp)
    return LayerRows(tuple(points), tuple(points.values()), f"Vidur profile {mlp_csv} tp{tp}")


def attention_from_rows(rows: list[AttentionRow], target: ModelSpec, gpu: GpuSpec, tp: int,
                        base: AttentionFit = ATTENTION) -> AttentionFit:
    """``base`` with the decode and prefill constants refitted to ``rows`` at ``tp`` (relative
    non-negative least squares; a kind without rows keeps ``base``'s constants)."""
    from scipy.optimize import nnls

    mine = [r for r in rows if r.tp == tp and r.seconds > 0]
    fit = base
    kv_bytes = 2 * target.kv_heads_per_rank(tp) * target.head_dim * target.dtype_bytes
    flops_per_pair = 4.0 * target.heads // tp * target.head_dim
    decode = [r for r in mine if not r.is_prefill]
    if len(decode) >= 3:
        t = np.array([r.seconds for r in decode])
        b = np.array([r.batch_size for r in decode], float)
        ctx = np.array([r.batch_size * r.kv_cache_size for r in decode], float)
        (fixed, per_seq, per_kv), _ = nnls(np.column_stack([1 / t, b / t, ctx / t]),
                                           np.ones_like(t))
        fraction = kv_bytes / (per_kv * gpu.mem_bandwidth_bytes_per_s) if per_kv > 0 else 1.0
        fit = replace(fit, decode_fixed_s=float(fixed), decode_per_seq_s=float(per_seq),
                      decode_kv_fraction_batch1=float(fraction),
                      decode_kv_fraction_batch128=float(fraction))
    prefill = [r for r in mine if r.is_prefill and r.prefill_chunk_size > 0]
    if len(prefill) >= 3:
        t = np.array([r.seconds for r in prefill])
        c = np.array([r.prefill_chunk_size for r in prefill], float)
        kv = np.array([r.kv_cache_size for r in prefill], float)
        n = np.array([r.batch_size for r in prefill], float)
        causal = n * flops_per_pair * c * (c + 1) / 2 / gpu.peak_flops
        prefix = n * flops_per_pair * c * kv / gpu.peak_flops
        (fixed, inv_causal, inv_prefix), _ = nnls(
            np.column_stack([1 / t, causal / t, prefix / t]), np.ones_like(t))
        causal_fraction = 1.0 / inv_causal if inv_causal > 0 else 1.0
        prefix_fraction = 1.0 / inv_prefix if inv_prefix > 0 else base.prefix_large_fraction
        fit = replace(fit, prefill_fixed_s=float(fixed), causal_ref_fraction=causal_fraction,
                      causal_exponent=0.0, causal_cap=causal_fraction,
                      prefix_small_fraction=prefix_fraction, prefix_large_fraction=prefix_fraction)
    return fit


def load_vidur_latency(directory: str | Path, target: ModelSpec, draft: ModelSpec | None,
                       gpu: GpuSpec, tp: int = 1, **kwargs: Any) -> RooflineLatency:
    """``RooflineLatency`` whose target kernels come from the Vidur profile in ``directory``
    (see the module docstring); ``kwargs`` go to ``RooflineLatency`` (overheads, draft_tp,
    dense_ops for the draft)."""
    folder = Path(directory)
    mlp_csv = folder / "mlp.csv"
    if not mlp_csv.is_file():
        raise InputError("a Vidur profile folder needs mlp.csv (and may hold attention.csv)",
                         path=str(folder))
    layer = measured_layer(mlp_csv, target, tp)
    attention = ATTENTION
    attention_csv = folder / "attention.csv"
    if attention_csv.is_file():
        attention = attention_from_rows(read_attention_csv(attention_csv), target, gpu, tp)
    costs = pass_costs_for(target, gpu, tp, layer_rows=layer, attention=attention)
    return RooflineLatency(target, draft, gpu, tp, target_costs=costs, **kwargs)
