"""Every policy's SLO attainment on the first 5,000 requests of the Azure conversation trace,
under both serving engines, printed as the README's Markdown table.

    PYTHONPATH=. python benchmarks/azure_first5000.py [--limit 5000] [--jobs 4] [--seeds 5]

vicuna-7b + vicuna-68m on the A100-80G preset, SLOs TTFT 2 s / TPOT 40 ms, Spec-Bench
acceptance, seed 0 (the adaspec-sim defaults): the same numbers as
``adaspec-sim --trace traces/azure2023/AzureLLMInferenceTrace_conv.csv --limit 5000
--policy P --engine E``. With ``--seeds N`` every run is repeated with seeds 0..N-1 (the
seed draws every acceptance; the trace's lengths are its own) and each cell shows the mean
attainment, its lowest..highest over the seeds and the mean TPOT. Policies: every
registered spec plus AdaSpec with the paper's per-iteration SLO check
(``adaspec:8,slo=strict``) and the released artifacts' forms (``adaspec:8,artifact``,
``smartspec:8,artifact``). One process per (policy, engine, seed) with ``--jobs``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from seeded_runs import seeds_label, arguments, checked, Job, mean_span, run_all

TRACE = Path(__file__).resolve().parents[1] / "traces/azure2023/AzureLLMInferenceTrace_conv.csv"
EXTRA_POLICIES = ("adaspec:8,slo=strict", "adaspec:8,artifact", "smartspec:8,artifact")


def main(argv: list[str] | None = None) -> int:
    from sim.latency.iteration import ENGINES
    from sim.policies.registry import all_policy_specs

    parser = arguments(__doc__, seeds=1)
    parser.add_argument("--limit", type=int, default=5000, help="first N requests (5000)")
    args = checked(parser, argv)
    policies = [*all_policy_specs(), *EXTRA_POLICIES]
    jobs = [Job(str(TRACE), p, e, args.limit, 1.0, seed) for p in policies for e in ENGINES
            for seed in range(args.seeds)]
    table: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for job, out in run_all(jobs, args.jobs).items():
        table.setdefault((job.policy, job.engine), []).append(
            (out.slo_attainment, out.tpot_mean_s))
    what = seeds_label(args.seeds)
    print(f"First {args.limit} requests of {TRACE.name}: SLO attainment % (mean TPOT ms), "
          f"{what}\n")
    print("| policy | " + " | ".join(ENGINES) + " |")
    print("|---|" + "---|" * len(ENGINES))
    for policy in policies:
        print(f"| {policy} | " + " | ".join(_cell(table[policy, e]) for e in ENGINES) + " |")
    return 0


def _cell(runs: list[tuple[float, float]]) -> str:
    """'attainment % (TPOT ms)' of one run, or 'mean % (low..high) (mean TPOT ms)'."""
    tpot_ms = sum(t for _, t in runs) / len(runs) * 1e3
    return f"{mean_span([a * 100 for a, _ in runs])} ({tpot_ms:.1f})"


if __name__ == "__main__":
    sys.exit(main())
