"""``adaspec-sim``: replay a trace against one or more speculative-decoding policies and print
(and optionally write) their SLO metrics.

Everything is checked before the first simulation: options, the latency source (options the
chosen source does not use are an error), the engine limits, the output directory (a run
directory holds one run: a non-empty ``--out`` needs ``--overwrite``) and the trace. The
header says what is simulated (a warning line first when trace categories fall back to the
acceptance model's default profile); after the table, one warning line per kind of trouble
(rejected requests, an overloaded run)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import NoReturn, Sequence

from sim.cli_common import (add_model_args, add_slo_args, add_version_arg, add_workload_args,
                            compile_lines, run_command, run_process, slos_s_from_args,
                            workload_from_args)
from sim.errors import ConfigError
from sim.drafters.presets import DEFAULT_METHOD
from sim.latency.iteration import DEFAULT_ENGINE, ENGINES

PROG = "adaspec-sim"
DEFAULT_POLICIES = ("nospec", "static:5", "adaspec:8")
#: Options only the roofline (and a Vidur profile) uses; with a calibrated --profile they are
#: an error.
ROOFLINE_ONLY = ("gpu", "tp", "dense_ops")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout and appends ``(default: X)`` to every option that has a
    default and does not state it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or default is False
                or default is argparse.SUPPRESS or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


def _wrap_items(title: str, items: Sequence[str], width: int = 88) -> list[str]:
    """``title`` and comma-separated ``items`` over lines of at most ``width`` characters,
    never breaking inside an item."""
    lines, line = [], f"  {title}"
    for i, item in enumerate(items):
        piece = f" {item}{',' if i < len(items) - 1 else ''}"
        if len(line) + len(piece) > width:
            lines.append(line)
            line = "   "
        line += piece
    return lines + [line]


def _policy_lines(specs: Sequence[str]) -> list[str]:
    """Per policy: its spec form, every parameter with its default, flags, what it does."""
    from sim.policies.registry import parse_policy_spec

    lines, seen = [], set()
    for spec in specs:
        kind, _ = parse_policy_spec(spec)
        if kind.name in seen:
            continue
        seen.add(kind.name)
        positional = ",".join(p.key.upper() for p in kind.params if p.positional)
        params = ", ".join(f"{p.key} required" if type(p.default) is object  # the marker
                           else f"{p.key}={p.default}" for p in kind.params)
        flags = "".join(f"; flag {name} = {','.join(f'{k}={v}' for k, v in values.items())}"
                        for name, values in kind.flags.items())
        head = f"  {kind.name}{':' + positional if positional else ''}"
        lines.append(f"{head}: {kind.summary}")
        if params or flags:
            lines.append(f"      {params or 'no parameters'}{flags}")
    return lines


def _presets_epilog() -> str:
    """Presets and the policy grammar, for ``--help``."""
    from dataclasses import fields

    from sim.acceptance.presets import preset_names
    from sim.drafters.presets import method_names
    from sim.latency.hardware import gpu_names
    from sim.latency.models import MODELS
    from sim.policies.registry import ENGINE_RULE_SPECS, all_policy_specs
    from sim.run import SimConfig

    models = [f"{m.name} ({m.max_position_embeddings // 1024}k)"
              if m.max_position_embeddings >= 1024 else m.name for m in MODELS.values()]
    engine = next((f for f in fields(SimConfig) if f.name == "engine"), None)
    engines = (f"engine: SimConfig.engine, default {engine.default}" if engine is not None
               else "engine: one (vLLM 0.6-style iteration-level scheduling)")
    policies = _policy_lines([*all_policy_specs(), *ENGINE_RULE_SPECS])
    return "\n".join([
        "presets:",
        f"  GPUs: {', '.join(gpu_names())}",
        *_wrap_items("models (context):", models),
        f"  acceptance: {', '.join(preset_names())}, fixed:ALPHA, a JSON file, or",
        "    positions:S1/S2/...[,KAPPA] (per-position acceptance rates, e.g. positions:0.66/0.36/0.17)",
        *_wrap_items("methods:", method_names()),
        f"  {engines}",
        "",
        "policy grammar: NAME[:ARG[,ARG...]], ARG = VALUE (positional) | KEY=VALUE | FLAG;",
        "  several specs per --policy separated by spaces; parameters left out take the",
        "  defaults listed below",
        *_wrap_items("'all' =", all_policy_specs()),
        *policies,
        "",
        "exit status: 0 ok, 2 bad input (one line on stderr), 130 interrupted",
    ])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=HelpFormatter, epilog=_presets_epilog(),
        description="Trace-driven simulation of speculative-decoding LLM serving "
                    "(AdaSpec and baselines). Defaults: vicuna-7b + vicuna-68m on one A100-80G, "
                    "SLOs TTFT 2 s / TPOT 40 ms.")
    add_version_arg(parser)
    add_workload_args(parser)
    parser.add_argument("--policy", action="append", metavar="SPEC",
                        help="policy spec(s), repeatable; several per option separated by "
                             f"spaces; 'all' = every policy (default: {' '.join(DEFAULT_POLICIES)})")
    add_model_args(parser)
    add_slo_args(parser)
    engine = parser.add_argument_group("engine")
    engine.add_argument("--max-num-seqs", type=int, default=256, metavar="N",
                        help="most requests running at once")
    engine.add_argument("--max-num-batched-tokens", type=int, default=8192, metavar="N",
                        help="token budget of a prefill iteration; without --chunked-prefill a "
                             "longer prompt is rejected, as vLLM 0.6 does")
    engine.add_argument("--chunked-prefill", action="store_true",
                        help="split prompts longer than the budget over several iterations")
    engine.add_argument("--no-cuda-graphs", action="store_true",
                        help="run every pass at its exact size (no graph padding)")
    engine.add_argument("--kv-blocks", type=int, metavar="N",
                        help="KV pool size in 16-token blocks (default: computed from the "
                             "models and the GPU memory)")
    engine.add_argument("--estimator", choices=("table", "exact"), default="table",
                        help="the policies' latency view: coarse profiled table or exact")
    engine.add_argument("--engine", choices=ENGINES, default=DEFAULT_ENGINE,
                        help="verification engine: single-pass (vLLM V1/SGLang) or vllm-0.6 "
                             "batch expansion (the AdaSpec artifact's); docs/engines.md")
    engine.add_argument("--method", default=DEFAULT_METHOD, metavar="NAME",
                        help="speculative method: draft-model (--draft drafts a chain), eagle, "
                             "eagle-2, eagle-3 (feature heads), medusa, hydra (heads), pld "
                             "(prompt lookup), lookahead; trees are verified with a tree mask "
                             "(README 'Speculative methods')")
    engine.add_argument("--engine-path", choices=("auto", "protocol"), default="auto",
                        help="auto: the compiled iteration path where the run has a compiled "
                             "form, else the protocol path; protocol: always the protocol "
                             "path (same results, slower; for checking). docs/compiled_engine.md")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of every random draw (>= 0)")
    parser.add_argument("--out", metavar="DIR",
                        help="write summary.json and per-policy tables (DIR must be new or "
                             "empty, see --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="with --out: replace an existing run directory (whole, at the end)")
    parser.add_argument("--plot", action="store_true", help="with --out: write single-run plots")
    parser.add_argument("--no-iteration-log", action="store_true",
                        help="with --out: write no iterations.csv (the summary is the same; "
                             "saves time and disk on long traces)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress (a bar on a terminal, a line every 30 s otherwise)")
    return parser


def explicit_options(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """Destinations the command line sets explicitly (as opposed to defaults)."""
    probe = argparse.ArgumentParser(add_help=False)
    probe._negative_number_matcher = parser._negative_number_matcher  # reads -50:-10 the same
    for action in parser._actions:  # a copy of every option, with no defaults
        if action.option_strings and not isinstance(action, argparse._HelpAction):
            kwargs = {"dest": action.dest, "default": argparse.SUPPRESS}
            if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
                kwargs["action"] = "store_true"
            elif isinstance(action, argparse._AppendAction):
                kwargs["action"] = "append"
            probe.add_argument(*action.option_strings, **kwargs)
    known, _ = probe.parse_known_args(argv)
    return set(vars(known))


def expand_policies(specs: Sequence[str] | None, method: str = DEFAULT_METHOD) -> list[str]:
    """Policy specs in order (several per option split on spaces), 'all' expanded,
    duplicates removed. With a ``method`` other than the draft model, 'all' keeps the
    policies that make sense with it and any other spec it refuses is an error
    (``sim.drafters.checks``)."""
    from sim.policies.registry import all_policy_specs, make_policy
    names: list[str] = []
    items = [item for spec in (specs or DEFAULT_POLICIES) for item in spec.split()]
    if not items:
        raise ConfigError("--policy needs a policy spec, e.g. --policy static:5")
    fits = None
    if method != DEFAULT_METHOD:
        from sim.drafters.checks import check_policy_method, policy_fits_method
        fits = policy_fits_method
    for spec in items:
        for item in ([*all_policy_specs()] if spec == "all" else [spec]):
            policy = make_policy(item)  # validates the spec early
            if fits is not None and fits(policy, method) is not None:
                if spec == "all":
                    continue
                check_policy_method(policy, method)
            if policy.name not in names:
                names.append(policy.name)
    return names


def _profile_models(args: argparse.Namespace, explicit: set[str]) -> tuple[str, str]:
    """Target and draft presets for a --profile run (``sim.run.profile_model_pair``);
    --gpu/--tp are an error with a profile."""
    from sim.latency.profile import load_profile
    from sim.run import profile_model_pair

    given = [f"--{name.replace('_', '-')}" for name in ROOFLINE_ONLY if name in explicit]
    if given:
        raise ConfigError(f"{'/'.join(given)} set the roofline's hardware or kernels, which a "
                          "calibrated --profile replaces (its latencies were measured on one "
                          f"machine); drop {'/'.join(given)}, or size the KV pool with --kv-blocks")
    return profile_model_pair(load_profile(args.profile).meta,
                              args.target if "target" in explicit else None,
                              args.draft if "draft" in explicit else None,
                              fallback=(args.target, args.draft),
                              kv_blocks_given=args.kv_blocks is not None)


def config_from_args(args: argparse.Namespace, explicit: set[str] | None = None):
    from sim.run import SimConfig
    from sim.run import is_calibrated_profile
    target, draft = args.target, args.draft
    ttft_slo_s, tpot_slo_s = slos_s_from_args(args)
    if is_calibrated_profile(args.profile):  # a Vidur folder uses the presets' options
        target, draft = _profile_models(args, explicit or set())
    return SimConfig(gpu=args.gpu, target=target, draft=draft, tp=args.tp,
                     ttft_slo_s=ttft_slo_s, tpot_slo_s=tpot_slo_s,
                     max_num_seqs=args.max_num_seqs,
                     max_num_batched_tokens=args.max_num_batched_tokens,
                     chunked_prefill=args.chunked_prefill, kv_blocks=args.kv_blocks,
                     cuda_graphs=not args.no_cuda_graphs, acceptance=args.acceptance,
                     profile=args.profile, estimator=args.estimator, engine=args.engine,
                     pass_overheads_s=_pass_overheads(args.pass_overhead_ms),
                     dense_ops=args.dense_ops,
                     method=getattr(args, "method", DEFAULT_METHOD),
                     engine_path=args.engine_path,
                     iteration_log=not args.no_iteration_log)


def _pass_overheads(text: str | None):
    from sim.latency.overhead import parse_pass_overheads_ms
    return parse_pass_overheads_ms(text) if text else None


def _check_method_options(args: argparse.Namespace, explicit: set[str]) -> None:
    """--method's name, and the draft-model options it makes meaningless."""
    from sim.drafters.checks import DRAFT_MODEL_ACCEPTANCE
    from sim.drafters.presets import get_method
    method = get_method(args.method)
    args.method = method.name
    if method.is_draft_model:
        return
    if "draft" in explicit:
        raise ConfigError(f"--draft names the draft model of --method draft-model; --method "
                          f"{method.name} drafts with its own {method.kind} (drop --draft)")
    if "acceptance" in explicit and args.acceptance.strip().lower() == DRAFT_MODEL_ACCEPTANCE:
        raise ConfigError(f"acceptance {DRAFT_MODEL_ACCEPTANCE} describes vicuna-68m drafting, "
                          f"not --method {method.name}; drop --acceptance (the method's own "
                          f"preset is spec-bench-{method.name})")


