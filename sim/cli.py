"""``adaspec-sim``: replay a trace against one or more speculative-decoding policies and print
(and optionally write) their SLO metrics."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from sim.cli_common import (add_model_args, add_slo_args, add_workload_args, run_command,
                            workload_from_args)
from sim.errors import ConfigError
from sim.latency.iteration import DEFAULT_ENGINE, ENGINES

DEFAULT_POLICIES = ("nospec", "static:5", "adaspec:8")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adaspec-sim",
        description="Trace-driven simulation of speculative-decoding LLM serving "
                    "(AdaSpec and baselines). Defaults: vicuna-7b + vicuna-68m on one A100-80G, "
                    "SLOs TTFT 2 s / TPOT 40 ms.")
    add_workload_args(parser)
    parser.add_argument("--policy", action="append", metavar="NAME",
                        help="policy spec, repeatable or comma-free list; 'all' = every policy "
                             f"(default: {' '.join(DEFAULT_POLICIES)})")
    add_model_args(parser)
    add_slo_args(parser)
    engine = parser.add_argument_group("engine")
    engine.add_argument("--max-num-seqs", type=int, default=256)
    engine.add_argument("--max-num-batched-tokens", type=int, default=8192)
    engine.add_argument("--chunked-prefill", action="store_true")
    engine.add_argument("--no-cuda-graphs", action="store_true",
                        help="run every pass at its exact size (no graph padding)")
    engine.add_argument("--kv-blocks", type=int, help="override the computed KV pool size")
    engine.add_argument("--estimator", choices=("table", "exact"), default="table",
                        help="the policies' latency view (default: coarse profiled table)")
    engine.add_argument("--engine", choices=ENGINES, default=DEFAULT_ENGINE,
                        help="verification engine: single-pass (vLLM V1/SGLang, default) or "
                             "vllm-0.6 batch expansion (the AdaSpec artifact's); docs/engines.md")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", metavar="DIR", help="write summary.json and per-policy tables")
    parser.add_argument("--plot", action="store_true", help="with --out: write single-run plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def expand_policies(specs: Sequence[str] | None) -> list[str]:
    """Policy specs in order, 'all' expanded, duplicates removed."""
    from sim.policies.registry import all_policy_specs, make_policy
    names: list[str] = []
    for spec in specs or DEFAULT_POLICIES:
        for item in ([*all_policy_specs()] if spec == "all" else [spec]):
            canonical = make_policy(item).name  # validates the spec early
            if canonical not in names:
                names.append(canonical)
    return names


def config_from_args(args: argparse.Namespace):
    from sim.run import SimConfig
    return SimConfig(gpu=args.gpu, target=args.target, draft=args.draft, tp=args.tp,
                     ttft_slo_s=args.slo_ttft_ms / 1e3, tpot_slo_s=args.slo_tpot_ms / 1e3,
                     max_num_seqs=args.max_num_seqs,
                     max_num_batched_tokens=args.max_num_batched_tokens,
                     chunked_prefill=args.chunked_prefill, kv_blocks=args.kv_blocks,
                     cuda_graphs=not args.no_cuda_graphs, acceptance=args.acceptance,
                     profile=args.profile, estimator=args.estimator, engine=args.engine,
                     pass_overheads_s=_pass_overheads(args.pass_overhead_ms))


def _pass_overheads(text: str | None):
    from sim.latency.overhead import parse_pass_overheads_ms
    return parse_pass_overheads_ms(text) if text else None


def _run(args: argparse.Namespace) -> int:
    from sim.output import prepare_out_dir, write_results
    from sim.report import format_table
    from sim.run import build_latency, simulate

    if args.slo_ttft_ms <= 0 or args.slo_tpot_ms <= 0:
        raise ConfigError("SLOs must be positive numbers of milliseconds")
    if args.plot and not args.out:
        raise ConfigError("--plot needs --out DIR")
    config = config_from_args(args)
    policies = expand_policies(args.policy)
    build_latency(config)  # unknown GPU/model names fail before any work
    if args.out:
        prepare_out_dir(args.out)
    workload = workload_from_args(args, args.seed)
    print(f"trace {workload.source} ({workload.format}): {len(workload)} requests over "
          f"{workload.span_s:.1f} s; {config.target} + {config.draft} on {config.tp}x {config.gpu}; "
          f"engine {config.engine}; "
          f"SLO TTFT {args.slo_ttft_ms:g} ms, TPOT {args.slo_tpot_ms:g} ms; seed {args.seed}")
    results = []
    for name in policies:
        began = time.perf_counter()
        result = simulate(workload, name, config, seed=args.seed,
                          progress=not args.quiet and sys.stderr.isatty())
        results.append(result)
        if not args.quiet:
            print(f"  {name}: simulated in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    print(format_table({r.policy: r.summary for r in results}))
    if args.out:
        inputs = {"trace": {"path": workload.source, "sha256": workload.sha256,
                            "format": workload.format, "transforms": list(workload.transforms)}}
        if config.profile:
            from sim.output import file_sha256
            inputs["profile"] = {"path": config.profile, "sha256": file_sha256(config.profile)}
        summary_path = write_results(args.out, results, config.to_dict(), inputs, args.seed)
        if args.plot:
            from sim.plots.run_plots import write_run_plots
            write_run_plots(args.out, results, config)
        print(f"wrote {summary_path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("adaspec-sim", lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
