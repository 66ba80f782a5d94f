"""Progress of a long run: a simulation in simulated seconds of the trace, a sweep in points.

On a terminal a tqdm bar (redrawn in place); anywhere else (a log file, a pipe, CI) one line on
stderr at most every ``LINE_INTERVAL_S`` wall seconds, so redirected output holds readable
lines and not carriage-return redraws; ``--quiet`` turns both off. The engine calls
``update(now_s)`` every few hundred iterations and ``close()`` at the end.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

#: Wall seconds between two progress lines on a non-terminal.
LINE_INTERVAL_S = 30.0


class LineProgress:
    """Periodic one-line updates: ``adaspec-sim: adaspec:8: 120/600 s of the trace (20 %),
    31 s elapsed``."""

    def __init__(self, label: str, total_s: float, stream: TextIO,
                 interval_s: float | None = None, prog: str = "adaspec-sim",
                 clock=time.monotonic, unit: str = "s of the trace") -> None:
        self.label = label
        self.total_s = max(float(total_s), 0.0)
        self.stream = stream
        self.interval_s = LINE_INTERVAL_S if interval_s is None else interval_s
        self.prog = prog
        self.unit = unit
        self._clock = clock
        self._began = clock()
        self._last = self._began

    def update(self, now_s: float) -> None:
        wall = self._clock()
        if wall - self._last < self.interval_s:
            return
        self._last = wall
        done = min(now_s, self.total_s)
        share = f" ({100 * done / self.total_s:.0f} %)" if self.total_s > 0 else ""
        print(f"{self.prog}: {self.label}: {done:.0f}/{self.total_s:.0f} {self.unit}"
              f"{share}, {wall - self._began:.0f} s elapsed", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class BarProgress:
    """A tqdm bar (terminals only), shown after 2 s; in simulated seconds unless ``unit``."""

    def __init__(self, label: str, total_s: float, stream: TextIO, unit: str = "sim-s") -> None:
        from tqdm import tqdm
        self._bar = tqdm(total=round(total_s, 1), unit=unit, delay=2.0, leave=False,
                         desc=label, file=stream, bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                         "{n:.0f}/{total:.0f} " + unit + " [{elapsed}<{remaining}]")
        self._shown = 0.0

    def update(self, now_s: float) -> None:
        now_s = min(now_s, self._bar.total)
        if now_s - self._shown >= 1.0:
            self._bar.update(now_s - self._shown)
            self._shown = now_s

    def close(self) -> None:
        self._bar.close()


def make_progress(label: str, total_s: float, stream: TextIO | None = None,
                  prog: str = "adaspec-sim", units: tuple[str, str] | None = None):
    """A bar when ``stream`` (default stderr) is a terminal, periodic lines otherwise.
    ``units``: (bar unit, line unit), default simulated seconds of the trace."""
    stream = stream if stream is not None else sys.stderr
    bar_unit, line_unit = units if units is not None else ("sim-s", "s of the trace")
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return BarProgress(label, total_s, stream, unit=bar_unit)
    return LineProgress(label, total_s, stream, prog=prog, unit=line_unit)
