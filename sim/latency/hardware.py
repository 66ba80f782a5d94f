"""GPU hardware presets for the roofline latency model.

Peaks are the vendors' datasheet figures (dense, no structured sparsity). Each preset also
carries the *default efficiency factors* the roofline model applies (what fraction of the
peak a serving workload reaches) and the tensor-parallel interconnect figures.

How the default efficiencies are derived (one rule for every GPU):

* Measured on an H100 80GB HBM3 and an H200 (2026-11, see DESIGN.md section 4): an
  8192^3 bf16 matmul ran at 769-798 TFLOP/s, i.e. 0.78-0.81 of the 989 TFLOP/s peak
  (midpoint 0.79); a device-to-device copy moved ~3.0 TB/s of 3.35 (H100) and ~4.3 TB/s of
  4.8 (H200), i.e. ~0.90 of the peak bandwidth.
* A serving pass is not one big square GEMM: decode/verify GEMMs have a small M (tokens),
  attention, norms, rotary and activation kernels run at far lower utilisation, and tile
  quantisation wastes work at odd sizes.  We apply a 0.8 discount on the large-GEMM fraction
  -> compute efficiency 0.79 * 0.8 = 0.63.  This matches the usual 55-70 % model-FLOPs
  utilisation of vLLM prefills.
* Decode passes stream the weights through GEMV-like kernels and paged attention; those reach
  somewhat less than a plain copy (~0.85-0.9 of it), so memory efficiency = 0.90 * 0.9 = 0.81.
  With it vicuna-7b batch-1 decode on A100 takes 13.5 GB / (2.04 TB/s * 0.81) = 8.2 ms of
  weight streaming, plus the fixed per-pass overhead.
* A100 and L40 were not measured here; they get the same fractions (an assumption, stated).

All-reduce figures (tensor parallelism): effective per-direction bus bandwidth of a ring
all-reduce and a per-call latency.  NVLink3 on A100 SXM: 600 GB/s total, 300 GB/s per
direction; NVLink4 on H100/H200 SXM: 900 GB/s total, 450 GB/s per direction.  L40 has no
NVLink; PCIe Gen4 x16 gives 32 GB/s per direction, ~25 GB/s achieved.  Per-call latency: a
few microseconds for vLLM's custom one-shot all-reduce on NVLink, tens over PCIe (NCCL).
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.errors import ConfigError

_GIB = 1024**3

# Large-GEMM fraction of peak and copy fraction of peak bandwidth measured on H100/H200.
MEASURED_GEMM_FRACTION = 0.79
MEASURED_COPY_FRACTION = 0.90
# Discounts from those micro-benchmarks to serving passes (see module docstring).
SERVING_COMPUTE_DISCOUNT = 0.8
SERVING_MEMORY_DISCOUNT = 0.9
DEFAULT_COMPUTE_EFFICIENCY = MEASURED_GEMM_FRACTION * SERVING_COMPUTE_DISCOUNT  # 0.632
DEFAULT_MEMORY_EFFICIENCY = MEASURED_COPY_FRACTION * SERVING_MEMORY_DISCOUNT  # 0.81


@dataclass(frozen=True)
class GpuSpec:
    """One GPU model. Rates are per GPU; ``memory_bytes`` is the capacity CUDA reports."""

    name: str
    peak_flops: float  # dense bf16/fp16 tensor-core FLOP/s
    mem_bandwidth_bytes_per_s: float
    memory_bytes: int
    interconnect_bytes_per_s: float  # effective per-direction all-reduce bus bandwidth
    allreduce_latency_s: float  # fixed cost of one all-reduce call
    compute_efficiency: float = DEFAULT_COMPUTE_EFFICIENCY
    memory_efficiency: float = DEFAULT_MEMORY_EFFICIENCY
    source: str = ""

    def __post_init__(self) -> None:
        for field_name in ("peak_flops", "mem_bandwidth_bytes_per_s", "memory_bytes",
                           "interconnect_bytes_per_s"):
            if not getattr(self, field_name) > 0:
                raise ConfigError(f"GPU {self.name!r}: {field_name} must be > 0")
        if self.allreduce_latency_s < 0:
            raise ConfigError(f"GPU {self.name!r}: allreduce_latency_s must be >= 0")
        for field_name in ("compute_efficiency", "memory_efficiency"):
            value = getattr(self, field_name)
            if not 0 < value <= 1:
                raise ConfigError(f"GPU {self.name!r}: {field_name} must be in (0, 1], got {value}")


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
