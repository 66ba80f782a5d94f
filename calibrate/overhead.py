"""Measure the per-pass overhead of realrun's decode passes: the part of a pass's time that is
not its operators' work (the engine's host code, Python, dispatch, kernel launches the device
waits on). It is the term the simulator adds to every pass as ``--pass-overhead-ms``
(``sim.latency.overhead``), which the presets cite from published vLLM measurements.

For each batch size B (one new token per sequence over ``context`` cached tokens, the pass a
decode iteration runs), the pass is run ``warmup`` times untimed, then ``repeats`` times
timed exactly as ``calibrate.latency`` times passes (``Timer``: CUDA events after a
synchronize on a GPU, ``time.perf_counter`` on a CPU): ``pass_s`` is the median. Then
``repeats`` more runs under ``torch.profiler``; per pass:

* ``busy_s``: the time spent inside the operators' work: on a GPU the kernels' durations
  (every event's self device time, summed), on a CPU the ATen operators' self time (the
  ``aten::*`` events' self CPU time, summed: each operator's own C++ dispatch is inside it,
  Python and the engine's host code are not);
* ``overhead_s = pass_s - busy_s``: on a GPU, the time the device waited on the host within
  the pass (host preparation before the first kernel, launch gaps); on a CPU, the host code
  between operators.

The profiler slows the host, so ``busy_s`` comes from the profiled runs and ``pass_s`` from
the unprofiled ones; a kernel's duration on the device does not depend on the host being
profiled, a CPU operator's self time slightly does (``busy_s`` is then an upper bound, the
overhead a lower bound). What this measures is this project's engine (eager PyTorch through
``realrun.forward``, no CUDA graphs, greedy, sampling outside the pass), not vLLM's: it says
how much of a pass is host-bound on the hardware at hand, not what vLLM's scheduler costs.
"""

from __future__ import annotations

import statistics
from typing import Any, Sequence

from sim.errors import ConfigError

#: ``kind`` of the JSON document ``adaspec-calibrate overhead`` writes
OVERHEAD_KIND = "pass-overhead"


def busy_seconds(events: Sequence[Any], cuda: bool) -> float:
    """Seconds of operator work in a profile's ``key_averages()`` rows: every row's self
    device time on a GPU (kernels, memcpys), the ``aten::`` rows' self CPU time on a CPU."""
    if cuda:
        return sum(float(e.self_device_time_total) for e in events) / 1e6
    return sum(float(e.self_cpu_time_total) for e in events if e.key.startswith("aten::")) / 1e6


def _profiled_busy_s(run, reset, repeats: int, cuda: bool) -> float:
    """Mean ``busy_seconds`` per pass over ``repeats`` profiled passes."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(repeats):
            run()
            if cuda:
                torch.cuda.synchronize()
            reset()
    return busy_seconds(prof.key_averages(), cuda) / repeats


def check_overhead_options(batches: Sequence[int], context: int, repeats: int,
                           warmup: int) -> list[int]:
    """The options, checked before anything loads: batch sizes a non-empty list of integers
    >= 1 (kept in order), ``context`` >= 0, ``repeats`` >= 1, ``warmup`` >= 0; returns the
    batch sizes."""
    out = [int(b) for b in batches]
    if not out or any(b < 1 for b in out):
        raise ConfigError(f"--batches must be integers >= 1, got {list(batches)}")
    for name, value, least in (("--context", context, 0), ("--repeats", repeats, 1),
                               ("--warmup", warmup, 0)):
        if value < least:
            raise ConfigError(f"{name} must be >= {least}, got {value}")
    return out


def measure_overhead(model, batches: Sequence[int], *, context: int, repeats: int,
                     warmup: int, seed: int = 0) -> list[dict[str, Any]]:
    """One sample per batch size (module doc) of a loaded ``torch`` model: batch, context,
    ``pass_s`` (median and every timed run), ``busy_s``, ``overhead_s`` and its share of the
    pass."""
    import torch

    from calibrate.latency import PassBench, Timer, measure_runs

    batches = check_overhead_options(batches, context, repeats, warmup)
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and context + 2 > limit:
        raise ConfigError(f"context {context} needs {context + 2} positions, more than the "
                          f"model allows ({limit})")
    device = next(model.parameters()).device
    cuda = device.type == "cuda"
    bench = PassBench(model, max(batches), context + 2, model.config.vocab_size, seed)
    timer = Timer(device)
    samples = []
    with torch.inference_mode():
        for batch in batches:
            run, reset = bench.decode_run(batch, 1, context)
            times = measure_runs(timer, run, reset, repeats, warmup)
            busy = _profiled_busy_s(run, reset, repeats, cuda)
            pass_s = float(statistics.median(times))
            samples.append({"batch": batch, "context_per_seq": context,
                            "pass_s_median": pass_s, "pass_s_all": [float(t) for t in times],
                            "busy_s": busy, "overhead_s": pass_s - busy,
                            "overhead_share": (pass_s - busy) / pass_s if pass_s > 0 else 0.0})
    return samples


def summarize(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The overhead across batch sizes: median, least and most, in seconds."""
    overheads = [s["overhead_s"] for s in samples]
    return {"overhead_s_median": float(statistics.median(overheads)),
            "overhead_s_min": float(min(overheads)), "overhead_s_max": float(max(overheads))}


def format_table(samples: Sequence[dict[str, Any]]) -> str:
    """The samples as a small table (milliseconds)."""
    lines = [f"{'batch':>6s} {'pass ms':>9s} {'busy ms':>9s} {'overhead ms':>12s} {'share':>6s}"]
    for s in samples:
        lines.append(f"{s['batch']:6d} {1e3 * s['pass_s_median']:9.3f} {1e3 * s['busy_s']:9.3f}"
                     f" {1e3 * s['overhead_s']:12.3f} {100 * s['overhead_share']:5.1f}%")
    return "\n".join(lines)
