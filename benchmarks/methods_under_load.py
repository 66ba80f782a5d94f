"""Which speculative method wins at which load: SLO attainment and mean TPOT vs request rate
for each method under its best static depth and under an adaptive policy, on the AdaSpec
traces and the first requests of the Azure conversation trace (README "Speculative methods"),
each a mean over seeds with the seeds' lowest..highest.

    python benchmarks/methods_under_load.py [--jobs 1] [--seeds 5] [--limit 300]
        [--azure-limit 3000] [--out results/methods_under_load] [--figure docs/figures]

Setting: the adaspec-sim defaults (vicuna-7b on the A100-80G preset, single-pass engine,
SLOs TTFT 2 s / TPOT 40 ms) with ``--method`` set; each method's own Spec-Bench acceptance
preset (the default category "" on Azure, which has no categories). Every run is repeated
with seeds 0..N-1 (``--seeds N``): the workload is built and simulated with that seed, as
``adaspec-sim --seed S`` does, so the seed draws every acceptance and, on the AdaSpec traces
(arrival-only), the lengths and categories too. AdaSpec traces: first ``--limit`` requests at
rate x1, x2, x4, x8. Azure conversation: first ``--azure-limit`` requests at x0.25, x0.5, x1
(requests longer than vicuna-7b's 2,048-token context are rejected as vLLM would and count
as misses). Policies per method: ``static:1``, ``static:2``, ``static:4`` (depths; "best
static" is the one with the highest seed-mean SLO attainment, then the lowest seed-mean
TPOT, per cell) and ``adaspec:8`` (for PLD and lookahead decoding, which report no
confidences, ``smartspec:8``); ``nospec`` once per cell. Results go to ``OUT/results.csv``
one row per run (with its seed and its number of requests) as they finish, seed by seed (a
rerun skips rows already there; rows made with other ``--limit``/``--azure-limit`` values stay
in the file but are left out of the tables and the figure), then the tables are printed and
the figure written. Bold: the best method of a
column on the seed means (attainment, then TPOT), with the number of seeds in which it is
also the best of that seed ("k/N").
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import NamedTuple

from seeded_runs import Job, arguments, checked, mean_span, run_each, seeds_label

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = ("draft-model", "eagle", "eagle-2", "medusa", "hydra", "pld", "lookahead")
STATIC = ("static:1", "static:2", "static:4")
TRACES = {"conv": ("traces/adaspec/conv.csv", (1.0, 2.0, 4.0, 8.0)),
          "code": ("traces/adaspec/code.csv", (1.0, 2.0, 4.0, 8.0)),
          "mooncake": ("traces/adaspec/mooncake.csv", (1.0, 2.0, 4.0, 8.0)),
          "azure-conv": ("traces/azure2023/AzureLLMInferenceTrace_conv.csv", (0.25, 0.5, 1.0))}
#: The (trace, rate scale) columns of the README's table.
README_COLUMNS = (("conv", 1.0), ("conv", 4.0), ("code", 2.0), ("mooncake", 1.0),
                  ("mooncake", 8.0), ("azure-conv", 0.25), ("azure-conv", 0.5),
                  ("azure-conv", 1.0))
FIELDS = ("trace", "rate_scale", "method", "policy", "seed", "requests", "slo_attainment",
          "tpot_ms", "tokens_per_step")
#: ``--limit`` / ``--azure-limit`` defaults; also the limits of rows from a file written before
#: the ``requests`` column (every such run used them)
DEFAULT_LIMIT = 300
DEFAULT_AZURE_LIMIT = 3000


def adaptive_policy(method: str) -> str:
    from sim.drafters.presets import get_method
    return "adaspec:8" if get_method(method).has_confidence else "smartspec:8"


def requests_for(trace: str, limit: int, azure_limit: int) -> int:
    """How many of ``trace``'s first requests a run replays."""
    return azure_limit if trace == "azure-conv" else limit


