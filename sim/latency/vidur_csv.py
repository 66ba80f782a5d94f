"""Reading Vidur-format profile CSVs (microsoft/vidur ``data/profiling/``) without pandas.

Three kinds of file, as Vidur's profilers write them:

* ``mlp.csv``: one row per (``num_tokens``, ``num_tensor_parallel_workers``) with the median
  milliseconds **per layer** of every non-attention op (``time_stats.<op>.median``) and the
  model shape (``n_head``, ``n_kv_head``, ``n_embd``, ``n_expanded_embd``, ``vocab_size``);
* ``attention.csv``: one row per attention shape (``batch_size``, ``kv_cache_size``,
  ``prefill_chunk_size``, ``is_prefill``, ``num_tensor_parallel_workers``) with
  ``time_stats.attn_prefill.median`` / ``time_stats.attn_decode.median``;
* ``network/<topology>/all_reduce.csv``: ``size`` (bytes), ``num_workers``,
  ``devices_per_node`` and ``time_stats.all_reduce.median``.

Each reader returns plain frozen rows (milliseconds converted to seconds); a missing file, a
missing column or a non-numeric cell is one ``InputError`` naming the file.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from sim.errors import InputError

#: The non-attention ops of one layer in Vidur's mlp.csv (``emb`` runs once per pass).
MLP_OPS: tuple[str, ...] = ("emb", "input_layernorm", "attn_pre_proj", "attn_rope",
                            "attn_post_proj", "post_attention_layernorm", "mlp_up_proj",
                            "mlp_act", "mlp_down_proj", "add")
GEMM_OPS: tuple[str, ...] = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
ELEMENTWISE_OPS: tuple[str, ...] = ("emb", "input_layernorm", "attn_rope",
                                    "post_attention_layernorm", "mlp_act", "add")
#: The nine ops each layer runs (every op of mlp.csv but ``emb``, which runs once per pass).
LAYER_OPS: tuple[str, ...] = tuple(op for op in MLP_OPS if op != "emb")


@dataclass(frozen=True)
class MlpRow:
    """One mlp.csv row: op -> median seconds per layer at ``num_tokens`` on ``tp`` ranks."""

    num_tokens: int
    tp: int
    heads: int
    kv_heads: int
    hidden: int
    ffn: int
    vocab: int
    op_s: tuple[tuple[str, float], ...]

    def seconds(self, op: str) -> float:
        return dict(self.op_s)[op]


@dataclass(frozen=True)
class AttentionRow:
    """One attention.csv row (seconds per layer)."""

    tp: int
    batch_size: int
    kv_cache_size: int
    prefill_chunk_size: int
    is_prefill: bool
    seconds: float


@dataclass(frozen=True)
class AllReduceRow:
    """One all_reduce.csv row: an all-reduce of ``size_bytes`` over ``workers`` GPUs."""

    size_bytes: int
    workers: int
    devices_per_node: int
    seconds: float


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except OSError as exc:
        raise InputError(f"cannot read Vidur profile: {exc.strerror or exc}", path=str(path)) from None


def _number(row: dict[str, str], column: str, path: Path) -> float:
    if column not in row:
        raise InputError(f"Vidur profile lacks column {column!r}", path=str(path))
    text = (row[column] or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"column {column!r}: {text!r} is not a number", path=str(path)) from None
    if not math.isfinite(value):
        raise InputError(f"column {column!r}: {text!r} is not finite", path=str(path))
    return value


def read_mlp_csv(path: str | Path) -> list[MlpRow]:
    """All rows of a Vidur ``mlp.csv`` (see the module docstring)."""
    p = Path(path)
    out = []
    for row in _rows(p):
        ops = tuple((op, _number(row, f"time_stats.{op}.median", p) * 1e-3) for op in MLP_OPS)
        out.append(MlpRow(num_tokens=int(_number(row, "num_tokens", p)),
                          tp=int(_number(row, "num_tensor_parallel_workers", p)),
                          heads=int(_number(row, "n_head", p)),
                          kv_heads=int(_number(row, "n_kv_head", p)),
                          hidden=int(_number(row, "n_embd", p)),
                          ffn=int(_number(row, "n_expanded_embd", p)),
                          vocab=int(_number(row, "vocab_size", p)), op_s=ops))
    if not out:
        raise InputError("Vidur mlp.csv has no rows", path=str(p))
    return out


def _flag(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "1.0")


def read_attention_csv(path: str | Path) -> list[AttentionRow]:
    """Rows of a Vidur ``attention.csv`` with a measured prefill or decode time."""
    p = Path(path)
    out = []
    for row in _rows(p):
        prefill = _flag(row.get("is_prefill", ""))
        column = "time_stats.attn_prefill.median" if prefill else "time_stats.attn_decode.median"
        if not (row.get(column) or "").strip():
            continue  # the other kind's column is empty in Vidur's files
        out.append(AttentionRow(tp=int(_number(row, "num_tensor_parallel_workers", p)),
                                batch_size=int(_number(row, "batch_size", p)),
                                kv_cache_size=int(_number(row, "kv_cache_size", p)),
                                prefill_chunk_size=int(_number(row, "prefill_chunk_size", p)),
                                is_prefill=prefill, seconds=_number(row, column, p) * 1e-3))
    if not out:
        raise InputError("Vidur attention.csv has no timed rows", path=str(p))
    return out


def read_all_reduce_csv(path: str | Path) -> list[AllReduceRow]:
    """All rows of a Vidur ``all_reduce.csv``."""
    p = Path(path)
    out = [AllReduceRow(size_bytes=int(_number(r, "size", p)),
                        workers=int(_number(r, "num_workers", p)),
                        devices_per_node=int(_number(r, "devices_per_node", p)),
                        seconds=_number(r, "time_stats.all_reduce.median", p) * 1e-3)
           for r in _rows(p)]
    if not out:
        raise InputError("Vidur all_reduce.csv has no rows", path=str(p))
    return out
