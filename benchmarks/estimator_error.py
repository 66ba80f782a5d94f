"""Error of the policies' table estimator against the ground truth, over a grid of iteration
shapes (batch B x context per request x draft length k, both serving engines), printed as
the Markdown tables of docs/estimator.md.

    python benchmarks/estimator_error.py [--gpu A100-80G] [--target vicuna-7b] [--tp 1]
                                         [--profile P] [--dense-ops measured|fitted] [--scan]

Each cell is one uniform decode iteration (B requests with L cached tokens each, drafting and
verifying k tokens each, CUDA-graph padding on), priced by ``sim.latency.iteration`` once with
the estimator and once with the truth; the cell shows the mean and the worst signed relative
error over k = 0, 1, 3, 5, 8.

``--scan`` prints instead, per engine, the worst signed error of the same iteration over
every B in 1-256 and every 8th B up to 2,048 (plus 1,921), the same contexts and k: for
plain decoding (k = 0), for speculative passes (k > 0), and split by the verification
pass's query tokens (up to and above the largest CUDA-graph size, 1,024), where the
estimator's token row turns from a table into a fitted line (docs/estimator.md).
"""

from __future__ import annotations

import argparse
import sys
import warnings

from sim.core.padding import GraphPadding
from sim.latency.estimator import TableEstimator
from sim.latency.iteration import ENGINES, DecodeShape, decode_iteration_s, draft_shape, verify_shape

BATCHES = (1, 8, 32, 64, 128, 256)
CONTEXTS = (128, 512, 1300, 2048, 4096)
KS = (0, 1, 3, 5, 8)


def iteration_s(model, padding, engine: str, batch: int, context: int, k: int) -> float:
    """A uniform decode iteration: every request drafts and verifies k tokens."""
    total = batch * context
    rows, tokens, kv = verify_shape(engine, batch, total, batch * k)
    draft_rows, draft_kv = draft_shape([batch] * k, [total] * k)
    return decode_iteration_s(model, padding, DecodeShape(batch, total, rows, tokens, kv,
                                                          draft_rows, draft_kv))


def error_table(truth, estimator, padding, engine: str) -> list[str]:
    lines = [f"| B \\ L ({engine}) | " + " | ".join(str(c) for c in CONTEXTS) + " |",
             "|---|" + "---|" * len(CONTEXTS)]
    for batch in BATCHES:
        cells = []
        for context in CONTEXTS:
            errors = [iteration_s(estimator, padding, engine, batch, context, k)
                      / iteration_s(truth, padding, engine, batch, context, k) - 1 for k in KS]
            worst = max(errors, key=abs)
            cells.append(f"{sum(errors) / len(errors):+.1%} / {worst:+.1%}")
        lines.append(f"| {batch} | " + " | ".join(cells) + " |")
    return lines


SCAN_BATCHES = tuple(sorted({*range(1, 257), *range(264, 2049, 8), 1921}))


def scan_lines(truth, estimator, padding, engine: str) -> list[str]:
    """Worst signed errors over ``SCAN_BATCHES`` x ``CONTEXTS`` x ``KS`` (see the docstring)."""
    worst: dict[str, tuple[float, str]] = {}

    def note(group: str, error: float, where: str) -> None:
        if abs(error) > abs(worst.get(group, (0.0, ""))[0]):
            worst[group] = (error, where)
    for batch in SCAN_BATCHES:
        for context in CONTEXTS:
            for k in KS:
                error = (iteration_s(estimator, padding, engine, batch, context, k)
                         / iteration_s(truth, padding, engine, batch, context, k) - 1)
                where = f"B = {batch:,}, L = {context}" + (f", k = {k}" if k else "")
                note("plain decoding (k = 0)" if k == 0 else "speculative (k > 0)", error,
                     where)
                _, tokens, _ = verify_shape(engine, batch, batch * context, batch * k)
                note("passes <= 1,024 tokens" if tokens <= 1024 else "passes > 1,024 tokens",
                     error, where)
    groups = ("plain decoding (k = 0)", "speculative (k > 0)", "passes <= 1,024 tokens",
              "passes > 1,024 tokens")
    return [f"  {engine:12s} {g:24s} {worst[g][0]:+.1%} ({worst[g][1]})"
            for g in groups if g in worst]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", default="A100-80G")
    parser.add_argument("--target", default="vicuna-7b")
    parser.add_argument("--tp", type=int, default=1, help="tensor-parallel degree of the target")
    parser.add_argument("--profile", help="a calibrated latency profile as the truth")
    parser.add_argument("--dense-ops", choices=("measured", "fitted"), default="measured",
                        help="the preset truth's dense ops (as adaspec-sim --dense-ops)")
    parser.add_argument("--scan", action="store_true",
                        help="worst errors over a finer and larger batch scan (docstring)")
    args = parser.parse_args(argv)
    if args.profile:
        from sim.latency.profile import load_profile
        warnings.simplefilter("ignore", RuntimeWarning)  # the grid leaves a CPU profile's domain
        truth = load_profile(args.profile)
        label = args.profile
    else:
        from sim.latency.presets import roofline_for
        truth = roofline_for(args.target, gpu=args.gpu, tp=args.tp, dense_ops=args.dense_ops)
        label = (f"roofline {args.target} on {args.gpu}" + (f" TP{args.tp}" if args.tp > 1 else "")
                 + f", dense ops {args.dense_ops}")
    padding = GraphPadding()
    estimator = TableEstimator.from_model(truth, padding)
    if args.scan:
        print(f"Estimator vs truth ({label}): worst signed relative error over the scan")
        for engine in ENGINES:
            print("\n".join(scan_lines(truth, estimator, padding, engine)))
        return 0
    print(f"Estimator (37 sizes x 5 buckets) vs truth ({label}): mean / worst relative error "
          f"over k = {', '.join(map(str, KS))}\n")
    for engine in ENGINES:
        print("\n".join(error_table(truth, estimator, padding, engine)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
