"""Workload transformations every command accepts, plus synthetic arrival processes.

Each returns a new Workload (ids renumbered 0..N-1) whose ``transforms`` has the operation
appended as a readable record (e.g. ``rate_scale=2.0``). Bad parameters raise ConfigError.

* :func:`window` keeps ``start_s <= arrival_s < end_s`` and shifts times by ``-start_s``.
* :func:`limit` keeps the first ``n`` requests.
* :func:`rate_scale` multiplies the request rate by ``x``: inter-arrival gaps are divided by
  ``x``, the first arrival stays where it is.
* :func:`resample_arrivals` keeps a workload's requests but gives them synthetic arrival times.
* :func:`synthetic_arrivals` makes arrivals from a Poisson process or a Gamma renewal process
  with a given coefficient of variation (CV = std/mean of the gaps; CV 1 = Poisson, > 1
  burstier), first arrival at 0.0, with lengths from a length source or an existing workload.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from sim.errors import ConfigError
from sim.workload.arrays import (Columns, check_limit, check_window, select_window,
                                 to_columns, to_workload, window_label)
from sim.workload.lengths import (LengthSource, WorkloadLengths, make_length_source,
                                  source_name)
from sim.workload.request import Workload

PROCESSES = ("poisson", "gamma")
CV_RANGE = (1e-3, 100.0)
"""Gamma CVs the sampler draws faithfully. Below 1e-3 the gaps are constant anyway (and near
1e-162 the shape 1/cv^2 divides by zero); above 100 numpy's Gamma draws (shape < 1e-4) are
0 for over 90 % of the gaps and rare huge ones otherwise, so a trace of practical length
misses the requested rate (at cv = 1e5 every gap is 0: all requests arrive at once)."""


def check_cv(what: str, cv) -> float:
    """A gamma process's CV: a number in :data:`CV_RANGE`."""
    lo, hi = CV_RANGE
    if isinstance(cv, bool) or not isinstance(cv, (int, float, np.floating, np.integer)) \
            or not lo <= cv <= hi:
        raise ConfigError(f"{what} must be a number in [{lo:g}, {hi:g}], got {cv!r}")
    return float(cv)


def _rebuild(w: Workload, cols: Columns, record: str) -> Workload:
    return to_workload(cols, source=w.source, format=w.format, sha256=w.sha256,
                       transforms=w.transforms + (record,))


def window(w: Workload, start_s: float | None = None, end_s: float | None = None) -> Workload:
    """Requests arriving in ``[start_s, end_s)`` (None = open), re-based to ``start_s``."""
    start, end = check_window(start_s, end_s)
    cols = select_window(to_columns(w), start, end)
    if len(cols) == 0 and len(w):
        raise ConfigError(f"no requests fall inside the window [{start!r} s, {end!r} s); the "
                          f"workload spans {w.requests[0].arrival_s!r} to "
                          f"{w.requests[-1].arrival_s!r} s")
    return _rebuild(w, cols, window_label(start, end))


def limit(w: Workload, n: int) -> Workload:
    """The first ``n`` requests (all of them if there are fewer)."""
    n = check_limit(n)
    return _rebuild(w, to_columns(w).take(slice(0, n)), f"limit={n}")


