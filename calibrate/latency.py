"""Time realrun's own forward passes over a grid of shapes (DESIGN.md §7).

Operations and their grids:

* ``target_prefill`` / ``draft_prefill``: batch x prompt length (``realrun.forward.prefill``);
* ``target_verify``: batch x tokens per sequence (1..k_max+1) x context length
  (``realrun.forward.decode`` with ``[B, T]`` tokens);
* ``draft_step``: batch x context length (``decode`` with one token per row).

Each grid point is run ``warmup`` times untimed, then ``repeats`` times timed; the median is
the sample. On CUDA a pass is bracketed by CUDA events (after a synchronize); on CPU by
``time.perf_counter``. The KV state is reset between runs with ``realrun.forward.truncate``.
A decode pass at context C needs slots holding C cached positions: their lengths are set
directly (the cached values are the cache's zeros) because latency does not depend on the
values, only on the shapes; prefilling real contexts would cost more than the whole grid on a
CPU. The timed call is exactly what the real engine calls, host-side preparation included.

Verification is timed in the form the real engine executes, the ``single-pass`` engine of
``sim.latency.iteration``: one pass over B sequences x (k + 1) positions, each sequence's KV
read once. A profile fitted here prices ``vllm-0.6`` batch expansion through the same
``target_verify_s`` as a decode pass over the expanded rows (``B (k+1)`` one-token sequences),
i.e. from its ``tokens = batch`` points: no batch-expansion pass is ever timed.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

import torch

from calibrate.grid import DEFAULT_K_MAX, Grid, grid_points
from realrun.forward import allocate, decode, prefill, truncate
from realrun.kvcache import SlotKVCache
from sim.errors import ConfigError


class Timer:
    """Times a zero-argument callable: CUDA events on a GPU, perf_counter on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def __call__(self, fn: Callable[[], Any]) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        began = time.perf_counter()
        fn()
        return time.perf_counter() - began


def measure_runs(timer: Timer, run: Callable[[], Any], reset: Callable[[], None], repeats: int,
                 warmup: int) -> list[float]:
    """``warmup`` untimed then ``repeats`` timed runs of ``run``, ``reset`` after each; the
    timed runs' seconds."""
    times = []
    for i in range(warmup + repeats):
        elapsed = timer(run)
        reset()
        if i >= warmup:
            times.append(elapsed)
    return times


def _sample(op: str, batch: int, tokens: int, context: int, prompt: int,
            times: list[float]) -> dict[str, Any]:
    return {"op": op, "batch": batch, "tokens_per_seq": tokens, "context_per_seq": context,
            "prompt_len": prompt, "seconds_median": float(statistics.median(times)),
            "seconds_all": [float(t) for t in times]}


class PassBench:
    """One model's cache and slots for timing its passes."""

    def __init__(self, model: torch.nn.Module, max_slots: int, max_len: int, vocab: int,
                 seed: int) -> None:
        self.model = model
        self.cache = SlotKVCache.for_model(model, max_slots=max_slots, max_len=max_len)
        self.slots = [allocate(self.cache) for _ in range(max_slots)]
        gen = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, max(2, vocab), (max_slots, max_len), generator=gen)

    def set_context(self, batch: int, context: int) -> list[int]:
        slots = self.slots[:batch]
        for slot in self.slots:
            self.cache.lengths[slot] = 0
        for slot in slots:
            # Shapes are what matter for latency: cached positions keep the cache's values.
            self.cache.lengths[slot] = context
        return slots

    def prefill_run(self, batch: int, prompt: int) -> tuple[Callable, Callable]:
        slots = self.set_context(batch, 0)
        rows = [self.ids[i, :prompt].tolist() for i in range(batch)]
        return (lambda: prefill(self.model, self.cache, slots, rows),
                lambda: truncate(self.cache, slots, [0] * batch))

    def decode_run(self, batch: int, tokens: int, context: int) -> tuple[Callable, Callable]:
        slots = self.set_context(batch, context)
        ids = self.ids[:batch, :tokens].clone()
        return (lambda: decode(self.model, self.cache, slots, ids),
                lambda: truncate(self.cache, slots, [context] * batch))


def time_grid(target: torch.nn.Module, draft: torch.nn.Module, grid: Grid, *,
              k_max: int = DEFAULT_K_MAX, seed: int = 0, progress: bool = False
              ) -> dict[str, list[dict[str, Any]]]:
    """Time every grid point; return the samples grouped by operation."""
    if k_max < 0:
        raise ConfigError(f"k_max must be >= 0, got {k_max}")
    device = next(target.parameters()).device
    max_slots = max(grid.batch_sizes)
    max_len = max(max(grid.prompt_lengths),
                  max(grid.context_lengths) + max(grid.verify_tokens(k_max))) + 1
    limits = [getattr(m.config, "max_position_embeddings", None) for m in (target, draft)]
    if any(lim is not None and max_len > lim for lim in limits):
        raise ConfigError(f"grid needs {max_len} positions, more than the models allow ({limits})")
    benches = {"target": PassBench(target, max_slots, max_len, target.config.vocab_size, seed),
               "draft": PassBench(draft, max_slots, max_len, draft.config.vocab_size, seed + 1)}
    timer = Timer(device)
    samples: dict[str, list[dict[str, Any]]] = {}
    points = list(grid_points(grid, k_max))
    from tqdm import tqdm

    with torch.inference_mode():
        for op, batch, tokens, context, prompt in tqdm(points, desc="calibrate latency",
                                                       unit="point", disable=not progress,
                                                       mininterval=2.0):
            bench = benches["draft" if op.startswith("draft") else "target"]
            if op.endswith("prefill"):
                run, reset = bench.prefill_run(batch, prompt)
            else:
                run, reset = bench.decode_run(batch, tokens, context)
            times = measure_runs(timer, run, reset, grid.repeats, grid.warmup)
            samples.setdefault(op, []).append(_sample(op, batch, tokens, context, prompt, times))
    return samples
