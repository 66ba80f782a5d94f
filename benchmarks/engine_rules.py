"""The production engines' adaptive rules (issue 14) against AdaSpec and SmartSpec: SLO
attainment and mean TPOT on the first 5,000 requests of the Azure conversation trace under
both serving engines, and on AdaSpec's code trace (first 1,000 requests) at two rates,
printed as the Markdown tables of docs/policies.md.

    PYTHONPATH=. python benchmarks/engine_rules.py [--jobs 2]

Same defaults as benchmarks/azure_first5000.py (vicuna-7b + vicuna-68m on the A100-80G
preset, SLOs TTFT 2 s / TPOT 40 ms, Spec-Bench acceptance, seed 0), i.e. the numbers of
``adaspec-sim --trace T --limit N [--rate-scale R] --policy P --engine E``.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AZURE = ROOT / "traces/azure2023/AzureLLMInferenceTrace_conv.csv"
ADASPEC = ROOT / "traces/adaspec/code.csv"
POLICIES = (
    "vllm-v1", "vllm-v1:3,zero=free", "vllm-v1:3,tax=0.19",
    "trtllm", "trtllm:4,zero=free", "trtllm:4,zero=sync", "trtllm:4,window=8,threshold=0.5",
    "sglang", "sglang:3,zero=free",
    "adaspec:8", "smartspec:8", "static:3", "nospec",
)
RATES = (1.0, 4.0)


def _run(job: tuple[str, str, str, int, float]) -> tuple[tuple, float, float, float]:
    """(job, SLO attainment, mean TPOT s, emitted tokens per decode step)."""
    from sim.run import SimConfig, simulate
    from sim.workload.spec import WorkloadSpec

    trace, policy, engine, count, rate = job
    workload = WorkloadSpec(trace, limit=count, rate_scale=rate).build(seed=0)
    summary = simulate(workload, policy, SimConfig(engine=engine), seed=0).summary
    return (job, float(summary["slo_attainment"]), float(summary["tpot_s"]["mean"]),
            float(summary["mean_tokens_per_step"]))


def main(argv: list[str] | None = None) -> int:
    from sim.latency.iteration import ENGINES
    from sim.policies.registry import make_policy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes (1)")
    parser.add_argument("--azure-limit", type=int, default=5000)
    parser.add_argument("--adaspec-limit", type=int, default=1000)
    args = parser.parse_args(argv)
    names = [make_policy(p).name for p in POLICIES]
    jobs = [(str(AZURE), p, e, args.azure_limit, 1.0) for p in names for e in ENGINES]
    jobs += [(str(ADASPEC), p, e, args.adaspec_limit, r) for p in names for e in ENGINES
             for r in RATES]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(_run, jobs))
    else:
        results = [_run(job) for job in jobs]
    table = {job: (a, t, s) for job, a, t, s in results}

    def cell(job):
        a, t, s = table[job]
        return f"{a * 100:.1f} ({t * 1e3:.1f}; {s:.2f})"

    print(f"SLO attainment % (mean TPOT ms; tokens per decode step). Azure: first "
          f"{args.azure_limit} requests of {AZURE.name}; AdaSpec code: first "
          f"{args.adaspec_limit} of traces/adaspec/{ADASPEC.name} at rate x1 and x4.\n")
    heads = [f"Azure {e}" for e in ENGINES] + [f"code x{r:g} {e}" for r in RATES for e in ENGINES]
    print("| policy | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(heads))
    for p in names:
        cells = [cell((str(AZURE), p, e, args.azure_limit, 1.0)) for e in ENGINES]
        cells += [cell((str(ADASPEC), p, e, args.adaspec_limit, r)) for r in RATES
                  for e in ENGINES]
        print(f"| `{p}` | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
