"""Command-line pieces every command shares: workload options, model/hardware options, SLOs,
and the one-line error handling wrapper."""

from __future__ import annotations

import argparse
import gc
import re
import sys
from contextlib import contextmanager
from typing import Callable, Iterator, NoReturn

from sim import __version__
from sim.errors import AdaSpecError, ConfigError, routed_warnings
from sim.latency.measured import DEFAULT_DENSE_OPS, DENSE_OPS


def add_version_arg(parser: argparse.ArgumentParser) -> None:
    """``--version``: the package's version (every output file records it too, with its
    schema version)."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")


def add_workload_args(parser: argparse.ArgumentParser, trace_required: bool = True) -> None:
    group = parser.add_argument_group("workload")
    group.add_argument("--trace", required=trace_required, metavar="PATH",
                       help="trace file: Azure CSV, Mooncake JSONL, BurstGPT CSV, arrival-only "
                            "CSV (Timestamp) or native CSV (arrival_s,prompt_tokens,output_tokens)")
    group.add_argument("--limit", type=int, metavar="N", help="keep the first N requests")
    group.add_argument("--window", metavar="START:END",
                       help="keep requests arriving in [START, END) seconds (either side may be empty)")
    group.add_argument("--rate-scale", type=float, default=1.0, metavar="X",
                       help="multiply the request rate by X (divides inter-arrival times by X)")
    group.add_argument("--arrivals", metavar="poisson:RATE | gamma:RATE,CV",
                       help="replace the trace's arrival times by synthetic ones (seeded), "
                            "keeping its request lengths")
    group.add_argument("--lengths", default="spec-bench", metavar="NAME|PATH",
                       help="length source for arrival-only traces: spec-bench (default) or sharegpt")
    group.add_argument("--category", default="", metavar="NAME",
                       help="acceptance category for traces without categories (default: overall)")
    parser._negative_number_matcher = _NEGATIVE_VALUE


# argparse reads an argument that starts with "-" as an option unless it looks like a negative
# number; a value such as -50:-10 (--window), -1,2 (--pass-overhead-ms), -1e3 or -inf should
# reach its option (and its one-line error) instead. No option of these commands starts with
# "-" and a digit or a dot, or is named -inf / -nan.
_NEGATIVE_VALUE = re.compile(r"^-[\d.]|^-(inf|infinity|nan)$", re.IGNORECASE)


def parse_window(text: str) -> tuple[float | None, float | None]:
    """``START:END`` in seconds (either side may be empty) -> (start, end); the bounds are
    checked by :class:`sim.workload.spec.WorkloadSpec`."""
    try:
        start_text, end_text = text.split(":")
        start = float(start_text) if start_text.strip() else None
        end = float(end_text) if end_text.strip() else None
    except ValueError:
        raise ConfigError(f"--window must look like START:END in seconds, got {text!r}") from None
    return start, end


def parse_arrivals(text: str) -> tuple[str, float, float | None]:
    """``poisson:RATE`` or ``gamma:RATE,CV`` -> (process, rate, cv); the values are checked by
    :class:`sim.workload.spec.WorkloadSpec`."""
    process, _, params = text.partition(":")
    try:
        values = [float(v) for v in params.split(",")] if params else []
    except ValueError:
        raise ConfigError(f"--arrivals parameters must be numbers, got {text!r}") from None
    if process == "poisson" and len(values) == 1:
        return process, values[0], None
    if process == "gamma" and len(values) == 2:
        return process, values[0], values[1]
    raise ConfigError(f"--arrivals must be poisson:RATE or gamma:RATE,CV, got {text!r}")


def workload_spec_from_args(args: argparse.Namespace):
    """The workload the options describe, as a validated value (nothing is read yet but the
    length source's existence)."""
    from sim.workload.spec import WorkloadSpec

    start, end = parse_window(args.window) if args.window else (None, None)
    process, rate, cv = parse_arrivals(args.arrivals) if args.arrivals else ("trace", None, None)
    spec = WorkloadSpec(trace=args.trace, window_start_s=start, window_end_s=end,
                        limit=args.limit, rate_scale=args.rate_scale, arrivals=process,
                        arrival_rate_req_per_s=rate, arrival_cv=cv, lengths=args.lengths,
                        category=args.category)
    spec.check_files()
    return spec


def workload_from_args(args: argparse.Namespace, seed: int):
    """Load and transform the workload the options describe (seeded: same seed, same
    workload; see :meth:`sim.workload.spec.WorkloadSpec.build`)."""
    return workload_spec_from_args(args).build(seed)


DEFAULT_GPU = "A100-80G"
"""The GPU preset every command defaults to (sim.run.SimConfig's default)."""


def add_model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model and hardware")
    group.add_argument("--gpu", default=DEFAULT_GPU, help="GPU preset (A100-80G, L40, H100, H200)")
    group.add_argument("--target", default="vicuna-7b", help="target model preset")
    group.add_argument("--draft", default="vicuna-68m", help="draft model preset")
    group.add_argument("--tp", type=int, default=1, help="tensor-parallel degree of the target")
    group.add_argument("--profile", metavar="PATH",
                       help="calibrated latency profile (adaspec-calibrate latency, JSON) or a Vidur "
                            "profile folder (mlp.csv) instead of the roofline")
    group.add_argument("--dense-ops", choices=DENSE_OPS, default=DEFAULT_DENSE_OPS,
                       help="per-layer non-attention kernels: real GPU rows where the preset's "
                            "GPU profiled the layer shape at this TP (A100-80G, H100; Llama-2-7B "
                            "shape incl. vicuna-7b, Llama-2/3-70B, Llama-3-8B, CodeLlama-34B), "
                            "the fitted closed form elsewhere; or the closed form everywhere")
    group.add_argument("--pass-overhead-ms", metavar="T[,D[,I]]",
                       help="per-pass overhead in ms: target pass, draft step, drafting "
                            "iteration (default 4,1,1.5; see docs/latency_model.md)")
    group.add_argument("--acceptance", default="spec-bench-vicuna-68m", metavar="NAME|PATH",
                       help="acceptance preset or file (adaspec-calibrate acceptance)")


def add_slo_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("SLOs")
    group.add_argument("--slo-ttft-ms", type=float, default=2000.0, metavar="X",
                       help="time-to-first-token SLO in ms (default 2000)")
    group.add_argument("--slo-tpot-ms", type=float, default=40.0, metavar="X",
                       help="time-per-output-token SLO in ms (default 40, the AdaSpec artifact's)")


def slos_s_from_args(args: argparse.Namespace) -> tuple[float, float]:
    """The SLO options (``add_slo_args``) as (TTFT, TPOT) seconds, each checked first: a
    finite number of milliseconds > 0 (nan, inf, 0 and negatives are one ConfigError line
    naming the flag). Every command with SLO options reads them through this."""
    from sim.workload.spec import check_positive
    return (check_positive("--slo-ttft-ms (milliseconds)", args.slo_ttft_ms) / 1e3,
            check_positive("--slo-tpot-ms (milliseconds)", args.slo_tpot_ms) / 1e3)


@contextmanager
def one_line_warnings(prog: str) -> Iterator[None]:
    """Inside, the package's own warnings (``sim.errors.AdaSpecWarning``: a latency profile
    queried outside its measured domain, ...) print as one line ``PROG: warning: ...`` on
    stderr, each time one is issued (the models say once where once matters); any other
    warning is shown as Python shows it (``sim.errors.routed_warnings``)."""
    with routed_warnings(lambda line: print(f"{prog}: warning: {line}", file=sys.stderr,
                                            flush=True)):
        yield


@contextmanager
def compile_lines(prog: str, quiet: bool = False) -> Iterator[None]:
    """Inside, a compile that the disk cache of compiled code cannot spare (minutes for the
    loop) prints as one line ``PROG: compiling ...`` on stderr before it starts
    (``sim.compiled.jit.compile_notices``); nothing with ``quiet``."""
    if quiet:
        yield
        return
    from sim.compiled.jit import compile_notices
    with compile_notices(lambda line: print(f"{prog}: {line}", file=sys.stderr, flush=True)):
        yield


def end_process(code: int) -> NoReturn:
    """Exit this command's process with status ``code``, leaving out the interpreter's last
    garbage collection.

    At exit Python collects every object still alive (numba alone leaves about 10^5),
    which here took 0.08 s of a 1 s ``adaspec-sim`` run (0.12 s of exit against 0.04 s
    without it, full Azure trace, nospec). ``gc.freeze()`` moves them all to the permanent
    generation, which that collection skips; the interpreter still shuts down as usual
    (``atexit`` handlers, standard streams flushed), and the operating system reclaims the
    memory. Every output file is written and closed by then (the commands write them with
    ``with`` blocks; none is left to a finaliser: checked with ``-X dev -W
    always::ResourceWarning``). Only for a process's own entry point (each command's
    ``entry``, the console scripts and ``python -m``): a caller that goes on, such as the
    tests or a notebook, calls ``main`` and keeps its collector untouched."""
    gc.freeze()
    raise SystemExit(code)


#: the cyclic collector's first threshold in a command's own process (Python's default: 700)
PROCESS_GC_THRESHOLD = 200_000


def run_process(main: Callable[[], int]) -> NoReturn:
    """Run a command's ``main`` as its process's entry point (each command's ``entry``): the
    cyclic garbage collector's first threshold raised to ``PROCESS_GC_THRESHOLD``, then
    ``end_process`` with ``main``'s status.

    A command makes its long-lived objects first (modules, numba's types and functions:
    about 10^5 tracked containers) and few reference cycles afterwards. At Python's threshold
    of 700 new containers the collector ran 164 times in a full-trace ``adaspec-sim`` run
    (150 young, 13 middle, 1 full collection), tracing those same objects again: 0.05-0.11 s
    of CPU in runs of 1.0-2.3 s (``gc.callbacks`` timings, full Azure conversation trace,
    nospec and adaspec:8, 2026-12-01). At 200,000 such a run collects no time at all, while
    a long run that does leave cyclic garbage still has it collected every 200,000 net new
    containers (a few tens of MB at most). Like ``end_process``, for a process's own entry
    point only: ``main`` called from Python leaves the collector as it is."""
    gc.set_threshold(PROCESS_GC_THRESHOLD, *gc.get_threshold()[1:])
    end_process(main())


def run_command(prog: str, body: Callable[[], int]) -> int:
    """Run a command body; print library errors as one line and return 2; Ctrl-C -> 130;
    the package's warnings are one line each (``one_line_warnings``)."""
    try:
        with one_line_warnings(prog):
            return body()
    except AdaSpecError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
