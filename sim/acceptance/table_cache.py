"""On-disk cache of the acceptance model's Beta tables.

Building a ``ParametricAcceptance`` computes ~128k Beta quantiles with scipy (about 0.3 s, plus
0.5 s to import ``scipy.special``), the same numbers for every run of the same model. They are
kept as an ``.npz`` file under ``$ADASPEC_SIM_TABLE_CACHE`` (default
``~/.cache/adaspec-sim/tables``; ``off`` disables the cache), named by a hash of everything
they depend on: the model's calibration and concentration, the table layout, this format's
version and the numpy and scipy versions. A missing, unreadable or foreign file is rebuilt;
an unwritable cache directory only costs the rebuild. Writes are atomic (temporary file, then
rename), so concurrent sweep workers are safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

TABLES_FORMAT = 1
ENV_VAR = "ADASPEC_SIM_TABLE_CACHE"


def cache_dir() -> Path | None:
    """Where tables are cached, or None when caching is off."""
    value = os.environ.get(ENV_VAR)
    if value is not None and value.strip().lower() in ("", "off", "0", "none"):
        return None
    if value:
        return Path(value).expanduser()
    return Path.home() / ".cache" / "adaspec-sim" / "tables"


def _versions() -> dict[str, str]:
    try:
        scipy_version = metadata.version("scipy")
    except metadata.PackageNotFoundError:  # pragma: no cover - scipy is a dependency
        scipy_version = "none"
    return {"numpy": np.__version__, "scipy": scipy_version, "format": str(TABLES_FORMAT)}


def cache_path(key: Mapping[str, object]) -> Path | None:
    """The file for tables described by ``key`` (JSON-serialisable), or None when off."""
    root = cache_dir()
    if root is None:
        return None
    text = json.dumps({"key": key, "versions": _versions()}, sort_keys=True)
    return root / f"acceptance-{hashlib.sha256(text.encode()).hexdigest()[:32]}.npz"


def load_or_build(key: Mapping[str, object],
                  build: Callable[[], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays ``build()`` returns, from the cache when a valid copy is there."""
    path = cache_path(key)
    if path is not None:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            if arrays:
                return arrays
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # missing or damaged: rebuild below
    arrays = {name: np.asarray(value) for name, value in build().items()}
    if path is not None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
            os.replace(tmp, path)
        except OSError:
            try:
                tmp.unlink()
            except OSError:
                pass
    return arrays
