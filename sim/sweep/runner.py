"""Runs sweep points in parallel: a local process pool (default) or a Ray cluster.

``run_point(point)`` never raises: it returns an outcome with ``status`` "ok" (summary,
workload statistics and the ``simulated`` block ``adaspec-sim`` puts in its summary.json:
latency source, engine limits, acceptance model) or "error" (one line naming the exception),
so one bad point is recorded and the sweep goes on; and the point's warnings, recorded with
it as one-line strings (``warnings``) rather than printed by the worker, in whatever format
and as often as each worker would (the sweep command says each distinct one once, with how
many points it concerned). The driver process writes every record
to the store as it arrives, so a sweep killed at any moment keeps every point finished
before the kill.

A point's workload is a value (``point.workload``, a ``sim.workload.spec.WorkloadSpec``, the
same value ``adaspec-sim`` makes from its options), built with the point's seed and cached per
process, so the points that share a workload (policies, SLO scales) load the trace once per
worker.

Ray: ``address="local"`` starts a private Ray instance in-process with ``workers`` CPUs; any
other address is passed to ``ray.init`` (e.g. ``ray://head:10001`` or ``auto``). For a remote
cluster the ``sim`` package is shipped with the job (``runtime_env.py_modules``) and workloads
are built on the driver and shipped as Ray objects, so worker nodes need neither the
repository nor the trace files -- only the dependencies (numpy, pandas, simpy).

Before points go to worker processes on this machine (the process pool, a local Ray instance),
``ready_compiled_loop`` loads the compiled loop in this process, or compiles it once into the
disk cache when the cache has no copy yet, so the workers load it rather than each spending
minutes compiling it (``sim.compiled.warm``).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import replace
from typing import Callable, Iterable

from sim.errors import ConfigError
from sim.sweep.spec import SweepPoint

OnDone = Callable[[SweepPoint, dict], None]
_CACHE_SIZE = 4
_workloads: OrderedDict = OrderedDict()


def _workload_key(point: SweepPoint) -> tuple:
    return (point.workload, point.trace_sha256, point.seed)


def build_workload(point: SweepPoint):
    """The point's workload (cached: the last few distinct workloads of this process)."""
    key = _workload_key(point)
    if key in _workloads:
        _workloads.move_to_end(key)
        return _workloads[key]
    workload = point.workload.build(point.seed)
    _workloads[key] = workload
    while len(_workloads) > _CACHE_SIZE:
        _workloads.popitem(last=False)
    return workload


def _error_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def workload_stats(workload) -> dict:
    n = len(workload)
    span = workload.span_s
    return {"requests": n, "span_s": span,
            "offered_rate_req_per_s": (n - 1) / span if n > 1 and span > 0 else None,
            "transforms": list(workload.transforms)}


def run_point(point: SweepPoint, workload=None) -> dict:
    """Simulate one point; returns an outcome dict and never raises (errors are recorded).
    The point's warnings are recorded in the outcome, not shown (``warnings``: one line each,
    as issued; present only when there are any): requests falling back to the acceptance
    model's default profile (prefixed with the trace), and the package's ``AdaSpecWarning``s,
    e.g. a calibrated profile queried outside its measured domain."""
    from sim.acceptance.presets import make_acceptance
    from sim.errors import recorded_warnings
    from sim.run import build_latency, simulate
    from sim.run_description import describe_run, record_category_fallback
    began = time.perf_counter()
    with recorded_warnings() as said:
        try:
            if workload is None:
                workload = build_workload(point)
            elif isinstance(workload, BaseException):
                raise workload
            # a sweep reads only the summary: no iteration table (the summary is the same)
            config = replace(point.sim_config(), iteration_log=False)
            latency = build_latency(config)
            simulated = describe_run(config, latency, _profile_sha256(config.profile))
            acceptance = make_acceptance(config.acceptance)
            fallback = record_category_fallback(simulated, acceptance, workload)
            if fallback:  # as adaspec-sim: recorded, and said as a warning of the point
                said.append(f"{point.trace}: {fallback}")
            result = simulate(workload, point.policy, config, seed=point.seed,
                              latency=latency, acceptance=acceptance)
            outcome = {"status": "ok", "summary": result.summary,
                       "workload": workload_stats(workload), "simulated": simulated,
                       "sim_wall_s": result.wall_s}
        except Exception as exc:  # noqa: BLE001 - recorded in the store; the sweep goes on
            outcome = {"status": "error", "error": _error_line(exc)}
    if said:
        outcome["warnings"] = list(said)
    outcome["wall_s"] = time.perf_counter() - began
    return outcome


