"""Seeded runs for the result scripts beside this file (``python benchmarks/X.py`` puts this
folder on ``sys.path``): one run's headline numbers, all runs of a list in parallel, and how
a value measured over several seeds is printed (its mean and lowest..highest)."""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from typing import Iterator, NamedTuple, Sequence


#: The ``trace`` of a batch-1 job: every Spec-Bench question once (480 requests), 60 s apart,
#: lengths drawn with the job's seed (``specbench_batch1.spec_bench_workload``).
BATCH1 = "spec-bench x1, 60 s apart"


class Job(NamedTuple):
    """One ``adaspec-sim`` run: the first ``limit`` requests of ``trace`` (or ``BATCH1``) at
    ``rate`` x its request rate, under ``policy`` and ``engine``, with ``seed``, speculating
    with ``method`` (``adaspec-sim --method``; its own Spec-Bench acceptance preset where it is
    not the draft model); the other settings are the defaults (vicuna-7b + vicuna-68m on the
    A100-80G preset, SLOs 2 s / 40 ms)."""

    trace: str
    policy: str
    engine: str
    limit: int
    rate: float
    seed: int
    method: str = "draft-model"


class Outcome(NamedTuple):
    slo_attainment: float
    tpot_mean_s: float
    tokens_per_step: float


def run(job: Job) -> Outcome:
    """The run's SLO attainment, mean TPOT and emitted tokens per decode step."""
    from sim.run import SimConfig, simulate
    from sim.workload.spec import WorkloadSpec

    if job.trace == BATCH1:
        from specbench_batch1 import spec_bench_workload
        workload = spec_bench_workload(1, 60.0, job.seed)
    else:
        workload = WorkloadSpec(job.trace, limit=job.limit,
                                rate_scale=job.rate).build(seed=job.seed)
    config = SimConfig(engine=job.engine, method=job.method)
    summary = simulate(workload, job.policy, config, seed=job.seed).summary
    return Outcome(float(summary["slo_attainment"]), float(summary["tpot_s"]["mean"]),
                   float(summary["mean_tokens_per_step"]))


def run_each(jobs: Sequence[Job], processes: int = 1) -> Iterator[tuple[Job, Outcome]]:
    """Each job with its outcome, in the jobs' order, as soon as it and those before it have
    finished (``processes`` > 1: in that many worker processes), for results written as
    they come."""
    if processes > 1:
        with ProcessPoolExecutor(processes) as pool:
            yield from zip(jobs, pool.map(run, jobs))
    else:
        for job in jobs:
            yield job, run(job)


def run_all(jobs: Sequence[Job], processes: int = 1) -> dict[Job, Outcome]:
    """Every job's outcome (``processes`` > 1: in that many worker processes)."""
    return dict(run_each(jobs, processes))


def arguments(doc: str, seeds: int) -> argparse.ArgumentParser:
    """A result script's parser: ``--jobs`` (worker processes, 1) and ``--seeds`` (seeds
    0..N-1 per run, default ``seeds``); ``checked`` validates what it parsed."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes (1)")
    parser.add_argument("--seeds", type=int, default=seeds,
                        help=f"seeds 0..N-1 per run ({seeds})")
    return parser


def checked(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, refusing ``--jobs`` or ``--seeds`` below 1."""
    args = parser.parse_args(argv)
    for name in ("jobs", "seeds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    return args


def seeds_label(seeds: int) -> str:
    """What a cell is: 'seed 0', or 'mean over seeds 0-N (lowest..highest)'."""
    return "seed 0" if seeds == 1 else f"mean over seeds 0-{seeds - 1} (lowest..highest)"


def span(values: Sequence[float], signed: bool = False, digits: int = 1) -> str:
    """'low..high' at ``digits`` decimals, or one number when they agree there."""
    form = f"{{:{'+' if signed else ''}.{digits}f}}"
    low, high = form.format(min(values)), form.format(max(values))
    return low if low == high else f"{low}..{high}"


def mean_span(values: Sequence[float], signed: bool = False, digits: int = 1) -> str:
    """'mean (low..high)' at ``digits`` decimals; just the mean where every seed gives the
    same value there (a single seed included)."""
    form = f"{{:{'+' if signed else ''}.{digits}f}}"
    mean = form.format(sum(values) / len(values))
    spread = span(values, signed, digits)
    return mean if ".." not in spread else f"{mean} ({spread})"
