"""How far the fitted latency model is from Vidur's real GPU profiles, on held-out rows.

    python benchmarks/latency_vs_vidur.py [--profiles ../shared/profiles/vidur]

Prints, per GPU:

1. per op (the four GEMMs and the elementwise ops): the median signed error (bias) and the
   median absolute error of model vs measured over the held-out rows (every other
   ``num_tokens`` value, 1-4096, all profiled models and TP degrees; the fit used the others);
2. per (model, TP): the whole layer without attention (the nine per-layer ops of mlp.csv)
   at every held-out ``num_tokens`` in 1-4096: median absolute error, the share of
   ``num_tokens`` values within 10 %, the worst error, the floor (the worst error of the
   best non-decreasing curve through the measured times: what the kernels' own jumps from
   one ``num_tokens`` to the next force on any monotone model), and the worst per band;
3. all-reduce by number of GPUs: the same two medians over the held-out message sizes.

Errors are (model - measured) / measured. The model is ``sim.latency.ops`` with the
constants of ``sim.latency.fitted_constants`` (regenerate them with
``python -m calibrate.vidur_fit``). Reads the profiles; about ten seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calibrate.vidur_fit import (PEAKS, all_reduce_points, load_samples,  # noqa: E402
                                 split_tokens)
from sim.latency.fitted_constants import ATTENTION, FITS  # noqa: E402
from sim.latency.ops import all_reduce_s  # noqa: E402
from sim.latency.pass_costs import LAYER_ELEMENTWISE, PassCosts  # noqa: E402
from sim.latency.vidur_csv import ELEMENTWISE_OPS, GEMM_OPS  # noqa: E402

MAX_TOKENS = 4096
BANDS = ((1, 64), (65, 256), (257, 1024), (1025, 4096))
LAYER_OPS = GEMM_OPS + LAYER_ELEMENTWISE


def _pct(x: float) -> str:
    return f"{100 * x:+6.1f}%"


def monotone_floor(times: list[float]) -> float:
    """Smallest worst relative error any non-decreasing curve can have through ``times``
    (ordered by num_tokens): a lower bound for a latency model that never gets faster with
    more tokens, set by the measured kernels' own jumps."""
    lo, hi = 0.0, 1.0
    for _ in range(40):
        eps = (lo + hi) / 2
        level, feasible = 0.0, True
        for t in times:
            level = max(level, t * (1 - eps))
            if level > t * (1 + eps):
                feasible = False
                break
        lo, hi = (lo, eps) if feasible else (eps, hi)
    return hi


def _costs(cache: dict, gpu: str, shape, tp: int) -> PassCosts:
    key = (gpu, shape, tp)
    if key not in cache:
        peak, bandwidth = PEAKS[gpu]
        cache[key] = PassCosts(shape, peak, bandwidth, FITS[gpu], ATTENTION, None, tp)
    return cache[key]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=Path, default=ROOT.parent / "shared/profiles/vidur")
    args = parser.parse_args(argv)
    samples = load_samples(args.profiles)
    cache: dict = {}
    worst_gemm = worst_layer = 0.0
    shares: list[float] = []
    for gpu in sorted({s.gpu for s in samples}):
        mine = [s for s in samples if s.gpu == gpu and s.tokens <= 8192]
        _, held = split_tokens([s.tokens for s in mine])
        held_rows = [s for s in mine if s.tokens in held and s.tokens <= MAX_TOKENS]
        print(f"== {gpu}: held-out num_tokens rows (1-{MAX_TOKENS}), error = model/measured - 1")
        print(f"{'op':26s} {'rows':>6s} {'median':>8s} {'median |e|':>11s}")
        errors: dict[str, list[float]] = {}
        for s in held_rows:
            if s.seconds <= 0:
                continue
            model_s = _costs(cache, gpu, s.shape, s.tp).layer_op_s(s.op, s.tokens)
            errors.setdefault(s.op, []).append(model_s / s.seconds - 1)
        for op in GEMM_OPS + ELEMENTWISE_OPS:
            e = errors[op]
            bias = statistics.median(e)
            if op in GEMM_OPS:
                worst_gemm = max(worst_gemm, abs(bias))
            print(f"{op:26s} {len(e):6d} {_pct(bias):>8s} {_pct(statistics.median(map(abs, e))):>11s}")
        print(f"\n{'layer (no attention)':34s} {'points':>6s} {'median |e|':>11s} {'<=10%':>6s} "
              f"{'worst':>8s} {'floor':>6s}  " + "  ".join(f"worst {lo}-{hi}" for lo, hi in BANDS))
        layers: dict[tuple, dict[int, dict[str, float]]] = {}
        for s in held_rows:
            layers.setdefault((s.model, s.tp, s.shape), {}).setdefault(s.tokens, {})[s.op] = s.seconds
        for (model, tp, shape), by_tokens in sorted(layers.items(), key=lambda kv: kv[0][:2]):
            costs = _costs(cache, gpu, shape, tp)
            errs = {}
            measured = {t: sum(ops[op] for op in LAYER_OPS) for t, ops in by_tokens.items()}
            for tokens, seconds in measured.items():
                errs[tokens] = costs.fitted_layer_dense_s(tokens) / seconds - 1
            floor = monotone_floor([measured[t] for t in sorted(measured)])
            worst = max(errs.values(), key=abs)
            worst_layer = max(worst_layer, abs(worst)) if gpu in ("a100", "h100") else worst_layer
            bands = []
            for lo, hi in BANDS:
                inside = [e for t, e in errs.items() if lo <= t <= hi]
                bands.append(_pct(max(inside, key=abs)) if inside else "   -   ")
            within = sum(abs(e) <= 0.10 for e in errs.values()) / len(errs)
            shares.append(within)
            print(f"{model + ' tp' + str(tp):34s} {len(errs):6d} "
                  f"{_pct(statistics.median(map(abs, errs.values()))):>11s} {100 * within:5.0f}% "
                  f"{_pct(worst):>8s} {100 * floor:5.1f}%  "
                  + "  ".join(f"{b:>13s}" for b in bands))
        points = all_reduce_points(args.profiles, gpu)
        if points:
            print(f"\n{'all-reduce':26s} {'sizes':>6s} {'median':>8s} {'median |e|':>11s}")
            for workers, (sizes, seconds) in points.items():
                _, held_sizes = split_tokens(sizes.astype(int).tolist())
                e = [all_reduce_s(b, FITS[gpu].all_reduce[workers]) / t - 1
                     for b, t in zip(sizes, seconds) if int(b) in held_sizes]
                print(f"{str(workers) + ' GPUs':26s} {len(e):6d} {_pct(statistics.median(e)):>8s} "
                      f"{_pct(statistics.median(map(abs, e))):>11s}")
        print()
    print(f"largest GEMM median error (bias) over GPUs and ops: {100 * worst_gemm:.1f}%")
    print(f"largest whole-layer error at any held-out num_tokens, A100/H100: "
          f"{100 * worst_layer:.1f}%")
    print(f"held-out num_tokens with the whole layer within 10%, lowest share over (GPU, model, "
          f"TP): {100 * min(shares):.0f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
