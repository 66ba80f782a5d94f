"""The fitter of the per-op constants (calibrate.vidur_fit) on a few real Vidur rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from calibrate.vidur_fit import (GEMM_TILE_ROWS, _tile_rows, attention_fit, fit_gpu, gemm_np,
                                 load_samples, render, split_tokens)
from sim.latency.fitted_constants import ATTENTION, FITS
from sim.latency.ops import GemmFit, gemm_s

DATA = Path(__file__).resolve().parents[1] / "data" / "vidur"


@pytest.fixture(scope="module")
def profiles(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vidur")
    target = root / "compute" / "a100" / "meta-llama" / "Llama-2-7b-hf"
    target.mkdir(parents=True)
    shutil.copy(DATA / "a100" / "Llama-2-7b-hf" / "mlp.csv", target / "mlp.csv")
    shutil.copytree(DATA / "network", root / "network")
    return root


def test_numpy_gemm_is_the_simulators_formula() -> None:
    fit = GemmFit(0.8, 0.7, 1.5, 5e-6)
    m = np.array([1, 7, 64, 300, 4096], float)
    k = np.array([4096, 4096, 8192, 1024, 11008], float)
    n = np.array([12288, 4096, 1280, 22016, 4096], float)
    vector = gemm_np(m, k, n, 2, 312e12, 2.039e12, (0.8, 0.7, 1.5, 5e-6))
    for i in range(len(m)):
        assert vector[i] == pytest.approx(gemm_s(m[i], int(k[i]), int(n[i]), 2, 312e12,
                                                 2.039e12, fit), rel=1e-12)
    # With tiles: x carries the relative efficiency of each tile after the first.
    tiled = GemmFit(0.8, 0.7, 1.5, 5e-6, (128, 64, 16), (1.0, 0.9, 0.6))
    vector = gemm_np(m, k, n, 2, 312e12, 2.039e12, (0.8, 0.7, 1.5, 5e-6, 0.9, 0.6),
                     (128, 64, 16))
    for i in range(len(m)):
        assert vector[i] == pytest.approx(gemm_s(int(m[i]), int(k[i]), int(n[i]), 2, 312e12,
                                                 2.039e12, tiled), rel=1e-12)


def test_gemm_tile_rows_option() -> None:
    assert _tile_rows("128,64,16") == (128, 64, 16) == GEMM_TILE_ROWS
    assert _tile_rows("none") == ()
    for bad in ("0", "64,64", "x", ""):
        with pytest.raises(SystemExit):
            _tile_rows(bad)


def test_split_alternates() -> None:
    train, held = split_tokens([1, 2, 4, 8, 8, 16])
    assert train == {1, 4, 16} and held == {2, 8}


def test_fit_on_real_rows_is_close_to_the_full_fit(profiles: Path) -> None:
    samples = load_samples(profiles)
    assert {s.op for s in samples} >= {"mlp_up_proj", "add", "emb"}
    fit = fit_gpu(samples, profiles, "a100")
    full = FITS["a100"]
    assert fit.gemm.compute_efficiency == pytest.approx(full.gemm.compute_efficiency, rel=0.15)
    assert fit.gemm.memory_efficiency == pytest.approx(full.gemm.memory_efficiency, rel=0.15)
    assert set(fit.all_reduce) == {2, 4, 8}


def test_rendered_module_round_trips(profiles: Path) -> None:
    fit = fit_gpu(load_samples(profiles), profiles, "a100")
    namespace: dict = {}
    exec(compile(render([fit], attention_fit()), "fitted_constants.py", "exec"), namespace)
    assert namespace["FITS"]["a100"] == fit
    assert namespace["ATTENTION"] == attention_fit() == ATTENTION
    assert "7d47513363ec447a741ac5e47241580b47724fbf" in namespace["SOURCE"]
