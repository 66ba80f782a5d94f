"""Command-line options every real-model command shares (adaspec-realrun, adaspec-calibrate)."""

from __future__ import annotations

import argparse


def add_real_model_args(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--target, --draft, --device, --dtype, --threads."""
    parser.add_argument("--target", required=True, metavar="MODEL",
                        help="random:<preset>, a cached name (qwen2.5-coder-1.5b), a model "
                             "directory or a .gguf file")
    parser.add_argument("--draft", required=True, metavar="MODEL", help="draft model, same forms")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    parser.add_argument("--threads", type=int, metavar="N", help="torch CPU threads")
