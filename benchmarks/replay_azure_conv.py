"""Benchmark: replay the full 1-hour Azure conversation trace (19,366 requests) through
``adaspec-sim`` with all outputs written, one policy per fresh process.

Prints, per policy: wall time and CPU time of the whole command (load + simulate + write),
peak resident memory (of the largest child so far), and simulated seconds per wall second; plus the
command's start-up time (``adaspec-sim --help``). Targets (issues 2 and 3): under 20 s per
policy, start-up under 2 s; project goal 10 s with ``adaspec:8``.

With ``--repeat N`` each policy runs N times and the fastest run is shown (the usual estimate
of a command's own cost on a shared machine, whose speed drifts by 20 % or more over minutes);
the slowest wall time is printed alongside.

    python benchmarks/replay_azure_conv.py [--policy nospec --policy adaspec:8] [--limit N]
                                           [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT / "traces" / "azure2023" / "AzureLLMInferenceTrace_conv.csv"


def _child_run(argv: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of the child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", action="append")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--repeat", type=int, default=1, help="runs per policy; the fastest is shown")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    policies = args.policy or ["nospec", "adaspec:8"]
    sim = [sys.executable, "-m", "sim.cli"]
    startup, _, _ = _child_run(sim + ["--help"])
    print(f"load average before: {os.getloadavg()[0]:.2f} (CPU s is robust to other load, wall s is not)")
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"start-up (adaspec-sim --help): {startup:.2f} s")
    print(f"{'policy':<14} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9} {'sim-s/wall-s':>13} "
          f"{'requests':>9} {'slowest wall s':>15}")
    for policy in policies:
        runs = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as out:
                cmd = sim + ["--trace", str(TRACE), "--policy", policy, "--out", out, "--quiet"]
                if args.limit:
                    cmd += ["--limit", str(args.limit)]
                wall, cpu, peak = _child_run(cmd)
                summary = json.loads((Path(out) / "summary.json").read_text())
                runs.append((wall, cpu, peak, next(iter(summary["policies"].values()))))
        wall, cpu, peak, block = min(runs, key=lambda run: run[0])
        slowest = max(run[0] for run in runs)
        print(f"{policy:<14} {wall:8.2f} {cpu:8.2f} {peak:9.0f} {block['makespan_s'] / wall:13.0f} "
              f"{block['requests']:9d} {slowest:15.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
