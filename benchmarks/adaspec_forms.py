"""AdaSpec's default form, by measurement over seeds: the paper's SLO-constrained forms, the
released artifact's form and mixes of their parts, beside SmartSpec, static:3 and the oracle,
on the Azure slice and the AdaSpec traces under both engines, printed as the README's
Markdown tables ("AdaSpec's default, by measurement").

    PYTHONPATH=. python benchmarks/adaspec_forms.py [--jobs 2] [--seeds 5]

Workloads: the first 5,000 requests of the Azure conversation trace (602 exceed the 2k
context and count as misses) and the first 1,000 of AdaSpec's conv, code and mooncake traces
at the rates where the forms differ. Defaults otherwise (vicuna-7b + vicuna-68m on the
A100-80G preset, SLOs 2 s / 40 ms, Spec-Bench acceptance). Each cell is the mean over seeds
0..N-1 (lowest..highest); the second table compares the default with each other AdaSpec
form seed by seed (same workload and seed): the default's mean margin in points and the
number of (cell, seed) pairs where it is ahead, tied or behind.
"""

from __future__ import annotations

import sys
from pathlib import Path

from seeded_runs import seeds_label, arguments, checked, Job, mean_span, run_all

ROOT = Path(__file__).resolve().parents[1]
AZURE = str(ROOT / "traces/azure2023/AzureLLMInferenceTrace_conv.csv")
ADASPEC = ROOT / "traces/adaspec"
DEFAULT = "adaspec:8"
FORMS = (  # (spec, what it is)
    ("adaspec:8,slo=strict,lost=plain,cbar=ema", "the paper's rule, literal"),
    ("adaspec:8,slo=strict,cbar=ema", "the paper's SLO check, goodput when lost"),
    ("adaspec:8,slo=tokens,cbar=ema", "per-request token SLO form"),
    ("adaspec:8,cbar=ema", "slo=off, EMA cbar"),
    ("adaspec:8,trim=request", "slo=off, the release's request trimming"),
    (DEFAULT, "the default: slo=off, trim=token, cbar=cumulative, recover=decay"),
    ("adaspec:8,artifact", "the release: trim=request, no recovery"),
    ("smartspec:8", "SmartSpec"),
    ("smartspec:8,artifact", "SmartSpec's release"),
    ("static:3", "best static k"),
    ("oracle:8", "oracle"),
)
# (column name, trace, limit, rate, engine)
WORKLOADS = (
    ("Azure", AZURE, 5000, 1.0, "single-pass"),
    ("conv x4", str(ADASPEC / "conv.csv"), 1000, 4.0, "single-pass"),
    ("code x1", str(ADASPEC / "code.csv"), 1000, 1.0, "single-pass"),
    ("code x4", str(ADASPEC / "code.csv"), 1000, 4.0, "single-pass"),
    ("code x8", str(ADASPEC / "code.csv"), 1000, 8.0, "single-pass"),
    ("mooncake x8", str(ADASPEC / "mooncake.csv"), 1000, 8.0, "single-pass"),
    ("vllm-0.6: code x4", str(ADASPEC / "code.csv"), 1000, 4.0, "vllm-0.6"),
    ("code x8", str(ADASPEC / "code.csv"), 1000, 8.0, "vllm-0.6"),
    ("mooncake x8", str(ADASPEC / "mooncake.csv"), 1000, 8.0, "vllm-0.6"),
)


def paired(default: list[float], other: list[float]) -> tuple[float, int, int, int]:
    """(mean of default - other, pairs where the default is ahead, tied, behind), at the
    attainment's own resolution (a tie is an equal value)."""
    diffs = [d - o for d, o in zip(default, other, strict=True)]
    return (sum(diffs) / len(diffs), sum(x > 0 for x in diffs), sum(x == 0 for x in diffs),
            sum(x < 0 for x in diffs))


def main(argv: list[str] | None = None) -> int:
    args = checked(arguments(__doc__, seeds=5), argv)
    jobs = [Job(trace, spec, engine, limit, rate, seed) for spec, _ in FORMS
            for _, trace, limit, rate, engine in WORKLOADS for seed in range(args.seeds)]
    outcomes = run_all(jobs, args.jobs)

    def attainment(spec: str, workload: tuple) -> list[float]:
        _, trace, limit, rate, engine = workload
        return [outcomes[Job(trace, spec, engine, limit, rate, seed)].slo_attainment * 100
                for seed in range(args.seeds)]

    print(f"SLO attainment %, {seeds_label(args.seeds)}:\n")
    print("| policy | " + " | ".join(w[0] for w in WORKLOADS) + " |")
    print("|---|" + "---|" * len(WORKLOADS))
    for spec, what in FORMS:
        name = f"**`{spec}`**" if spec == DEFAULT else f"`{spec}`"
        print(f"| {name} ({what}) | "
              + " | ".join(mean_span(attainment(spec, w)) for w in WORKLOADS) + " |")
    print(f"\n`{DEFAULT}` against each other AdaSpec form, seed by seed: mean margin in points "
          f"per workload, and over all {len(WORKLOADS)} x {args.seeds} (workload, seed) pairs "
          "how often the default is ahead / tied / behind:\n")
    print("| form | " + " | ".join(w[0] for w in WORKLOADS) + " | ahead / tied / behind |")
    print("|---|" + "---|" * (len(WORKLOADS) + 1))
    for spec, _ in FORMS:
        if not spec.startswith("adaspec") or spec == DEFAULT:
            continue
        cells, counts = [], [0, 0, 0]
        for w in WORKLOADS:
            mean, *split = paired(attainment(DEFAULT, w), attainment(spec, w))
            cells.append(f"{mean:+.1f}")
            counts = [c + s for c, s in zip(counts, split)]
        print(f"| `{spec}` | " + " | ".join(cells) + " | " + " / ".join(map(str, counts))
              + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
