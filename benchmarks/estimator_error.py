"""Error of the policies' table estimator against the ground truth, over a grid of iteration
shapes (batch B x context per request x draft length k, both serving engines), printed as
the Markdown tables of docs/estimator.md.

    python benchmarks/estimator_error.py [--gpu A100-80G] [--target vicuna-7b] [--tp 1]
                                         [--profile P]

Each cell is one uniform decode iteration (B requests with L cached tokens each, drafting and
verifying k tokens each, CUDA-graph padding on), priced by ``sim.latency.iteration`` once with
the estimator and once with the truth; the cell shows the mean and the worst signed relative
error over k = 0, 1, 3, 5, 8.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", default="A100-80G")
    parser.add_argument("--target", default="vicuna-7b")
    parser.add_argument("--tp", type=int, default=1, help="tensor-parallel degree of the target")
    parser.add_argument("--profile", help="a calibrated latency profile as the truth")
    args = parser.parse_args(argv)
    if args.profile:
        from sim.latency.profile import load_profile
        warnings.simplefilter("ignore", RuntimeWarning)  # the grid leaves a CPU profile's domain
        truth = load_profile(args.profile)
        label = args.profile
    else:
        from sim.latency.presets import roofline_for
        truth = roofline_for(args.target, gpu=args.gpu, tp=args.tp)
        label = f"roofline {args.target} on {args.gpu}" + (f" TP{args.tp}" if args.tp > 1 else "")
    padding = GraphPadding()
    estimator = TableEstimator.from_model(truth, padding)
    print(f"Estimator (37 sizes x 5 buckets) vs truth ({label}): mean / worst relative error "
          f"over k = {', '.join(map(str, KS))}\n")
    for engine in ENGINES:
        print("\n".join(error_table(truth, estimator, padding, engine)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
