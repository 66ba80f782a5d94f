"""Benchmark: peak memory of ``adaspec-sim`` on a long synthetic trace in the Azure 2024 format.

Writes (into a temporary folder; seed 0, so the same bytes every time) a trace of
``--requests`` requests (default 2,000,000) in the Azure 2024 format
(``TIMESTAMP,ContextTokens,GeneratedTokens``, timestamps like
``2024-05-10 00:00:00.009930+00:00``): Poisson arrivals at ``--rate`` requests/s (default 4,
about 5.8 days for 2 M requests), prompt and output lengths lognormal around 600 and 150
tokens, prompt + output within vicuna-7b's 2,048-token context. Then replays the first N
requests (``--sizes``, default the whole trace) under each ``--policy`` (default nospec and
adaspec:8) with every output written (``--out``: summary.json, requests.csv, iterations.csv),
one fresh process per run, and prints wall time, CPU time and peak resident memory of each.

With several sizes it also prints how peak memory grows: bytes per extra request and per extra
iteration between consecutive sizes (flat means memory no longer grows with the trace).

    python benchmarks/replay_memory.py                                  # 2 M, both policies
    python benchmarks/replay_memory.py --sizes 100000,200000,500000     # growth
    python benchmarks/replay_memory.py --requests 500000 --policy nospec --no-iteration-log
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
START = np.datetime64("2024-05-10T00:00:00", "us")
CONTEXT_TOKENS = 2048
ROWS_PER_WRITE = 100_000


def write_azure2024_trace(path: Path, requests: int, rate_per_s: float = 4.0,
                          seed: int = 0) -> Path:
    """A synthetic trace of ``requests`` rows in the Azure 2024 format (deterministic)."""
    rng = np.random.default_rng(seed)
    gaps_us = np.rint(rng.exponential(1e6 / rate_per_s, requests)).astype(np.int64)
    times = START + np.cumsum(gaps_us).astype("timedelta64[us]")
    prompt = np.clip(np.rint(rng.lognormal(np.log(600), 0.8, requests)), 8, 1800).astype(int)
    output = np.rint(rng.lognormal(np.log(150), 0.9, requests)).astype(int)
    output = np.clip(output, 1, CONTEXT_TOKENS - prompt)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("TIMESTAMP,ContextTokens,GeneratedTokens\n")
        for start in range(0, requests, ROWS_PER_WRITE):
            stop = min(start + ROWS_PER_WRITE, requests)
            stamps = np.datetime_as_string(times[start:stop], unit="us")
            handle.write("".join(
                f"{t[:10]} {t[11:]}+00:00,{p},{o}\n"
                for t, p, o in zip(stamps.tolist(), prompt[start:stop].tolist(),
                                   output[start:stop].tolist())))
    return path


def _child(argv: list[str]) -> int:
    """Run adaspec-sim in this process, then write its peak RSS (KiB) to $REPLAY_MEMORY_RSS."""
    sys.path.insert(0, str(ROOT))
    from sim.cli import main
    code = main(argv)
    Path(os.environ["REPLAY_MEMORY_RSS"]).write_text(
        str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    return code


def run_once(trace: Path, policy: str, limit: int, extra: list[str]) -> dict:
    """One fresh process: wall s, CPU s, peak RSS MiB and the run's request/iteration counts."""
    with tempfile.TemporaryDirectory() as tmp:
        out, rss = Path(tmp) / "run", Path(tmp) / "rss"
        argv = [sys.executable, __file__, "--child", "--trace", str(trace), "--limit",
                str(limit), "--policy", policy, "--out", str(out), "--quiet", *extra]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT,
                              env=dict(os.environ, REPLAY_MEMORY_RSS=str(rss)))
        wall = time.perf_counter() - began
        if proc.returncode != 0:
            raise SystemExit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        block = next(iter(json.loads((out / "summary.json").read_text())["policies"].values()))
        return {"policy": policy, "requests": block["requests"],
                "iterations": block["iterations"], "wall_s": wall,
                "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
                "peak_mib": int(rss.read_text()) / 1024.0}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2_000_000, help="trace length")
    parser.add_argument("--sizes", help="comma-separated request counts to replay (first N "
                                        "requests of the trace; default: the whole trace)")
    parser.add_argument("--policy", action="append", help="default: nospec and adaspec:8")
    parser.add_argument("--rate", type=float, default=4.0, help="arrivals per second")
    parser.add_argument("--no-iteration-log", action="store_true",
                        help="pass --no-iteration-log to adaspec-sim")
    parser.add_argument("--trace", type=Path, help="use this trace instead of generating one")
    args = parser.parse_args(argv)
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes else [args.requests])
    if args.requests < max(sizes):
        parser.error("--sizes must not exceed --requests")
    policies = args.policy or ["nospec", "adaspec:8"]
    extra = ["--no-iteration-log"] if args.no_iteration_log else []
    print(f"machine: {platform.processor() or platform.machine()}, python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        trace = args.trace
        if trace is None:
            began = time.perf_counter()
            trace = write_azure2024_trace(Path(tmp) / "azure2024_synthetic.csv", args.requests,
                                          args.rate)
            print(f"trace: {args.requests} requests, {trace.stat().st_size / 2**20:.0f} MiB, "
                  f"written in {time.perf_counter() - began:.1f} s")
        print(f"{'policy':<12} {'requests':>9} {'iterations':>11} {'wall s':>8} {'CPU s':>8} "
              f"{'peak MiB':>9} {'B/request':>10} {'B/iteration':>12}", flush=True)
        for policy in policies:
            previous = None
            for size in sizes:
                run = run_once(trace, policy, size, extra)
                growth = ("", "")
                if previous is not None:
                    delta = (run["peak_mib"] - previous["peak_mib"]) * 2**20
                    growth = (f"{delta / (run['requests'] - previous['requests']):.0f}",
                              f"{delta / (run['iterations'] - previous['iterations']):.0f}")
                print(f"{policy:<12} {run['requests']:9d} {run['iterations']:11d} "
                      f"{run['wall_s']:8.1f} {run['cpu_s']:8.1f} {run['peak_mib']:9.0f} "
                      f"{growth[0]:>10} {growth[1]:>12}", flush=True)
                previous = run
    return 0


if __name__ == "__main__":
    sys.exit(main())
