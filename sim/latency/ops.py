"""Kernel times of the operations of one transformer forward pass (the latency model's physics).

One formula per kind of operation, each with constants fitted to real GPU profiles (see
``sim.latency.fitted_constants`` and docs/latency_model.md):

* **GEMM** (q/k/v, output, gate+up, down projections, lm_head) of ``M`` tokens through a
  ``K x N`` weight (per tensor-parallel rank)::

      launch_s + min over tiles (h, r) of (mem**p + comp_h**p) ** (1/p)
      mem    = (K*N + M*K + M*N) * dtype_bytes / (bandwidth * memory_efficiency)
      comp_h = 2 * ceil(M/h)*h * K*N / (peak_flops * compute_efficiency * r)

  a smooth knee between weight streaming and compute (``p`` = ``knee_sharpness``; p -> inf is
  the plain roofline ``max``; the real kernels leave the bandwidth floor earlier than that).
  **Tile padding** (``tile_rows``, ``tile_relative_efficiency``): a GEMM kernel computes
  whole output tiles ``h`` rows tall, so ``M`` is paid as ``ceil(M/h)*h`` rows; cuBLAS
  chooses among tile heights per shape, modelled as the fastest of a few heights ``h``, each
  at its own fraction ``r`` of ``compute_efficiency``. Every term is non-decreasing in ``M``,
  so the time is a non-decreasing staircase. No tiles (``()``): ``comp = 2*M*K*N / (peak *
  compute_efficiency)``, the smooth knee;
* **elementwise** ops (RMSNorm, rotary, SiLU-and-mul, residual add, embedding gather): the
  same smooth knee between a launch floor ``fixed_s`` and ``bytes / (bandwidth *
  bandwidth_fraction)``, bytes per token as in ``pass_costs.elementwise_bytes_per_token``;
* **decode attention** (per layer): ``fixed_s + per_seq_s * batch`` (the launch floor) plus
  the larger of reading the KV cache at a batch-dependent fraction of the bandwidth and the
  query-key FLOPs at the chunked-prefill efficiency (verification passes, k+1 queries);
* **prefill attention** (per layer) of a chunk of ``c`` new tokens over ``kv`` cached ones:
  ``fixed_s + causal FLOPs / (peak * eff_causal(c)) + prefix FLOPs / (peak * eff_prefix(c))``
  with ``eff_causal`` growing as ``c ** causal_exponent`` up to ``causal_cap`` and
  ``eff_prefix`` log-interpolated between two chunk sizes;
* **all-reduce** of a message of ``b`` bytes over ``n`` GPUs: ``latency_s + b / bytes_per_s``.

All times are seconds; FLOPs count a multiply-add as two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from sim.compiled.jit import jitable
from sim.errors import ConfigError


@dataclass(frozen=True)
class GemmFit:
    """One GPU's GEMM constants (see the module docstring)."""

    memory_efficiency: float
    compute_efficiency: float
    knee_sharpness: float
    launch_s: float
    #: Output-tile heights (rows of M) the kernels may pad to; () = no padding (smooth knee).
    tile_rows: tuple[int, ...] = ()
    #: Each tile height's compute efficiency as a fraction of ``compute_efficiency``.
    tile_relative_efficiency: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for name in ("memory_efficiency", "compute_efficiency"):
            if not 0 < getattr(self, name) <= 1.5:
                raise ConfigError(f"GEMM {name} must be in (0, 1.5], got {getattr(self, name)}")
        if not self.knee_sharpness >= 1:
            raise ConfigError(f"GEMM knee_sharpness must be >= 1, got {self.knee_sharpness}")
        if self.launch_s < 0:
            raise ConfigError(f"GEMM launch_s must be >= 0, got {self.launch_s}")
        if len(self.tile_rows) != len(self.tile_relative_efficiency):
            raise ConfigError(f"GEMM tile_rows {self.tile_rows} and tile_relative_efficiency "
                              f"{self.tile_relative_efficiency} must have the same length")
        if not all(isinstance(h, int) and h >= 1 for h in self.tile_rows):
            raise ConfigError(f"GEMM tile_rows must be integers >= 1, got {self.tile_rows}")
        if not all(0 < r <= 2 for r in self.tile_relative_efficiency):
            raise ConfigError("GEMM tile_relative_efficiency must be in (0, 2], got "
                              f"{self.tile_relative_efficiency}")


@dataclass(frozen=True)
class ElementwiseFit:
    """One elementwise op on one GPU: launch floor, achieved fraction of the bandwidth, and
    the sharpness of the knee between them (as ``GemmFit``'s)."""

    fixed_s: float
    bandwidth_fraction: float
    knee_sharpness: float = 1.0


@dataclass(frozen=True)
class AllReduceFit:
    """All-reduce over one number of GPUs: per-call latency and message bytes per second."""

    latency_s: float
    bytes_per_s: float


