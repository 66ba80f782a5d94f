"""Benchmark: replay the full 1-hour Azure conversation trace (19,366 requests) through
``adaspec-sim`` with all outputs written, one policy per fresh process.

Prints, per policy: wall time and CPU time of the whole command (load + simulate + write),
peak resident memory (of the largest child so far), simulated seconds per wall second, and
which iteration path ran (``compiled`` or ``protocol``, from summary.json); plus the
command's start-up time (``adaspec-sim --help``). Targets (issue 11): each policy at most a
third of the previous release's time, adaspec:8 at most 1.5x nospec; project goal 2 s.

With ``--repeat N`` each policy runs N times and the fastest run is shown (the usual estimate
of a command's own cost on a shared machine, whose speed drifts by 20 % or more over minutes);
the slowest wall time is printed alongside. The runs go round by round (each round runs every
policy once, in every tree), so the drift over minutes hits every policy alike; the
adaspec:8 / nospec ratio is printed both of the fastest runs and as the median (and range) of
the rounds' ratios, each of two runs made back to back.

``--baseline-rev REV`` (e.g. ``6f344b7``, the previous release) times that git revision side
by side: its tree is exported (``git archive``) to a temporary folder and run with
``PYTHONPATH`` pointing there, the two alternating run by run (so drift hits both alike), and
both columns and their ratio are printed. Both trees' modules are byte-compiled first
(``compileall``, as ``pip install`` does), so neither pays for compiling its source on every
run where ``PYTHONDONTWRITEBYTECODE`` is set (as on this project's VM) or a tree is fresh.
Before timing, each tree runs every policy once
on a short slice (untimed): the acceptance tables and the compiled code are cached then, so
the times are those of a warm command (``--cold`` times the first run of each policy
instead, with an empty compiled-code cache).

    python benchmarks/replay_azure_conv.py [--policy nospec --policy adaspec:8] [--limit N]
                                           [--repeat N] [--baseline-rev REV] [--cold]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT / "traces" / "azure2023" / "AzureLLMInferenceTrace_conv.csv"
DEFAULT_POLICIES = ["nospec", "static:5", "smartspec:8", "adaspec:8"]


def _child_run(argv: list[str], tree: Path, env: dict | None = None
               ) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of the child: its own
    resource usage (``os.wait4``), not the most any child of this process has used (a
    baseline tree's compile before it would show in every later row)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=tree, env=_env(tree, env))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"command failed ({proc.returncode}) in {tree}: "
                             f"{' '.join(argv)}\n{err.read().decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def _env(tree: Path, extra: dict | None) -> dict:
    """The child's environment: ``tree``'s packages first (an editable install elsewhere
    must not shadow them)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree) + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def export_revision(rev: str, folder: Path) -> Path:
    """The tree of git revision ``rev`` of this repository, exported to ``folder``."""
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT,
                             capture_output=True)
    if archive.returncode != 0:
        raise SystemExit(f"git archive {rev} failed: {archive.stderr.decode().strip()}")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def _replay(tree: Path, policy: str, limit: int | None, env: dict | None = None):
    """One timed replay in ``tree``: (wall, CPU, peak MiB, the policy's summary block)."""
    sim = [sys.executable, "-m", "sim.cli"]
    with tempfile.TemporaryDirectory() as out:
        cmd = sim + ["--trace", str(TRACE), "--policy", policy, "--out", out, "--quiet"]
        if limit:
            cmd += ["--limit", str(limit)]
        wall, cpu, peak = _child_run(cmd, tree, env)
        summary = json.loads((Path(out) / "summary.json").read_text())
    return wall, cpu, peak, next(iter(summary["policies"].values()))


def round_ratios(runs: list[tuple], baseline_runs: list[tuple]) -> list[float]:
    """Wall-time ratio of each round's run to the baseline policy's run of the same round
    (``runs[i][0] / baseline_runs[i][0]``): the two ran back to back, so the machine's drift
    over minutes hits both alike."""
    return [run[0] / base[0] for run, base in zip(runs, baseline_runs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", action="append")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per policy (and tree); the fastest is shown")
    parser.add_argument("--baseline-rev", metavar="REV",
                        help="also time this git revision, alternating with this tree")
    parser.add_argument("--cold", action="store_true",
                        help="time first runs with an empty compiled-code cache (no warm-up)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    policies = args.policy or DEFAULT_POLICIES
    trees = [("this", ROOT)]
    scratch = Path(tempfile.mkdtemp(prefix="adaspec-replay-"))
    try:
        if args.baseline_rev:
            trees.append((args.baseline_rev, export_revision(args.baseline_rev,
                                                             scratch / "baseline")))
        for _, tree in trees:  # byte-compiled first, as an installed package is (below)
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "sim")],
                           check=True)
        env = None
        if args.cold:
            env = {"ADASPEC_SIM_JIT_CACHE": str(scratch / "jit")}
        startup = {name: _child_run([sys.executable, "-m", "sim.cli", "--help"], tree)[0]
                   for name, tree in trees}
        print(f"load average before: {os.getloadavg()[0]:.2f} (CPU s is robust to other load, "
              "wall s is not)")
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"python {platform.python_version()}")
        print("start-up (adaspec-sim --help): "
              + ", ".join(f"{name} {s:.2f} s" for name, s in startup.items()))
        if not args.cold:  # acceptance tables and compiled code cached, untimed
            for _, tree in trees:
                for policy in policies:
                    _replay(tree, policy, 50)
        header = f"{'policy':<14} {'tree':<9} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9} " \
                 f"{'sim-s/wall-s':>13} {'requests':>9} {'slowest wall s':>15}  path"
        print(header)
        rows: dict[str, dict[str, tuple]] = {}
        runs = {policy: {name: [] for name, _ in trees} for policy in policies}
        for i in range(args.repeat):  # round by round: every policy and tree in each round
            for policy in policies:
                for name, tree in trees:  # alternate the trees run by run
                    if args.cold and i == 0:
                        shutil.rmtree(scratch / "jit", ignore_errors=True)
                    runs[policy][name].append(_replay(tree, policy, args.limit, env))
        for policy in policies:
            for name, _ in trees:
                wall, cpu, peak, block = min(runs[policy][name], key=lambda run: run[0])
                slowest = max(run[0] for run in runs[policy][name])
                rows.setdefault(policy, {})[name] = (wall, cpu)
                print(f"{policy:<14} {name:<9} {wall:8.2f} {cpu:8.2f} {peak:9.0f} "
                      f"{block['makespan_s'] / wall:13.0f} {block['requests']:9d} "
                      f"{slowest:15.2f}  {block.get('iteration_path', 'protocol')}")
        if args.baseline_rev:
            print(f"\nthis tree / {args.baseline_rev} (fastest runs):")
            for policy, by_tree in rows.items():
                (w1, c1), (w0, c0) = by_tree["this"], by_tree[args.baseline_rev]
                print(f"  {policy:<14} wall {w1 / w0:5.2f}x  CPU {c1 / c0:5.2f}x")
        if "nospec" in rows and "adaspec:8" in rows:
            ratio = rows["adaspec:8"]["this"][0] / rows["nospec"]["this"][0]
            paired = round_ratios(runs["adaspec:8"]["this"], runs["nospec"]["this"])
            print(f"adaspec:8 / nospec (this tree, wall): {ratio:.2f}x of the fastest runs; "
                  f"median of the {len(paired)} rounds' ratios {statistics.median(paired):.2f}x "
                  f"(range {min(paired):.2f}-{max(paired):.2f})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
