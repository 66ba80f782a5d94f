"""Benchmark: the compiled loop of two source trees, run by turns in two warm processes, so
that each pair of runs sees the same machine (on a shared VM its speed drifts by tens of
per cent within a minute; two commands run one after the other do not resolve 5 %).

Each tree gets a worker process (``PYTHONPATH`` = the tree, run from the tree's root) that
loads the trace once (``benchmarks/loop_only.py``'s ``cli_run``), replays each policy once
untimed, then replays on request; the driver asks the two workers in turn, ``--pairs``
times per policy (alternating which goes first), and prints per policy each tree's best and
median loop seconds (``run_chunk``'s thread CPU time, as ``loop_only.py``) and the median
and quartiles of the pairs' ratios (second tree / first tree).

    python benchmarks/loop_pairs.py BASE_TREE NEW_TREE [--policy adaspec:8 --policy nospec]
                                    [--pairs 15] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

_WORKER = """
import sys
sys.path.insert(0, 'benchmarks')
import loop_only
run = loop_only.cli_run({limit})
loop_only._install_timer()
print('ready', flush=True)
for line in sys.stdin:
    seconds, _whole, path = loop_only.loop_seconds(run, line.strip())
    print(seconds, path, flush=True)
"""


class Worker:
    """One tree's warm process."""

    def __init__(self, tree: Path, limit: int | None) -> None:
        env = dict(os.environ, PYTHONPATH=str(tree))
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER.format(limit=limit)], cwd=tree, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the worker of {tree} did not start")

    def loop_seconds(self, policy: str) -> float:
        self.process.stdin.write(policy + "\n")
        self.process.stdin.flush()
        seconds, path = self.process.stdout.readline().split()
        if path != "compiled":
            raise RuntimeError(f"{policy} ran on the {path} path")
        return float(seconds)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()
        self.process.stdout.close()


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile) of ``values``."""
    if len(values) < 2:
        return values[0], values[0], values[0]
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    parser.add_argument("--policy", action="append")
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args(argv)
    policies = args.policy or ["adaspec:8", "nospec"]
    workers = [Worker(args.first.resolve(), args.limit), Worker(args.second.resolve(), args.limit)]
    try:
        for worker in workers:  # warm-up: compiled code, tables
            for policy in policies:
                worker.loop_seconds(policy)
        times = {p: ([], []) for p in policies}
        for n in range(args.pairs):
            for policy in policies:
                order = (0, 1) if n % 2 == 0 else (1, 0)
                for w in order:
                    times[policy][w].append(workers[w].loop_seconds(policy))
    finally:
        for worker in workers:
            worker.close()
    print(f"loop (run_chunk) thread CPU seconds, {args.pairs} pairs; ratio = "
          f"{args.second} / {args.first}")
    for policy in policies:
        first, second = times[policy]
        ratios = [b / a for a, b in zip(first, second)]
        low, mid, high = quartiles(ratios)
        print(f"  {policy:12s} first best {min(first):.3f} median {statistics.median(first):.3f}"
              f"  second best {min(second):.3f} median {statistics.median(second):.3f}"
              f"  ratio median {mid:.3f} (quartiles {low:.3f}-{high:.3f}),"
              f" best/best {min(second) / min(first):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
