"""``adaspec-sweep SWEEP.toml``: run a grid of simulations in parallel and write one tidy table,
the derived SLO metrics and the sweep plots.

Output directory (``--out``, default ``results/<sweep name>``)::

    sweep.json                    provenance, the sweep file as parsed, the point keys in order
    points/<key>.json             one record per point (resumable store, sim.sweep.store)
    results.csv, results.parquet  one row per point (sim.sweep.table)
    attainment_vs_rate.csv        SLO attainment per scenario and rate  (sim.sweep.derived)
    attainment_vs_slo_scale.csv   SLO attainment per scenario and SLO scale
    goodput.csv                   goodput-rate per scenario (>= 90 % attainment by default)
    speedup.csv                   mean E2E / TPOT speedup of each policy over each baseline
    plots/*.png|svg               attainment curves and speedup bars (sim.plots.sweep_plots)

Rerunning the same command skips every point already done, so an interrupted sweep resumes
where it stopped. A point's warnings are recorded in its record (``warnings``); once the
points have run, the command says each distinct one once, in one line, with how many of the
points run it concerned. When the compiled loop has no copy in the disk cache yet (the first
run after an install or an update), it is compiled once before the workers start, and that is
said on stderr first (not with ``--quiet``). Exit status: 0 all points ok, 1 some points
failed (recorded with their error in the table), 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import NoReturn, Sequence

from sim.cli_common import add_version_arg, compile_lines, run_command, run_process
from sim.errors import ConfigError

PROG = "adaspec-sweep"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run a sweep of AdaSpec-Sim simulations (traces x rates x policies x SLOs "
                    "x configs) described by a SWEEP.toml file; resumable; writes one tidy "
                    "table (CSV + Parquet), goodput/attainment/speedup tables and plots.")
    add_version_arg(parser)
    parser.add_argument("sweep", metavar="SWEEP.toml", help="sweep file (grammar: "
                        "python -c 'import sim.sweep.spec as s; help(s)')")
    parser.add_argument("--workers", type=int, metavar="N",
                        help=f"parallel processes (default: all {os.cpu_count()} CPUs)")
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="run on Ray: a cluster address, or 'local' for a private "
                             "in-process instance (needs the [ray] extra)")
    parser.add_argument("--out", metavar="DIR", help="output directory (default: "
                        "results/<sweep name>)")
    parser.add_argument("--no-plots", action="store_true", help="skip the figures")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _write_json(path: Path, document: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def sweep_header(spec) -> dict:
    """Provenance of every sweep-level output file."""
    from sim.output import provenance
    header = provenance(spec.document, spec.inputs(), spec.seeds)
    header.update(sweep=spec.name, sweep_file=spec.source, points=len(spec.points))
    return header


def write_outputs(out: Path, spec, store, plots: bool = True) -> tuple:
    """Rebuild the table, derived tables and plots from the store; returns (table, goodput)."""
    from sim.output import write_table
    from sim.sweep import derived
    from sim.sweep.table import build_table, write_results_table
    header = sweep_header(spec)
    table = build_table(spec.points, store.records(spec.points))
    write_results_table(out, table, header)
    goodput = derived.goodput_rates(table, spec.goodput_attainment)
    for stem, frame in (("attainment_vs_rate", derived.attainment_vs_rate(table)),
                        ("attainment_vs_slo_scale", derived.attainment_vs_slo_scale(table)),
                        ("goodput", goodput),
                        ("speedup", derived.speedups(table, spec.baselines))):
        write_table(out / f"{stem}.csv", frame, header)
    if plots:
        from sim.plots.sweep_plots import write_sweep_plots
        write_sweep_plots(out / "plots", table, spec.baselines, spec.goodput_attainment, header)
    return table, goodput


def _print_goodput(goodput, threshold: float) -> None:
    if goodput.empty:
        return
    print(f"goodput-rate (highest rate with >= {threshold:.0%} SLO attainment):")
    label_columns = [c for c in goodput.columns[:goodput.columns.get_loc("rate_axis")]]
    for row in goodput.itertuples(index=False):
        values = row._asdict()
        label = ", ".join(Path(str(values[c])).stem if c == "trace" else f"{c}={values[c]}"
                          for c in label_columns)
        bound = {"at_least": ">=", "below_grid": "<", "grid": "", "interpolated": "~"}[
            values["goodput_bound"]]
        rate = values["grid_min"] if values["goodput_bound"] == "below_grid" else \
            values["goodput_rate"]
        print(f"  {label}: {bound}{rate:g} ({values['rate_axis']})")


#: a number quoted in a warning (a query, a count), not part of a name such as "qwen2.5-1.5b"
_QUOTED_NUMBER = re.compile(r"(?<![\w.-])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w-])")


def warning_kind(line: str) -> str:
    """What a warning says, its quoted numbers left out: the same warning of two points that
    quote different first queries (``batch=24``, ``batch=32``) or counts is one kind."""
    return _QUOTED_NUMBER.sub("#", line)


def point_warnings(points, warned: dict) -> dict[str, tuple[int, bool]]:
    """Each kind of warning of ``points`` (``warned``: point key -> its recorded warning
    lines; ``warning_kind``) -> (the first point's line of that kind, how many points gave
    it, whether their lines differ), in the order the points first give them."""
    kinds: dict[str, list] = {}  # kind -> [first line, points, differs]
    for point in points:
        own: dict[str, str] = {}  # kind -> the point's first line of it
        for line in warned.get(point.key, ()):
            own.setdefault(warning_kind(line), line)
        for kind, line in own.items():
            seen = kinds.setdefault(kind, [line, 0, False])
            seen[1] += 1
            seen[2] = seen[2] or line != seen[0]
    return {kinds[kind][0]: (kinds[kind][1], kinds[kind][2]) for kind in kinds}


def print_point_warnings(points, warned: dict, ran: int) -> None:
    """Say each kind of warning of the points run once, in one line, with how many of them
    it concerned (every point's own are in its record, ``points/KEY.json``); where the
    points' lines differ in the numbers they quote, the line is the first point's."""
    for line, (n, differs) in point_warnings(points, warned).items():
        quoted = "; numbers quoted from the first of them" if differs else ""
        print(f"{PROG}: warning: {line} (in {n} of {ran} point{'s' if ran != 1 else ''} "
              f"run{quoted})", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from sim.progress import make_progress
    from sim.sweep.runner import run_points
    from sim.sweep.spec import load_sweep
    from sim.sweep.store import ResultStore, make_record

    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    spec = load_sweep(args.sweep)
    out = Path(args.out or Path("results") / spec.name)
    store = ResultStore(out)
    manifest = dict(sweep_header(spec), keys=[p.key for p in spec.points])
    _write_json(out / "sweep.json", manifest)
    pending = store.pending(spec.points)
    done_before = len(spec.points) - len(pending)
    where = f"Ray ({args.ray})" if args.ray else \
        f"{args.workers or os.cpu_count()} local worker(s)"
    print(f"sweep {spec.name}: {len(spec.points)} points, {done_before} already done, "
          f"{len(pending)} to run on {where}; output {out}")
    failures = []
    # a bar on a terminal, one line every 30 s in a log, nothing with --quiet
    bar = (None if args.quiet or not pending else
           make_progress(spec.name, len(pending), prog=PROG, units=("point", "points")))
    done = [0]
    warned: dict[str, list[str]] = {}  # point key -> the point's warnings (recorded with it)

    def on_done(point, outcome) -> None:
        store.put(make_record(point, outcome))
        if outcome.get("warnings"):
            warned[point.key] = outcome["warnings"]
        if outcome["status"] != "ok":
            failures.append(point)
            print(f"{PROG}: point {point.key} ({point.trace}, {point.policy}, rate "
                  f"{point.rate:g}, slo x{point.slo_scale:g}, seed {point.seed}) failed: "
                  f"{outcome['error']}", file=sys.stderr)
        done[0] += 1
        if bar is not None:
            bar.update(done[0])

    began = time.perf_counter()
    # a compile the disk cache cannot spare (minutes) is said first: the loop's, made once
    # before the workers start (sim.compiled.warm), or any made in this process
    try:
        with compile_lines(PROG, args.quiet):
            run_points(pending, on_done, workers=args.workers, ray_address=args.ray)
    finally:
        if bar is not None:
            bar.close()
        print_point_warnings(pending, warned, done[0])
    elapsed = time.perf_counter() - began
    table, goodput = write_outputs(out, spec, store, plots=not args.no_plots)
    ok = int((table["status"] == "ok").sum())
    print(f"ran {len(pending)} point(s) in {elapsed:.1f} s; {ok}/{len(spec.points)} ok; "
          f"wrote {out / 'results.csv'}")
    _print_goodput(goodput, spec.goodput_attainment)
    bad = len(spec.points) - ok
    if bad:
        print(f"{PROG}: {bad} point(s) failed; their errors are in the 'error' column of "
              f"{out / 'results.csv'}; rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _run(args))


def entry() -> NoReturn:
    """``adaspec-sweep`` as a process (the console script, ``python -m``): ``main``, run by
    ``sim.cli_common.run_process``."""
    run_process(main)


if __name__ == "__main__":
    entry()
