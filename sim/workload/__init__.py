"""Workloads: request records, trace loaders for every supported format, and transformations."""

from sim.workload.request import Request, Workload

__all__ = ["Request", "Workload"]
