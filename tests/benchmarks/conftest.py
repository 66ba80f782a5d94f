"""The benchmarks' tests import the scripts as modules (``import write_tables``), with the
benchmarks folder first on ``sys.path`` as ``python benchmarks/X.py`` has it (a script
imports its neighbours, e.g. ``benchmarks/seeded_runs.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
