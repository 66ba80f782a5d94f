"""``adaspec-calibrate``: profile realrun's forward passes (``latency``), measure draft/target
agreement (``acceptance``) and write the files ``adaspec-sim --profile/--acceptance`` read, or
measure prompt-lookup acceptance per category with the target alone (``ngram``)."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, Sequence

from realrun.cli_args import (add_ngram_args, add_real_model_args, check_out_file,
                              check_real_model_args, require_real_extra)
from sim.cli_common import add_version_arg, run_command, run_process
from sim.errors import ConfigError
from sim.workload.spec import check_non_negative


def _model_args(parser: argparse.ArgumentParser, draft: str = "required") -> None:
    add_real_model_args(parser, draft=draft)
    parser.add_argument("--seed", type=int, default=0, help="seed of random weights and inputs")
    parser.add_argument("--out", required=True, metavar="PATH", help="JSON file to write")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adaspec-calibrate", description=__doc__)
    add_version_arg(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    lat = sub.add_parser("latency", help="time forward passes over a grid and fit a latency profile")
    _model_args(lat)
    lat.add_argument("--grid", default="default", metavar="small|default|FILE",
                     help="grid preset or JSON file with batch_sizes, prompt_lengths, "
                          "context_lengths, tokens_per_seq, repeats, warmup (default: default)")
    lat.add_argument("--k-max", type=int, default=8, metavar="K",
                     help="largest draft length: verification passes of 1..K+1 tokens per "
                          "sequence unless the grid lists tokens_per_seq (default 8)")
    lat.add_argument("--repeats", type=int, metavar="N", help="timed runs per point (median)")
    lat.add_argument("--warmup", type=int, metavar="N", help="untimed runs per point")
    lat.add_argument("--draft-overhead-ms", type=float, default=0.0, metavar="X",
                     help="fixed per-iteration drafting overhead outside the passes (default 0)")
    acc = sub.add_parser("acceptance", help="log draft confidences vs target verdicts and fit "
                                            "an acceptance model")
    _model_args(acc)
    acc.add_argument("--prompts", metavar="FILE",
                     help="JSONL prompts: Spec-Bench (default: the Spec-Bench questions "
                          "shipped with the package) or prompt_token_ids per line")
    acc.add_argument("--limit", type=int, default=48, metavar="N",
                     help="prompts to use, round-robin over categories (default 48)")
    acc.add_argument("--k", type=int, default=5, help="draft tokens per round (default 5)")
    acc.add_argument("--max-new-tokens", type=int, default=128, metavar="N")
    acc.add_argument("--max-prompt-tokens", type=int, default=512, metavar="N")
    acc.add_argument("--batch-size", type=int, default=8, metavar="N")
    acc.add_argument("--name", help="model name stored in the file (default: the file stem)")
    acc.add_argument("--log-out", metavar="CSV", help="also write the drafted-token log")
    ngr = sub.add_parser("ngram", help="measure prompt-lookup (n-gram) acceptance per "
                                       "category with the target alone (no draft model)")
    _model_args(ngr, draft="none")
    ngr.add_argument("--prompts", metavar="FILE",
                     help="JSONL prompts: Spec-Bench (default: the Spec-Bench questions "
                          "shipped with the package) or prompt_token_ids per line")
    ngr.add_argument("--per-category", type=int, default=2, metavar="N",
                     help="prompts per category, the first N of each (default 2)")
    ngr.add_argument("--k", type=int, default=5,
                     help="most tokens a proposal holds (default 5)")
    add_ngram_args(ngr)
    ngr.add_argument("--max-new-tokens", type=int, default=64, metavar="N")
    ngr.add_argument("--max-prompt-tokens", type=int, default=512, metavar="N",
                     help="keep the last N tokens of each prompt (default 512)")
    ngr.add_argument("--batch-size", type=int, default=4, metavar="N")
    ngr.add_argument("--log-out", metavar="CSV", help="also write the per-step log")
    ngr.add_argument("--acceptance-out", metavar="PATH",
                     help="also fit an acceptance model for adaspec-sim/adaspec-validate "
                          "from the rounds that proposed (see calibrate.ngram)")
    ovh = sub.add_parser("overhead", help="measure the per-pass overhead of decode passes "
                                          "(pass time not spent in the operators' work)")
    _model_args(ovh, draft="none")
    ovh.add_argument("--batches", default="1,2,4,8,16,32", metavar="B,B,...",
                     help="batch sizes, one decode pass of one token per sequence each "
                          "(default 1,2,4,8,16,32)")
    ovh.add_argument("--context", type=int, default=512, metavar="N",
                     help="cached tokens per sequence (default 512)")
    ovh.add_argument("--repeats", type=int, default=20, metavar="N",
                     help="timed runs per batch size, and as many profiled (default 20)")
    ovh.add_argument("--warmup", type=int, default=5, metavar="N",
                     help="untimed runs per batch size (default 5)")
    return parser


def _load_pair(args: argparse.Namespace, with_draft: bool = True) -> tuple[Any, Any]:
    """(target, draft) as the options name them; draft None without ``with_draft``."""
    try:
        import torch
    except ImportError:
        raise ConfigError("adaspec-calibrate needs torch and transformers "
                          "(pip install 'adaspec-sim[real]')") from None
    from realrun.models import load_model

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    target = load_model(args.target, device=args.device, dtype=args.dtype, seed=args.seed)
    draft = (load_model(args.draft, device=args.device, dtype=args.dtype, seed=args.seed + 1)
             if with_draft else None)
    return target, draft


def _weights_origin(loaded: Any) -> dict[str, Any]:
    """Where the model's weights came from: its spec and, for a fetched model, the sha256 and
    size of the GGUF it was converted from (the fetch marker)."""
    import json

    from realrun.fetch import MARKER_FILE

    origin: dict[str, Any] = {"spec": loaded.source, "random_weights": bool(loaded.random_weights)}
    if loaded.source.startswith("cache:"):
        try:
            marker = json.loads((Path(loaded.source[6:]) / MARKER_FILE).read_text(encoding="utf-8"))
            origin.update({k: marker[k] for k in ("gguf_sha256", "gguf_bytes") if k in marker})
        except (OSError, ValueError):
            pass
    return origin


def _eos_ids(target: Any) -> list[int]:
    """The tokenizer's EOS id (decoding stops there), none for a model without a tokenizer."""
    if target.tokenizer is not None and target.tokenizer.eos_token_id is not None:
        return [int(target.tokenizer.eos_token_id)]
    return []


