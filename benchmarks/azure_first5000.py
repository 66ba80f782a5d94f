"""Every policy's SLO attainment on the first 5,000 requests of the Azure conversation trace,
under both serving engines, printed as the README's Markdown table.

    PYTHONPATH=. python benchmarks/azure_first5000.py [--limit 5000] [--jobs 4]

vicuna-7b + vicuna-68m on the A100-80G preset, SLOs TTFT 2 s / TPOT 40 ms, Spec-Bench
acceptance, seed 0 (the adaspec-sim defaults): the same numbers as
``adaspec-sim --trace traces/azure2023/AzureLLMInferenceTrace_conv.csv --limit 5000
--policy P --engine E``. Policies: every registered spec plus AdaSpec with the paper's
per-iteration SLO check (``adaspec:8,slo=strict``) and the released artifacts' forms
(``adaspec:8,artifact``, ``smartspec:8,artifact``). One process per (policy, engine) with
``--jobs``.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

TRACE = Path(__file__).resolve().parents[1] / "traces/azure2023/AzureLLMInferenceTrace_conv.csv"
EXTRA_POLICIES = ("adaspec:8,slo=strict", "adaspec:8,artifact", "smartspec:8,artifact")


def _attainment(job: tuple[str, str, int]) -> tuple[str, str, float, float]:
    """(policy, engine, SLO attainment, mean TPOT in s) of one run."""
    from sim.run import SimConfig, simulate
    from sim.workload.load import load_trace
    from sim.workload.transforms import limit

    policy, engine, count = job
    workload = limit(load_trace(str(TRACE)), count)
    summary = simulate(workload, policy, SimConfig(engine=engine), seed=0).summary
    return policy, engine, float(summary["slo_attainment"]), float(summary["tpot_s"]["mean"])


def main(argv: list[str] | None = None) -> int:
    from sim.latency.iteration import ENGINES
    from sim.policies.registry import all_policy_specs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=5000, help="first N requests (5000)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes (1)")
    args = parser.parse_args(argv)
    policies = [*all_policy_specs(), *EXTRA_POLICIES]
    jobs = [(p, e, args.limit) for p in policies for e in ENGINES]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(_attainment, jobs))
    else:
        results = [_attainment(job) for job in jobs]
    table = {(p, e): (a, t) for p, e, a, t in results}
    print(f"First {args.limit} requests of {TRACE.name}: SLO attainment % (mean TPOT ms)\n")
    print("| policy | " + " | ".join(ENGINES) + " |")
    print("|---|" + "---|" * len(ENGINES))
    for policy in policies:
        cells = [f"{table[policy, e][0] * 100:.1f} ({table[policy, e][1] * 1e3:.1f})"
                 for e in ENGINES]
        print(f"| {policy} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
