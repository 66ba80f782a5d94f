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

A point is one simulation: (trace, config values, rate, SLO scale, policy, seed). Points are
ordered trace, config axes (in file order), rate, SLO scale, policy, seed -- the row order of
the result table. The workload of a point is built exactly as ``adaspec-sim`` builds it from
the same options (window, synthetic arrivals, rate scale, limit; seeded by the point's seed), so
any row can be reproduced with one ``adaspec-sim`` command.

Each point has a stable key: the SHA-256 of its canonical JSON identity (trace name as written
and file hash, every input above, the SimConfig values before SLO scaling, the simulator's
schema version and release). The result store is keyed by it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sim import SCHEMA_VERSION, __version__
from sim.errors import ConfigError
from sim.output import file_sha256

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SWEEP_KEYS = {"name", "traces", "policies", "seeds", "rate_scales", "arrival_rates",
              "arrivals", "cv", "slo_scales", "limit", "window_s", "lengths", "category",
              "baselines", "goodput_attainment"}
ARRIVAL_PROCESSES = ("poisson", "gamma")


@dataclass(frozen=True)
class SweepPoint:
    """One simulation of the grid. ``config`` holds the SimConfig overrides before SLO scaling
    as sorted (field, value) pairs; ``trace_path`` is where the trace was found on this machine
    (not part of the identity: the name as written and the file hash are)."""

    trace: str
    trace_path: str
    trace_sha256: str
    policy: str
    seed: int
    slo_scale: float
    rate_scale: float
    arrivals: str  # "trace" (the trace's own arrival times) | "poisson" | "gamma"
    arrival_rate_req_per_s: float | None
    arrival_cv: float | None
    limit: int | None
    window_start_s: float | None
    window_end_s: float | None
    lengths: str
    category: str
    config: tuple[tuple[str, Any], ...]
    # other input files: (role, name as written, path found here, sha256), e.g. a profile
    extra_inputs: tuple[tuple[str, str, str, str], ...] = ()

    def base_config(self):
        from sim.run import SimConfig
        return SimConfig(**dict(self.config))

    def sim_config(self):
        """The SimConfig this point runs: the base config with both SLOs times ``slo_scale``."""
        from dataclasses import replace
        base = self.base_config()
        return replace(base, ttft_slo_s=base.ttft_slo_s * self.slo_scale,
                       tpot_slo_s=base.tpot_slo_s * self.slo_scale)

    def _written(self, role: str, value):
        """A file input as written in the sweep file (paths found here are not identity)."""
        for r, name, _, _ in self.extra_inputs:
            if r == role:
                return name
        return value

    def identity(self) -> dict:
        """Everything that determines the result (what the key hashes)."""
        config = dict(self.config)
        if "profile" in config:
            config["profile"] = self._written("profile", config["profile"])
        return {"schema_version": SCHEMA_VERSION, "sim_version": __version__,
                "trace": self.trace, "trace_sha256": self.trace_sha256, "policy": self.policy,
                "seed": self.seed, "slo_scale": self.slo_scale, "rate_scale": self.rate_scale,
                "arrivals": self.arrivals, "arrival_rate_req_per_s": self.arrival_rate_req_per_s,
                "arrival_cv": self.arrival_cv, "limit": self.limit,
                "window_start_s": self.window_start_s, "window_end_s": self.window_end_s,
                "lengths": self._written("lengths", self.lengths), "category": self.category,
                "config": config,
                "extra_inputs": [[role, sha] for role, _, _, sha in self.extra_inputs]}

    @property
    def key(self) -> str:
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    @property
    def rate(self) -> float:
        """The load axis: req/s with synthetic arrivals, else the rate scale."""
        return self.arrival_rate_req_per_s if self.arrivals != "trace" else self.rate_scale

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
        row = {"trace": self.trace, "trace_sha256": self.trace_sha256, "policy": self.policy,
               "seed": self.seed, "rate": self.rate, "rate_scale": self.rate_scale,
               "arrivals": self.arrivals, "arrival_rate_req_per_s": self.arrival_rate_req_per_s,
               "arrival_cv": self.arrival_cv, "slo_scale": self.slo_scale,
               "base_ttft_slo_s": base.ttft_slo_s, "base_tpot_slo_s": base.tpot_slo_s,
               "limit": self.limit, "window_start_s": self.window_start_s,
               "window_end_s": self.window_end_s,
               "lengths": self._written("lengths", self.lengths),
               "category": self.category}
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


def _numbers(value, source: str, where: str, *, positive: bool = True, integer: bool = False
             ) -> list:
    out = []
    for item in _as_list(value, source, where):
        ok_type = isinstance(item, int) if integer else isinstance(item, (int, float))
        if isinstance(item, bool) or not ok_type:
            kind = "integers" if integer else "numbers"
            raise _err(source, where, f"must be {kind}, got {item!r}")
        if positive and not item > 0:
            raise _err(source, where, f"must be positive, got {item!r}")
        if not positive and item < 0:
            raise _err(source, where, f"must not be negative, got {item!r}")
        out.append(item if integer else float(item))
    if len(set(out)) != len(out):
        raise _err(source, where, f"has duplicate values {out}")
    return out


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


def _config_axes(table, source: str) -> list[tuple[str, list]]:
    from sim.run import SimConfig
    if not isinstance(table, dict):
        raise _err(source, "[config]", "must be a table of SimConfig fields")
    known = {f.name for f in fields(SimConfig)}
    axes = []
    for name, value in table.items():
        if name not in known:
            raise _err(source, f"[config] {name}",
                       f"unknown SimConfig field (known: {', '.join(sorted(known))})")
        values = _as_list(value, source, f"[config] {name}")
        if any(isinstance(v, (dict, list)) for v in values):
            raise _err(source, f"[config] {name}", "values must be scalars or a list of scalars")
        axes.append((name, values))
    return axes


def _window(value, source: str) -> tuple[float | None, float | None]:
    if value is None:
        return None, None
    if not isinstance(value, list) or len(value) not in (1, 2):
        raise _err(source, "[sweep] window_s", "must be [start] or [start, end] in seconds")
    numbers = _numbers(value, source, "[sweep] window_s", positive=False)
    start = numbers[0]
    end = numbers[1] if len(numbers) == 2 else None
    if end is not None and end <= start:
        raise _err(source, "[sweep] window_s", "end must be after start")
    return start, end


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
    if not isinstance(name, str) or not name:
        raise _err(source, "[sweep] name", "must be a non-empty string")
    traces = []
    for item in _as_list(sweep["traces"], source, "[sweep] traces"):
        path = _resolve(item, base_dir, source, "[sweep] traces")
        traces.append((item, str(path), file_sha256(path)))
    policies = _policies(sweep["policies"], source)
    seeds = _numbers(sweep.get("seeds", [0]), source, "[sweep] seeds", positive=False,
                     integer=True)
    slo_scales = _numbers(sweep.get("slo_scales", [1.0]), source, "[sweep] slo_scales")

    if "arrival_rates" in sweep:
        if "rate_scales" in sweep:
            raise _err(source, "[sweep]", "give rate_scales or arrival_rates, not both")
        process = sweep.get("arrivals", "poisson")
        if process not in ARRIVAL_PROCESSES:
            raise _err(source, "[sweep] arrivals", f"must be one of {ARRIVAL_PROCESSES}, "
                                                   f"got {process!r}")
        cv = None
        if process == "gamma":
            cv = _numbers(sweep.get("cv", 2.0), source, "[sweep] cv")[0]
        rates = [(1.0, process, r, cv) for r in
                 _numbers(sweep["arrival_rates"], source, "[sweep] arrival_rates")]
    else:
        for key in ("arrivals", "cv"):
            if key in sweep:
                raise _err(source, f"[sweep] {key}", "only applies with arrival_rates")
        rates = [(s, "trace", None, None) for s in
                 _numbers(sweep.get("rate_scales", [1.0]), source, "[sweep] rate_scales")]

    limit = sweep.get("limit")
    if limit is not None:
        limit = _numbers(limit, source, "[sweep] limit", integer=True)[0]
    window_start, window_end = _window(sweep.get("window_s"), source)
    lengths = sweep.get("lengths", "spec-bench")
    category = sweep.get("category", "")
    if not isinstance(lengths, str) or not isinstance(category, str):
        raise _err(source, "[sweep] lengths/category", "must be strings")
    extra: list[tuple[str, str, str, str]] = []
    if lengths not in ("spec-bench", "sharegpt"):
        lengths_path = _resolve(lengths, base_dir, source, "[sweep] lengths")
        extra.append(("lengths", lengths, str(lengths_path), file_sha256(lengths_path)))
        lengths = str(lengths_path)

    axes = _config_axes(document.get("config", {}), source)
    combos = [tuple(zip([n for n, _ in axes], values))
              for values in itertools.product(*[v for _, v in axes])]
    from sim.run import SimConfig
    configs = []
    for combo in combos:
        overrides = dict(combo)
        combo_extra = list(extra)
        if overrides.get("profile"):
            profile_path = _resolve(overrides["profile"], base_dir, source, "[config] profile")
            combo_extra.append(("profile", overrides["profile"], str(profile_path),
                                file_sha256(profile_path)))
            overrides["profile"] = str(profile_path)
        try:
            SimConfig(**overrides)
        except (ConfigError, TypeError) as exc:
            raise _err(source, "[config]", str(exc)) from None
        configs.append((tuple(sorted(overrides.items())), tuple(combo_extra)))

    points = []
    for (trace, path, sha), (config, combo_extra), (scale, process, rate, cv), slo, policy, seed \
            in itertools.product(traces, configs, rates, slo_scales, policies, seeds):
        points.append(SweepPoint(
            trace=trace, trace_path=path, trace_sha256=sha, policy=policy, seed=seed,
            slo_scale=slo, rate_scale=scale, arrivals=process, arrival_rate_req_per_s=rate,
            arrival_cv=cv, limit=limit, window_start_s=window_start, window_end_s=window_end,
            lengths=lengths, category=category, config=config, extra_inputs=combo_extra))

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


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and parse a SWEEP.toml file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read sweep file: {exc.strerror or exc}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_sweep(document, path.resolve().parent, str(path))
