"""Which speculative method wins at which load: SLO attainment and mean TPOT vs request rate
for each method under its best static depth and under an adaptive policy, on the AdaSpec
traces and the first requests of the Azure conversation trace (README "Speculative methods").

    python benchmarks/methods_under_load.py [--jobs 2] [--limit 300]
        [--azure-limit 3000] [--out results/methods_under_load] [--figure docs/figures]

Setting: the adaspec-sim defaults (vicuna-7b on the A100-80G preset, single-pass engine,
SLOs TTFT 2 s / TPOT 40 ms, seed 0) with ``--method`` set; each method's own Spec-Bench
acceptance preset (the default category "" on Azure, which has no categories). AdaSpec
traces (arrival-only, Spec-Bench lengths and categories): first ``--limit`` requests at rate
x1, x2, x4, x8. Azure conversation: first ``--azure-limit`` requests at x0.25, x0.5, x1
(requests longer than vicuna-7b's 2,048-token context are rejected as vLLM would and count
as misses). Policies per method: ``static:1``, ``static:2``, ``static:4`` (depths; the best
one per cell by SLO attainment, then mean TPOT, is "best static") and ``adaspec:8`` (for PLD
and lookahead decoding, which report no confidences, ``smartspec:8``); ``nospec`` once per
cell. Results go to ``OUT/results.csv`` one row per run as they finish (a rerun skips rows
already there), then the tables are printed and the figure written.
"""

from __future__ import annotations

import argparse
import csv
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = ("draft-model", "eagle", "eagle-2", "medusa", "hydra", "pld", "lookahead")
STATIC = ("static:1", "static:2", "static:4")
TRACES = {"conv": ("traces/adaspec/conv.csv", (1.0, 2.0, 4.0, 8.0)),
          "code": ("traces/adaspec/code.csv", (1.0, 2.0, 4.0, 8.0)),
          "mooncake": ("traces/adaspec/mooncake.csv", (1.0, 2.0, 4.0, 8.0)),
          "azure-conv": ("traces/azure2023/AzureLLMInferenceTrace_conv.csv", (0.25, 0.5, 1.0))}
FIELDS = ("trace", "rate_scale", "method", "policy", "slo_attainment", "tpot_ms",
          "tokens_per_step")


def adaptive_policy(method: str) -> str:
    from sim.drafters.presets import get_method
    return "adaspec:8" if get_method(method).has_confidence else "smartspec:8"


def run_one(job: tuple[str, float, str, str, int]) -> dict:
    from sim.run import SimConfig, simulate
    from sim.workload.spec import WorkloadSpec

    trace, scale, method, policy, limit = job
    spec = WorkloadSpec(trace=str(ROOT / TRACES[trace][0]), limit=limit, rate_scale=scale)
    workload = spec.build(seed=0)  # as adaspec-sim --seed 0 builds it
    summary = simulate(workload, policy, SimConfig(method=method), seed=0).summary
    return {"trace": trace, "rate_scale": scale, "method": method, "policy": policy,
            "slo_attainment": float(summary["slo_attainment"]),
            "tpot_ms": float(summary["tpot_s"]["mean"]) * 1e3,
            "tokens_per_step": float(summary.get("mean_tokens_per_step", float("nan")))}


def jobs_for(limit: int, azure_limit: int) -> list[tuple]:
    jobs = []
    for trace, (_, scales) in TRACES.items():
        count = azure_limit if trace == "azure-conv" else limit
        for scale in scales:
            jobs.append((trace, scale, "draft-model", "nospec", count))
            for method in METHODS:
                for policy in (*STATIC, adaptive_policy(method)):
                    jobs.append((trace, scale, method, policy, count))
    return jobs


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["rate_scale"] = float(row["rate_scale"])
        for key in ("slo_attainment", "tpot_ms", "tokens_per_step"):
            row[key] = float(row[key])
    return rows


def best_static(rows: list[dict]) -> dict[tuple, dict]:
    """(trace, rate, method) -> the static row with the highest attainment (then lowest TPOT)."""
    best: dict[tuple, dict] = {}
    for row in rows:
        if not row["policy"].startswith("static:"):
            continue
        key = (row["trace"], row["rate_scale"], row["method"])
        cur = best.get(key)
        if cur is None or (row["slo_attainment"], -row["tpot_ms"]) > (cur["slo_attainment"],
                                                                       -cur["tpot_ms"]):
            best[key] = row
    return best


