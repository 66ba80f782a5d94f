"""The production engines' adaptive rules (issue 14) against AdaSpec and SmartSpec: SLO
attainment and mean TPOT on the first 5,000 requests of the Azure conversation trace under
both serving engines, and on AdaSpec's code trace (first 1,000 requests) at two rates,
printed as the Markdown tables of docs/policies.md.

    PYTHONPATH=. python benchmarks/engine_rules.py [--jobs 2] [--seeds 5]

Same defaults as benchmarks/azure_first5000.py (vicuna-7b + vicuna-68m on the A100-80G
preset, SLOs TTFT 2 s / TPOT 40 ms, Spec-Bench acceptance, seed 0), i.e. the numbers of
``adaspec-sim --trace T --limit N [--rate-scale R] --policy P --engine E``. With
``--seeds N`` every run is repeated with seeds 0..N-1 (the seed draws every acceptance and
the AdaSpec code trace's lengths and categories) and each cell shows the mean attainment,
its lowest..highest over the seeds, and the mean TPOT and tokens per step.
"""

from __future__ import annotations

import sys
from pathlib import Path

from seeded_runs import seeds_label, arguments, checked, Job, mean_span, run_all

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


def main(argv: list[str] | None = None) -> int:
    from sim.latency.iteration import ENGINES
    from sim.policies.registry import make_policy

    parser = arguments(__doc__, seeds=1)
    parser.add_argument("--azure-limit", type=int, default=5000)
    parser.add_argument("--adaspec-limit", type=int, default=1000)
    args = checked(parser, argv)
    names = [make_policy(p).name for p in POLICIES]
    seeds = range(args.seeds)
    jobs = [Job(str(AZURE), p, e, args.azure_limit, 1.0, s) for p in names for e in ENGINES
            for s in seeds]
    jobs += [Job(str(ADASPEC), p, e, args.adaspec_limit, r, s) for p in names for e in ENGINES
             for r in RATES for s in seeds]
    table: dict[tuple, list[tuple[float, float, float]]] = {}
    for job, out in run_all(jobs, args.jobs).items():
        table.setdefault(job[:5], []).append(tuple(out))

    def cell(key):
        runs = table[key]
        tpot_ms = sum(t for _, t, _ in runs) / len(runs) * 1e3
        steps = sum(s for _, _, s in runs) / len(runs)
        return f"{mean_span([a * 100 for a, _, _ in runs])} ({tpot_ms:.1f}; {steps:.2f})"

    print(f"SLO attainment % (mean TPOT ms; tokens per decode step), "
          f"{seeds_label(args.seeds)}. Azure: first "
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
