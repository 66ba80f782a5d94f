"""Calls per second of the latency models' hot-path queries (the simulator's perf budget).

Run: ``PYTHONPATH=. python benchmarks/latency_calls.py [--calls N]``.  Arguments vary per call
(batch, tokens, context drawn up front) so nothing is cached by accident.
"""

from __future__ import annotations

import argparse
import random
import time

from sim.core.padding import GraphPadding
from sim.latency.estimator import TableEstimator
from sim.latency.presets import roofline_for


def _rate(fn, args: list[tuple[int, ...]]) -> float:
    start = time.perf_counter()
    for a in args:
        fn(*a)
    return len(args) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500_000)
    opts = parser.parse_args()
    rng = random.Random(0)
    pad = GraphPadding()
    verify_args, draft_args = [], []
    for _ in range(opts.calls):
        batch = rng.randint(1, 256)
        tokens = pad.pad(batch * rng.randint(1, 9))
        ctx = batch * rng.randint(1, 2048)
        verify_args.append((batch, tokens, ctx))
        draft_args.append((pad.pad(batch), ctx))
    truth = roofline_for("vicuna-7b", gpu="A100-80G")
    est = TableEstimator.from_model(truth, pad)
    rows = [
        ("roofline target_verify_s", _rate(truth.target_verify_s, verify_args)),
        ("roofline draft_step_s", _rate(truth.draft_step_s, draft_args)),
        ("estimator target_verify_s", _rate(est.target_verify_s, verify_args)),
        ("estimator draft_step_s", _rate(est.draft_step_s, draft_args)),
    ]
    big = [(b, t * 3, c) for b, t, c in verify_args[: opts.calls // 10]]
    rows.append(("estimator target_verify_s (eager, > max size)",
                 _rate(est.target_verify_s, big)))
    prompts = [[rng.randint(16, 2048) for _ in range(rng.randint(1, 8))]
               for _ in range(opts.calls // 50)]
    rows.append(("roofline target_prefill_s (1-8 prompts)",
                 _rate(truth.target_prefill_s, [(p,) for p in prompts])))
    for name, rate in rows:
        print(f"{name:48s} {rate / 1e6:6.2f} M calls/s")


if __name__ == "__main__":
    main()