def _progress(args: argparse.Namespace) -> bool:
    """Progress bars on stderr unless --quiet (also when redirected: calibrations are long)."""
    return not args.quiet


def _latency(args: argparse.Namespace) -> int:
    check_real_model_args(args)
    check_out_file(args.out)
    if args.k_max < 0:
        raise ConfigError("--k-max must be >= 0")
    check_non_negative("--draft-overhead-ms", args.draft_overhead_ms)
    require_real_extra("adaspec-calibrate")
    from calibrate.fit import fit_all
    from calibrate.grid import load_grid, with_overrides
    from calibrate.latency import time_grid
    from calibrate.profile_io import (
        build_profile,
        fit_summary,
        hardware_info,
        model_info,
        software_info,
        write_profile,
    )

    grid = with_overrides(load_grid(args.grid), args.repeats, args.warmup)
    began = time.perf_counter()
    target, draft = _load_pair(args)
    print(f"timing {target.label} + {draft.label}: {grid.points(args.k_max)} grid points "
          f"x {grid.warmup}+{grid.repeats} runs ({grid.name} grid)", file=sys.stderr)
    samples = time_grid(target.model, draft.model, grid, k_max=args.k_max, seed=args.seed,
                        progress=_progress(args))
    ops = fit_all(samples)
    config = {"target": args.target, "draft": args.draft, "device": args.device,
              "dtype": args.dtype, "k_max": args.k_max, "grid": args.grid,
              "repeats": grid.repeats, "warmup": grid.warmup, "threads": args.threads,
              "seed": args.seed}
    doc = build_profile(config=config, hardware=hardware_info(target.device),
                        software=software_info(),
                        models={"target": model_info(target), "draft": model_info(draft)},
                        grid=grid.to_dict(args.k_max), ops=ops, seed=args.seed,
                        wall_s=round(time.perf_counter() - began, 3),
                        draft_overhead_s=args.draft_overhead_ms / 1e3)
    path = write_profile(args.out, doc)
    print(fit_summary(doc))
    print(f"wrote {path}")
    return 0


