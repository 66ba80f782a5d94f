"""Fit the latency model's per-op constants to Vidur's real GPU profiles and write them out;
tabulate the measured layer rows the simulator's profiled presets use.

    python -m calibrate.vidur_fit --profiles ../shared/profiles/vidur \\
        --write sim/latency/fitted_constants.py \\
        --write-measured sim/latency/measured_layers.json

Reads every ``compute/<gpu>/<org>/<model>/mlp.csv`` and ``network/<gpu>_dgx/all_reduce.csv``
(microsoft/vidur @ 7d47513, MIT) and fits, per GPU:

* the GEMM knee (``sim.latency.ops.gemm_s``): memory and compute efficiency, knee sharpness,
  launch time and the relative compute efficiency of each output-tile height but the first
  (``--gemm-tile-rows``, default ``GEMM_TILE_ROWS`` = 128 and 64 rows; ``none``: the smooth
  knee without tile padding), one set for all four projections of all models and TP degrees,
  by a robust least squares (soft-L1, scale 0.05) on the log of predicted/measured: the
  issue's GEMM bar is a median, and a few sizes where cuBLAS picks a kernel 2-3x slower than
  its neighbours' (H100 Llama-2-70B down projection, 520-640 tokens) should not pull the fit;
* each elementwise op: launch floor, bandwidth fraction and knee sharpness, log least
  squares;
* all-reduce per number of GPUs (one node, ``devices_per_node == num_workers``, messages up
  to 64 MiB): latency and bytes per second, log least squares.

Rows are split by ``num_tokens`` (message ``size`` for all-reduce): the sorted distinct values
at even positions train, the odd ones are held out (``split_tokens``); held-out errors are
printed by ``benchmarks/latency_vs_vidur.py``. The attention constants come from the fits of
the profiles' README (attention.csv was not obtainable) and are converted here, in
``attention_fit``. The fitter's numpy GEMM formula is checked against ``gemm_s`` in the tests.

``--write-measured`` writes ``sim/latency/measured_layers.json``: for every GPU a preset names as
its own (``GpuSpec.measured``: A100, H100), every profiled model and TP degree, the median
per-layer time of the nine per-layer ops at every profiled num_tokens (``sim.latency.measured``
interpolates them). All rows, not only the training half: the held-out check of that path is
the benchmark's, which interpolates the even rows itself.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.optimize import least_squares

from sim.latency.measured import layer_points
from sim.latency.models import ModelSpec
from sim.latency.ops import (AllReduceFit, AttentionFit, ElementwiseFit, GemmFit, GpuFit,
                             elementwise_s, gemm_s)
from sim.latency.pass_costs import elementwise_bytes_per_token, layer_gemm_shapes
from sim.latency.vidur_csv import (ELEMENTWISE_OPS, GEMM_OPS, MlpRow, read_all_reduce_csv,
                                   read_mlp_csv)

SOURCE = ("microsoft/vidur @ 7d47513363ec447a741ac5e47241580b47724fbf (2024-11-19), "
          "data/profiling/ (MIT licence, Copyright (c) Microsoft Corporation)")
#: Datasheet peaks of the profiled GPUs (dense bf16 FLOP/s, bytes/s). A40: NVIDIA A40
#: datasheet, 149.7 TFLOPS bf16 dense, 696 GB/s GDDR6; A100/H100 as sim.latency.hardware.
PEAKS: dict[str, tuple[float, float]] = {"a100": (312e12, 2.039e12), "h100": (989e12, 3.35e12),
                                         "a40": (149.7e12, 0.696e12)}
NETWORK_TOPOLOGY = {"a100": "a100_dgx", "h100": "h100_dgx"}
MAX_FIT_TOKENS = 8192
#: GEMM output-tile heights (rows of num_tokens) of the closed form: chosen by held-out error
#: among {64}, {128}, {256}, {128, 256}, {64, 128}, {64, 128, 256} (docs/latency_model.md).
GEMM_TILE_ROWS: tuple[int, ...] = (128, 64, 16)
MAX_ALL_REDUCE_BYTES = 64 * 1024**2


@dataclass(frozen=True)
class OpSample:
    """One measured op: GPU, model directory, TP, op, num_tokens, the model shape, seconds."""

    gpu: str
    model: str
    tp: int
    op: str
    tokens: int
    shape: ModelSpec
    seconds: float


def shape_of(row: MlpRow, name: str) -> ModelSpec:
    """The (one-layer) model shape an mlp.csv row was profiled on."""
    return ModelSpec(name, 1, row.hidden, row.heads, row.kv_heads, row.ffn, row.vocab)


def load_samples(profiles: Path) -> list[OpSample]:
    """Every (GEMM and elementwise) op median of every mlp.csv under ``profiles/compute``."""
    out = []
    for path in sorted((profiles / "compute").glob("*/*/*/mlp.csv")):
        gpu, model = path.parts[-4], path.parts[-2]
        for row in read_mlp_csv(path):
            shape = shape_of(row, model)
            for op in GEMM_OPS + ELEMENTWISE_OPS:
                out.append(OpSample(gpu, model, row.tp, op, row.num_tokens, shape,
                                    row.seconds(op)))
    return out


def split_tokens(values: Sequence[int]) -> tuple[set[int], set[int]]:
    """(train, held out): distinct sorted values at even positions train, odd are held out."""
    distinct = sorted(set(values))
    return set(distinct[0::2]), set(distinct[1::2])


def gemm_fit_of(x: Sequence[float], tile_rows: Sequence[int] = ()) -> GemmFit:
    """The ``GemmFit`` of a parameter vector x = (memory eff, compute eff, sharpness, launch,
    then the relative efficiency of each tile height after the first, which is 1)."""
    relative = (1.0,) + tuple(float(v) for v in x[4:]) if tile_rows else ()
    return GemmFit(float(x[0]), float(x[1]), float(x[2]), float(x[3]), tuple(tile_rows),
                   relative)


def gemm_np(m: np.ndarray, k: np.ndarray, n: np.ndarray, dtype_bytes: int, peak: float,
            bandwidth: float, x: Sequence[float], tile_rows: Sequence[int] = ()) -> np.ndarray:
    """``sim.latency.ops.gemm_s`` over arrays, with the fit ``gemm_fit_of(x, tile_rows)``."""
    return gemm_s(m, k, n, dtype_bytes, peak, bandwidth, gemm_fit_of(x, tile_rows))


def fit_gemm(samples: Sequence[OpSample], gpu: str,
             tile_rows: Sequence[int] = GEMM_TILE_ROWS) -> GemmFit:
    peak, bandwidth = PEAKS[gpu]
    rows = [s for s in samples if s.op in GEMM_OPS and s.seconds > 0]
    shapes = [layer_gemm_shapes(s.shape, s.tp)[s.op] for s in rows]
    m = np.array([s.tokens for s in rows], float)
    k = np.array([kn[0] for kn in shapes], float)
    n = np.array([kn[1] for kn in shapes], float)
    t = np.array([s.seconds for s in rows])
    extra = max(len(tile_rows) - 1, 0)
    result = least_squares(
        lambda x: np.log(gemm_np(m, k, n, 2, peak, bandwidth, x, tile_rows) / t),
        [0.85, 0.7, 3.0, 5e-6] + [0.9] * extra,
        bounds=([0.1, 0.1, 1.0, 0.0] + [0.05] * extra, [1.0, 1.0, 30.0, 1e-4] + [1.0] * extra),
        loss="soft_l1", f_scale=0.05, x_scale=[1.0, 1.0, 1.0, 1e-5] + [1.0] * extra)
    x = [round(float(result.x[0]), 4), round(float(result.x[1]), 4),
         round(float(result.x[2]), 3), round(float(result.x[3]), 8)]
    return gemm_fit_of(x + [round(float(v), 4) for v in result.x[4:]], tile_rows)


def fit_elementwise(samples: Sequence[OpSample], gpu: str, op: str) -> ElementwiseFit:
    _, bandwidth = PEAKS[gpu]
    rows = [s for s in samples if s.op == op and s.seconds > 0]
    t = np.array([s.seconds for s in rows])
    tokens = np.array([s.tokens for s in rows], float)
    nbytes_per_token = np.array([elementwise_bytes_per_token(s.shape, s.tp)[op] for s in rows],
                                float)

    def predict(x: np.ndarray) -> np.ndarray:  # x = (fixed us, bandwidth fraction, sharpness)
        return elementwise_s(tokens, nbytes_per_token, bandwidth,
                             ElementwiseFit(x[0] * 1e-6, x[1], x[2]))

    result = least_squares(lambda x: np.log(predict(x) / t), [3.0, 0.5, 2.0],
                           bounds=([0.0, 0.01, 1.0], [100.0, 3.0, 20.0]))
    fixed_us, fraction, p = (float(v) for v in result.x)
    return ElementwiseFit(round(fixed_us * 1e-6, 9), round(fraction, 4), round(p, 3))


def all_reduce_points(profiles: Path, gpu: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """workers -> (message bytes, median seconds) of the GPU's one-node all-reduce profile."""
    topology = NETWORK_TOPOLOGY.get(gpu)
    if topology is None:
        return {}
    rows = [r for r in read_all_reduce_csv(profiles / "network" / topology / "all_reduce.csv")
            if r.devices_per_node == r.workers and r.size_bytes <= MAX_ALL_REDUCE_BYTES]
    out = {}
    for workers in sorted({r.workers for r in rows}):
        by_size: dict[int, list[float]] = {}
        for r in rows:
            if r.workers == workers:
                by_size.setdefault(r.size_bytes, []).append(r.seconds)
        sizes = np.array(sorted(by_size), float)
        out[workers] = (sizes, np.array([np.median(by_size[int(s)]) for s in sizes]))
    return out


