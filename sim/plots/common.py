"""Shared figure plumbing: Agg figures without pyplot state, PNG + SVG saving with provenance
in the file metadata, facet grids and policy colours. Same figure, same bytes (PNG and SVG)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FORMATS = ("png", "svg")
DPI = 120
#: Salt of the SVG element ids: fixed, so the same figure gives the same bytes (matplotlib
#: otherwise salts them with a random uuid per process).
SVG_HASH_SALT = "adaspec-sim"


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure on its own Agg canvas (no global pyplot state, safe in any process)."""
    figure = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def facet_columns(n: int, most: int = 4) -> int:
    """Columns of a near-square grid for ``n`` panels (at most ``most``)."""
    return max(1, min(most, math.ceil(math.sqrt(n))))


def facet_axes(figure: Figure, n: int, ncols: int = 3, sharey: bool = True):
    """``n`` axes on a grid of at most ``ncols`` columns (flattened, unused ones removed)."""
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    axes = figure.subplots(nrows, ncols, sharey=sharey, squeeze=False).ravel().tolist()
    for extra in axes[n:]:
        extra.remove()
    return axes[:n]


def policy_colors(policies: Sequence[str]) -> dict[str, tuple]:
    """A stable colour per policy (tab10 in the given order)."""
    from matplotlib import colormaps
    cmap = colormaps["tab10"]
    return {p: cmap(i % 10) for i, p in enumerate(policies)}


def save_figure(figure: Figure, out_dir: str | os.PathLike, stem: str,
                header: dict | None = None) -> list[Path]:
    """Write ``out_dir/stem.png`` and ``.svg`` atomically; ``header`` (the provenance) goes
    into the metadata of both."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    description = json.dumps(header, sort_keys=True) if header else None
    written = []
    for fmt in FORMATS:
        path = out / f"{stem}.{fmt}"
        tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.{fmt}")
        metadata = {"Description": description} if description else {}
        if fmt == "svg":
            metadata["Date"] = None  # reproducible SVGs: no date, and fixed element ids
        with rc_context({"svg.hashsalt": SVG_HASH_SALT}):
            figure.savefig(tmp, format=fmt, dpi=DPI, metadata=metadata)
        os.replace(tmp, path)
        written.append(path)
    return written
