"""Check the AdaSpec paper's qualitative claims on a finished ``sweeps/paper_claims.toml`` sweep
and print them as Markdown (the README's results table comes from here).

    adaspec-sweep sweeps/paper_claims.toml --out results/paper_claims
    python benchmarks/paper_claims.py results/paper_claims

Claims (issue 3): static k=5 is the best static k at light load and the worst under heavy load;
AdaSpec's SLO attainment >= every other non-oracle policy; AdaSpec's mean TPOT within 5 % of
the best static k; the oracle bounds everyone (lowest mean TPOT, highest attainment).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sim.sweep.table import read_table

STATIC = ("static:1", "static:3", "static:5")


def _cells(table):
    table = table.assign(trace_name=table["trace"].map(lambda p: Path(p).stem))
    for (trace, rate), cell in table.groupby(["trace_name", "rate_scale"], sort=False):
        yield trace, rate, cell.set_index("policy")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__)
        return 2
    table = read_table(Path(argv[0]) / "results.csv")
    print("| trace | rate x | best static (TPOT) | adaspec:8 TPOT ms | vs best static | "
          "adaspec SLO % | best other non-oracle SLO % | oracle TPOT ms / SLO % | "
          "static:5 rank (1 = best TPOT of 3 statics) |")
    print("|---|---|---|---|---|---|---|---|---|")
    held = {"within 5 %": 0, "attainment >=": 0, "oracle bounds": 0, "cells": 0}
    for trace, rate, cell in _cells(table):
        tpot = cell["tpot_s_mean"] * 1e3
        slo = cell["slo_attainment"] * 100
        best_static = tpot[list(STATIC)].idxmin()
        gap = tpot["adaspec:8"] / tpot[best_static] - 1
        others = slo.drop(["adaspec:8", "oracle:8"])
        rank = int(tpot[list(STATIC)].rank().loc["static:5"])
        bounds = (tpot["oracle:8"] <= tpot.min() + 1e-9) and (slo["oracle:8"] >= slo.max() - 1e-9)
        held["cells"] += 1
        held["within 5 %"] += gap <= 0.05
        held["attainment >="] += slo["adaspec:8"] >= others.max() - 1e-9
        held["oracle bounds"] += bounds
        print(f"| {trace} | {rate:g} | {best_static} ({tpot[best_static]:.2f}) | "
              f"{tpot['adaspec:8']:.2f} | {gap:+.1%} | {slo['adaspec:8']:.1f} | "
              f"{others.max():.1f} ({others.idxmax()}) | {tpot['oracle:8']:.2f} / "
              f"{slo['oracle:8']:.1f} | {rank} |")
    cells = held.pop("cells")
    print()
    print(", ".join(f"{name}: {count}/{cells} cells" for name, count in held.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
