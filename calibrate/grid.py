"""The shapes the latency calibrator times: grid presets, grid files, the point list.

A grid file is JSON with the ``Grid`` fields: ``batch_sizes``, ``prompt_lengths``,
``context_lengths``, ``tokens_per_seq`` (optional; default 1..k_max+1), ``repeats``,
``warmup`` (and an optional ``name``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from sim.errors import ConfigError, InputError

DEFAULT_K_MAX = 8


@dataclass(frozen=True)
class Grid:
    """The shapes to time. ``tokens_per_seq`` empty means 1..k_max+1."""

    name: str
    batch_sizes: tuple[int, ...]
    prompt_lengths: tuple[int, ...]
    context_lengths: tuple[int, ...]
    tokens_per_seq: tuple[int, ...] = ()
    repeats: int = 5
    warmup: int = 2

    def __post_init__(self) -> None:
        for label in ("batch_sizes", "prompt_lengths", "context_lengths"):
            values = getattr(self, label)
            if not values or any(int(v) < 1 for v in values):
                raise ConfigError(f"grid {label} must be a non-empty list of positive integers")
        if any(int(v) < 1 for v in self.tokens_per_seq):
            raise ConfigError("grid tokens_per_seq must be positive integers")
        if self.repeats < 1 or self.warmup < 0:
            raise ConfigError("grid repeats must be >= 1 and warmup >= 0")

    def verify_tokens(self, k_max: int) -> tuple[int, ...]:
        if self.tokens_per_seq:
            return tuple(sorted(set(int(t) for t in self.tokens_per_seq)))
        return tuple(range(1, k_max + 2))

    def to_dict(self, k_max: int) -> dict[str, Any]:
        data = asdict(self)
        data["tokens_per_seq"] = list(self.verify_tokens(k_max))
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    def points(self, k_max: int) -> int:
        b, p, c = len(self.batch_sizes), len(self.prompt_lengths), len(self.context_lengths)
        return 2 * b * p + b * len(self.verify_tokens(k_max)) * c + b * c


GRIDS: dict[str, Grid] = {
    # Seconds on a CPU with the tiny test models; also a quick look at a real pair.
    "small": Grid("small", (1, 2, 4), (8, 32, 64), (16, 64, 128), (1, 2, 3, 5), repeats=3,
                  warmup=1),
    # A GPU calibration: vLLM-like decode batches, AdaSpec-like context buckets.
    "default": Grid("default", (1, 2, 4, 8, 16, 32), (32, 128, 512, 1024),
                    (128, 512, 1024, 2048), (), repeats=5, warmup=2),
}


def load_grid(spec: str) -> Grid:
    """A grid preset name (``small``, ``default``) or a JSON file with the Grid fields."""
    if spec in GRIDS:
        return GRIDS[spec]
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(f"unknown grid {spec!r}: use {', '.join(GRIDS)} or a JSON file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read grid file ({exc.__class__.__name__})", path=str(path)) from None
    if not isinstance(data, dict):
        raise InputError("grid file must hold a JSON object", path=str(path))
    fields = {"batch_sizes", "prompt_lengths", "context_lengths", "tokens_per_seq", "repeats",
              "warmup"}
    unknown = set(data) - fields - {"name"}
    if unknown:
        raise InputError(f"unknown grid key(s) {', '.join(sorted(unknown))}", path=str(path))
    try:
        kwargs = {k: tuple(int(v) for v in data[k]) if isinstance(data[k], list) else int(data[k])
                  for k in fields & set(data)}
        return Grid(name=str(data.get("name", path.stem)), **kwargs)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad grid file: {exc}", path=str(path)) from None


def grid_points(grid: Grid, k_max: int) -> Iterator[tuple[str, int, int, int, int]]:
    """(op, batch, tokens_per_seq, context_per_seq, prompt_len) of every grid point."""
    for op in ("target_prefill", "draft_prefill"):
        for b in grid.batch_sizes:
            for p in grid.prompt_lengths:
                yield op, b, p, 0, p
    for b in grid.batch_sizes:
        for c in grid.context_lengths:
            for t in grid.verify_tokens(k_max):
                yield "target_verify", b, t, c, 0
    for b in grid.batch_sizes:
        for c in grid.context_lengths:
            yield "draft_step", b, 1, c, 0


def with_overrides(grid: Grid, repeats: int | None = None, warmup: int | None = None) -> Grid:
    """``grid`` with command-line overrides of repeats/warmup."""
    changes = {k: v for k, v in (("repeats", repeats), ("warmup", warmup)) if v is not None}
    return replace(grid, **changes) if changes else grid