def fit_all_reduce(sizes: np.ndarray, seconds: np.ndarray) -> AllReduceFit:
    result = least_squares(lambda x: np.log((x[0] * 1e-6 + sizes / (x[1] * 1e9)) / seconds),
                           [20.0, 100.0], bounds=([0.0, 1.0], [1000.0, 10000.0]))
    return AllReduceFit(round(float(result.x[0]) * 1e-6, 8), round(float(result.x[1]) * 1e9, -6))


def attention_fit() -> AttentionFit:
    """The profiles' README fits (A100, Llama-2-7B, TP 1, ms per layer) as fractions of the
    A100's datasheet figures: decode ``0.008 + 0.0012*B + k(B)*B*L`` (k 1.19e-5 at B=1,
    7.6e-6 at B=128) and prefill ``0.012 + 0.232*(c/960)**1.58 + beta(c)*c*kv`` (beta 1.6e-7
    at c <= 256, 1.05e-7 at c >= 2624)."""
    peak, bandwidth = PEAKS["a100"]
    kv_bytes = 2 * 4096 * 2  # K and V of one token, one layer, Llama-2-7B, bf16
    flops_per_pair = 4.0 * 4096
    ref_c = 960
    causal_ref = flops_per_pair * ref_c * (ref_c + 1) / 2 / (0.232e-3 * peak)
    prefix_large = flops_per_pair / (1.05e-10 * peak)
    return AttentionFit(
        decode_fixed_s=8e-6, decode_per_seq_s=1.2e-6,
        decode_kv_fraction_batch1=round(kv_bytes / (1.19e-8 * bandwidth), 4),
        decode_kv_fraction_batch128=round(kv_bytes / (7.6e-9 * bandwidth), 4),
        prefill_fixed_s=12e-6, causal_ref_tokens=float(ref_c),
        causal_ref_fraction=round(causal_ref, 4), causal_exponent=round(2 - 1.58, 4),
        causal_cap=round(prefix_large, 4),
        prefix_small_tokens=256.0, prefix_small_fraction=round(flops_per_pair / (1.6e-10 * peak), 4),
        prefix_large_tokens=2624.0, prefix_large_fraction=round(prefix_large, 4))