def _check_options(args: argparse.Namespace) -> None:
    slos_s_from_args(args)
    from sim.workload.spec import check_seed
    try:
        check_seed(args.seed)
    except ConfigError as exc:
        raise ConfigError(f"--{exc}") from None
    if args.plot and not args.out:
        raise ConfigError("--plot needs --out DIR")
    if args.overwrite and not args.out:
        raise ConfigError("--overwrite needs --out DIR")
    if args.no_iteration_log and args.plot:
        raise ConfigError("--plot draws the iteration log: drop --no-iteration-log")


def rejection_warning(results) -> str | None:
    """One line: how many requests each policy rejected, and why (None if none)."""
    from sim.core.scheduler import REJECT_REASONS

    def text(summary: dict) -> str:
        reasons = summary.get("rejected_by_reason") or {}
        parts = [f"{n} {REJECT_REASONS.get(kind, kind)}" for kind, n in reasons.items()]
        return (f"{summary['rejected']} of {summary['requests']} requests rejected on "
                f"arrival ({'; '.join(parts)})")

    rejecting = [r for r in results if r.summary.get("rejected")]
    if not rejecting:
        return None
    texts = {r.policy: text(r.summary) for r in rejecting}
    if len(rejecting) == len(results) and len(set(texts.values())) == 1:
        return f"every policy: {next(iter(texts.values()))}, as vLLM would"
    return "; ".join(f"{policy}: {t}" for policy, t in texts.items()) + ", as vLLM would"


