"""A workload described as a value: which trace, which part of it, which arrival process and
which length source. ``adaspec-sim``, ``adaspec-realrun``, ``adaspec-validate`` and every sweep
point describe their workload with one :class:`WorkloadSpec`; it is validated once, when it is
made (each field by the one check of that option), and built reproducibly from a seed.

``build(seed)`` applies the options in one order:

1. load the trace, keeping arrivals in ``[window_start_s, window_end_s)`` (re-based to the
   window start) and then the first ``limit`` requests -- while reading, so a window or limit
   of a huge CSV reads only the rows it needs;
2. synthetic arrivals (``arrivals`` = ``poisson``/``gamma`` at ``arrival_rate_req_per_s``,
   ``arrival_cv``), which keep the requests and their order and replace their arrival times;
3. ``rate_scale`` (inter-arrival gaps divided by it).

Taking the limit before 2 and 3 selects the same requests as taking it after them (neither
reorders requests, and each synthetic gap is drawn in request order), so the limit can be
applied while reading. The length source (``lengths``) is read only for arrival-only traces.
Random draws use one generator seeded ``[seed, 0x5EED]``, separate from the simulation's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from sim.errors import ConfigError
from sim.workload.arrays import check_limit, check_window
from sim.workload.request import Workload

ARRIVALS = ("trace", "poisson", "gamma")
"""``trace``: the trace's own arrival times; ``poisson``/``gamma``: synthetic ones."""
WORKLOAD_STREAM = 0x5EED
"""Second word of the workload generator's seed: its stream never shifts the policies'."""


MAX_SEED = 2 ** 63 - 1
"""Largest seed: outputs record it as an int64 (sweep tables, Parquet)."""


def check_seed(seed) -> int:
    """A seed is a whole number in ``0..MAX_SEED`` (numpy's generators refuse negative
    ones; tables store it as an int64)."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be a whole number >= 0 and < 2**63, got {seed!r}")
    return int(seed)


def check_positive(what: str, value) -> float:
    """A finite number > 0 (rate scale, arrival rate, CV, SLO scale ...)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) \
            or value <= 0:
        raise ConfigError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def check_non_negative(what: str, value) -> float:
    """A finite number >= 0 (an overhead, ...)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) \
            or value < 0:
        raise ConfigError(f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_arrivals(process: str, rate_per_s, cv) -> tuple[str, float | None, float | None]:
    """The arrival process and its parameters: ``trace`` (no rate, no CV), ``poisson``
    (a rate; CV is 1 by definition) or ``gamma`` (a rate and a CV)."""
    if process not in ARRIVALS:
        raise ConfigError(f"arrivals must be one of {', '.join(ARRIVALS)}, got {process!r}")
    if process == "trace":
        if rate_per_s is not None or cv is not None:
            raise ConfigError("an arrival rate or CV needs synthetic arrivals "
                              "(poisson or gamma)")
        return process, None, None
    rate = check_positive("arrival rate (requests/s)", rate_per_s)
    if process == "poisson":
        if cv is not None and cv != 1.0:
            raise ConfigError(f"a Poisson process has CV 1, got {cv!r}; use gamma")
        return process, rate, None
    if cv is None:
        raise ConfigError("gamma arrivals need a CV (std/mean of the gaps)")
    from sim.workload.transforms import check_cv
    return process, rate, check_cv("arrival CV", cv)


@dataclass(frozen=True)
class WorkloadSpec:
    """The workload options of every command, as one validated value (see the module doc).

    ``trace`` is a file path; ``lengths`` a length-source name or file (checked for existence
    by :meth:`check_files`, read by :meth:`build` only when the trace needs it)."""

    trace: str
    window_start_s: float | None = None
    window_end_s: float | None = None
    limit: int | None = None
    rate_scale: float = 1.0
    arrivals: str = "trace"
    arrival_rate_req_per_s: float | None = None
    arrival_cv: float | None = None
    lengths: str = "spec-bench"
    category: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.trace, str) or not self.trace:
            raise ConfigError(f"trace must be a file path, got {self.trace!r}")
        if self.window_start_s is not None or self.window_end_s is not None:
            for what, bound in (("start", self.window_start_s), ("end", self.window_end_s)):
                if bound is not None and (isinstance(bound, bool) or not isinstance(bound, Real)):
                    raise ConfigError(f"window {what} must be a number of seconds, "
                                      f"got {bound!r}")
            check_window(self.window_start_s, self.window_end_s)
        check_limit(self.limit)
        check_positive("rate scale", self.rate_scale)
        check_arrivals(self.arrivals, self.arrival_rate_req_per_s, self.arrival_cv)
        if not isinstance(self.lengths, str) or not self.lengths:
            raise ConfigError(f"length source must be a name or a file path, "
                              f"got {self.lengths!r}")
        if not isinstance(self.category, str):
            raise ConfigError(f"category must be a string, got {self.category!r}")

    @property
    def windowed(self) -> bool:
        return self.window_start_s is not None or self.window_end_s is not None

    def check_files(self) -> None:
        """The length source exists (named or a file); the trace is read by :meth:`build`
        or :meth:`check_readable`."""
        from sim.workload.lengths import check_length_source
        check_length_source(self.lengths)

    def check_readable(self) -> None:
        """Load just the first request of the window: the file's format, header and the
        window are checked without building the workload (what a sweep does up front)."""
        from sim.workload.load import load_trace
        self.check_files()
        load_trace(self.trace, length_source=self.lengths, rng=0,
                   start_s=self.window_start_s, end_s=self.window_end_s, limit=1)

    def build(self, seed: int = 0) -> Workload:
        """Load and transform the workload (same spec and seed, same workload)."""
        from sim.workload import transforms
        from sim.workload.load import load_trace

        rng = np.random.default_rng([check_seed(seed), WORKLOAD_STREAM])
        self.check_files()
        workload = load_trace(self.trace, length_source=self.lengths, rng=rng,
                              default_category=self.category, start_s=self.window_start_s,
                              end_s=self.window_end_s, limit=self.limit)
        if self.arrivals != "trace":
            workload = transforms.resample_arrivals(
                workload, self.arrival_rate_req_per_s, process=self.arrivals,
                cv=1.0 if self.arrival_cv is None else self.arrival_cv, rng=rng)
        if self.rate_scale != 1.0:
            workload = transforms.rate_scale(workload, self.rate_scale)
        return workload
