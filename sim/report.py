"""Human-readable comparison table of run summaries (one row per policy).

``rejected`` counts requests refused on arrival (longer than the context, a prompt above the
batched-token budget without chunked prefill, or more KV than the pool holds); ``preempted``
counts requests preempted (by recompute) at least once."""

from __future__ import annotations

from typing import Mapping

COLUMNS = (
    # header, unit scale, width, path into the summary
    ("policy", None, 22, None),
    ("reqs", None, 6, ("requests",)),
    ("rejected", None, 8, ("rejected",)),
    ("preempted", None, 9, ("preempted_requests",)),
    ("TTFT mean s", 1.0, 11, ("ttft_s", "mean")),
    ("TTFT p99 s", 1.0, 10, ("ttft_s", "p99")),
    ("TPOT mean ms", 1e3, 12, ("tpot_s", "mean")),
    ("TPOT p99 ms", 1e3, 11, ("tpot_s", "p99")),
    ("E2E mean s", 1.0, 10, ("e2e_s", "mean")),
    ("E2E p99 s", 1.0, 9, ("e2e_s", "p99")),
    ("SLO %", 100.0, 6, ("slo_attainment",)),
    ("tok/s", 1.0, 8, ("throughput_tokens_per_s",)),
    ("tok/step", 1.0, 8, ("mean_tokens_per_step",)),
)


def _lookup(summary: Mapping, path: tuple[str, ...]):
    value = summary
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _cell(value, scale: float | None, width: int) -> str:
    if value is None:
        return "-".rjust(width)
    if scale is None:
        return str(value).rjust(width)
    if isinstance(value, int) and scale == 1.0:
        return str(value).rjust(width)
    scaled = value * scale
    digits = 1 if abs(scaled) >= 100 else 2 if abs(scaled) >= 10 else 3
    return f"{scaled:.{digits}f}".rjust(width)


def format_table(summaries: Mapping[str, Mapping]) -> str:
    """Fixed-width table; units are in the headers (s, ms, %, tokens/s, tokens/step)."""
    header = "  ".join(name.rjust(width) if i else name.ljust(width)
                       for i, (name, _, width, _) in enumerate(COLUMNS))
    lines = [header, "-" * len(header)]
    for policy, summary in summaries.items():
        cells = [policy.ljust(COLUMNS[0][2])]
        for _, scale, width, path in COLUMNS[1:]:
            cells.append(_cell(_lookup(summary, path), scale, width))
        lines.append("  ".join(cells))
    return "\n".join(lines)
