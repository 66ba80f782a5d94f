"""SWEEP.toml: the grid a sweep runs, parsed into an ordered list of frozen points.

Grammar (TOML; every key but ``traces`` and ``policies`` is optional)::

    [sweep]
    name = "adaspec-traces"        # default: the file name without .toml
    traces = ["traces/adaspec/conv.csv", "traces/adaspec/code.csv"]
                                   # resolved against the TOML file's folder first, then cwd
    policies = ["nospec", "static:5", "adaspec:8"]    # policy specs (adaspec-sim --policy)
    seeds = [0]                    # default [0]; each seed draws its own lengths and acceptance
    rate_scales = [0.5, 1.0, 2.0]  # compress (> 1) or stretch the trace's inter-arrival times
    # or, instead of rate_scales, synthetic arrivals at fixed rates (the trace keeps its lengths):
    # arrival_rates = [2.0, 4.0, 8.0]   # requests per second
    # arrivals = "poisson"             # "poisson" (default) or "gamma" (then cv = 2.0)
    slo_scales = [1.0, 2.0]        # multiply both SLOs of the [config] block; default [1.0]
    limit = 400                    # keep the first N requests (after the rate transform)
    window_s = [0.0, 300.0]        # keep arrivals in [start, end) s of the trace (end optional)
    lengths = "spec-bench"         # length source for arrival-only traces (or a file path)
    category = ""                  # acceptance category for traces without categories
    baselines = ["nospec"]         # speedup denominators; default: nospec if swept, else the
                                   # first policy
    goodput_attainment = 0.9       # attainment threshold of the goodput-rate (DistServe: 90 %)

    [config]                       # sim.run.SimConfig fields shared by every point;
    gpu = ["A100-80G", "H100"]     # a list makes a grid axis (one point per value)
    ttft_slo_s = 2.0
    tpot_slo_s = 0.040
    pass_overheads_s = [0.004, 0.001, 0.0015]  # a tuple field: one list is one value,
                                   # a list of such lists is an axis

A point is one simulation: (trace, config values, rate, SLO scale, policy, seed). Points are
ordered trace, config axes (in file order), rate, SLO scale, policy, seed -- the row order of
the result table. A point's workload is a :class:`sim.workload.spec.WorkloadSpec`, the value
``adaspec-sim`` makes from the same options (window, limit, synthetic arrivals, rate scale,
lengths, category; built with the point's seed), so any row can be reproduced with one
``adaspec-sim`` command.

Everything is validated when the file is read, before any point runs: every value by the same
check ``adaspec-sim`` applies to that option, every [config] combination by building its models
(``sim.sweep.configs``), and every distinct trace window by reading its first request. Errors
are one line naming the file and the key; duplicate values of any axis are errors.

Each point has a stable key: the SHA-256 of its canonical JSON identity (trace name as written
and file hash, every input above, the SimConfig values before SLO scaling, the simulator's
schema version and release). The result store is keyed by it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from sim import SCHEMA_VERSION, __version__
from sim.errors import AdaSpecError, ConfigError
from sim.output import file_sha256
from sim.sweep.configs import expand_configs
from sim.workload.arrays import check_limit
from sim.workload.lengths import NAMED_SOURCES
from sim.workload.spec import WorkloadSpec, check_positive, check_seed
from sim.workload.transforms import check_cv

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SWEEP_KEYS = {"name", "traces", "policies", "seeds", "rate_scales", "arrival_rates",
              "arrivals", "cv", "slo_scales", "limit", "window_s", "lengths", "category",
              "baselines", "goodput_attainment"}
ARRIVAL_PROCESSES = ("poisson", "gamma")
DEFAULT_GAMMA_CV = 2.0


@dataclass(frozen=True)
class SweepPoint:
    """One simulation of the grid. ``workload`` is the point's workload as a value (its trace
    is the path found on this machine, which is not part of the identity: ``trace``, the name
    as written, and the file hash are); ``config`` holds the SimConfig overrides before SLO
    scaling as sorted (field, value) pairs."""

    trace: str
    trace_sha256: str
    workload: WorkloadSpec
    policy: str
    seed: int
    slo_scale: float
    config: tuple[tuple[str, Any], ...]
    # other input files: (role, name as written, path found here, sha256), e.g. a profile
    extra_inputs: tuple[tuple[str, str, str, str], ...] = ()

    @property
    def trace_path(self) -> str:
        return self.workload.trace

    def base_config(self):
        from sim.run import SimConfig
        return SimConfig(**dict(self.config))

    def sim_config(self):
        """The SimConfig this point runs: the base config with both SLOs times ``slo_scale``."""
        base = self.base_config()
        return replace(base, ttft_slo_s=base.ttft_slo_s * self.slo_scale,
                       tpot_slo_s=base.tpot_slo_s * self.slo_scale)

    def _written(self, role: str, value):
        """A file input as written in the sweep file (paths found here are not identity)."""
        for r, name, _, _ in self.extra_inputs:
            if r == role:
                return name
        return value

    def _workload_fields(self) -> dict:
        w = self.workload
        return {"rate_scale": w.rate_scale, "arrivals": w.arrivals,
                "arrival_rate_req_per_s": w.arrival_rate_req_per_s, "arrival_cv": w.arrival_cv,
                "limit": w.limit, "window_start_s": w.window_start_s,
                "window_end_s": w.window_end_s, "lengths": self._written("lengths", w.lengths),
                "category": w.category}

    def identity(self) -> dict:
        """Everything that determines the result (what the key hashes)."""
        config = dict(self.config)
        if "profile" in config:
            config["profile"] = self._written("profile", config["profile"])
        return {"schema_version": SCHEMA_VERSION, "sim_version": __version__,
                "trace": self.trace, "trace_sha256": self.trace_sha256, "policy": self.policy,
                "seed": self.seed, "slo_scale": self.slo_scale, **self._workload_fields(),
                "config": config,
                "extra_inputs": [[role, sha] for role, _, _, sha in self.extra_inputs]}

    @property
    def key(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    @property
    def rate(self) -> float:
        """The load axis: req/s with synthetic arrivals, else the rate scale."""
        w = self.workload
        return w.arrival_rate_req_per_s if w.arrivals != "trace" else w.rate_scale

    def inputs(self) -> dict:
        """Provenance inputs: the trace (and profile/length files) with their hashes."""
        found = {"trace": {"path": self.trace, "sha256": self.trace_sha256}}
        for role, name, _, sha in self.extra_inputs:
            found[role] = {"path": name, "sha256": sha}
        return found

    def row(self) -> dict:
        """The point's input columns of the result table (effective SLOs plus their bases)."""
        config = self.sim_config().to_dict()
        base = self.base_config()
        fields_ = self._workload_fields()
        row = {"trace": self.trace, "trace_sha256": self.trace_sha256, "policy": self.policy,
               "seed": self.seed, "rate": self.rate, "rate_scale": fields_["rate_scale"],
               "arrivals": fields_["arrivals"],
               "arrival_rate_req_per_s": fields_["arrival_rate_req_per_s"],
               "arrival_cv": fields_["arrival_cv"], "slo_scale": self.slo_scale,
               "base_ttft_slo_s": base.ttft_slo_s, "base_tpot_slo_s": base.tpot_slo_s,
               "limit": fields_["limit"], "window_start_s": fields_["window_start_s"],
               "window_end_s": fields_["window_end_s"], "lengths": fields_["lengths"],
               "category": fields_["category"]}
        if config.get("profile"):
            config["profile"] = self._written("profile", config["profile"])
        row.update(config)
        return row


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file: its points in table order plus the derived-metric settings."""

    name: str
    source: str
    points: tuple[SweepPoint, ...]
    baselines: tuple[str, ...]
    goodput_attainment: float
    document: dict  # the parsed TOML, for provenance

    @property
    def seeds(self) -> list[int]:
        return sorted({p.seed for p in self.points})

    def inputs(self) -> dict:
        found = {}
        for point in self.points:
            for role, entry in point.inputs().items():
                found[f"{role}:{entry['path']}"] = entry
        return found


def _err(source: str, where: str, message: str) -> ConfigError:
    return ConfigError(f"{source}: {where}: {message}")


def _as_list(value, source: str, where: str) -> list:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise _err(source, where, "must not be empty")
    return items


def _numbers(value, source: str, where: str, check: Callable[[Any], Any]) -> list:
    """A number or a list of distinct numbers, each passed through ``check`` -- the same
    check the command line applies to the option (its ConfigError gets the file and key)."""
    out = []
    for item in _as_list(value, source, where):
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise _err(source, where, f"must be numbers, got {item!r}")
        try:
            out.append(check(item))
        except ConfigError as exc:
            raise _err(source, where, str(exc)) from None
    if len(set(out)) != len(out):
        raise _err(source, where, f"has duplicate values {out}")
    return out


def _one_number(value, source: str, where: str, check: Callable[[Any], Any]):
    if isinstance(value, list):
        raise _err(source, where, f"must be one number, got {value!r}")
    return _numbers(value, source, where, check)[0]


def _resolve(path_text: str, base_dir: Path, source: str, where: str) -> Path:
    if not isinstance(path_text, str) or not path_text:
        raise _err(source, where, f"must be a file path, got {path_text!r}")
    candidates = [Path(path_text)] if Path(path_text).is_absolute() else \
        [base_dir / path_text, Path.cwd() / path_text]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise _err(source, where, f"file {path_text!r} not found (looked in {base_dir} and "
                              f"{Path.cwd()})")


def _policies(value, source: str) -> list[str]:
    from sim.policies.registry import make_policy
    names = []
    for spec in _as_list(value, source, "[sweep] policies"):
        if not isinstance(spec, str):
            raise _err(source, "[sweep] policies", f"must be policy specs, got {spec!r}")
        try:
            name = make_policy(spec).name
        except ConfigError as exc:
            raise _err(source, "[sweep] policies", str(exc)) from None
        if name in names:
            raise _err(source, "[sweep] policies", f"policy {name!r} listed twice")
        names.append(name)
    return names


def _window(value, source: str) -> tuple[float | None, float | None]:
    if value is None:
        return None, None
    if not isinstance(value, list) or len(value) not in (1, 2):
        raise _err(source, "[sweep] window_s", "must be [start] or [start, end] in seconds")
    numbers = _numbers(value, source, "[sweep] window_s", float)
    return numbers[0], (numbers[1] if len(numbers) == 2 else None)


def _arrival_axis(sweep: dict, source: str) -> list[tuple[float, str, float | None,
                                                          float | None]]:
    """(rate scale, arrivals, arrival rate, CV) of each load level."""
    if "arrival_rates" in sweep:
        if "rate_scales" in sweep:
            raise _err(source, "[sweep]", "give rate_scales or arrival_rates, not both")
        process = sweep.get("arrivals", "poisson")
        if process not in ARRIVAL_PROCESSES:
            raise _err(source, "[sweep] arrivals", f"must be one of {ARRIVAL_PROCESSES}, "
                                                   f"got {process!r}")
        cv = None
        if process == "gamma":
            cv = _one_number(sweep.get("cv", DEFAULT_GAMMA_CV), source, "[sweep] cv",
                             lambda x: check_cv("arrival CV", x))
        rates = _numbers(sweep["arrival_rates"], source, "[sweep] arrival_rates",
                         lambda x: check_positive("arrival rate (requests/s)", x))
        return [(1.0, process, rate, cv) for rate in rates]
    for key in ("arrivals", "cv"):
        if key in sweep:
            raise _err(source, f"[sweep] {key}", "only applies with arrival_rates")
    scales = _numbers(sweep.get("rate_scales", [1.0]), source, "[sweep] rate_scales",
                      lambda x: check_positive("rate scale", x))
    return [(scale, "trace", None, None) for scale in scales]


def _check_windows(workloads: list[WorkloadSpec], source: str) -> None:
    """Read the first request of every distinct (trace, window, lengths) once, up front."""
    seen = set()
    for spec in workloads:
        probe = replace(spec, limit=None, rate_scale=1.0, arrivals="trace",
                        arrival_rate_req_per_s=None, arrival_cv=None)
        if probe in seen:
            continue
        seen.add(probe)
        try:
            probe.check_readable()
        except AdaSpecError as exc:
            raise _err(source, "[sweep] traces/window_s", str(exc)) from None


def parse_sweep(document: dict, base_dir: Path, source: str = "SWEEP.toml") -> SweepSpec:
    """Validate a parsed SWEEP.toml and expand it into points (errors are one-line
    ConfigErrors naming the file and the key)."""
    unknown_tables = set(document) - {"sweep", "config"}
    if unknown_tables:
        raise _err(source, "top level", f"unknown table(s) {sorted(unknown_tables)} "
                                        "(expected [sweep] and [config])")
    sweep = document.get("sweep")
    if not isinstance(sweep, dict):
        raise _err(source, "[sweep]", "missing table")
    unknown = set(sweep) - SWEEP_KEYS
    if unknown:
        raise _err(source, "[sweep]", f"unknown key(s) {sorted(unknown)} "
                                      f"(known: {', '.join(sorted(SWEEP_KEYS))})")
    for required in ("traces", "policies"):
        if required not in sweep:
            raise _err(source, f"[sweep] {required}", "missing")
    name = sweep.get("name", Path(source).stem)
    if not isinstance(name, str) or not name.strip() or name in (".", "..") \
            or "/" in name or "\\" in name:
        raise _err(source, "[sweep] name", "must be a non-empty name without '/' or '\\' (it "
                                           f"names the default output folder results/NAME), "
                                           f"got {name!r}")
    traces = []
    for item in _as_list(sweep["traces"], source, "[sweep] traces"):
        if item in [t for t, _, _ in traces]:
            raise _err(source, "[sweep] traces", f"trace {item!r} listed twice")
        path = _resolve(item, base_dir, source, "[sweep] traces")
        traces.append((item, str(path), file_sha256(path)))
    policies = _policies(sweep["policies"], source)
    seeds = _numbers(sweep.get("seeds", [0]), source, "[sweep] seeds", check_seed)
    slo_scales = _numbers(sweep.get("slo_scales", [1.0]), source, "[sweep] slo_scales",
                          lambda x: check_positive("SLO scale", x))
    rates = _arrival_axis(sweep, source)
    limit = sweep.get("limit")
    if limit is not None:
        limit = _one_number(limit, source, "[sweep] limit", check_limit)
    window_start, window_end = _window(sweep.get("window_s"), source)
    lengths = sweep.get("lengths", "spec-bench")
    category = sweep.get("category", "")
    if not isinstance(lengths, str) or not isinstance(category, str):
        raise _err(source, "[sweep] lengths/category", "must be strings")
    extra: list[tuple[str, str, str, str]] = []
    if lengths not in NAMED_SOURCES:
        lengths_path = _resolve(lengths, base_dir, source, "[sweep] lengths")
        extra.append(("lengths", lengths, str(lengths_path), file_sha256(lengths_path)))
        lengths = str(lengths_path)

    workloads = {}
    for (trace, path, _), (scale, process, rate, cv) in itertools.product(traces, rates):
        try:
            workloads[path, scale, process, rate] = WorkloadSpec(
                trace=path, window_start_s=window_start, window_end_s=window_end, limit=limit,
                rate_scale=scale, arrivals=process, arrival_rate_req_per_s=rate, arrival_cv=cv,
                lengths=lengths, category=category)
        except ConfigError as exc:
            raise _err(source, "[sweep]", str(exc)) from None
    from sim.policies.registry import make_policy
    configs = expand_configs(document.get("config", {}), source,
                             lambda text, where: _resolve(text, base_dir, source, where),
                             uses_draft=any(make_policy(p).uses_draft for p in policies),
                             category=category)
    _check_windows(list(workloads.values()), source)
    _check_methods(configs, policies, source)

    points = []
    for (trace, path, sha), (config, config_extra), (scale, process, rate, _), slo, policy, \
            seed in itertools.product(traces, configs, rates, slo_scales, policies, seeds):
        points.append(SweepPoint(
            trace=trace, trace_sha256=sha, workload=workloads[path, scale, process, rate],
            policy=policy, seed=seed, slo_scale=slo, config=config,
            extra_inputs=tuple(extra) + config_extra))
    _check_scaled_slos(points, source)

    baselines = sweep.get("baselines")
    if baselines is None:
        baselines = ["nospec"] if "nospec" in policies else policies[:1]
    baselines = [b for b in _as_list(baselines, source, "[sweep] baselines")]
    for baseline in baselines:
        if baseline not in policies:
            raise _err(source, "[sweep] baselines", f"{baseline!r} is not one of the swept "
                                                    f"policies {policies}")
    threshold = sweep.get("goodput_attainment", 0.9)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
            or not 0 < threshold <= 1:
        raise _err(source, "[sweep] goodput_attainment", f"must be in (0, 1], got {threshold!r}")
    return SweepSpec(name=name, source=source, points=tuple(points), baselines=tuple(baselines),
                     goodput_attainment=float(threshold), document=document)


def _check_scaled_slos(points: list[SweepPoint], source: str) -> None:
    """Every [config] row's SLOs times every SLO scale make a valid SimConfig (a scale of
    1e308 overflows an SLO to inf), checked once per pair before any point runs."""
    seen = set()
    for point in points:
        if (point.config, point.slo_scale) in seen:
            continue
        seen.add((point.config, point.slo_scale))
        try:
            point.sim_config()
        except ConfigError as exc:
            raise _err(source, "[sweep] slo_scales", f"scale {point.slo_scale!r}: {exc}") from None


def _check_methods(configs, policies, source: str) -> None:
    """A [config] method axis (``sim.drafters``) must fit every swept policy: a policy that
    decides on draft confidences cannot run a method without them (one line naming both)."""
    from sim.drafters.checks import policy_fits_method
    from sim.policies.registry import make_policy
    for overrides, _ in configs:
        method = dict(overrides).get("method")
        if method is None or method == "draft-model":
            continue
        for spec in policies:
            reason = policy_fits_method(make_policy(spec), method)
            if reason is not None:
                raise _err(source, "[config] method", f"{reason} (sweep the method in a file "
                                                      "without that policy)")


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and parse a SWEEP.toml file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read sweep file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read sweep file as UTF-8 text ({exc.reason} at "
                          f"byte {exc.start})") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_sweep(document, path.resolve().parent, str(path))
