"""The on-disk cache of the acceptance tables: same arrays as a fresh build, rebuilt when the
file is damaged, never written when off."""

from __future__ import annotations

import numpy as np
import pytest

from sim.acceptance import model as acceptance_model
from sim.acceptance import table_cache
from sim.acceptance.model import CalibrationCurve


@pytest.fixture()
def fresh(monkeypatch, tmp_path):
    monkeypatch.setenv(table_cache.ENV_VAR, str(tmp_path / "tables"))
    acceptance_model._draw_tables.cache_clear()
    yield tmp_path / "tables"
    acceptance_model._draw_tables.cache_clear()


def _tables():
    acceptance_model._draw_tables.cache_clear()
    return acceptance_model._draw_tables(CalibrationCurve(((0.0, 0.1), (1.0, 0.9))), 3.0)


def test_cached_tables_are_the_built_ones(fresh):
    built = _tables()
    files = list(fresh.glob("acceptance-*.npz"))
    assert len(files) == 1
    loaded = _tables()  # from the file this time
    for a, b in zip(built, loaded):
        np.testing.assert_array_equal(a, b)
        assert not b.flags.writeable


def test_damaged_cache_file_is_rebuilt(fresh):
    built = _tables()
    (path,) = fresh.glob("acceptance-*.npz")
    path.write_bytes(b"not a zip file")
    again = _tables()
    np.testing.assert_array_equal(built[2], again[2])
    assert path.stat().st_size > 1000  # rewritten


def test_cache_off_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv(table_cache.ENV_VAR, "off")
    assert table_cache.cache_dir() is None
    calls = []
    arrays = table_cache.load_or_build({"x": 1}, lambda: calls.append(1) or {"a": np.arange(3)})
    assert calls == [1] and arrays["a"].tolist() == [0, 1, 2]
    assert not any(tmp_path.iterdir())


def test_different_inputs_use_different_files(fresh):
    assert table_cache.cache_path({"concentration": "2.0"}) != \
        table_cache.cache_path({"concentration": "3.0"})
