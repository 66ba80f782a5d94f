"""``adaspec-calibrate``: profile realrun's forward passes (``latency``) or measure draft/target
agreement (``acceptance``) and write the files ``adaspec-sim --profile/--acceptance`` read."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from realrun.cli_args import add_real_model_args, check_out_file, check_real_model_args
from sim.cli_common import run_command
from sim.errors import ConfigError


def _model_args(parser: argparse.ArgumentParser) -> None:
    add_real_model_args(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of random weights and inputs")
    parser.add_argument("--out", required=True, metavar="PATH", help="JSON file to write")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adaspec-calibrate", description=__doc__)
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
    return parser


def _load_pair(args: argparse.Namespace) -> tuple[Any, Any]:
    try:
        import torch
    except ImportError:
        raise ConfigError("adaspec-calibrate needs torch and transformers "
                          "(pip install 'adaspec-sim[real]')") from None
    from realrun.models import load_model

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    target = load_model(args.target, device=args.device, dtype=args.dtype, seed=args.seed)
    draft = load_model(args.draft, device=args.device, dtype=args.dtype, seed=args.seed + 1)
    return target, draft


def _progress(args: argparse.Namespace) -> bool:
    """Progress bars on stderr unless --quiet (also when redirected: calibrations are long)."""
    return not args.quiet


def _latency(args: argparse.Namespace) -> int:
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

    check_real_model_args(args)
    check_out_file(args.out)
    if args.k_max < 0:
        raise ConfigError("--k-max must be >= 0")
    if not args.draft_overhead_ms >= 0:
        raise ConfigError("--draft-overhead-ms must be >= 0")
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
    eos = []
    if target.tokenizer is not None and target.tokenizer.eos_token_id is not None:
        eos = [int(target.tokenizer.eos_token_id)]
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    body = _latency if args.command == "latency" else _acceptance
    return run_command("adaspec-calibrate", lambda: body(args))


if __name__ == "__main__":
    sys.exit(main())