def _acceptance(args: argparse.Namespace) -> int:
    require_real_extra("adaspec-calibrate")  # one line, not an import traceback
    from calibrate.acceptance import default_prompts_path, load_prompts, run_acceptance
    from calibrate.acceptance_fit import fit_acceptance
    from calibrate.profile_io import hardware_info, model_info, software_info
    from sim.acceptance.io import save_acceptance
    from sim.output import file_sha256

    check_real_model_args(args)
    for label, value in (("--k", args.k), ("--limit", args.limit),
                         ("--max-new-tokens", args.max_new_tokens),
                         ("--max-prompt-tokens", args.max_prompt_tokens),
                         ("--batch-size", args.batch_size)):
        if value < 1:
            raise ConfigError(f"{label} must be >= 1")
    prompts_path = Path(args.prompts) if args.prompts else default_prompts_path()
    if not prompts_path.is_file():
        raise ConfigError(f"--prompts {prompts_path}: no such file")
    out = check_out_file(args.out)
    if args.log_out:
        check_out_file(args.log_out, "--log-out")
    target, draft = _load_pair(args)
    prompts = load_prompts(prompts_path, tokenizer=target.tokenizer, limit=args.limit,
                           max_prompt_tokens=args.max_prompt_tokens)
    eos = _eos_ids(target)
    began = time.perf_counter()
    run = run_acceptance(target.model, draft.model, prompts, k=args.k,
                         max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                         eos_token_ids=eos, progress=_progress(args))
    meta = {
        "tool": "adaspec-calibrate acceptance",
        "config": {"target": args.target, "draft": args.draft, "device": args.device,
                   "dtype": args.dtype, "k": args.k, "limit": args.limit,
                   "max_new_tokens": args.max_new_tokens,
                   "max_prompt_tokens": args.max_prompt_tokens, "batch_size": args.batch_size},
        "inputs": {"prompts": {"path": str(prompts_path), "sha256": file_sha256(prompts_path)},
                   "target": model_info(target), "draft": model_info(draft)},
        "seed": args.seed, "hardware": hardware_info(target.device), "software": software_info(),
        "wall_s": round(time.perf_counter() - began, 3),
    }
    if target.random_weights or draft.random_weights:
        meta["warning"] = "random weights: acceptance of random models is not a real pair's"
    source = (f"adaspec-calibrate acceptance: {target.name} verifying {draft.name}, greedy, "
              f"k={args.k}, {len(prompts)} prompts from {prompts_path.name}")
    fit = fit_acceptance(run.log, name=args.name or out.stem, source=source, meta=meta)
    save_acceptance(replace(fit.params, meta={**fit.params.meta, "fit": fit.diagnostics}), out)
    if args.log_out:
        run.log.to_csv(args.log_out, index=False)
    diag = fit.diagnostics
    print(f"{diag['drafted_tokens']} drafted tokens over {diag['requests']} prompts; "
          f"acceptance rate {diag['observed_acceptance_rate']:.3f}; mean accepted length "
          f"observed {diag['observed_mean_accepted_length']:.3f}, fitted "
          f"{diag['fitted_mean_accepted_length']:.3f} (k={diag['k']})")
    print(f"wrote {out}")
    return 0


def _overhead(args: argparse.Namespace) -> int:
    check_real_model_args(args)
    try:
        batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        raise ConfigError(f"--batches must be integers >= 1 separated by commas, got "
                          f"{args.batches!r}") from None
    from calibrate.overhead import OVERHEAD_KIND, check_overhead_options
    check_overhead_options(batches, args.context, args.repeats, args.warmup)
    out = check_out_file(args.out)
    require_real_extra("adaspec-calibrate")
    from datetime import datetime, timezone

    from calibrate.overhead import format_table, measure_overhead, summarize
    from calibrate.profile_io import hardware_info, model_info, software_info, write_profile
    from sim import SCHEMA_VERSION, __version__

    target, _ = _load_pair(args, with_draft=False)
    print(f"timing decode passes of {target.label}: batches {batches}, {args.context} cached "
          f"tokens each, {args.warmup}+{args.repeats} runs, then {args.repeats} profiled",
          file=sys.stderr)
    began = time.perf_counter()
    samples = measure_overhead(target.model, batches, context=args.context,
                               repeats=args.repeats, warmup=args.warmup, seed=args.seed)
    hardware = hardware_info(target.device)
    doc = {"schema_version": SCHEMA_VERSION, "kind": OVERHEAD_KIND,
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "tool": f"adaspec-calibrate overhead {__version__}",
           "config": {"target": args.target, "device": args.device, "dtype": args.dtype,
                      "batches": batches, "context_per_seq": args.context,
                      "repeats": args.repeats, "warmup": args.warmup,
                      "threads": hardware["torch_threads"]},
           "inputs": {"target": _weights_origin(target)}, "seed": args.seed,
           "hardware": hardware, "software": software_info(),
           "models": {"target": model_info(target)},
           "wall_s": round(time.perf_counter() - began, 3),
           "definitions": {
               "pass_s_median": "median time of one decode pass, timed as adaspec-calibrate "
                                "latency times passes (CUDA events on a GPU)",
               "busy_s": "per pass, the operators' own work under torch.profiler: kernels' "
                         "self device time on a GPU, aten operators' self CPU time on a CPU",
               "overhead_s": "pass_s_median - busy_s: the pass's time outside the operators "
                             "(host code, Python, launches the device waits on)"},
           "samples": samples, "summary": summarize(samples)}
    write_profile(out, doc)
    print(format_table(samples))
    print(f"wrote {out}")
    return 0