def _run(args: argparse.Namespace, explicit: set[str]) -> int:
    from sim.output import (check_out_dir, path_sha256, provenance, run_directory,
                            write_summary)
    from sim.run import build_latency
    from sim.run_description import describe_run, header_lines, record_category_fallback

    _check_options(args)
    _check_method_options(args, explicit)
    policies = expand_policies(args.policy, args.method)
    config = config_from_args(args, explicit)
    latency = build_latency(config)  # unknown names, bad pairs and bad profiles fail here
    from sim.acceptance.presets import check_category, make_acceptance
    acceptance = make_acceptance(config.acceptance)
    check_category(acceptance, args.category)
    profile_sha = path_sha256(config.profile) if config.profile else None
    described = describe_run(config, latency, profile_sha)  # engine limits checked here
    if args.out:
        check_out_dir(args.out, args.overwrite)
    workload = workload_from_args(args, args.seed)
    fallback = record_category_fallback(described, acceptance, workload)
    if fallback:  # never silent: said now, in the header and in every output's description
        print(f"{PROG}: warning: {fallback}", file=sys.stderr)
    print(f"trace {workload.source} ({workload.format}): {len(workload)} requests over "
          f"{workload.span_s:.1f} s; seed {args.seed}")
    print("\n".join(header_lines(described)), flush=True)
    if not args.out:
        _report(args, _simulate_all(args, workload, policies, config, latency))
        return 0
    inputs = {"trace": {"path": workload.source, "sha256": workload.sha256,
                        "format": workload.format, "transforms": list(workload.transforms)}}
    if config.profile:
        inputs["profile"] = {"path": config.profile, "sha256": profile_sha}
    header = dict(provenance(config.to_dict(), inputs, args.seed), simulated=described)
    with run_directory(args.out, args.overwrite) as staging:
        # each policy's tables are written as soon as it is simulated; the iteration log
        # goes to a spool folder inside the run directory meanwhile (removed before the end)
        results = _simulate_all(args, workload, policies, config, latency, staging, header)
        _report(args, results)
        try:
            if args.plot:
                from sim.plots.run_plots import write_run_plots
                write_run_plots(staging, results, config, header=header)
        finally:
            for result in results:
                result.release()
        write_summary(staging, header, {r.policy: r.summary for r in results})
    print(f"wrote {args.out}/summary.json")
    return 0


