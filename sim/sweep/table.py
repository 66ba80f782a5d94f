"""The tidy result table: one row per sweep point, in the sweep file's point order.

Columns, in this order: ``key``; the point's inputs (trace, trace_sha256, policy, seed, rate,
rate_scale, arrivals, arrival_rate_req_per_s, arrival_cv, slo_scale, base_ttft_slo_s,
base_tpot_slo_s, limit, window_start_s, window_end_s, lengths, category, then every SimConfig
field with the SLOs already scaled); ``status`` ("ok", "error", or "missing" for a point not
run yet) and ``error``; the workload's statistics (``workload_requests``, ``workload_span_s``,
``workload_offered_rate_req_per_s``); every summary metric flattened with ``_`` (e.g.
``ttft_s_p99``, ``slo_attainment``, ``throughput_tokens_per_s``); and the wall times
``sim_wall_s`` and ``wall_s`` (the only columns that differ between identical reruns).

Written as ``results.csv`` (first line ``# adaspec-sim {provenance}``; read it back with
:func:`read_table`) and ``results.parquet`` (the same provenance in the schema metadata under
``adaspec-sim``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from sim.output import write_table
from sim.sweep.spec import SweepPoint

TIMING_COLUMNS = ("sim_wall_s", "wall_s")
WORKLOAD_STATS = ("requests", "span_s", "offered_rate_req_per_s")
"""The workload statistics of a point record, as columns ``workload_<name>``."""
PARQUET_META_KEY = b"adaspec-sim"


def flatten(value: dict, prefix: str = "") -> dict:
    """Nested dicts to one level: {"ttft_s": {"p99": x}} -> {"ttft_s_p99": x}."""
    flat = {}
    for key, item in value.items():
        name = f"{prefix}_{key}" if prefix else str(key)
        if isinstance(item, dict):
            flat.update(flatten(item, name))
        elif isinstance(item, (list, tuple)):
            flat[name] = ";".join(map(str, item))
        else:
            flat[name] = item
    return flat


def build_table(points: Sequence[SweepPoint], records: Sequence[dict | None]) -> pd.DataFrame:
    """One row per point (same order); ``records`` are the store's records (None = not run)."""
    rows, metric_columns = [], []
    for point, record in zip(points, records):
        row = {"key": point.key}
        row.update(point.row())
        record = record or {}
        row["status"] = record.get("status", "missing")
        row["error"] = record.get("error")
        workload = dict(record.get("workload") or {})
        workload.pop("transforms", None)
        row.update({f"workload_{k}": workload.get(k) for k in WORKLOAD_STATS})
        metrics = flatten(record.get("summary") or {})
        for name in metrics:
            if name not in metric_columns:
                metric_columns.append(name)
        row.update(metrics)
        for name in TIMING_COLUMNS:
            row[name] = record.get(name)
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame.from_records(rows)
    # a number no point has (every request rejected; one arrival instant: no offered rate)
    # is NaN, a float column the derived tables can average
    for name in [f"workload_{k}" for k in WORKLOAD_STATS] + metric_columns:
        if frame[name].isna().all():
            frame[name] = frame[name].astype(float)
    head = [c for c in frame.columns if c not in metric_columns and c not in TIMING_COLUMNS]
    return frame[head + metric_columns + list(TIMING_COLUMNS)]


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_parquet(path: Path, frame: pd.DataFrame, header: dict) -> Path:
    """Write ``frame`` as Parquet with the provenance in the schema metadata, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata[PARQUET_META_KEY] = json.dumps(header, sort_keys=True).encode()
    table = table.replace_schema_metadata(metadata)
    tmp = _tmp(path)
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def write_results_table(out_dir: str | os.PathLike, frame: pd.DataFrame, header: dict,
                        stem: str = "results") -> list[Path]:
    """``DIR/<stem>.csv`` always, ``DIR/<stem>.parquet`` when pyarrow is installed."""
    out = Path(out_dir)
    written = [out / f"{stem}.csv"]
    write_table(written[0], frame, header)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return written
    written.append(write_parquet(out / f"{stem}.parquet", frame, header))
    return written


def read_header(path: str | os.PathLike) -> dict:
    """The provenance of a table written by this module (CSV or Parquet)."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq
        return json.loads(pq.read_schema(path).metadata[PARQUET_META_KEY])
    with open(path, encoding="utf-8") as handle:
        first = handle.readline()
    prefix = "# adaspec-sim "
    return json.loads(first[len(prefix):]) if first.startswith(prefix) else {}


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a results table back (CSV: the provenance line is skipped)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    with open(path, encoding="utf-8") as handle:
        skip = 1 if handle.readline().startswith("#") else 0
    return pd.read_csv(path, skiprows=skip)
