"""``adaspec-validate REAL_DIR --profile profile.json``: simulate exactly the workload of a real
run with the calibrated profile and print the error of every summary metric, the per-iteration
latency error and the accepted-length distribution distance (see ``calibrate.validate``).
A compile that the disk cache of compiled code cannot spare is said on stderr before it
starts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from sim.cli_common import add_version_arg, compile_lines, run_command, run_process
from sim.errors import AdaSpecError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adaspec-validate", description=__doc__)
    add_version_arg(parser)
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


def _pct(rel_error: float | None) -> str:
    """A relative error in percent: one decimal, or 3 significant digits when large."""
    if rel_error is None:
        return "-"
    percent = rel_error * 100
    return f"{percent:+.1f} %" if abs(percent) < 1e4 else f"{percent:+.3g} %"


def _columns(cells: list[str], widths: tuple[int, ...] = (26, 12, 12, 12)) -> str:
    """Cells padded to their widths (first left-aligned, the rest right-aligned) and always
    two spaces apart, so a value wider than its column never runs into its neighbour."""
    first, *rest = cells
    return "  " + "  ".join([f"{first:<{widths[0]}}"] +
                            [f"{c:>{w}}" for c, w in zip(rest, widths[1:])])


def format_report(report: dict[str, Any]) -> str:
    lines = []
    for name, block in report["policies"].items():
        lines.append(f"policy {name} ({block['requests']} requests)")
        lines.append(_columns(["metric", "real", "sim", "rel. error"]))
        for metric, row in block["metrics"].items():
            timed = metric.endswith("_s") and not metric.endswith("_per_s")
            scale = 1e3 if timed else 1.0
            label = metric[:-2] + " (ms)" if timed else metric
            lines.append(_columns([label, _fmt(row["real"], scale), _fmt(row["sim"], scale),
                                   _pct(row["rel_error"])]))
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


def _model_names(doc: Any, roles: tuple[str, ...] = ("target", "draft")) -> tuple[str, ...] | None:
    """The ``roles``' model names of a profile or of a run's config: the measured models'
    ``models.<role>.name`` when recorded, else the ``config`` entry."""
    if not isinstance(doc, dict):
        return None
    models = doc.get("models")
    config = doc.get("config") if isinstance(doc.get("config"), dict) else doc
    names = []
    for role in roles:
        model = models.get(role) if isinstance(models, dict) else None
        name = model.get("name") if isinstance(model, dict) else None
        names.append(name or (config.get(role) if isinstance(config, dict) else None))
    return tuple(str(n) for n in names) if all(names) else None


def model_mismatch(profile_doc: Any, run_config: Any) -> str | None:
    """A warning when the profile was measured for other models than the run used (the
    target alone for a prompt-lookup run, which loads no draft model)."""
    if isinstance(run_config, dict) and run_config.get("method") == "ngram":
        measured, used = _model_names(profile_doc, ("target",)), _model_names(run_config, ("target",))
        if measured is None or used is None or measured == used:
            return None
        return (f"the profile was measured for target {measured[0]}, the run used "
                f"{used[0]}: simulated latencies are for another model")
    measured, used = _model_names(profile_doc), _model_names(run_config)
    if measured is None or used is None or measured == used:
        return None
    return (f"the profile was measured for {measured[0]} + {measured[1]}, the run used "
            f"{used[0]} + {used[1]}: simulated latencies are for other models")


def _warn_models(args: argparse.Namespace) -> None:
    from calibrate.validate import read_summary
    try:
        with open(args.profile, encoding="utf-8") as handle:
            profile_doc = json.load(handle)
        run_config = read_summary(Path(args.real_dir)).get("config")
    except (OSError, ValueError, AdaSpecError):
        return  # validate_run reports unreadable inputs as one-line errors
    warning = model_mismatch(profile_doc, run_config)
    if warning:
        print(f"adaspec-validate: warning: {warning}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from calibrate.validate import validate_run
    from sim.errors import ConfigError

    _warn_models(args)
    # a compile the disk cache cannot spare (minutes for the loop) is said before it starts
    with compile_lines("adaspec-validate"):
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


def entry() -> NoReturn:
    """``adaspec-validate`` as a process (the console script, ``python -m``): ``main``, run by
    ``sim.cli_common.run_process``."""
    run_process(main)


if __name__ == "__main__":
    entry()
