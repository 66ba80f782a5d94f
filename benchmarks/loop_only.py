"""Benchmark: the compiled loop alone (``run_chunk``, the time inside its calls), on the full
1-hour Azure conversation trace, in one warm process.

Each policy replays the trace once untimed (loads the compiled code, the acceptance tables),
then ``--repeat`` times; every call of the compiled loop is timed, in CPU seconds of its
thread (``CompiledRun``'s ``run_chunk``, about 2,000 calls a run: hand-overs and prefill
table entries), so the figure excludes Python's side of the hand-overs, the workload, the
estimator's tables and the summary. Policies alternate run by run (the machine drifts); per
policy the best and median run are printed, the sum over calls of each call's best (the
steadiest figure on a busy machine) and the ratio of the best to the first policy's.

    python benchmarks/loop_only.py [--policy adaspec:8 --policy nospec] [--repeat 5]
                                   [--limit N]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT / "traces" / "azure2023" / "AzureLLMInferenceTrace_conv.csv"


class _TimedLoop:
    """``run_chunk`` with the CPU seconds of the calling thread inside it summed into
    ``seconds`` (``time.thread_time``: on a shared machine, the time the loop waits for a
    core is not counted; the loop runs on the calling thread)."""

    seconds = 0.0
    calls: list[float] = []  # each call's seconds, in order

    def __init__(self, fn) -> None:
        self.fn = fn

    def __call__(self, *args):
        began = time.thread_time()
        try:
            return self.fn(*args)
        finally:
            spent = time.thread_time() - began
            _TimedLoop.seconds += spent
            _TimedLoop.calls.append(spent)


def _install_timer() -> None:
    from sim.compiled.run import CompiledRun

    original = CompiledRun.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._run_chunk = _TimedLoop(self._run_chunk)

    CompiledRun.__init__ = __init__


def cli_run(limit: int | None = None) -> tuple:
    """(workload, config, seed) as ``adaspec-sim --trace TRACE`` builds them, defaults
    otherwise (``--limit``: the first N requests)."""
    from sim.cli import build_parser, config_from_args
    from sim.cli_common import workload_from_args

    argv = ["--trace", str(TRACE), "--quiet"] + (["--limit", str(limit)] if limit else [])
    args = build_parser().parse_args(argv)
    return workload_from_args(args, args.seed), config_from_args(args), args.seed


def loop_seconds(run: tuple, policy) -> tuple[float, float, str]:
    """(loop seconds, whole ``simulate`` seconds, iteration path) of one replay of ``run``
    (``cli_run``) under ``policy`` (a name or a ``Policy``)."""
    from sim.run import simulate

    workload, config, seed = run
    _TimedLoop.seconds = 0.0
    _TimedLoop.calls = []
    began = time.perf_counter()
    result = simulate(workload, policy, config, seed=seed)
    whole = time.perf_counter() - began
    loop_seconds.last = result
    return _TimedLoop.seconds, whole, result.summary["iteration_path"]


def best_per_call(runs: list[list[float]]) -> float:
    """The sum over the loop's calls of each call's fastest time across the runs (the runs
    make the same calls, in the same order): a busy machine slows some calls of each run,
    rarely the same ones, so this is steadier than the best run."""
    if len({len(calls) for calls in runs}) != 1:
        return math.nan
    return sum(min(times) for times in zip(*runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", action="append")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args(argv)
    policies = args.policy or ["adaspec:8", "smartspec:8", "nospec"]
    workload = cli_run(args.limit)
    _install_timer()
    for policy in policies:  # warm-up: compiled code, tables
        loop_seconds(workload, policy)
    loops: dict[str, list[float]] = {p: [] for p in policies}
    per_call: dict[str, list[list[float]]] = {p: [] for p in policies}
    wholes: dict[str, list[float]] = {p: [] for p in policies}
    paths = {}
    for _ in range(args.repeat):
        for policy in policies:
            loop, whole, paths[policy] = loop_seconds(workload, policy)
            loops[policy].append(loop)
            per_call[policy].append(list(_TimedLoop.calls))
            wholes[policy].append(whole)
    first = min(loops[policies[0]])
    print(f"loop (run_chunk) thread CPU seconds, best / median of {args.repeat}; the sum of "
          f"each call's best; simulate() best")
    for policy in policies:
        best = min(loops[policy])
        print(f"  {policy:14s} loop {best:.3f} / {statistics.median(loops[policy]):.3f}"
              f"  calls' best {best_per_call(per_call[policy]):.3f}"
              f"  ({best / first:.2f}x {policies[0]})  simulate {min(wholes[policy]):.3f}"
              f"  ({paths[policy]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