def _profile_sha256(profile: str | None) -> str | None:
    from sim.output import path_sha256
    return path_sha256(profile) if profile else None


def ready_compiled_loop(points: list[SweepPoint]) -> bool:
    """Before points go to worker processes on this machine: when any of them may take the
    compiled path, load the compiled loop here, or compile it once into the disk cache, so
    the workers load it instead of each compiling it (``sim.compiled.warm``). Returns whether
    it was readied; never raises (a failed warm-up leaves the points as they were)."""
    from sim.compiled.warm import may_take_compiled_path, warm_loop
    for point in points:
        try:
            engine_path = point.base_config().engine_path
        except Exception:  # noqa: BLE001 - a bad config is the point's own error
            continue
        if may_take_compiled_path(point.policy, engine_path):
            try:
                return warm_loop()
            except Exception:  # noqa: BLE001 - best effort: each point then compiles, or
                return False  # records its own error, as without the warm-up
    return False


def default_workers() -> int:
    return os.cpu_count() or 1


def run_local(points: Iterable[SweepPoint], on_done: OnDone, workers: int | None = None) -> None:
    """Run ``points`` on a local process pool (in this process when ``workers`` is 1)."""
    points = list(points)
    workers = workers or default_workers()
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if workers == 1 or len(points) <= 1:
        for point in points:
            on_done(point, run_point(point))
        return
    ready_compiled_loop(points)
    with ProcessPoolExecutor(max_workers=min(workers, len(points))) as pool:
        futures = {pool.submit(run_point, point): (i, point) for i, point in enumerate(points)}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: futures[f][0]):
                    try:
                        outcome = future.result()
                    except Exception as exc:  # noqa: BLE001 - e.g. a worker killed (OOM)
                        outcome = {"status": "error", "error": _error_line(exc), "wall_s": None}
                    on_done(futures[future][1], outcome)
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray, which is not installed: "
                          "pip install 'adaspec-sim[ray]'") from None
    return ray


def run_ray(points: Iterable[SweepPoint], on_done: OnDone, address: str,
            workers: int | None = None) -> None:
    """Run ``points`` as Ray tasks (``address`` "local" = a private in-process instance)."""
    points = list(points)
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        if address == "local":
            ready_compiled_loop(points)  # its workers share this machine's disk cache
            ray.init(num_cpus=workers or default_workers(), include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        else:
            import sim
            package = os.path.dirname(os.path.abspath(sim.__file__))
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False,
                         runtime_env={"py_modules": [package]})
            except Exception as exc:  # noqa: BLE001 - connection failures are user errors
                raise ConfigError(f"cannot connect to Ray at {address!r}: "
                                  f"{_error_line(exc)}") from None
    try:
        task = ray.remote(num_cpus=1)(run_point)
        shipped: dict = {}
        refs = {}
        for point in points:
            key = _workload_key(point)
            if key not in shipped:
                try:
                    shipped[key] = ray.put(build_workload(point))
                except Exception as exc:  # noqa: BLE001 - becomes the points' error record
                    shipped[key] = exc
            refs[task.remote(point, shipped[key])] = point
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                on_done(refs[ref], ray.get(ref))
    finally:
        if started_here:
            ray.shutdown()


def run_points(points: Iterable[SweepPoint], on_done: OnDone, workers: int | None = None,
               ray_address: str | None = None) -> None:
    """Run every point, calling ``on_done(point, outcome)`` in the driver as each finishes."""
    if ray_address:
        run_ray(points, on_done, ray_address, workers)
    else:
        run_local(points, on_done, workers)