def _ngram(args: argparse.Namespace) -> int:
    require_real_extra("adaspec-calibrate")  # one line, not an import traceback
    from calibrate.acceptance import default_prompts_path, load_prompts
    from calibrate.ngram import (build_document, format_summary, per_category,
                                 run_ngram_acceptance)
    from calibrate.profile_io import hardware_info, model_info, software_info, write_profile
    from realrun.lookup import NgramConfig
    from sim.output import file_sha256

    check_real_model_args(args)
    for label, value in (("--k", args.k), ("--per-category", args.per_category),
                         ("--max-new-tokens", args.max_new_tokens),
                         ("--max-prompt-tokens", args.max_prompt_tokens),
                         ("--batch-size", args.batch_size)):
        if value < 1:
            raise ConfigError(f"{label} must be >= 1")
    lookup = NgramConfig(args.ngram_min, args.ngram_max)
    prompts_path = Path(args.prompts) if args.prompts else default_prompts_path()
    if not prompts_path.is_file():
        raise ConfigError(f"--prompts {prompts_path}: no such file")
    out = check_out_file(args.out)
    for option, path in (("--log-out", args.log_out), ("--acceptance-out", args.acceptance_out)):
        if path:
            check_out_file(path, option)
    target, _ = _load_pair(args, with_draft=False)
    prompts = per_category(load_prompts(prompts_path, tokenizer=target.tokenizer,
                                        max_prompt_tokens=args.max_prompt_tokens),
                           args.per_category)
    eos = _eos_ids(target)
    categories = len({p.category for p in prompts})
    print(f"prompt lookup on {target.label}: {len(prompts)} prompts ({categories} categories), "
          f"k={args.k}, n-grams {lookup.max_n}..{lookup.min_n}, "
          f"{args.max_new_tokens} new tokens", file=sys.stderr)
    began = time.perf_counter()
    run = run_ngram_acceptance(target.model, prompts, k=args.k,
                               max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                               config=lookup, eos_token_ids=eos, progress=_progress(args))
    wall = time.perf_counter() - began
    hardware = hardware_info(target.device)
    config = {"target": args.target, "device": args.device, "dtype": args.dtype, "k": args.k,
              "ngram": lookup.to_dict(), "per_category": args.per_category,
              "max_new_tokens": args.max_new_tokens,
              "max_prompt_tokens": args.max_prompt_tokens, "batch_size": args.batch_size,
              "threads": hardware["torch_threads"], "prompts_used": len(prompts),
              "eos_token_ids": eos}
    inputs = {"prompts": {"path": str(prompts_path), "sha256": file_sha256(prompts_path)},
              "target": _weights_origin(target)}
    warning = ("random weights: the acceptance of a random model is not a real model's"
               if target.random_weights else None)
    doc = build_document(run=run, k=args.k, config=config, inputs=inputs, seed=args.seed,
                         hardware=hardware, software=software_info(),
                         model=model_info(target), wall_s=wall, warning=warning)
    write_profile(out, doc)
    if args.log_out:
        run.steps.to_csv(args.log_out, index=False)
    if args.acceptance_out:
        from calibrate.acceptance_fit import fit_acceptance
        from sim.acceptance.io import save_acceptance

        if run.tokens.empty:
            raise ConfigError("no round found a proposal: nothing to fit an acceptance model on")
        fit = fit_acceptance(run.tokens, name=Path(args.acceptance_out).stem,
                             source=(f"adaspec-calibrate ngram: {target.name}, prompt lookup "
                                     f"(n-grams {lookup.max_n}..{lookup.min_n}), greedy, "
                                     f"k={args.k}, {len(prompts)} prompts from "
                                     f"{prompts_path.name}; rounds with a proposal only"),
                             meta={"tool": "adaspec-calibrate ngram", "config": config,
                                   "inputs": inputs, "seed": args.seed})
        save_acceptance(replace(fit.params, meta={**fit.params.meta, "fit": fit.diagnostics}),
                        args.acceptance_out)
    print(format_summary(doc))
    print(f"wrote {out}" + (f", {args.log_out}" if args.log_out else "")
          + (f", {args.acceptance_out}" if args.acceptance_out else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    body = {"latency": _latency, "acceptance": _acceptance, "ngram": _ngram,
            "overhead": _overhead}[args.command]
    return run_command("adaspec-calibrate", lambda: body(args))


def entry() -> NoReturn:
    """``adaspec-calibrate`` as a process (the console script, ``python -m``): ``main``, run by
    ``sim.cli_common.run_process``."""
    run_process(main)


if __name__ == "__main__":
    entry()