def jobs_for(limit: int, azure_limit: int, seeds: int) -> list[Job]:
    """Every run, seed by seed (a cut-short run leaves whole seeds behind)."""
    from sim.latency.iteration import DEFAULT_ENGINE

    jobs = []
    for seed in range(seeds):
        for trace, (path, scales) in TRACES.items():
            count = requests_for(trace, limit, azure_limit)
            for scale in scales:
                runs = [("draft-model", "nospec")] + [
                    (m, p) for m in METHODS for p in (*STATIC, adaptive_policy(m))]
                jobs += [Job(str(ROOT / path), policy, DEFAULT_ENGINE, count, scale, seed,
                             method) for method, policy in runs]
    return jobs


def trace_name(job: Job) -> str:
    return next(name for name, (path, _) in TRACES.items() if str(ROOT / path) == job.trace)


def row_key(row: dict) -> tuple:
    return (row["trace"], row["rate_scale"], row["method"], row["policy"], row["seed"],
            row["requests"])


def job_key(job: Job) -> tuple:
    return trace_name(job), job.rate, job.method, job.policy, job.seed, job.limit


def read_rows(path: Path) -> list[dict]:
    """The results so far; rows of a file from before the seed column are seed 0's (the
    only seed that version ran), rows from before the requests column used the default
    limits."""
    if not path.exists():
        return []
    with path.open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["rate_scale"] = float(row["rate_scale"])
        row["seed"] = int(row.get("seed") or 0)
        row["requests"] = int(row.get("requests") or requests_for(
            row["trace"], DEFAULT_LIMIT, DEFAULT_AZURE_LIMIT))
        for key in ("slo_attainment", "tpot_ms", "tokens_per_step"):
            row[key] = float(row[key])
    return rows


