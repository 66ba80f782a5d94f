"""Resumable result store: one JSON file per point, written atomically.

Layout::

    DIR/points/<key>.json    one record per point (key = SweepPoint.key)

A record carries the provenance every output file carries (schema_version, tool, the point's
effective SimConfig, input files with their SHA-256, seed), the point's identity and table
row, ``status`` ("ok" or "error"), the summary (ok) or the one-line error (error), workload
statistics and wall times. Files are written under a temporary name in the same folder and
renamed with ``os.replace``, so a record is either absent or complete: a sweep killed at any
moment leaves only whole records (a write that fails removes its temporary file). On a rerun,
points with an "ok" record are skipped; points
whose record says "error" are run again (a deterministic failure fails again, quickly).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sim.errors import ConfigError
from sim.output import prepare_out_dir, provenance
from sim.sweep.spec import SweepPoint

OK = "ok"
ERROR = "error"


def make_record(point: SweepPoint, outcome: dict) -> dict:
    """A store record: provenance + the point + what running it produced (``outcome`` has
    ``status`` and either ``summary``/``workload`` or ``error``, and ``wall_s``)."""
    try:
        config = point.sim_config().to_dict()
    except ConfigError:
        config = dict(point.config)
    record = provenance(config, point.inputs(), point.seed)
    record.update(key=point.key, point=point.identity(), row=point.row())
    record.update(outcome)
    return record


class ResultStore:
    """Point records under ``DIR/points``; safe against kills at any moment."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.root = prepare_out_dir(out_dir)
        self.points_dir = self.root / "points"
        self.points_dir.mkdir(exist_ok=True)

    def path(self, key: str) -> Path:
        return self.points_dir / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The record of ``key`` or None (a missing or unreadable file counts as not run)."""
        try:
            with open(self.path(key), encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("key") == key else None

    def is_done(self, key: str) -> bool:
        record = self.get(key)
        return record is not None and record.get("status") == OK

    def pending(self, points) -> list[SweepPoint]:
        """The points without an "ok" record, in their order."""
        return [p for p in points if not self.is_done(p.key)]

    def put(self, record: dict) -> Path:
        """Write ``record`` atomically (temporary file in the same folder + os.replace)."""
        path = self.path(record["key"])
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(record, handle, indent=1, allow_nan=False)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # never leave a half-written temporary behind
            raise
        return path

    def records(self, points) -> list[dict | None]:
        """The records of ``points`` in order (None where a point has none)."""
        return [self.get(p.key) for p in points]
