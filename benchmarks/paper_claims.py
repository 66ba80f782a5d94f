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

A sweep with several seeds (the seed draws the arrival-only traces' lengths and categories and
every acceptance draw) is checked twice: the first table on each policy's mean over the
seeds, and a second table that checks every claim on every seed alone and says in how many
seeds it holds, with the spread of AdaSpec's and the best other policy's attainment. A claim
that holds on the mean but not in every seed is decided by the draw, not by the policies.
"""

from __future__ import annotations

import sys
from pathlib import Path

from seeded_runs import mean_span, span

from sim.latency.iteration import DEFAULT_ENGINE, ENGINES
from sim.sweep.derived import seed_cells
from sim.sweep.table import read_table

STATIC = ("static:1", "static:3", "static:5")
CLAIMS = ("within 5 %", "attainment >=", "oracle bounds")
MAIN = ("nospec", "static:1", "static:3", "static:5", "smartspec:8", "adaspec:8", "oracle:8")


def _cells(table):
    """(trace, rate) -> {engine: cell (rows: policy, or policy x seed)}, in table order."""
    table = table.assign(trace_name=table["trace"].map(lambda p: Path(p).stem))
    if "engine" not in table:
        table = table.assign(engine=DEFAULT_ENGINE)
    cells: dict[tuple[str, float], dict[str, object]] = {}
    for (trace, rate, engine), cell in table.groupby(["trace_name", "rate", "engine"],
                                                     sort=False):
        cells.setdefault((trace, rate), {})[engine] = cell
    return cells


def per_seed(cell) -> list:
    """The cell split by seed: one table indexed by policy per seed, seeds in order."""
    return [part.set_index("policy") for _, part in cell.groupby("seed", sort=True)]


def check_cell(cell) -> tuple[str, dict[str, bool]]:
    """One engine's Markdown cells for one (trace, rate) (a table indexed by policy, one row
    each) and which claims hold there."""
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


def seed_check(cell) -> tuple[dict[str, int], list[float], list[float]]:
    """Every claim checked on each seed alone: (claim -> seeds where it holds, AdaSpec's
    attainment % per seed, AdaSpec's attainment minus the best other non-oracle policy's
    in that seed, in points, per seed)."""
    held = dict.fromkeys(CLAIMS, 0)
    ada, margin = [], []
    for one in per_seed(cell):
        _, ok = check_cell(one)
        for claim, value in ok.items():
            held[claim] += value
        slo = one["slo_attainment"] * 100
        ada.append(slo["adaspec:8"])
        margin.append(slo["adaspec:8"] - slo.drop(["adaspec:8", "oracle:8"]).max())
    return held, ada, margin


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__)
        return 2
    table = read_table(Path(argv[0]) / "results.csv")
    table = table[table["status"] == "ok"]
    cells = _cells(seed_cells(table))  # every metric averaged over the seeds
    by_seed = _cells(table)
    n_seeds = table["seed"].nunique()
    engines = [e for e in ENGINES if any(e in by_engine for by_engine in cells.values())]
    columns = ("best static (TPOT ms)", "adaspec:8 TPOT ms (vs best static)", "adaspec SLO %",
               "best other non-oracle SLO %", "oracle TPOT ms / SLO %", "static:5 rank of 3")
    if n_seeds > 1:
        print(f"Each policy's mean over {n_seeds} seeds:\n")
    print("| trace | rate x | " + " | ".join(f"{e}: {c}" for e in engines for c in columns)
          + " |")
    print("|---|---|" + "---|" * (len(columns) * len(engines)))
    held = {e: dict.fromkeys(CLAIMS, 0) for e in engines}
    every = {e: dict.fromkeys(CLAIMS, 0) for e in engines}
    some = {e: dict.fromkeys(CLAIMS, 0) for e in engines}
    count = dict.fromkeys(engines, 0)
    robust_rows = []
    for (trace, rate), by_engine in cells.items():
        parts = []
        for engine in engines:
            if engine not in by_engine:
                parts.append(" | ".join(["-"] * 6))
                continue
            text, ok = check_cell(by_engine[engine].set_index("policy"))
            parts.append(text)
            count[engine] += 1
            for claim, value in ok.items():
                held[engine][claim] += value
            seeds_held, ada, margin = seed_check(by_seed[(trace, rate)][engine])
            n = len(ada)
            for claim, k in seeds_held.items():
                every[engine][claim] += k == n
                some[engine][claim] += 0 < k < n
            robust_rows.append(
                f"| {trace} | {rate:g} | {engine} | {span(ada)} | "
                f"{mean_span(margin, signed=True)} | "
                + " | ".join(f"{seeds_held[c]}/{n}" for c in CLAIMS) + " |")
        print(f"| {trace} | {rate:g} | " + " | ".join(parts) + " |")
    print()
    for engine in engines:
        print(f"- {engine}: " + ", ".join(f"{claim}: {n}/{count[engine]} cells"
                                          for claim, n in held[engine].items()))
    print(f"\nSLO attainment % of the main policies{' (mean over the seeds)' if n_seeds > 1 else ''}:\n")
    print("| trace | rate x | engine | " + " | ".join(MAIN) + " |")
    print("|---|---|---|" + "---|" * len(MAIN))
    for (trace, rate), by_engine in cells.items():
        for engine in engines:
            if engine in by_engine:
                slo = by_engine[engine].set_index("policy")["slo_attainment"] * 100
                print(f"| {trace} | {rate:g} | {engine} | "
                      + " | ".join(f"{slo[p]:.1f}" for p in MAIN) + " |")
    if n_seeds > 1:
        print(f"\nEvery claim checked on each of the {n_seeds} seeds alone (AdaSpec's attainment,"
              " lowest..highest over the seeds; its margin over the best other non-oracle "
              "policy of the same seed, mean (lowest..highest)):\n")
        print("| trace | rate x | engine | adaspec SLO % | adaspec - best other, points | "
              + " | ".join(f"{c}: seeds" for c in CLAIMS) + " |")
        print("|---|---|---|---|---|" + "---|" * len(CLAIMS))
        print("\n".join(robust_rows))
        print()
        for engine in engines:
            print(f"- {engine}: " + ", ".join(
                f"{claim}: every seed {every[engine][claim]}/{count[engine]}, some seeds "
                f"{some[engine][claim]}" for claim in CLAIMS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
