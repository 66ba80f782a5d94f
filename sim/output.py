"""Writes a run's results directory as one unit, with provenance in every file.

Layout::

    DIR/summary.json                     schema_version, config, what was simulated, inputs
                                         (path + sha256), seed, one summary block per policy
    DIR/<policy>/requests.csv            per-request table
    DIR/<policy>/iterations.csv          per-iteration table (none with --no-iteration-log)
    DIR/plots/                           with --plot

Each CSV starts with one ``# adaspec-sim {...}`` line holding the same provenance (read the
tables with ``pandas.read_csv(path, comment="#")``). Tables are written slice by slice
(``write_table`` takes a DataFrame or a ``sim.table.Table``, or consecutive slices of one; the
bytes are the same). The run's own tables are written from ``Table`` slices: no pandas.

A directory is one run. ``run_directory(DIR, overwrite)`` checks up front (creating nothing)
that DIR is absent or empty, or that replacing it was asked for and DIR holds a run (never
any other folder: ``looks_like_run``); the run is then written into
a temporary sibling ``.DIR.tmp-PID`` (tables, plots, and ``summary.json`` last) that is renamed
to DIR at the end (an old DIR is first moved aside to ``.DIR.old-PID`` and removed once the
new one is in place). On any error the temporary sibling and any parent folders created for
it are removed, so a failed run leaves nothing behind and never mixes with an earlier one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from sim import SCHEMA_VERSION, __version__
from sim.csv_text import csv_pieces
from sim.errors import ConfigError
from sim.table import Table, is_dataframe


def policy_dirname(policy: str) -> str:
    """A filesystem-safe directory name for a policy spec (``threshold:0.6,8`` ->
    ``threshold_0.6_8``)."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", policy).strip("_") or "policy"


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def path_sha256(path: str | os.PathLike) -> str:
    """A file's sha256, or for a folder (a Vidur profile) the sha256 of its files' relative
    paths and sha256s, in sorted order."""
    path = Path(path)
    if not path.is_dir():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()


def provenance(config: dict, inputs: dict, seed: int) -> dict:
    """The header every output file carries."""
    return {"schema_version": SCHEMA_VERSION, "tool": f"adaspec-sim {__version__}",
            "config": config, "inputs": inputs, "seed": seed}


def prepare_out_dir(out: str | os.PathLike) -> Path:
    """Create ``out`` if needed and check it is writable; a clear error otherwise."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write to output directory {path}: {exc.strerror or exc}") from None
    return path


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_table(path: Path, frames, header: dict) -> None:
    """Write a table as CSV with a one-line JSON provenance comment, atomically.

    ``frames``: a DataFrame or a ``sim.table.Table``, or consecutive slices of one (written one
    after another, so a table of any length takes the memory of one slice); the bytes are the
    same either way.
    Floats are written with 9 significant digits (``%.9g``), NaN as an empty field: the bytes
    of pandas' ``to_csv(float_format="%.9g")`` in UTF-8, made by ``sim.csv_text``."""
    if isinstance(frames, Table) or is_dataframe(frames):
        frames = (frames,)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(("# adaspec-sim " + json.dumps(header, sort_keys=True) + "\n").encode())
        first = True
        for frame in frames:
            if len(frame) or first:
                pieces = csv_pieces(frame, header=first)
                if pieces is None:
                    if isinstance(frame, Table):
                        frame = frame.to_frame()
                    pieces = (frame.to_csv(index=False, header=first, lineterminator="\n",
                                           float_format="%.9g").encode("utf-8"),)
                for piece in pieces:
                    handle.write(piece)
                first = False
    os.replace(tmp, path)


def write_policy_tables(out_dir: Path, result, header: dict) -> dict:
    """Write one policy's ``requests.csv`` and (when it was kept) ``iterations.csv`` under
    ``out_dir``, streaming them slice by slice; return its summary."""
    sub = out_dir / policy_dirname(result.policy)
    sub.mkdir(exist_ok=True)
    table_header = dict(header, policy=result.policy)
    write_table(sub / "requests.csv", result.request_table.tables(), table_header)
    if result.has_iterations:
        write_table(sub / "iterations.csv", result.iteration_log.tables(), table_header)
    return result.summary


def write_tables(out_dir: Path, results: Iterable, header: dict) -> dict:
    """Write every policy's tables under ``out_dir``; return ``{policy: summary}``."""
    return {result.policy: write_policy_tables(out_dir, result, header) for result in results}


