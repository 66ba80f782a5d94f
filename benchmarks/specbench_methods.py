"""Spec-Bench at batch size 1, per speculative method: simulated vs published speedup and mean
accepted tokens, overall and per category (docs/specbench_methods.md).

    python benchmarks/specbench_methods.py [--repeats 2] [--seed 0] [--gap-s 60] [--markdown]

Reference: hemingkx/Spec-Bench ``Leaderboard.md`` @fd2c1cd (Apache-2.0; copy in
``../shared/datasets/spec-bench/leaderboard-a100-vicuna-7b.md``): one A100 80GB, Vicuna-7B-v1.3,
greedy, FP16, batch 1. Simulated: the A100-80G preset with vicuna-7b's shape, the workload of
``benchmarks/specbench_batch1.py`` (every Spec-Bench question ``repeats`` times, 60 s apart, so
the batch is 1), each method verifying the depth Spec-Bench ran (``static:D``; the draft
model: ``static:5``, see docs/specbench_batch1.md) against plain decoding.

What is calibrated and what is predicted: each method's acceptance preset is fitted to the
leaderboard's mean accepted tokens (per category: tokens per step proportional to the
published per-category speedups, the leaderboard giving nothing finer); its drafting cost is
built from the latency model's per-op pieces and the stated per-pass overheads
(``sim.drafters``). The speedups are predictions: nothing is fitted to them.

Metrics: "speedup" is Spec-Bench's (mean over answers of tokens / wall time, prefill
included, over the same for plain decoding; ``evaluation/speed.py``); "TPOT speedup" leaves
the prefill out; "tokens/step" is decode tokens / decode steps (a ratio of sums, as the
leaderboard's "#Mean Accepted Tokens"). Goal (issue 14): overall within 10 % of the published
speedup for every method, per category within 15 %.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from specbench_batch1 import _decode_tokens_steps, spec_bench_workload  # noqa: E402

from sim.acceptance.presets import SPEC_BENCH_CATEGORY_TASK, SPEC_BENCH_LEADERBOARD_COMMIT  # noqa: E402
from sim.drafters.acceptance import TASKS, published  # noqa: E402
from sim.drafters.presets import METHODS, get_method  # noqa: E402
from sim.run import SimConfig, simulate  # noqa: E402

OVERALL_GOAL = 0.10
CATEGORY_GOAL = 0.15
DRAFT_MODEL_DEPTH = 5


def method_policy(method: str) -> str:
    preset = get_method(method)
    return f"static:{DRAFT_MODEL_DEPTH if preset.max_depth is None else preset.max_depth}"


def per_request(result, workload) -> pd.DataFrame:
    """Per request: task, TPOT, Spec-Bench's rate (tokens / E2E), decode tokens and steps."""
    req = result.requests.set_index("id").sort_index()
    steps = _decode_tokens_steps(result, workload).reindex(req.index, fill_value=0)
    task = pd.Series([r.category for r in workload.requests]).map(SPEC_BENCH_CATEGORY_TASK)
    return pd.DataFrame({"task": task.to_numpy(), "tpot": req["tpot_s"].to_numpy(),
                         "rate": (req["output_tokens"] / req["e2e_s"]).to_numpy(),
                         "tokens": steps["tokens"].to_numpy(), "steps": steps["steps"].to_numpy()})


def method_table(workload, methods, seed: int, engine: str) -> pd.DataFrame:
    """One row per (method, task or 'overall'): simulated and published numbers."""
    base = per_request(simulate(workload, "nospec", SimConfig(engine=engine), seed=seed), workload)
    rows = []
    for method in methods:
        config = SimConfig(engine=engine, method=method)
        frame = per_request(simulate(workload, method_policy(method), config, seed=seed),
                            workload)
        pub = published(method)
        for name in ("overall", *TASKS):
            part = frame if name == "overall" else frame[frame["task"] == name]
            ref = base if name == "overall" else base[base["task"] == name]
            row = {"method": method, "task": name, "policy": method_policy(method),
                   "tokens_per_step": part["tokens"].sum() / part["steps"].sum(),
                   "speedup": part["rate"].mean() / ref["rate"].mean(),
                   "tpot_speedup": ref["tpot"].mean() / part["tpot"].mean(),
                   "published_speedup": None, "published_tokens": None}
            if pub is not None:
                row["published_speedup"] = pub[1] if name == "overall" else pub[2][name]
                row["published_tokens"] = pub[0] if name == "overall" else None
            rows.append(row)
    return pd.DataFrame(rows)


def _err(sim: float, pub: float | None) -> str:
    if pub is None or pd.isna(pub):
        return ""
    return f"{(sim / pub - 1) * 100:+.1f} %"


