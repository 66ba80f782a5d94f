"""``adaspec-realrun``: serve a trace with the real engine (real forward passes on this machine)
under one or more policies and write the adaspec-sim results layout; ``adaspec-realrun
fetch-models`` fetches the real model pair (see ``realrun.fetch``).

Times in the results are engine seconds on the wall clock: arrivals are the trace's arrival
times (after --window/--rate-scale/--limit) multiplied by --time-scale; every iteration's
duration is measured. With a tokenizer (real models) prompts are Spec-Bench text of the
request's category, and the request's prompt length becomes the tokenised length.
``--method ngram`` drafts by prompt lookup (``realrun.ngram``) with the target alone: no
``--draft``, no draft model loaded; the method and its options are recorded in the config.
"""

from __future__ import annotations

import argparse
import gc
import sys
from dataclasses import replace
from pathlib import Path
from typing import NoReturn, Sequence

from realrun.cli_args import (add_ngram_args, add_real_model_args, check_real_model_args,
                              require_real_extra)
from realrun.lookup import METHOD_DRAFT_MODEL, METHOD_NGRAM, METHODS, NgramConfig
from sim.cli_common import (
    DEFAULT_GPU,
    add_slo_args,
    add_version_arg,
    add_workload_args,
    run_command,
    run_process,
    slos_s_from_args,
    workload_spec_from_args,
)
from sim.errors import ConfigError
from sim.latency.iteration import ENGINES, SINGLE_PASS
from sim.workload.spec import check_non_negative, check_positive

