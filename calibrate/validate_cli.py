"""``adaspec-validate REAL_DIR --profile profile.json``: simulate exactly the workload of a real
run with the calibrated profile and print the error of every summary metric, the per-iteration
latency error and the accepted-length distribution distance (see ``calibrate.validate``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from sim.cli_common import run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adaspec-validate", description=__doc__)
    parser.add_argument("real_dir", metavar="REAL_DIR",
                        help="results directory of a run (adaspec-realrun, or adaspec-sim)")
    parser.add_argument("--profile", required=True, metavar="PATH",
                        help="latency profile (adaspec-calibrate latency)")
    parser.add_argument("--acceptance", metavar="NAME|PATH",
                        help="acceptance model for the simulation (default: the run's config)")
    parser.add_argument("--policy", action="append", metavar="NAME",
                        help="validate only this policy of the run (repeatable)")
    parser.add_argument("--out", metavar="PATH", help="write the report as JSON")
    return parser


def _fmt(value: Any, scale: float = 1.0, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value * scale:.4g}{unit}"


def format_report(report: dict[str, Any]) -> str:
    lines = []
    for name, block in report["policies"].items():
        lines.append(f"policy {name} ({block['requests']} requests)")
        lines.append(f"  {'metric':<26}{'real':>12}{'sim':>12}{'rel. error':>12}")
        for metric, row in block["metrics"].items():
            timed = metric.endswith("_s") and not metric.endswith("_per_s")
            scale = 1e3 if timed else 1.0
            label = metric[:-2] + " (ms)" if timed else metric
            err = "-" if row["rel_error"] is None else f"{row['rel_error'] * 100:+.1f} %"
            lines.append(f"  {label:<26}{_fmt(row['real'], scale):>12}{_fmt(row['sim'], scale):>12}"
                         f"{err:>12}")
        it = block["iteration_latency"]
        kinds = ", ".join(f"{k} {v['mape_percent']:.1f} % (n={v['n']})" for k, v in it["by_kind"].items())
        lines.append(f"  per-iteration latency MAPE: {_fmt(it['mape_percent'])} % over {it['n']} "
                     f"iterations ({kinds})")
        dist = block["distributions"].get("tokens_per_step", {})
        if "wasserstein" in dist:
            lines.append(f"  tokens per step distribution: Wasserstein {dist['wasserstein']:.3f}, "
                         f"total variation {dist['total_variation']:.3f} "
                         f"(mean real {dist['mean_real']:.3f}, sim {dist['mean_sim']:.3f})")
        ood = block["out_of_domain_ops"]["real_iterations"]
        if ood:
            lines.append(f"  note: real iterations outside the profile's measured domain: {', '.join(ood)}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from calibrate.validate import validate_run
    from sim.errors import ConfigError

    report = validate_run(args.real_dir, args.profile, args.acceptance, args.policy)
    print(format_report(report))
    if args.out:
        try:
            with open(args.out, "w", encoding="utf-8") as handle:
                json.dump(report, handle, indent=2)
                handle.write("\n")
        except OSError as exc:
            raise ConfigError(f"cannot write {args.out}: {exc.strerror or exc}") from None
        print(f"wrote {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("adaspec-validate", lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
