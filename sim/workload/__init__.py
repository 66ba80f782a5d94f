"""Workloads: request records, trace loaders for every supported format, and transformations.

``Request`` and ``Workload`` are imported eagerly; the loaders and transformations are
imported on first use, so modules that only need the records stay light (pandas itself loads
only for a file the plain reader leaves to it: ``sim.workload.plain_csv``).
"""

from __future__ import annotations

import importlib

from sim.workload.request import Request, Workload

_LAZY = {
    "load_trace": "sim.workload.load", "detect_format": "sim.workload.load",
    "FORMATS": "sim.workload.load",
    "LengthSource": "sim.workload.lengths", "ShareGPTLengths": "sim.workload.lengths",
    "SpecBenchLengths": "sim.workload.lengths", "WorkloadLengths": "sim.workload.lengths",
    "make_length_source": "sim.workload.lengths",
    "window": "sim.workload.transforms", "limit": "sim.workload.transforms",
    "rate_scale": "sim.workload.transforms", "resample_arrivals": "sim.workload.transforms",
    "synthetic_arrivals": "sim.workload.transforms",
    "write_native": "sim.workload.native",
    "WorkloadSpec": "sim.workload.spec",
}

__all__ = ["Request", "Workload", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sim.workload' has no attribute {name!r}")