def fit_gpu(samples: Sequence[OpSample], profiles: Path, gpu: str,
            gemm_tile_rows: Sequence[int] = GEMM_TILE_ROWS) -> GpuFit:
    """Fit one GPU on its training rows (see ``split_tokens``)."""
    mine = [s for s in samples if s.gpu == gpu and s.tokens <= MAX_FIT_TOKENS]
    train_tokens, _ = split_tokens([s.tokens for s in mine])
    train = [s for s in mine if s.tokens in train_tokens]
    elementwise = {op: fit_elementwise(train, gpu, op) for op in ELEMENTWISE_OPS}
    network = {}
    for workers, (sizes, seconds) in all_reduce_points(profiles, gpu).items():
        keep, _ = split_tokens(sizes.astype(int).tolist())
        mask = np.isin(sizes.astype(int), sorted(keep))
        network[workers] = fit_all_reduce(sizes[mask], seconds[mask])
    return GpuFit(gpu, fit_gemm(train, gpu, gemm_tile_rows), elementwise, network)


def render(fits: Sequence[GpuFit], attention: AttentionFit) -> str:
    """The text of ``sim/latency/fitted_constants.py``."""
    lines = [
        '"""Per-op latency constants fitted to real GPU profiles (generated: do not edit by hand).',
        "",
        "Written by ``python -m calibrate.vidur_fit --profiles ../shared/profiles/vidur --write",
        "sim/latency/fitted_constants.py`` from the kernel and network profiles of",
        "microsoft/vidur @ 7d47513 (data/profiling/, MIT licence, Copyright (c) Microsoft",
        "Corporation).",
        "Fits use half of the num_tokens values (every other one); benchmarks/latency_vs_vidur.py",
        "prints the errors on the other half. ATTENTION converts the profiles' README fits of the",
        "A100 Llama-2-7B attention rows (attention.csv itself was not obtainable) to fractions of",
        "the A100 datasheet figures; every GPU borrows them. Formulas: sim.latency.ops.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from sim.latency.ops import AllReduceFit, AttentionFit, ElementwiseFit, GemmFit, GpuFit",
        "",
        "SOURCE = (",
        f"    {SOURCE[:70]!r}",
        f"    {SOURCE[70:]!r})",
        "",
        "FITS: dict[str, GpuFit] = {",
    ]
    for fit in fits:
        lines.append(f"    {fit.name!r}: GpuFit(")
        lines.append(f"        {fit.name!r},")
        lines.append(f"        gemm={fit.gemm!r},")
        lines.append("        elementwise={")
        for op, e in fit.elementwise.items():
            lines.append(f"            {op!r}: {e!r},")
        lines.append("        },")
        lines.append("        all_reduce={")
        for workers, a in fit.all_reduce.items():
            lines.append(f"            {workers}: {a!r},")
        lines.append("        },")
        lines.append("    ),")
    lines.append("}")
    lines.append("")
    lines.append(f"ATTENTION = {attention!r}")
    return "\n".join(_wrap(line) for line in lines) + "\n"


