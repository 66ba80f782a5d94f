"""GPU hardware presets: datasheet peaks, the fitted per-op constants each one uses, and
the tensor-parallel interconnect.

Peaks are the vendors' datasheet figures (dense, no structured sparsity). The kernel-level
efficiencies are not set here: each preset names the GPU whose real kernel profiles
(``sim.latency.fitted_constants``, fitted to Vidur's A100/H100/A40 profiles) it uses. The
fitted constants are fractions of the datasheet peaks, so a preset without profiles applies
another GPU's fractions to its own peaks:

* A100-80G uses the A100 fit, H100 the H100 fit (both profiled); both also use their own
  measured layer rows for the profiled model shapes (``measured``, ``sim.latency.measured``);
* H200 borrows the H100 fit: the same Hopper SM, tensor cores and NVLink4; only the memory
  (HBM3e, 4.8 TB/s, 141 GB) differs, and it enters through the datasheet bandwidth. It does
  not use the H100's measured rows: its 43 % higher bandwidth makes every weight-streaming
  GEMM faster than the H100 rows say, so it stays on the closed form (H100 fractions of the
  H200's own peaks);
* L40 borrows the A40 fit: the A40 is the profiled GPU closest to it (a PCIe card with GDDR6
  memory and no NVLink, like the L40); the L40's Ada SMs differ from the A40's Ampere ones,
  an assumption stated here and in docs/latency_model.md.

All-reduce: the fitted network profile (NVSwitch DGX A100 / H100, 2-8 GPUs) where the fit has
one; otherwise (L40, or a TP degree without rows) a ring all-reduce over
``interconnect_bytes_per_s`` (effective per-direction bus bandwidth) with
``allreduce_latency_s`` per call. L40 has no NVLink: PCIe Gen4 x16 gives 32 GB/s per
direction, ~25 GB/s achieved, and NCCL over PCIe ~20 us per call.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.errors import ConfigError
from sim.latency.fitted_constants import FITS
from sim.latency.ops import AllReduceFit, GpuFit

_GIB = 1024**3


@dataclass(frozen=True)
class GpuSpec:
    """One GPU model. Rates are per GPU; ``memory_bytes`` is the capacity CUDA reports."""

    name: str
    peak_flops: float  # dense bf16/fp16 tensor-core FLOP/s
    mem_bandwidth_bytes_per_s: float
    memory_bytes: int
    interconnect_bytes_per_s: float  # effective per-direction all-reduce bus bandwidth
    allreduce_latency_s: float  # fixed cost of one all-reduce call
    fit: str = "a100"  # key of sim.latency.fitted_constants.FITS whose constants it uses
    source: str = ""
    #: Key of sim/latency/measured_layers.json's ``layers`` holding this GPU's own measured layer rows
    #: (sim.latency.measured), None where nobody profiled this GPU: a preset that borrows
    #: another GPU's fit never borrows its measured times.
    measured: str | None = None

    def __post_init__(self) -> None:
        for field_name in ("peak_flops", "mem_bandwidth_bytes_per_s", "memory_bytes",
                           "interconnect_bytes_per_s"):
            if not getattr(self, field_name) > 0:
                raise ConfigError(f"GPU {self.name!r}: {field_name} must be > 0")
        if self.allreduce_latency_s < 0:
            raise ConfigError(f"GPU {self.name!r}: allreduce_latency_s must be >= 0")
        if self.fit not in FITS:
            raise ConfigError(f"GPU {self.name!r}: no fitted constants called {self.fit!r}; "
                              f"known: {', '.join(FITS)}")

    @property
    def op_fit(self) -> GpuFit:
        """The per-op constants this GPU uses (its own profile's, or a borrowed one)."""
        return FITS[self.fit]

    def all_reduce_fit(self, tp: int) -> AllReduceFit:
        """All-reduce constants over ``tp`` GPUs: the network profile's where it has ``tp``,
        else a ring over the datasheet interconnect (2 (tp-1)/tp of the message per GPU)."""
        fitted = self.op_fit.all_reduce.get(tp)
        if fitted is not None:
            return fitted
        ring = 2.0 * (tp - 1) / tp if tp > 1 else 1.0
        return AllReduceFit(self.allreduce_latency_s, self.interconnect_bytes_per_s / ring)


# NVIDIA A100 Tensor Core GPU datasheet (nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf):
# BF16/FP16 Tensor Core 312 TFLOPS (624 with sparsity); A100 80GB SXM: HBM2e, 2,039 GB/s;
# NVLink 600 GB/s.  Capacity: 80 GB nominal, ~79.15 GiB reported by CUDA.
A100_80G = GpuSpec(
    name="A100-80G",
    peak_flops=312e12,
    mem_bandwidth_bytes_per_s=2.039e12,
    memory_bytes=int(79.15 * _GIB),
    interconnect_bytes_per_s=300e9,
    allreduce_latency_s=6e-6,
    fit="a100",
    measured="a100",
    source="NVIDIA A100 datasheet (SXM 80GB): 312 TFLOPS bf16 dense, 2039 GB/s, NVLink 600 GB/s",
)

# NVIDIA L40 datasheet (PB-11030 / L40 product brief): FP16 Tensor 181.05 TFLOPS dense
# (362.1 with sparsity); 48 GB GDDR6 with ECC, 864 GB/s; PCIe Gen4 x16 (64 GB/s bidirectional),
# no NVLink.  Capacity: 48 GB nominal, ~44.4 GiB reported by CUDA with ECC on.
L40 = GpuSpec(
    name="L40",
    peak_flops=181e12,
    mem_bandwidth_bytes_per_s=0.864e12,
    memory_bytes=int(44.4 * _GIB),
    interconnect_bytes_per_s=25e9,
    allreduce_latency_s=20e-6,
    fit="a40",
    source="NVIDIA L40 datasheet: 181 TFLOPS fp16 dense, 864 GB/s GDDR6, PCIe Gen4 x16",
)

# NVIDIA H100 Tensor Core GPU datasheet (H100 SXM): BF16 Tensor Core 1,979 TFLOPS with
# sparsity = 989 dense; 80 GB HBM3, 3.35 TB/s; NVLink 900 GB/s.  ~79.1 GiB reported by CUDA.
H100 = GpuSpec(
    name="H100",
    peak_flops=989e12,
    mem_bandwidth_bytes_per_s=3.35e12,
    memory_bytes=int(79.1 * _GIB),
    interconnect_bytes_per_s=450e9,
    allreduce_latency_s=5e-6,
    fit="h100",
    measured="h100",
    source="NVIDIA H100 datasheet (SXM): 989 TFLOPS bf16 dense, 3.35 TB/s HBM3, NVLink 900 GB/s",
)

# NVIDIA H200 Tensor Core GPU datasheet (H200 SXM): BF16 Tensor Core 1,979 TFLOPS with
# sparsity = 989 dense; 141 GB HBM3e, 4.8 TB/s; NVLink 900 GB/s.  ~139.8 GiB reported by CUDA.
H200 = GpuSpec(
    name="H200",
    peak_flops=989e12,
    mem_bandwidth_bytes_per_s=4.8e12,
    memory_bytes=int(139.8 * _GIB),
    interconnect_bytes_per_s=450e9,
    allreduce_latency_s=5e-6,
    fit="h100",
    source="NVIDIA H200 datasheet (SXM): 989 TFLOPS bf16 dense, 4.8 TB/s HBM3e, NVLink 900 GB/s",
)

GPUS: dict[str, GpuSpec] = {g.name.lower(): g for g in (A100_80G, L40, H100, H200)}

_ALIASES: dict[str, str] = {
    "a100": "a100-80g",
    "a100-80gb": "a100-80g",
    "a100-sxm": "a100-80g",
    "a100-sxm4": "a100-80g",
    "a100-sxm4-80gb": "a100-80g",
    "l40-48g": "l40",
    "l40-48gb": "l40",
    "h100-sxm": "h100",
    "h100-sxm5": "h100",
    "h100-80g": "h100",
    "h100-80gb": "h100",
    "h200-sxm": "h200",
    "h200-141g": "h200",
    "h200-141gb": "h200",
}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


def gpu_names() -> tuple[str, ...]:
    """Canonical names of the GPU presets."""
    return tuple(g.name for g in GPUS.values())


def get_gpu(name: str) -> GpuSpec:
    """The preset called ``name`` (case-insensitive; aliases such as "a100", "h100-sxm")."""
    if not isinstance(name, str):
        raise ConfigError(f"GPU name must be a string, got {name!r}; known: "
                          f"{', '.join(gpu_names())}")
    key = _normalise(name)
    key = _ALIASES.get(key, key)
    try:
        return GPUS[key]
    except KeyError:
        raise ConfigError(
            f"unknown GPU {name!r}; known: {', '.join(gpu_names())} "
            f"(aliases: {', '.join(sorted(_ALIASES))})") from None
