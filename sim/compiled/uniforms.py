"""The compiled loop's pool of uniforms: the run's generator drawn in blocks, the next block
drawn on a helper thread while the loop runs.

The loop takes the acceptance draws' uniforms from one flat pool, in the order the protocol
path draws them from the run's ``numpy.random.Generator``; when the pool runs short it
returns ``ST_NEED_POOL`` and Python appends the next ``block`` uniforms of the stream after
the ones not used yet. The stream is the same whoever draws it and whenever: block ``i`` is
always the generator's uniforms ``i * block .. (i + 1) * block - 1``, because only this
object draws from the generator while the loop runs (``sim.server`` draws the requests'
levels before the loop starts, and nothing draws after it). So the next block is drawn
ahead, on one helper thread, while the loop consumes the current one: numpy's generator
releases the GIL while it fills an array, and ``run_chunk`` is compiled without the GIL
(``sim.compiled.jit.gil_free``), so on a machine with a second core the draws (0.07-0.13 s
of CPU, about a twentieth of adaspec:8's command on the full Azure hour: 458 blocks, 30 M
uniforms) leave the loop's critical path. The CPU time is the same; only the wall time shrinks.

Each block is drawn at offset ``headroom`` of a fresh array, so the uniforms not used yet
(fewer than ``headroom``: the loop asks for more before a batch could need them) are copied
in front of it and the pool is a view, without copying the block.

Blocks grow: each is twice the one before, up to ``max_block`` (the first is ``block``), so a
short run draws little ahead and a long one returns to Python for uniforms a few dozen times
instead of hundreds (the full Azure hour under adaspec:8: 458 refills of 65,536 uniforms,
now 32, growing to 2^20, 8 MiB a block). The stream does not depend on the blocks' sizes:
each float64 uniform is one draw of the generator, in order.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np


class UniformBlocks:
    """The run generator's uniforms, ``block`` at a time, the next block drawn ahead."""

    def __init__(self, rng: np.random.Generator, block: int, headroom: int,
                 max_block: int | None = None) -> None:
        if block < 1 or headroom < 0:
            raise ValueError(f"block must be >= 1 and headroom >= 0, got {block}, {headroom}")
        self._rng = rng
        self._block = block  # the size of the next block to draw
        self._max_block = max(block, max_block if max_block is not None else block)
        self._headroom = headroom
        self._executor: ThreadPoolExecutor | None = None
        self._next: Future | None = None

    def _draw(self) -> np.ndarray:
        """The next block (after ``headroom`` free places); the one after is twice as long,
        up to ``max_block``. Called by one thread at a time (``refill`` waits for the block
        drawn ahead before it asks for the next)."""
        buffer = np.empty(self._headroom + self._block)
        self._rng.random(out=buffer[self._headroom:])  # the next uniforms of the run's stream
        self._block = min(2 * self._block, self._max_block)
        return buffer

    def refill(self, rest: np.ndarray) -> np.ndarray:
        """The new pool: ``rest`` (the uniforms not used yet, fewer than ``headroom``) then the
        stream's next block; starts drawing the block after it."""
        if rest.size > self._headroom:
            raise ValueError(f"{rest.size} unused uniforms exceed the headroom "
                             f"{self._headroom}")
        if self._executor is None:  # the first refill: nothing drawn ahead yet
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="adaspec-uniforms")
            buffer = self._draw()
        else:
            buffer = self._next.result()
        self._next = self._executor.submit(self._draw)
        start = self._headroom - rest.size
        buffer[start:self._headroom] = rest
        return buffer[start:]

    def close(self) -> None:
        """Stop the helper thread (after the block it may be drawing); the generator is not
        drawn from again."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
            self._next = None
