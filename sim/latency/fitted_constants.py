"""Per-op latency constants fitted to real GPU profiles (generated: do not edit by hand).

Written by ``python -m calibrate.vidur_fit --profiles ../shared/profiles/vidur --write
sim/latency/fitted_constants.py`` from the kernel and network profiles of
microsoft/vidur @ 7d47513 (data/profiling/, MIT licence, Copyright (c) Microsoft
Corporation).
Fits use half of the num_tokens values (every other one); benchmarks/latency_vs_vidur.py
prints the errors on the other half. ATTENTION converts the profiles' README fits of the
A100 Llama-2-7B attention rows (attention.csv itself was not obtainable) to fractions of
the A100 datasheet figures; every GPU borrows them. Formulas: sim.latency.ops.
"""

from __future__ import annotations

from sim.latency.ops import AllReduceFit, AttentionFit, ElementwiseFit, GemmFit, GpuFit

SOURCE = (
    'microsoft/vidur @ 7d47513363ec447a741ac5e47241580b47724fbf (2024-11-19'
    '), data/profiling/ (MIT licence, Copyright (c) Microsoft Corporation)')

FITS: dict[str, GpuFit] = {
    'a100': GpuFit(
        'a100',
        gemm=GemmFit(memory_efficiency=0.8372, compute_efficiency=0.7388, knee_sharpness=1.392,
            launch_s=5.37e-06),
        elementwise={
            'emb': ElementwiseFit(fixed_s=2.904e-06, bandwidth_fraction=0.1577),
            'input_layernorm': ElementwiseFit(fixed_s=2.701e-06, bandwidth_fraction=0.4059),
            'attn_rope': ElementwiseFit(fixed_s=2.41e-06, bandwidth_fraction=0.4674),
            'post_attention_layernorm': ElementwiseFit(fixed_s=2.549e-06,
                bandwidth_fraction=0.387),
            'mlp_act': ElementwiseFit(fixed_s=2.149e-06, bandwidth_fraction=0.4978),
            'add': ElementwiseFit(fixed_s=1.264e-06, bandwidth_fraction=1.0105),
        },
        all_reduce={
            2: AllReduceFit(latency_s=4.366e-05, bytes_per_s=169647000000.0),
            4: AllReduceFit(latency_s=3.882e-05, bytes_per_s=107267000000.0),
            8: AllReduceFit(latency_s=4.248e-05, bytes_per_s=86240000000.0),
        },
    ),
    'a40': GpuFit(
        'a40',
        gemm=GemmFit(memory_efficiency=0.8035, compute_efficiency=0.7829, knee_sharpness=1.554,
            launch_s=3.83e-06),
        elementwise={
            'emb': ElementwiseFit(fixed_s=2.063e-06, bandwidth_fraction=0.5152),
            'input_layernorm': ElementwiseFit(fixed_s=2.255e-06, bandwidth_fraction=0.617),
            'attn_rope': ElementwiseFit(fixed_s=1.013e-06, bandwidth_fraction=0.8817),
            'post_attention_layernorm': ElementwiseFit(fixed_s=2.437e-06,
                bandwidth_fraction=0.6126),
            'mlp_act': ElementwiseFit(fixed_s=1.079e-06, bandwidth_fraction=0.7852),
            'add': ElementwiseFit(fixed_s=2.86e-07, bandwidth_fraction=0.9386),
        },
        all_reduce={
        },
    ),
    'h100': GpuFit(
        'h100',
        gemm=GemmFit(memory_efficiency=0.9847, compute_efficiency=0.7655, knee_sharpness=1.265,
            launch_s=5.49e-06),
        elementwise={
            'emb': ElementwiseFit(fixed_s=2.39e-06, bandwidth_fraction=0.1884),
            'input_layernorm': ElementwiseFit(fixed_s=2.713e-06, bandwidth_fraction=0.4465),
            'attn_rope': ElementwiseFit(fixed_s=1.915e-06, bandwidth_fraction=0.5333),
            'post_attention_layernorm': ElementwiseFit(fixed_s=2.523e-06,
                bandwidth_fraction=0.4138),
            'mlp_act': ElementwiseFit(fixed_s=1.679e-06, bandwidth_fraction=0.5776),
            'add': ElementwiseFit(fixed_s=1.015e-06, bandwidth_fraction=1.1237),
        },
        all_reduce={
            2: AllReduceFit(latency_s=2.615e-05, bytes_per_s=326904000000.0),
            4: AllReduceFit(latency_s=3.299e-05, bytes_per_s=258989000000.0),
            8: AllReduceFit(latency_s=2.974e-05, bytes_per_s=195045000000.0),
        },
    ),
}

ATTENTION = AttentionFit(decode_fixed_s=8e-06, decode_per_seq_s=1.2e-06,
    decode_kv_fraction_batch1=0.6752, decode_kv_fraction_batch128=1.0573, prefill_fixed_s=1.2e-05,
    causal_ref_tokens=960.0, causal_ref_fraction=0.1044, causal_exponent=0.42, causal_cap=0.5001,
    prefix_small_tokens=256.0, prefix_small_fraction=0.3282, prefix_large_tokens=2624.0,
    prefix_large_fraction=0.5001)
