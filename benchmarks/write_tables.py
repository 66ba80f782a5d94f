"""Benchmark: how long writing a run's tables takes (``sim.output.write_policy_tables``: the
requests and iteration CSVs, the iteration log read back from its spool), inside a real
``adaspec-sim`` command on the full 1-hour Azure conversation trace.

Each process runs the command once; its first call of ``write_policy_tables`` is repeated
``--writes`` times into fresh folders (timed: wall and CPU seconds) before the real one.
With ``--baseline-rev REV`` that git revision is exported (``git archive``) and run with
``PYTHONPATH`` pointing there, alternating process by process with this tree (so the
machine's drift hits both alike); the fastest write of each tree and their ratio, and the
median of the per-process ratios of fastest writes, are printed.

    python benchmarks/write_tables.py [--policy nospec --policy adaspec:8] [--limit N]
                                      [--processes 3] [--writes 5] [--baseline-rev REV]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from replay_azure_conv import TRACE, _env, export_revision

ROOT = Path(__file__).resolve().parents[1]


def _child(policy: str, limit: int | None, writes: int, report: str) -> None:
    """In a fresh process of the tree on ``PYTHONPATH``: run the command, timing the writes."""
    import sim.output
    from sim.cli import main

    original = sim.output.write_policy_tables
    times: list[tuple[float, float]] = []

    def timed(out_dir, result, header):
        if not times:
            for _ in range(writes):
                folder = Path(tempfile.mkdtemp(dir=out_dir))
                wall, cpu = time.perf_counter(), time.process_time()
                original(folder, result, header)
                times.append((time.perf_counter() - wall, time.process_time() - cpu))
                shutil.rmtree(folder)
        return original(out_dir, result, header)

    sim.output.write_policy_tables = timed
    with tempfile.TemporaryDirectory() as out:
        argv = ["--trace", str(TRACE), "--policy", policy, "--out", out + "/run", "--quiet"]
        main(argv + (["--limit", str(limit)] if limit else []))
    Path(report).write_text(json.dumps(times))


def _process(tree: Path, policy: str, limit: int | None, writes: int) -> list:
    """One fresh process of ``tree``: its writes' (wall s, CPU s)."""
    with tempfile.TemporaryDirectory() as scratch:
        report = os.path.join(scratch, "times.json")
        cmd = [sys.executable, __file__, "--child", report, "--policy", policy,
               "--writes", str(writes)] + (["--limit", str(limit)] if limit else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tree,
                              env=_env(tree, None))
        if proc.returncode != 0:
            raise SystemExit(f"failed in {tree}: {proc.stderr}")
        return json.loads(Path(report).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", action="append")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--processes", type=int, default=3, help="fresh processes per tree")
    parser.add_argument("--writes", type=int, default=5, help="timed writes per process")
    parser.add_argument("--baseline-rev", metavar="REV")
    parser.add_argument("--child", metavar="REPORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    policies = args.policy or ["nospec", "adaspec:8"]
    if args.child:
        _child(policies[0], args.limit, args.writes, args.child)
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="adaspec-write-"))
    try:
        trees = [("this", ROOT)]
        if args.baseline_rev:
            trees.append((args.baseline_rev,
                          export_revision(args.baseline_rev, scratch / "baseline")))
        for _, tree in trees:
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "sim")],
                           check=True)
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        for policy in policies:
            best: dict[str, list[float]] = {name: [] for name, _ in trees}
            for _ in range(args.processes):
                for name, tree in trees:  # alternate the trees process by process
                    runs = _process(tree, policy, args.limit, args.writes)
                    best[name].append(min(wall for wall, _ in runs))
            for name, _ in trees:
                print(f"{policy:<12} {name:<9} fastest write {min(best[name]) * 1e3:7.1f} ms "
                      f"(per process: {', '.join(f'{t * 1e3:.0f}' for t in best[name])})")
            if args.baseline_rev:
                this, base = best["this"], best[args.baseline_rev]
                pairs = statistics.median(a / b for a, b in zip(this, base))
                print(f"{policy:<12} this / {args.baseline_rev}: fastest {min(this) / min(base):.2f}x,"
                      f" median of per-process ratios {pairs:.2f}x")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
