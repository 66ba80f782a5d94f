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
        gemm=GemmFit(memory_efficiency=0.8242, compute_efficiency=0.7381, knee_sharpness=1.875,
            launch_s=5.68e-06, tile_rows=(128, 64, 16), tile_relative_efficiency=(1.0, 0.9213,
            0.7588)),
        elementwise={
            'emb': ElementwiseFit(fixed_s=5.185e-06, bandwidth_fraction=0.1515,
                knee_sharpness=1.754),
            'input_layernorm': ElementwiseFit(fixed_s=5.584e-06, bandwidth_fraction=0.3647,
                knee_sharpness=2.837),
            'attn_rope': ElementwiseFit(fixed_s=3.192e-06, bandwidth_fraction=0.4302,
                knee_sharpness=1.411),
            'post_attention_layernorm': ElementwiseFit(fixed_s=5.691e-06, bandwidth_fraction=0.3507,
                knee_sharpness=3.207),
            'mlp_act': ElementwiseFit(fixed_s=4.379e-06, bandwidth_fraction=0.4729,
                knee_sharpness=1.838),
            'add': ElementwiseFit(fixed_s=2.199e-06, bandwidth_fraction=0.9307,
                knee_sharpness=2.09),
        },
        all_reduce={
            2: AllReduceFit(latency_s=4.366e-05, bytes_per_s=169647000000.0),
            4: AllReduceFit(latency_s=3.882e-05, bytes_per_s=107267000000.0),
            8: AllReduceFit(latency_s=4.248e-05, bytes_per_s=86240000000.0),
        },
    ),
    'a40': GpuFit(
        'a40',
        gemm=GemmFit(memory_efficiency=0.7963, compute_efficiency=0.7811, knee_sharpness=1.834,
            launch_s=4.18e-06, tile_rows=(128, 64, 16), tile_relative_efficiency=(1.0, 0.9857,
            0.8801)),
        elementwise={
            'emb': ElementwiseFit(fixed_s=3.325e-06, bandwidth_fraction=0.5046,
                knee_sharpness=1.332),
            'input_layernorm': ElementwiseFit(fixed_s=4.866e-06, bandwidth_fraction=0.5809,
                knee_sharpness=3.64),
            'attn_rope': ElementwiseFit(fixed_s=2.572e-06, bandwidth_fraction=0.7963,
                knee_sharpness=3.631),
            'post_attention_layernorm': ElementwiseFit(fixed_s=4.936e-06, bandwidth_fraction=0.5756,
                knee_sharpness=3.355),
            'mlp_act': ElementwiseFit(fixed_s=3.362e-06, bandwidth_fraction=0.7528,
                knee_sharpness=4.283),
            'add': ElementwiseFit(fixed_s=1.174e-06, bandwidth_fraction=0.8869,
                knee_sharpness=2.957),
        },
        all_reduce={
        },
    ),
    'h100': GpuFit(
        'h100',
        gemm=GemmFit(memory_efficiency=1.0, compute_efficiency=0.735, knee_sharpness=1.741,
            launch_s=6.16e-06, tile_rows=(128, 64, 16), tile_relative_efficiency=(1.0, 0.8921,
            0.2869)),
        elementwise={
            'emb': ElementwiseFit(fixed_s=3.823e-06, bandwidth_fraction=0.1822,
                knee_sharpness=1.402),
            'input_layernorm': ElementwiseFit(fixed_s=4.947e-06, bandwidth_fraction=0.3821,
                knee_sharpness=2.75),
            'attn_rope': ElementwiseFit(fixed_s=2.407e-06, bandwidth_fraction=0.4927,
                knee_sharpness=1.289),
            'post_attention_layernorm': ElementwiseFit(fixed_s=4.96e-06, bandwidth_fraction=0.3575,
                knee_sharpness=3.183),
            'mlp_act': ElementwiseFit(fixed_s=2.807e-06, bandwidth_fraction=0.5579,
                knee_sharpness=1.342),
            'add': ElementwiseFit(fixed_s=1.583e-06, bandwidth_fraction=1.0377,
                knee_sharpness=1.709),
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