def rate_scale(w: Workload, x: float) -> Workload:
    """``x`` times the request rate (x > 1 compresses the trace, x < 1 stretches it)."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.floating, np.integer)) \
            or not math.isfinite(x) or x <= 0:
        raise ConfigError(f"rate scale must be a finite number > 0, got {x!r}")
    cols = to_columns(w)
    if len(cols):
        t0 = cols.arrival_s[0]
        cols = Columns(t0 + (cols.arrival_s - t0) / float(x), cols.prompt_tokens,
                       cols.output_tokens, cols.category)
    return _rebuild(w, cols, f"rate_scale={float(x)!r}")


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _gaps(k: int, rate_per_s: float, process: str, cv: float,
          rng: np.random.Generator) -> np.ndarray:
    if process == "poisson":
        return rng.exponential(1.0 / rate_per_s, size=k)
    shape = 1.0 / (cv * cv)
    return rng.gamma(shape, 1.0 / (rate_per_s * shape), size=k)


def _process_args(rate_per_s: float, process: str, cv: float) -> tuple[float, float]:
    rate = _positive("rate_per_s", rate_per_s)
    if process not in PROCESSES:
        raise ConfigError(f"unknown arrival process {process!r}; known: {', '.join(PROCESSES)}")
    cv = check_cv("cv", cv)
    if process == "poisson" and cv != 1.0:
        raise ConfigError(f"a Poisson process has cv = 1 (got cv={cv!r}); use process='gamma'")
    return rate, cv


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    if isinstance(rng, np.random.Generator):
        return rng
    raise ConfigError(f"rng must be a numpy Generator or an integer seed, got {rng!r}")


def _process_label(process: str, rate: float, cv: float) -> str:
    shape = f",cv={cv!r}" if process == "gamma" else ""
    return f"{process}(rate_per_s={rate!r}{shape}"


def _n_arrivals(count: int, rate: float, process: str, cv: float,
                rng: np.random.Generator) -> np.ndarray:
    return np.concatenate(([0.0], np.cumsum(_gaps(count - 1, rate, process, cv, rng))))


def resample_arrivals(w: Workload, rate_per_s: float, *, process: str = "poisson",
                      cv: float = 1.0, rng: np.random.Generator | int | None = None
                      ) -> Workload:
    """The same requests (count, order, lengths, categories) at new synthetic arrival times:
    a Poisson or Gamma process at ``rate_per_s`` whose first arrival is at 0.0."""
    rate, cv = _process_args(rate_per_s, process, cv)
    rng = _as_rng(rng)
    cols = to_columns(w)
    if len(cols):
        cols = Columns(_n_arrivals(len(cols), rate, process, cv, rng), cols.prompt_tokens,
                       cols.output_tokens, cols.category)
    return _rebuild(w, cols, f"resample_arrivals={_process_label(process, rate, cv)})")


def synthetic_arrivals(*, rate_per_s: float, n: int | None = None,
                       duration_s: float | None = None, process: str = "poisson",
                       cv: float = 1.0, rng: np.random.Generator | int | None = None,
                       lengths: LengthSource | Workload | str | Path | None = None) -> Workload:
    """A synthetic workload of ``n`` requests, or of all arrivals in ``[0, duration_s)``.

    ``process``: ``poisson`` (exponential gaps, ``cv`` must stay 1) or ``gamma`` (Gamma gaps
    with shape ``1/cv^2`` and mean ``1/rate_per_s``). ``lengths``: a length source, a
    source name/path for :func:`make_length_source` (None = ``spec-bench``), or a workload
    whose (prompt, output, category) triples are resampled. ``rng``: Generator or seed
    (None = seed 0). Arrivals are drawn first, then lengths, from the same generator.
    """
    rate, cv = _process_args(rate_per_s, process, cv)
    if (n is None) == (duration_s is None):
        raise ConfigError("give exactly one of n (number of requests) and duration_s")
    rng = _as_rng(rng)

    if n is not None:
        count = check_limit(n)
        arrival_s = _n_arrivals(count, rate, process, cv, rng)
        size = f"n={count}"
    else:
        duration = _positive("duration_s", duration_s)
        parts, total = [np.zeros(1)], 0.0
        batch = int(duration * rate * 1.2) + 16
        while total < duration:
            t = total + np.cumsum(_gaps(batch, rate, process, cv, rng))
            parts.append(t)
            total = float(t[-1])
        arrival_s = np.concatenate(parts)
        arrival_s = arrival_s[arrival_s < duration]
        size = f"duration_s={duration!r}"

    if isinstance(lengths, Workload):
        source: LengthSource = WorkloadLengths(lengths)
    elif lengths is None or isinstance(lengths, (str, Path)):
        source = make_length_source(lengths)
    elif isinstance(lengths, LengthSource):
        source = lengths
    else:
        raise ConfigError(f"lengths must be a length source, a workload or a source name, "
                          f"got {lengths!r}")
    prompt, output, cats = source.sample(arrival_s.size, rng)
    cols = Columns(arrival_s, np.asarray(prompt, np.int64), np.asarray(output, np.int64),
                   np.asarray(cats, dtype=object))
    record = (f"synthetic_arrivals={_process_label(process, rate, cv)},{size},"
              f"lengths={source_name(source)})")
    return to_workload(cols, source=f"synthetic:{process}", format="synthetic",
                       sha256=None, transforms=(record,))