def tables(rows: list[dict]) -> str:
    best = best_static(rows)
    adaptive = {(r["trace"], r["rate_scale"], r["method"]): r for r in rows
                if not r["policy"].startswith(("static:", "nospec"))}
    plain = {(r["trace"], r["rate_scale"]): r for r in rows if r["policy"] == "nospec"}
    out = []
    for trace, (_, scales) in TRACES.items():
        if not any(k[0] == trace for k in plain):
            continue
        out += [f"\n{trace}: SLO attainment % (mean TPOT ms) per rate scale; best static depth "
                "| adaptive policy\n",
                "| method | " + " | ".join(f"x{s:g} best static | x{s:g} adaptive" for s in scales)
                + " |", "|---|" + "---|---|" * len(scales)]
        base = [plain.get((trace, s)) for s in scales]
        out.append("| nospec | " + " | ".join(
            (f"{b['slo_attainment'] * 100:.1f} ({b['tpot_ms']:.1f}) | " if b else "- | ") + "-"
            for b in base) + " |")
        for method in METHODS:
            cells = []
            for s in scales:
                b, a = best.get((trace, s, method)), adaptive.get((trace, s, method))
                cells.append(f"{b['slo_attainment'] * 100:.1f} ({b['tpot_ms']:.1f}) "
                             f"{b['policy']}" if b else "-")
                cells.append(f"{a['slo_attainment'] * 100:.1f} ({a['tpot_ms']:.1f})"
                             if a else "-")
            out.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def figure(rows: list[dict], out_dir: Path) -> list[Path]:
    from sim.plots.common import new_figure, policy_colors, save_figure

    best = best_static(rows)
    adaptive = {(r["trace"], r["rate_scale"], r["method"]): r for r in rows
                if not r["policy"].startswith(("static:", "nospec"))}
    traces = [t for t in TRACES if any(r["trace"] == t for r in rows)]
    colors = policy_colors(METHODS)
    fig = new_figure(3.2 * len(traces) + 1.2, 5.6)
    axes = fig.subplots(2, len(traces), squeeze=False)
    for col, trace in enumerate(traces):
        scales = TRACES[trace][1]
        for method in METHODS:
            for table, style in ((best, "--"), (adaptive, "-")):
                pts = [(s, table[(trace, s, method)]) for s in scales
                       if (trace, s, method) in table]
                if not pts:
                    continue
                xs = [s for s, _ in pts]
                label = method if style == "-" and col == 0 else None
                axes[0][col].plot(xs, [r["slo_attainment"] * 100 for _, r in pts], style,
                                  color=colors[method], marker="o", ms=3, label=label)
                axes[1][col].plot(xs, [r["tpot_ms"] for _, r in pts], style,
                                  color=colors[method], marker="o", ms=3)
        plain = [(s, r) for s in scales for r in rows
                 if r["trace"] == trace and r["rate_scale"] == s and r["policy"] == "nospec"]
        if plain:
            axes[0][col].plot([s for s, _ in plain], [r["slo_attainment"] * 100 for _, r in plain],
                              ":", color="black", label="nospec" if col == 0 else None)
            axes[1][col].plot([s for s, _ in plain], [r["tpot_ms"] for _, r in plain], ":",
                              color="black")
        axes[0][col].set_title(trace)
        for ax in (axes[0][col], axes[1][col]):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("rate scale")
        axes[0][col].set_ylabel("SLO attainment %")
        axes[1][col].set_ylabel("mean TPOT ms")
        axes[1][col].set_yscale("log")
    fig.legend(loc="outside right center", fontsize=7, title="solid: adaptive\ndashed: best static",
               title_fontsize=7)
    return save_figure(fig, out_dir, "methods_under_load",
                       header={"source": "benchmarks/methods_under_load.py"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--azure-limit", type=int, default=3000)
    parser.add_argument("--out", default="results/methods_under_load")
    parser.add_argument("--figure", default="docs/figures")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.csv"
    done = {(r["trace"], r["rate_scale"], r["method"], r["policy"]) for r in read_rows(path)}
    todo = [j for j in jobs_for(args.limit, args.azure_limit) if j[:4] not in done]
    if todo and not args.report_only:
        new = not path.exists()
        with path.open("a", newline="") as f, ProcessPoolExecutor(max(1, args.jobs)) as pool:
            writer = csv.DictWriter(f, FIELDS)
            if new:
                writer.writeheader()
            for future in as_completed([pool.submit(run_one, j) for j in todo]):
                writer.writerow(future.result())
                f.flush()
    rows = read_rows(path)
    print(tables(rows))
    for written in figure(rows, Path(args.figure)):
        print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
