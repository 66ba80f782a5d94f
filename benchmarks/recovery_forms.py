"""Policies that recover, by measurement over seeds: SmartSpec's and AdaSpec's estimates
with each recovery rule (``recover=none|decay|reset|probe``, decay's half-life), at batch 1
and on the AdaSpec traces, printed as the README's Markdown table ("Policies that recover").

    PYTHONPATH=. python benchmarks/recovery_forms.py [--jobs 2] [--seeds 5]

Workloads: batch 1 (every Spec-Bench question once, 60 s apart, lengths drawn per seed);
the first 1,000 requests of AdaSpec's conv trace at x1 and x4 and of its mooncake trace at
x1 and x8. Defaults otherwise (vicuna-7b + vicuna-68m on the A100-80G preset, single-pass
engine, SLOs 2 s / 40 ms, Spec-Bench acceptance). Cells: mean TPOT ms over seeds
0..N-1 (lowest..highest) and mean tokens per decode step, or SLO attainment % where the
column says so. A policy whose estimate locks up decodes plainly: about 1.0 token per step.
"""

from __future__ import annotations

import sys
from pathlib import Path

from seeded_runs import seeds_label, arguments, checked, BATCH1, Job, mean_span, run_all

ADASPEC = Path(__file__).resolve().parents[1] / "traces/adaspec"
POLICIES = (  # (spec, what it is)
    ("smartspec:8,recover=none", "cumulative rate, no recovery"),
    ("smartspec:8", "decay, half-life 64: the default"),
    ("smartspec:8,recover_after=16", "decay, half-life 16"),
    ("smartspec:8,recover_after=256", "decay, half-life 256"),
    ("smartspec:8,recover=reset", "the artifact's reset"),
    ("smartspec:8,recover=probe", "probe"),
    ("smartspec:8,artifact", "SmartSpec's release"),
    ("smartspec:8,rate=ema,recover=none", "EMA rate, no recovery"),
    ("smartspec:8,rate=ema", "EMA rate, decay"),
    ("smartspec:8,rate=ema,recover=probe", "EMA rate, probe"),
    ("smartspec:8,rate=ema,recover=reset", "EMA rate, reset"),
    ("adaspec:8,recover=none", "cumulative cbar, no recovery"),
    ("adaspec:8,cbar=ema,recover=none", "EMA cbar, no recovery"),
    ("adaspec:8,cbar=ema", "EMA cbar, decay"),
    ("adaspec:8", "cumulative cbar, decay: the default"),
    ("static:3", "the best static k at batch 1"),
)
# (column, trace, limit, rate, metric: "tpot" or "slo")
WORKLOADS = (
    ("batch 1: TPOT ms (tokens/step)", BATCH1, 480, 1.0, "tpot"),
    ("conv x1: TPOT ms (tokens/step)", str(ADASPEC / "conv.csv"), 1000, 1.0, "tpot"),
    ("conv x4: SLO %", str(ADASPEC / "conv.csv"), 1000, 4.0, "slo"),
    ("mooncake x1: TPOT ms (tokens/step)", str(ADASPEC / "mooncake.csv"), 1000, 1.0, "tpot"),
    ("mooncake x8: SLO %", str(ADASPEC / "mooncake.csv"), 1000, 8.0, "slo"),
)


def cell(outcomes: list, metric: str) -> str:
    """One workload's cell over the seeds' outcomes."""
    if metric == "slo":
        return mean_span([o.slo_attainment * 100 for o in outcomes])
    steps = sum(o.tokens_per_step for o in outcomes) / len(outcomes)
    return f"{mean_span([o.tpot_mean_s * 1e3 for o in outcomes], digits=2)} ({steps:.2f})"


def main(argv: list[str] | None = None) -> int:
    args = checked(arguments(__doc__, seeds=5), argv)
    jobs = [Job(trace, spec, "single-pass", limit, rate, seed) for spec, _ in POLICIES
            for _, trace, limit, rate, _ in WORKLOADS for seed in range(args.seeds)]
    outcomes = run_all(jobs, args.jobs)
    print(f"TPOT or SLO attainment, {seeds_label(args.seeds)}; single-pass engine:\n")
    print("| policy | " + " | ".join(w[0] for w in WORKLOADS) + " |")
    print("|---|" + "---|" * len(WORKLOADS))
    for spec, what in POLICIES:
        cells = [cell([outcomes[Job(trace, spec, "single-pass", limit, rate, seed)]
                       for seed in range(args.seeds)], metric)
                 for _, trace, limit, rate, metric in WORKLOADS]
        print(f"| `{spec}` ({what}) | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
