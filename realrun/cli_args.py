"""Command-line options every real-model command shares (adaspec-realrun, adaspec-calibrate)."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from sim.errors import ConfigError

DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?)$")


def require_real_extra(prog: str) -> None:
    """The real-model commands need torch and transformers: one ConfigError line when either
    is missing (checked without importing them), never an import traceback."""
    from importlib.util import find_spec
    missing = [name for name in ("torch", "transformers") if find_spec(name) is None]
    if missing:
        raise ConfigError(f"{prog} needs torch and transformers ({' and '.join(missing)} "
                          "missing: pip install 'adaspec-sim[real]')")


def add_real_model_args(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *,
                        draft: str = "required") -> None:
    """--target, --draft, --device, --dtype, --threads. ``draft``: ``required``, ``optional``
    (the command checks when it needs one) or ``none`` (no --draft option)."""
    parser.add_argument("--target", required=True, metavar="MODEL",
                        help="random:<preset>, a cached name (qwen2.5-coder-1.5b), a model "
                             "directory or a .gguf file")
    if draft == "required":
        parser.add_argument("--draft", required=True, metavar="MODEL",
                            help="draft model, same forms")
    elif draft == "optional":
        parser.add_argument("--draft", metavar="MODEL",
                            help="draft model, same forms (needed by --method draft-model)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--threads", type=int, metavar="N", help="torch CPU threads")


def add_ngram_args(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--ngram-min, --ngram-max: the n-gram lengths prompt lookup matches (defaults:
    ``realrun.lookup.NgramConfig``'s)."""
    from realrun.lookup import NgramConfig

    parser.add_argument("--ngram-min", type=int, default=NgramConfig.min_n, metavar="N",
                        help=f"prompt lookup: shortest n-gram matched (default {NgramConfig.min_n})")
    parser.add_argument("--ngram-max", type=int, default=NgramConfig.max_n, metavar="N",
                        help=f"prompt lookup: longest n-gram matched (default {NgramConfig.max_n})")


def check_real_model_args(args: argparse.Namespace) -> None:
    """The one check of the shared options, before any model loads: ``--device`` is cpu,
    cuda or cuda:N (whether CUDA is there is checked when the model loads), ``--threads`` >= 1."""
    if not DEVICE_PATTERN.match(args.device):
        raise ConfigError(f"--device must be cpu, cuda or cuda:N, got {args.device!r}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")


def check_out_file(path_text: str, option: str = "--out") -> Path:
    """Fail before hours of work if ``path_text`` cannot be written: it must not be a
    directory and its nearest existing folder must be a writable directory. Creates nothing
    (the writer makes missing folders at the end)."""
    out = Path(path_text)
    if out.is_dir():
        raise ConfigError(f"{option} {out}: is a directory; give a file path")
    existing = out.parent if str(out.parent) else Path(".")
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{option} {out}: cannot write there: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK) or \
            (out.exists() and not os.access(out, os.W_OK)):
        raise ConfigError(f"{option} {out}: cannot write there: permission denied")
    return out
