"""Check the AdaSpec paper's qualitative claims on a finished ``sweeps/paper_claims.toml`` sweep
and print them as Markdown, both serving engines side by side (the README's results tables
come from here).

    adaspec-sweep sweeps/paper_claims.toml --out results/paper_claims
    PYTHONPATH=. python benchmarks/paper_claims.py results/paper_claims

Claims (issue 3): static k=5 is the best static k at light load and the worst under heavy load;
AdaSpec's SLO attainment >= every other non-oracle policy; AdaSpec's mean TPOT within 5 % of
the best static k; the oracle bounds everyone (lowest mean TPOT, highest attainment). Each
cell is checked under every engine of the sweep (``engine`` config axis; a sweep without it
is one single-pass table).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sim.latency.iteration import DEFAULT_ENGINE, ENGINES
from sim.sweep.table import read_table

STATIC = ("static:1", "static:3", "static:5")
CLAIMS = ("within 5 %", "attainment >=", "oracle bounds")


def _cells(table):
    """(trace, rate) -> {engine: cell indexed by policy}, in table order."""
    table = table.assign(trace_name=table["trace"].map(lambda p: Path(p).stem))
    if "engine" not in table:
        table = table.assign(engine=DEFAULT_ENGINE)
    cells: dict[tuple[str, float], dict[str, object]] = {}
    for (trace, rate, engine), cell in table.groupby(["trace_name", "rate_scale", "engine"],
                                                     sort=False):
        cells.setdefault((trace, rate), {})[engine] = cell.set_index("policy")
    return cells


def check_cell(cell) -> tuple[str, dict[str, bool]]:
    """One engine's Markdown cells for one (trace, rate) and which claims hold there."""
    tpot = cell["tpot_s_mean"] * 1e3
    slo = cell["slo_attainment"] * 100
    best_static = tpot[list(STATIC)].idxmin()
    gap = tpot["adaspec:8"] / tpot[best_static] - 1
    others = slo.drop(["adaspec:8", "oracle:8"])
    rank = int(tpot[list(STATIC)].rank().loc["static:5"])
    held = {"within 5 %": bool(gap <= 0.05),
            "attainment >=": bool(slo["adaspec:8"] >= others.max() - 1e-9),
            "oracle bounds": bool(tpot["oracle:8"] <= tpot.min() + 1e-9
                                  and slo["oracle:8"] >= slo.max() - 1e-9)}
    text = (f"{best_static} ({tpot[best_static]:.2f}) | {tpot['adaspec:8']:.2f} ({gap:+.1%}) | "
            f"{slo['adaspec:8']:.1f} | {others.max():.1f} ({others.idxmax()}) | "
            f"{tpot['oracle:8']:.2f} / {slo['oracle:8']:.1f} | {rank}")
    return text, held


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__)
        return 2
    cells = _cells(read_table(Path(argv[0]) / "results.csv"))
    engines = [e for e in ENGINES if any(e in by_engine for by_engine in cells.values())]
    columns = ("best static (TPOT ms)", "adaspec:8 TPOT ms (vs best static)", "adaspec SLO %",
               "best other non-oracle SLO %", "oracle TPOT ms / SLO %", "static:5 rank of 3")
    print("| trace | rate x | " + " | ".join(f"{e}: {c}" for e in engines for c in columns)
          + " |")
    print("|---|---|" + "---|" * (len(columns) * len(engines)))
    held = {e: dict.fromkeys(CLAIMS, 0) for e in engines}
    count = dict.fromkeys(engines, 0)
    for (trace, rate), by_engine in cells.items():
        parts = []
        for engine in engines:
            if engine not in by_engine:
                parts.append(" | ".join(["-"] * 6))
                continue
            text, ok = check_cell(by_engine[engine])
            parts.append(text)
            count[engine] += 1
            for claim, value in ok.items():
                held[engine][claim] += value
        print(f"| {trace} | {rate:g} | " + " | ".join(parts) + " |")
    print()
    for engine in engines:
        print(f"{engine}: " + ", ".join(f"{claim}: {n}/{count[engine]} cells"
                                        for claim, n in held[engine].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