def _simulate_all(args, workload, policies, config, latency, staging=None, header=None
                  ) -> list:
    """Simulate every policy in turn on the one built ``latency`` model; with a run directory,
    write each one's tables as soon as it is done (and drop them unless plots need them).
    Unless ``--quiet``, a compile that the disk cache cannot spare is announced first
    (``sim.cli_common.compile_lines``)."""
    from sim.output import write_policy_tables
    from sim.run import simulate

    results = []
    with compile_lines(PROG, args.quiet):
        for name in policies:
            began = time.perf_counter()
            result = simulate(workload, name, config, seed=args.seed, progress=not args.quiet,
                              latency=latency, spool_dir=staging)
            results.append(result)
            if not args.quiet:
                print(f"  {name}: simulated in {time.perf_counter() - began:.1f} s "
                      f"({result.summary.get('iteration_path', '?')} path)", file=sys.stderr)
            if staging is not None:
                write_policy_tables(staging, result, header)
                if not args.plot:
                    result.release()
    return results


def _report(args, results) -> None:
    """The summary table on stdout, then one warning line per kind of trouble."""
    from sim.metrics.load import overload_warning
    from sim.report import format_table

    print(format_table({r.policy: r.summary for r in results}), flush=True)
    warnings = [rejection_warning(results)]
    warnings += [overload_warning(r.policy, r.summary.get("load") or {}) for r in results]
    for line in filter(None, warnings):
        print(f"{PROG}: warning: {line}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    explicit = explicit_options(parser, argv)
    try:
        return run_command(PROG, lambda: _run(args, explicit))
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def entry() -> NoReturn:
    """``adaspec-sim`` as a process (the console script, ``python -m``): ``main``, run by
    ``sim.cli_common.run_process``."""
    run_process(main)


if __name__ == "__main__":
    entry()