def _wrap(line: str, width: int = 99) -> str:
    """Break a long ``Name(a=1, b=2)`` line after commas, keeping its indentation."""
    if len(line) <= width or "Fit(" not in line:
        return line
    indent = " " * (len(line) - len(line.lstrip()) + 4)
    parts = line.split(", ")
    out, current = [], parts[0]
    for part in parts[1:]:
        if len(current) + len(part) + 2 > width:
            out.append(current + ",")
            current = indent + part
        else:
            current += ", " + part
    out.append(current)
    return "\n".join(out)


def measured_tables(profiles: Path, gpus: Sequence[str]) -> dict:
    """gpu -> profiled model -> ((hidden, heads, kv heads, ffn), vocab, num_tokens,
    {tp: per-layer microseconds}) from every ``compute/<gpu>/*/*/mlp.csv``."""
    out: dict = {}
    for gpu in gpus:
        paths = sorted((profiles / "compute" / gpu).glob("*/*/mlp.csv"))
        if not paths:
            raise SystemExit(f"no mlp.csv under {profiles / 'compute' / gpu}")
        for path in paths:
            rows = read_mlp_csv(path)
            first = rows[0]
            by_tp = {tp: layer_points(rows, tp) for tp in sorted({r.tp for r in rows})}
            tokens = sorted(next(iter(by_tp.values())))
            if any(sorted(points) != tokens for points in by_tp.values()):
                raise SystemExit(f"{path}: the TP degrees were profiled at different num_tokens")
            out.setdefault(gpu, {})[path.parts[-2]] = (
                (first.hidden, first.heads, first.kv_heads, first.ffn), first.vocab, tokens,
                {tp: [round(points[t] * 1e6, 4) for t in tokens] for tp, points in by_tp.items()})
    return out