PROG = "adaspec-realrun"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0],
        epilog=f"'{PROG} fetch-models --help' for fetching the real model pair.")
    add_version_arg(parser)
    add_workload_args(parser)
    parser.add_argument("--policy", action="append", required=True, metavar="NAME",
                        help="policy spec (repeatable; run one after another on the same models)")
    models = parser.add_argument_group("models and device")
    add_real_model_args(models, draft="optional")
    models.add_argument("--method", choices=METHODS, default=METHOD_DRAFT_MODEL,
                        help="drafter: draft-model (--draft, default) or ngram (prompt lookup "
                             "in the prompt and the output so far, on the CPU; no draft model "
                             "is loaded)")
    add_ngram_args(models)
    models.add_argument("--gpu", default=DEFAULT_GPU,
                        help="hardware preset of the policies' roofline estimator "
                             f"(default {DEFAULT_GPU}, as adaspec-sim)")
    models.add_argument("--profile", metavar="PATH",
                        help="calibrated latency profile for the policies' estimator "
                             "(adaspec-calibrate latency) instead of the roofline")
    engine = parser.add_argument_group("engine")
    engine.add_argument("--engine", choices=ENGINES, default=SINGLE_PASS,
                        help="verification engine; the real engine runs single-pass only")
    engine.add_argument("--max-num-seqs", type=int, default=8, metavar="N",
                        help="slots = concurrent requests (default 8)")
    engine.add_argument("--max-len", type=int, default=1024, metavar="N",
                        help="tokens per slot: prompt + output must fit (default 1024)")
    engine.add_argument("--block-size", type=int, default=16, metavar="N")
    engine.add_argument("--kv-blocks", type=int, metavar="N",
                        help="KV pool in blocks (default: the slots' capacity, "
                             "max-num-seqs x max-len / block-size)")
    engine.add_argument("--max-num-batched-tokens", type=int, default=8192, metavar="N")
    engine.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                        help="replay arrival_s x X on the wall clock (X > 1 slows arrivals down)")
    engine.add_argument("--controlled-acceptance", metavar="PRESET|FILE",
                        help="draw draft confidences and verdicts from this acceptance model "
                             "(real passes still run)")
    engine.add_argument("--temperature", type=float, default=0.0, metavar="T",
                        help="0 = greedy, lossless (default); > 0 = rejection sampling")
    engine.add_argument("--prompts", default="auto", metavar="auto|synthetic|spec-bench|PATH",
                        help="prompt source: auto = Spec-Bench text with a tokenizer, else "
                             "synthetic ids of the trace's lengths")
    engine.add_argument("--max-prompt-tokens", type=int, metavar="N",
                        help="keep the last N tokens of each prompt")
    engine.add_argument("--max-output-tokens", type=int, metavar="N",
                        help="cap each request's output length")
    add_slo_args(parser)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of random weights, synthetic prompts, sampling, acceptance")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="results directory (summary.json, <policy>/requests.csv, "
                             "iterations.csv); must be new or empty, see --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing run directory (whole, at the end)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _check_args(args: argparse.Namespace) -> list:
    from sim.policies.registry import make_policy

    if args.engine != SINGLE_PASS:
        raise ConfigError(f"--engine {args.engine}: the real engine verifies in a single pass "
                          f"({SINGLE_PASS}); batch expansion is simulation-only (adaspec-sim)")
    check_positive("--time-scale", args.time_scale)
    check_non_negative("--temperature", args.temperature)
    slos_s_from_args(args)
    check_real_model_args(args)
    if args.method == METHOD_NGRAM:
        if args.draft is not None:
            raise ConfigError("--method ngram drafts by prompt lookup and loads no draft "
                              "model: drop --draft")
        NgramConfig(args.ngram_min, args.ngram_max)  # validates
    else:
        if args.draft is None:
            raise ConfigError("--method draft-model needs --draft MODEL (or use --method ngram)")
        if (args.ngram_min, args.ngram_max) != (NgramConfig.min_n, NgramConfig.max_n):
            raise ConfigError("--ngram-min/--ngram-max apply to --method ngram")
    if args.prompts not in ("auto", "synthetic", "spec-bench") and not Path(args.prompts).is_file():
        raise ConfigError(f"--prompts {args.prompts}: no such file (give auto, synthetic, "
                          f"spec-bench or a JSONL file of prompts)")
    policies = []
    for spec in args.policy:
        policy = make_policy(spec)
        if getattr(policy, "sim_only", False) or policy.needs_oracle:
            raise ConfigError(f"policy {policy.name} is simulation-only; adaspec-realrun cannot run it")
        if policy.name not in [p.name for p in policies]:
            policies.append(policy)
    return policies


def time_scaled(workload, time_scale: float):
    """The workload with every arrival at ``arrival_s * time_scale`` (engine seconds)."""
    requests = tuple(replace(r, arrival_s=r.arrival_s * time_scale) for r in workload.requests)
    return replace(workload, requests=requests,
                   transforms=workload.transforms + (f"time_scale={time_scale!r}",))


def _inputs(workload, served, args) -> dict:
    from sim.output import file_sha256

    inputs = {"trace": {"path": workload.source, "sha256": workload.sha256,
                        "format": workload.format, "transforms": list(served.workload.transforms)}}
    if served.prompt_source.startswith("spec-bench:"):
        path = served.prompt_source.split(":", 1)[1]
        inputs["prompts"] = {"path": path, "sha256": file_sha256(path)}
    for key, path in (("profile", args.profile), ("acceptance", args.controlled_acceptance)):
        if path and Path(path).is_file():
            inputs[key] = {"path": path, "sha256": file_sha256(path)}
    return inputs


def _run(args: argparse.Namespace) -> int:
    policies = _check_args(args)  # bad options are refused with or without torch
    require_real_extra(PROG)
    import torch
    from realrun.engine import EngineLimits, RealEngine
    from realrun.models import load_model
    from realrun.prompts import build_prompts
    from realrun.results import build_estimator, model_spec, run_config, to_run_result
    from sim.output import check_out_dir, run_directory, write_results
    from sim.report import format_table

    ttft_slo_s, tpot_slo_s = slos_s_from_args(args)
    limits = EngineLimits(max_num_seqs=args.max_num_seqs, max_len=args.max_len,
                          block_size=args.block_size, kv_blocks=args.kv_blocks,
                          max_num_batched_tokens=args.max_num_batched_tokens,
                          ttft_slo_s=ttft_slo_s, tpot_slo_s=tpot_slo_s,
                          temperature=args.temperature)
    acceptance = None
    if args.controlled_acceptance:
        from sim.acceptance.presets import check_category, make_acceptance
        acceptance = make_acceptance(args.controlled_acceptance)
        check_category(acceptance, args.category)  # as adaspec-sim: a --category it defines
    if args.profile:
        from sim.latency.profile import load_profile
        load_profile(args.profile)  # a bad profile fails before the models load
    workload_spec = workload_spec_from_args(args)
    check_out_dir(args.out, args.overwrite)  # one run per directory, as adaspec-sim
    workload = workload_spec.build(args.seed)
    if args.time_scale != 1.0:
        workload = time_scaled(workload, args.time_scale)
    described = {"acceptance": args.controlled_acceptance}
    if acceptance is not None:
        from sim.run_description import record_category_fallback
        fallback = record_category_fallback(described, acceptance, workload)
        if fallback:  # never silent, as adaspec-sim: said now and recorded in the config
            print(f"{PROG}: warning: {fallback}", file=sys.stderr)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    ngram = NgramConfig(args.ngram_min, args.ngram_max) if args.method == METHOD_NGRAM else None
    target = load_model(args.target, device=args.device, dtype=args.dtype, seed=args.seed)
    draft = (load_model(args.draft, device=args.device, dtype=args.dtype, seed=args.seed + 1)
             if ngram is None else None)
    if draft is not None and draft.config.vocab_size != target.config.vocab_size:
        raise ConfigError(f"target and draft vocabularies differ ({target.config.vocab_size} vs "
                          f"{draft.config.vocab_size}): speculation needs a shared tokenizer")
    served = build_prompts(workload, source=args.prompts, tokenizer=target.tokenizer,
                           vocab_size=int(target.config.vocab_size), seed=args.seed,
                           max_prompt_tokens=args.max_prompt_tokens,
                           max_output_tokens=args.max_output_tokens)
    k_max = max(p.k_max for p in policies)
    reasons = [limits.never_fits(r, k_max) for r in served.workload.requests]
    if all(reasons):
        raise ConfigError(f"no request fits the engine (raise --max-len or --kv-blocks): {reasons[0]}")
    estimator = build_estimator(model_spec(target), model_spec(draft) if draft else None,
                                gpu=args.gpu, profile=args.profile, method=args.method)
    drafter = (draft.label if draft is not None
               else f"prompt lookup (n-grams {ngram.max_n}..{ngram.min_n}, CPU)")
    print(f"trace {workload.source} ({workload.format}): {len(workload)} requests over "
          f"{served.workload.span_s:.1f} s (time scale {args.time_scale:g}); "
          f"{target.label} + {drafter}; prompts {served.prompt_source}"
          + ("; prompt lengths are the tokenised lengths" if served.prompt_source != "synthetic" else "")
          + (f"; controlled acceptance {acceptance.name}" if acceptance else ""), flush=True)
    results = []
    for policy in policies:
        engine = RealEngine(target.model, draft.model if draft is not None else None, policy,
                            estimator, limits, seed=args.seed, acceptance=acceptance,
                            progress=not args.quiet and sys.stderr.isatty(),
                            method=args.method, ngram=ngram)
        run = engine.run(served)
        for rid, reason in sorted(run.rejections.items()):
            print(f"{PROG}: warning: {policy.name}: rejected {reason}", file=sys.stderr)
        results.append(to_run_result(policy.name, run, limits))
        if not args.quiet:
            print(f"  {policy.name}: served in {run.wall_s:.1f} s", file=sys.stderr)
        del engine, run
        gc.collect()
    print(format_table({r.policy: r.summary for r in results}))
    config = run_config(limits=limits, target_spec=args.target, draft_spec=args.draft,
                        target=target, draft=draft, gpu=args.gpu, profile=args.profile,
                        device=target.device, dtype=args.dtype, time_scale=args.time_scale,
                        controlled_acceptance=args.controlled_acceptance, threads=args.threads,
                        prompts=served.prompt_source, max_prompt_tokens=args.max_prompt_tokens,
                        max_output_tokens=args.max_output_tokens, method=args.method,
                        ngram=ngram,
                        category_fallback=described.get("acceptance_category_fallback"))
    with run_directory(args.out, args.overwrite) as staging:
        write_results(staging, results, config, _inputs(workload, served, args), args.seed)
    print(f"wrote {Path(args.out) / 'summary.json'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "fetch-models":
        from realrun import fetch
        return fetch.main(argv[1:])
    args = build_parser().parse_args(argv)
    return run_command(PROG, lambda: _run(args))


def entry() -> NoReturn:
    """``adaspec-realrun`` as a process (the console script, ``python -m``): ``main``, run by
    ``sim.cli_common.run_process``."""
    run_process(main)


if __name__ == "__main__":
    entry()
