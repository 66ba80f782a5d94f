"""Wall time of the >= 100-point AdaSpec-traces sweep (sweeps/adaspec_traces.toml).

    PYTHONPATH=. python benchmarks/sweep_benchmark.py [--workers 2] [--sweep FILE] [--out DIR]

Runs the whole sweep from an empty output directory (a temporary one unless --out is given;
an existing --out resumes, which is not a benchmark) with ``adaspec-sweep``'s own code path
and prints the number of points, workers and the wall time. Target: under 10 minutes on 2
cores.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 600.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default=str(ROOT / "sweeps" / "adaspec_traces.toml"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", help="output directory (default: a temporary one)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from sim.sweep.cli import main as sweep_main
    from sim.sweep.spec import load_sweep

    points = len(load_sweep(args.sweep).points)
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        out = args.out or os.path.join(tmp, "out")
        log = io.StringIO()
        began = time.perf_counter()
        with contextlib.redirect_stdout(log):
            status = sweep_main([args.sweep, "--workers", str(args.workers), "--out", out,
                                 "--quiet"])
        wall_s = time.perf_counter() - began
    verdict = "within" if wall_s < TARGET_S else "OVER"
    print(f"sweep {Path(args.sweep).name}: {points} points, {args.workers} workers, "
          f"{os.cpu_count()} CPUs: wall {wall_s:.1f} s ({wall_s / 60:.2f} min; {verdict} the "
          f"{TARGET_S / 60:.0f}-minute target), exit status {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