def render_measured(tables: dict) -> str:
    """The text of ``sim/latency/measured_layers.json`` (read by ``sim.latency.measured``):
    its provenance, each distinct num_tokens grid once, and per GPU and profiled model the
    layer shape, vocabulary, grid name and microseconds per layer by TP degree."""
    grids: dict[tuple[int, ...], str] = {}
    layers: dict = {}
    for gpu, models in tables.items():
        for name, (dims, vocab, tokens, by_tp) in models.items():
            grid = grids.setdefault(tuple(tokens), f"{len(tokens)}_to_{tokens[-1]}")
            layers.setdefault(gpu, {})[name] = {
                "shape": list(dims), "vocab": vocab, "num_tokens": grid,
                "micros_per_layer_by_tp": {str(tp): [float(v) for v in micros]
                                           for tp, micros in by_tp.items()}}
    document = {
        "about": MEASURED_ABOUT, "source": SOURCE,
        "num_tokens": {name: list(tokens) for tokens, name in grids.items()},
        "layers": layers}
    text = json.dumps(document, indent=1)
    # one line per list of numbers (the generated file stays readable and diffable)
    text = re.sub(r"\[\s*([-0-9.e+,\s]+?)\s*\]", lambda m: "[" + " ".join(m.group(1).split()) + "]",
                  text)
    return text + "\n"


MEASURED_ABOUT = (
    "Measured per-layer non-attention kernel times (generated: do not edit by hand). Written "
    "by `python -m calibrate.vidur_fit --profiles ../shared/profiles/vidur --write-measured "
    "sim/latency/measured_layers.json` from the kernel profiles of microsoft/vidur @ 7d47513 "
    "(data/profiling/compute/<gpu>/*/*/mlp.csv, MIT licence, Copyright (c) Microsoft "
    "Corporation; ../shared/profiles/vidur/LICENSE). layers[gpu][profiled model]: layer shape "
    "(hidden, heads, KV heads, MLP width), vocabulary as profiled, its num_tokens grid, and per "
    "TP degree the microseconds per layer at each num_tokens: the median (over Vidur's repeated "
    "rows) of the sum of the nine per-layer ops' medians (input_layernorm, attn_pre_proj, "
    "attn_rope, attn_post_proj, post_attention_layernorm, mlp_up_proj, mlp_act, mlp_down_proj, "
    "add). Read by sim.latency.measured.")


def _tile_rows(text: str) -> tuple[int, ...]:
    """``--gemm-tile-rows``: comma-separated heights >= 1, or ``none``."""
    if text.strip().lower() == "none":
        return ()
    try:
        rows = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise SystemExit(f"--gemm-tile-rows: integers or none, got {text!r}") from None
    if not rows or min(rows) < 1 or len(set(rows)) != len(rows):
        raise SystemExit(f"--gemm-tile-rows: distinct integers >= 1, got {text!r}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calibrate.vidur_fit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", required=True, type=Path, help="Vidur data/profiling dir")
    parser.add_argument("--write", type=Path, help="write the constants module here")
    parser.add_argument("--write-measured", type=Path, metavar="PATH",
                        help="write the measured layer rows (sim/latency/measured_layers.json) "
                             "and skip the fit unless --write is given too")
    parser.add_argument("--gemm-tile-rows", default=",".join(map(str, GEMM_TILE_ROWS)),
                        metavar="H[,H...]|none",
                        help="GEMM output-tile heights num_tokens is padded to (the fastest "
                             "wins; default %(default)s); none: the smooth knee, no padding")
    args = parser.parse_args(argv)
    tile_rows = _tile_rows(args.gemm_tile_rows)
    if args.write_measured:
        from sim.latency.hardware import GPUS
        gpus = sorted({g.measured for g in GPUS.values() if g.measured is not None})
        args.write_measured.write_text(render_measured(measured_tables(args.profiles, gpus)),
                                       encoding="utf-8")
        if not args.write:
            return 0
    samples = load_samples(args.profiles)
    gpus = sorted({s.gpu for s in samples})
    text = render([fit_gpu(samples, args.profiles, g, tile_rows) for g in gpus],
                  attention_fit())
    if args.write:
        args.write.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