def overall_markdown(table: pd.DataFrame) -> str:
    lines = ["| method | policy | tokens/step sim | published | speedup sim | published | error "
             "| TPOT speedup sim | within 10 % |", "|---|---|---|---|---|---|---|---|---|"]
    for _, r in table[table["task"] == "overall"].iterrows():
        pub_s, pub_t = r["published_speedup"], r["published_tokens"]
        ok = ("" if pub_s is None or pd.isna(pub_s)
              else ("yes" if abs(r["speedup"] / pub_s - 1) <= OVERALL_GOAL else "**no**"))
        lines.append(
            f"| {r['method']} | {r['policy']} | {r['tokens_per_step']:.2f} | "
            f"{'-' if pub_t is None or pd.isna(pub_t) else f'{pub_t:.2f}'} | {r['speedup']:.2f} | "
            f"{'-' if pub_s is None or pd.isna(pub_s) else f'{pub_s:.2f}'} | "
            f"{_err(r['speedup'], pub_s)} | {r['tpot_speedup']:.2f} | {ok or '-'} |")
    return "\n".join(lines)


def category_markdown(table: pd.DataFrame) -> str:
    lines = ["| method | " + " | ".join(TASKS) + " | within 15 % |",
             "|---|" + "---|" * (len(TASKS) + 1)]
    for method, part in table[table["task"] != "overall"].groupby("method", sort=False):
        cells, inside, known = [], 0, 0
        for task in TASKS:
            r = part[part["task"] == task].iloc[0]
            pub = r["published_speedup"]
            if pub is None or pd.isna(pub):
                cells.append(f"{r['speedup']:.2f} (-)")
                continue
            known += 1
            inside += abs(r["speedup"] / pub - 1) <= CATEGORY_GOAL
            cells.append(f"{r['speedup']:.2f} / {pub:.2f} ({_err(r['speedup'], pub)})")
        lines.append(f"| {method} | " + " | ".join(cells)
                     + f" | {f'{inside}/{known}' if known else '-'} |")
    return "\n".join(lines)


def tokens_markdown(table: pd.DataFrame) -> str:
    lines = ["| method | overall | " + " | ".join(TASKS) + " |",
             "|---|" + "---|" * (len(TASKS) + 1)]
    for method, part in table.groupby("method", sort=False):
        values = [part[part["task"] == t].iloc[0]["tokens_per_step"] for t in ("overall", *TASKS)]
        lines.append(f"| {method} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    return "\n".join(lines)


def cost_lines(engine: str) -> list[str]:
    """Batch-1 iteration cost per method at the verified depth (context 512 tokens)."""
    from sim.drafters.plan import MethodPlan
    from sim.latency.iteration import DecodeShape, decode_iteration_s
    from sim.run import build_latency, build_padding

    context = 512
    pad = build_padding(SimConfig())
    plain_lat = build_latency(SimConfig(engine=engine))
    plain = plain_lat.target_verify_s(1, pad.pad(1), context)
    lines = [f"Batch-1 iteration at context {context}: plain target pass T = {plain * 1e3:.2f} "
             "ms.", "",
             "| method | verify positions (padded) | drafting ms | verify ms | iteration ms "
             "| iteration / T |", "|---|---|---|---|---|---|"]
    for name, method in METHODS.items():
        config = SimConfig(engine=engine, method=name)
        lat = build_latency(config)
        depth = DRAFT_MODEL_DEPTH if method.max_depth is None else method.max_depth
        if method.is_draft_model:
            rows, kv, tokens = (1,) * depth, tuple(context + s for s in range(depth)), ()
            verify = 1 + depth
        else:
            plan = MethodPlan(method)
            rows = (1,) * depth
            kv = tuple(context + s for s in range(depth))
            tokens = tuple(plan.step_tokens_at(s) for s in range(depth))
            verify = 1 + plan.tree.nodes(depth)
        shape = DecodeShape(1, context, 1, verify, context, rows, kv, tokens)
        total = decode_iteration_s(lat, pad, shape)
        verify_s = lat.target_verify_s(1, pad.pad(verify), context)
        lines.append(f"| {name} | {verify} ({pad.pad(verify)}) | {(total - verify_s) * 1e3:.2f} "
                     f"| {verify_s * 1e3:.2f} | {total * 1e3:.2f} | {total / plain:.3f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="passes over the 480 questions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gap-s", type=float, default=60.0, help="seconds between arrivals")
    parser.add_argument("--engine", default="single-pass")
    parser.add_argument("--method", action="append", help="methods (default: all)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    methods = args.method or list(METHODS)
    workload = spec_bench_workload(args.repeats, args.gap_s, args.seed)
    table = method_table(workload, methods, args.seed, args.engine)
    print(f"Spec-Bench at batch 1: {len(workload)} requests ({args.repeats} x 480 questions, "
          f"{args.gap_s:g} s apart), seed {args.seed}, A100-80G, vicuna-7b, engine "
          f"{args.engine}; published: hemingkx/Spec-Bench Leaderboard.md "
          f"@{SPEC_BENCH_LEADERBOARD_COMMIT[:7]} (A100 80GB, Vicuna-7B-v1.3, batch 1).\n")
    print("Overall: mean accepted tokens (calibrated) and speedup (predicted)\n")
    print(overall_markdown(table))
    print("\nSpeedup per category, simulated / published (error)\n")
    print(category_markdown(table))
    print("\nTokens per decode step per category (simulated; the leaderboard publishes the "
          "overall only)\n")
    print(tokens_markdown(table))
    print()
    print("\n".join(cost_lines(args.engine)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