def write_summary(out_dir: Path, header: dict, policies: dict) -> Path:
    """Write ``summary.json`` (the header plus one block per policy); return its path."""
    summary_path = out_dir / "summary.json"
    document = dict(header, policies=policies)
    _write_text_atomic(summary_path, json.dumps(document, indent=2, sort_keys=False) + "\n")
    return summary_path


def write_results(out: str | os.PathLike, results: Iterable, config: dict, inputs: dict,
                  seed: int) -> Path:
    """Write every policy's tables, then ``summary.json``, into an existing or new directory
    (no one-run check: ``run_directory`` does that); return the summary path."""
    out_dir = prepare_out_dir(out)
    summary_path = out_dir / "summary.json"
    if summary_path.exists():
        summary_path.unlink()  # the directory is incomplete until the new summary lands
    header = provenance(config, inputs, seed)
    return write_summary(out_dir, header, write_tables(out_dir, results, header))


# ---- one directory, one run ------------------------------------------------------------------
def _describe_existing(path: Path) -> str:
    """What an existing non-empty output directory holds, for the refusal message."""
    try:
        document = json.loads((path / "summary.json").read_text(encoding="utf-8"))
        trace = document["inputs"]["trace"]["path"]
        policies = ", ".join(document["policies"])
        return f"a run of {policies} on {trace}"
    except (OSError, ValueError, KeyError, TypeError):
        entries = sum(1 for _ in path.iterdir())
        return f"{entries} entr{'y' if entries == 1 else 'ies'}"


def looks_like_run(path: Path) -> bool:
    """A run directory (complete or not): ``summary.json``, ``plots/`` and folders holding
    ``requests.csv``/``iterations.csv``, nothing else. ``--overwrite`` replaces only these."""
    for entry in path.iterdir():
        if entry.name == "summary.json" and entry.is_file():
            continue
        if entry.is_dir() and not entry.is_symlink() and (
                entry.name == "plots" or {p.name for p in entry.iterdir()} <= {
                    "requests.csv", "iterations.csv"}):
            continue
        return False
    return True


def check_out_dir(out: str | os.PathLike, overwrite: bool = False) -> Path:
    """Check, creating nothing, that a run can be written to ``out``: absent, an empty
    directory, or (with ``overwrite``) a run directory (``looks_like_run``); its nearest
    existing ancestor must be a writable directory. Returns the absolute path."""
    path = Path(os.path.abspath(out))
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise ConfigError(f"--out {out} exists and is not a directory")
        if any(path.iterdir()):
            if not overwrite:
                raise ConfigError(f"--out {out} is not empty (it holds "
                                  f"{_describe_existing(path)}); pass --overwrite to replace "
                                  "it, or choose another directory")
            if not looks_like_run(path):
                raise ConfigError(f"--out {out} holds {_describe_existing(path)} that are not "
                                  "an adaspec-sim run; --overwrite replaces only run "
                                  "directories: choose another directory")
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write to output directory {out}: "
                          f"{ancestor} is not a writable directory")
    return path


def _make_parents(path: Path, created: list[Path]) -> None:
    """``mkdir -p path``, appending each directory it creates to ``created`` (deepest last)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir()
        created.append(directory)


@contextmanager
def run_directory(out: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``out`` to write a run into; on success it becomes
    ``out`` (replacing an old one only with ``overwrite``), on any error it is removed."""
    final = check_out_dir(out, overwrite)
    created: list[Path] = []
    staging = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        _make_parents(final.parent, created)
        if staging.exists():  # left by an earlier process of the same id that was killed
            shutil.rmtree(staging)
        staging.mkdir()
        yield staging
        _replace_dir(staging, final, overwrite)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        for directory in reversed(created):
            try:
                directory.rmdir()
            except OSError:
                break
        if isinstance(exc, OSError):
            raise ConfigError(f"cannot write to output directory {out}: "
                              f"{exc.strerror or exc}") from None
        raise


def _replace_dir(staging: Path, final: Path, overwrite: bool) -> None:
    if final.is_dir() and any(final.iterdir()):
        if not overwrite:  # filled by someone else while this run was simulated
            raise ConfigError(f"--out {final} was filled while this run was simulated; "
                              "nothing written (pass --overwrite to replace it)")
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        try:
            os.replace(staging, final)
        except OSError:
            os.replace(old, final)  # put the earlier run back
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, final)  # replaces an empty directory