@dataclass(frozen=True)
class AttentionFit:
    """Attention-kernel constants, per layer (see the module docstring).

    Fractions are of the datasheet bandwidth (decode) or peak FLOP/s (prefill), so they carry
    over to another GPU by its datasheet figures (an assumption where that GPU has no rows).
    """

    decode_fixed_s: float
    decode_per_seq_s: float
    decode_kv_fraction_batch1: float
    decode_kv_fraction_batch128: float
    prefill_fixed_s: float
    causal_ref_tokens: float
    causal_ref_fraction: float
    causal_exponent: float
    causal_cap: float
    prefix_small_tokens: float
    prefix_small_fraction: float
    prefix_large_tokens: float
    prefix_large_fraction: float

    def kv_fraction(self, batch: float) -> float:
        """Fraction of the bandwidth the decode kernel reads KV at: log-linear in the batch
        between 1 and 128, constant outside."""
        return kv_fraction(self.decode_kv_fraction_batch1, self.decode_kv_fraction_batch128,
                           batch)

    def causal_fraction(self, chunk_tokens: float) -> float:
        """Fraction of peak FLOP/s of the causal part of a prefill chunk of this size."""
        return causal_fraction(self.causal_ref_fraction, self.causal_ref_tokens,
                               self.causal_exponent, self.causal_cap, chunk_tokens)

    def prefix_fraction(self, chunk_tokens: float) -> float:
        """Fraction of peak FLOP/s of a chunk's attention over its cached prefix."""
        return prefix_fraction(self.prefix_small_tokens, self.prefix_large_tokens,
                               self.prefix_small_fraction, self.prefix_large_fraction,
                               chunk_tokens)


# The attention efficiencies as plain functions of numbers (rules the compiled loop calls too).
@jitable
def kv_fraction(batch1: float, batch128: float, batch: float) -> float:
    """``AttentionFit.kv_fraction``."""
    if batch <= 1:
        return batch1
    if batch >= 128:
        return batch128
    w = math.log2(batch) / 7.0
    return batch1 + w * (batch128 - batch1)


@jitable
def causal_fraction(ref_fraction: float, ref_tokens: float, exponent: float, cap: float,
                    chunk_tokens: float) -> float:
    """``AttentionFit.causal_fraction``."""
    f = ref_fraction * (chunk_tokens / ref_tokens) ** exponent
    return f if f < cap else cap


@jitable
def prefix_fraction(lo: float, hi: float, small: float, large: float,
                    chunk_tokens: float) -> float:
    """``AttentionFit.prefix_fraction``."""
    if chunk_tokens <= lo:
        return small
    if chunk_tokens >= hi:
        return large
    w = math.log(chunk_tokens / lo) / math.log(hi / lo)
    return small + w * (large - small)


@dataclass(frozen=True)
class GpuFit:
    """Everything fitted for one profiled GPU: its GEMM knee, its elementwise ops, its
    all-reduce by number of GPUs (empty where no network profile exists)."""

    name: str
    gemm: GemmFit
    elementwise: Mapping[str, ElementwiseFit]
    all_reduce: Mapping[int, AllReduceFit]


def gemm_s(tokens, k, n, dtype_bytes: int, peak_flops: float, bytes_per_s: float,
           fit: GemmFit):
    """Seconds of one ``tokens x k`` by ``k x n`` GEMM (see the module docstring). Numbers, or
    numpy arrays of positive token counts and shapes (the fitter, ``calibrate.vidur_fit``)."""
    is_array = isinstance(tokens, np.ndarray)
    if not is_array and tokens <= 0:
        return 0.0
    mem = (k * n + tokens * (k + n)) * dtype_bytes / (bytes_per_s * fit.memory_efficiency)
    if not fit.tile_rows:
        comp = 2.0 * tokens * k * n / (peak_flops * fit.compute_efficiency)
        return fit.launch_s + _soft_max(mem, comp, fit.knee_sharpness)
    best = None
    for rows, relative in zip(fit.tile_rows, fit.tile_relative_efficiency):
        padded = -(-tokens // rows) * rows  # ceil(tokens / rows) * rows, numbers or arrays
        comp = 2.0 * padded * k * n / (peak_flops * fit.compute_efficiency * relative)
        t = _soft_max(mem, comp, fit.knee_sharpness)
        if best is None:
            best = t
        else:
            best = np.minimum(best, t) if is_array else min(best, t)
    return fit.launch_s + best


def elementwise_s(tokens, bytes_per_token, bytes_per_s: float, fit: ElementwiseFit):
    """Seconds of one elementwise kernel over ``tokens`` rows (numbers, or numpy arrays of
    positive counts as for ``gemm_s``)."""
    if not isinstance(tokens, np.ndarray) and tokens <= 0:
        return 0.0
    moved = tokens * bytes_per_token / (bytes_per_s * fit.bandwidth_fraction)
    return _soft_max(fit.fixed_s, moved, fit.knee_sharpness)


def _soft_max(a, b, p: float):
    """``(a**p + b**p) ** (1/p)`` for a, b >= 0 (not both 0), written to stay finite for
    large p; numbers or numpy arrays."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        big = np.maximum(a, b)
    else:
        big = a if a > b else b
        if big <= 0.0:
            return 0.0
    return big * ((a / big) ** p + (b / big) ** p) ** (1.0 / p)


def all_reduce_s(message_bytes: float, fit: AllReduceFit) -> float:
    """Seconds of one all-reduce of ``message_bytes``."""
    return fit.latency_s + message_bytes / fit.bytes_per_s