def record(path: Path, jobs: list[Job], processes: int) -> None:
    """Run the jobs whose rows ``path`` lacks, appending each row as it finishes (a file
    from before the seed column is rewritten with it first)."""
    rows = read_rows(path)
    done = {row_key(r) for r in rows}
    todo = [j for j in jobs if job_key(j) not in done]
    if not todo:
        return
    with path.open("a+", newline="") as f:
        f.seek(0)
        if f.readline().strip().split(",") != list(FIELDS):
            f.seek(0)
            f.truncate()
            writer = csv.DictWriter(f, FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        writer = csv.DictWriter(f, FIELDS)
        for job, out in run_each(todo, processes):
            writer.writerow({"trace": trace_name(job), "rate_scale": job.rate,
                             "method": job.method, "policy": job.policy, "seed": job.seed,
                             "requests": job.limit,
                             "slo_attainment": out.slo_attainment,
                             "tpot_ms": out.tpot_mean_s * 1e3,
                             "tokens_per_step": out.tokens_per_step})
            f.flush()


class Series(NamedTuple):
    """One policy's runs in one cell, by seed: attainment in %, mean TPOT in ms."""

    policy: str
    seeds: tuple[int, ...]
    attainment_pct: tuple[float, ...]
    tpot_ms: tuple[float, ...]

    def rank(self) -> tuple[float, float]:
        """Seed means, ordered so that higher is better: (attainment, -TPOT)."""
        n = len(self.seeds)
        return sum(self.attainment_pct) / n, -sum(self.tpot_ms) / n

    def rank_in(self, seed: int) -> tuple[float, float]:
        i = self.seeds.index(seed)
        return self.attainment_pct[i], -self.tpot_ms[i]

    def cell(self) -> str:
        """'mean % (low..high) (mean TPOT ms)'."""
        return f"{mean_span(self.attainment_pct)} ({-self.rank()[1]:.1f})"


def with_limits(rows: list[dict], limit: int, azure_limit: int) -> list[dict]:
    """The rows made with these limits (a file may hold runs of several)."""
    return [r for r in rows if r["requests"] == requests_for(r["trace"], limit, azure_limit)]


def series(rows: list[dict], seeds: int) -> dict[tuple, Series]:
    """(trace, rate scale, method, policy) -> its runs with seeds 0..seeds-1."""
    runs: dict[tuple, dict[int, dict]] = {}
    for row in rows:
        if row["seed"] < seeds:
            runs.setdefault(row_key(row)[:4], {})[row["seed"]] = row
    out = {}
    for key, by_seed in runs.items():
        order = sorted(by_seed)
        out[key] = Series(key[3], tuple(order),
                          tuple(by_seed[s]["slo_attainment"] * 100 for s in order),
                          tuple(by_seed[s]["tpot_ms"] for s in order))
    return out


def best_static(table: dict[tuple, Series]) -> dict[tuple, Series]:
    """(trace, rate, method) -> the static depth with the best seed means (attainment, then
    TPOT)."""
    best: dict[tuple, Series] = {}
    for key, runs in table.items():
        if runs.policy.startswith("static:"):
            cur = best.get(key[:3])
            if cur is None or runs.rank() > cur.rank():
                best[key[:3]] = runs
    return best


def adaptive(table: dict[tuple, Series]) -> dict[tuple, Series]:
    """(trace, rate, method) -> the method's adaptive policy's runs."""
    return {key[:3]: runs for key, runs in table.items()
            if not runs.policy.startswith(("static:", "nospec"))}


def winner(column: dict[str, Series]) -> tuple[str, int, int]:
    """The best method of a column on the seed means (attainment, then TPOT; the first in
    METHODS on a tie), the number of seeds in which it is also that seed's best, and the
    number of seeds every method ran."""
    best = max(column, key=lambda m: column[m].rank())
    common = set.intersection(*(set(s.seeds) for s in column.values()))
    wins = sum(max(column, key=lambda m: column[m].rank_in(seed)) == best for seed in common)
    return best, wins, len(common)


def _column(table: dict[tuple, Series], trace: str, scale: float) -> dict[str, Series]:
    return {m: table[trace, scale, m] for m in METHODS if (trace, scale, m) in table}


def _marked(runs: Series | None, best: tuple[str, int, int], method: str,
            suffix: str = "") -> str:
    if runs is None:
        return "-"
    if method != best[0]:
        return runs.cell() + suffix
    return f"**{runs.cell()}** {best[1]}/{best[2]}{suffix}"


def tables(rows: list[dict], seeds: int) -> str:
    """The full table per trace, then the README's table."""
    table = series(rows, seeds)
    statics, adaptives = best_static(table), adaptive(table)
    plain = {key[:2]: runs for key, runs in table.items() if runs.policy == "nospec"}
    out = [f"Each cell: {seeds_label(seeds)} SLO attainment % (mean TPOT ms); best static: the "
           "depth with the best seed means. Bold: best method of the column on the seed means, "
           "k/N: in how many of the N seeds it is also that seed's best."]
    short = [k for k, runs in table.items() if len(runs.seeds) < seeds]
    if short:
        out.append(f"INCOMPLETE: {len(short)} runs have fewer than {seeds} seeds.")
    for trace, (_, scales) in TRACES.items():
        if not any(k[0] == trace for k in plain):
            continue
        out += [f"\n{trace}: best static depth | adaptive policy per rate scale\n",
                "| method | " + " | ".join(f"x{s:g} best static | x{s:g} adaptive" for s in scales)
                + " |", "|---|" + "---|---|" * len(scales)]
        out.append("| nospec | " + " | ".join(
            (plain[trace, s].cell() if (trace, s) in plain else "-") + " | -" for s in scales)
            + " |")
        tops = {(s, kind): winner(_column(kind_table, trace, s)) for s in scales
                for kind, kind_table in (("static", statics), ("adaptive", adaptives))
                if _column(kind_table, trace, s)}
        for method in METHODS:
            cells = []
            for s in scales:
                b, a = statics.get((trace, s, method)), adaptives.get((trace, s, method))
                cells.append(_marked(b, tops.get((s, "static"), ("",)), method,
                                     f" {b.policy}" if b else ""))
                cells.append(_marked(a, tops.get((s, "adaptive"), ("",)), method))
            out.append(f"| {method} | " + " | ".join(cells) + " |")
    out.append("\n" + readme_table(table, statics, adaptives, plain))
    return "\n".join(out)


def readme_table(table: dict[tuple, Series], statics: dict[tuple, Series],
                 adaptives: dict[tuple, Series], plain: dict[tuple, Series]) -> str:
    """README columns; each cell the adaptive policy's attainment (TPOT), after the
    semicolon the best static depth's attainment; bold on the adaptive policies."""
    columns = [c for c in README_COLUMNS if c in plain]
    name = {"azure-conv": "Azure"}
    out = ["| method | " + " | ".join(f"{name.get(t, t)} x{s:g}" for t, s in columns) + " |",
           "|---|" + "---|" * len(columns),
           "| nospec | " + " | ".join(plain[c].cell() for c in columns) + " |"]
    tops = {c: winner(_column(adaptives, *c)) for c in columns}
    for method in METHODS:
        cells = []
        for c in columns:
            a, b = adaptives.get((*c, method)), statics.get((*c, method))
            tail = f"; {mean_span(b.attainment_pct)}" if b else ""
            cells.append(_marked(a, tops[c], method, tail) if a else "-")
        out.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def figure(rows: list[dict], seeds: int, out_dir: Path,
           limits: tuple[int, int] = (DEFAULT_LIMIT, DEFAULT_AZURE_LIMIT)) -> list[Path]:
    from sim.plots.common import new_figure, policy_colors, save_figure

    table = series(rows, seeds)
    statics, adaptives = best_static(table), adaptive(table)
    plain = {key[:3]: runs for key, runs in table.items() if runs.policy == "nospec"}
    traces = [t for t in TRACES if any(k[0] == t for k in table)]
    colors = policy_colors(METHODS)
    fig = new_figure(3.2 * len(traces) + 1.2, 5.8)
    axes = fig.subplots(2, len(traces), squeeze=False)
    lines = [(m, t, s, colors[m]) for m in METHODS
             for t, s in ((adaptives, "-"), (statics, "--"))]
    lines.append(("draft-model", plain, ":", "black"))
    for col, trace in enumerate(traces):
        scales = TRACES[trace][1]
        for method, kind, style, color in lines:
            pts = [(s, kind[trace, s, method]) for s in scales if (trace, s, method) in kind]
            if not pts:
                continue
            xs = [s for s, _ in pts]
            label = None if col else ("nospec" if kind is plain else
                                      method if style == "-" else None)
            for ax, values in ((axes[0][col], [r.attainment_pct for _, r in pts]),
                               (axes[1][col], [r.tpot_ms for _, r in pts])):
                ax.plot(xs, [sum(v) / len(v) for v in values], style, color=color,
                        marker="o", ms=3, label=label if ax is axes[0][col] else None)
                if seeds > 1:  # the seeds' lowest..highest, shaded
                    ax.fill_between(xs, [min(v) for v in values], [max(v) for v in values],
                                    color=color, alpha=0.12, linewidth=0)
        axes[0][col].set_title(trace)
        for ax in (axes[0][col], axes[1][col]):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("rate scale")
        axes[0][col].set_ylabel("SLO attainment %")
        axes[1][col].set_ylabel("mean TPOT ms")
        axes[1][col].set_yscale("log")
    fig.legend(loc="outside right center", fontsize=7, title="solid: adaptive\ndashed: best static",
               title_fontsize=7)
    fig.suptitle("Which method wins at which load" + (
        f" (mean of {seeds} seeds; shaded: lowest..highest)" if seeds > 1 else " (seed 0)"))
    return save_figure(fig, out_dir, "methods_under_load",
                       header={"source": "benchmarks/methods_under_load.py", "seeds": seeds,
                               "requests": limits[0], "azure_requests": limits[1]})


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, seeds=5)
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT)
    parser.add_argument("--azure-limit", type=int, default=DEFAULT_AZURE_LIMIT)
    parser.add_argument("--out", default="results/methods_under_load")
    parser.add_argument("--figure", default="docs/figures")
    parser.add_argument("--report-only", action="store_true",
                        help="print and plot what the results file has; run nothing")
    args = checked(parser, argv)
    if args.limit < 1 or args.azure_limit < 1:
        parser.error("--limit and --azure-limit must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.csv"
    if not args.report_only:
        record(path, jobs_for(args.limit, args.azure_limit, args.seeds), args.jobs)
    every = read_rows(path)
    rows = with_limits(every, args.limit, args.azure_limit)
    print(f"first {args.limit} requests of each AdaSpec trace, {args.azure_limit} of Azure"
          + (f" ({len(every) - len(rows)} rows of {path} made with other limits left out)"
             if len(rows) < len(every) else ""))
    print(tables(rows, args.seeds))
    for written in figure(rows, args.seeds, Path(args.figure), (args.limit, args.azure_limit)):
        print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
