"""sim.latency.exact: numpy arrays that compute as Python numbers do, and the latency model's
token-only terms over them (``PassCosts.dense_s_at`` / ``logits_s_at``) against the calls
one by one, bit for bit, for every token count 1..8192 of several presets."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import sim.latency.exact as exact_module
from sim.compiled.jit import setup
from sim.latency.exact import ExactArray, exact, power, sum_per_element, total
from sim.latency.fitted_constants import ATTENTION
from sim.latency.hardware import get_gpu
from sim.latency.measured import MeasuredLayer
from sim.latency.models import get_model
from sim.latency.pass_costs import PassCosts
from sim.latency.presets import roofline_for
from sim.latency.roofline import RooflineLatency, pass_costs_for
from sim.latency.vidur_profile import load_vidur_latency

VIDUR_7B = Path(__file__).resolve().parents[1] / "data" / "vidur" / "a100" / "Llama-2-7b-hf"
COUNTS = np.arange(1, 8193)


def _bits(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).view(np.int64)


def _bases() -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.concatenate([rng.random(20000), [0.0, 1.0, 5e-324, 1e-300, 0.5, 1.0 - 2**-53],
                           rng.random(100) * 1e-10])


@pytest.fixture(params=["compiled", "python"])
def kernel(request, monkeypatch):
    """``power`` through the compiled loop, and through Python's ``**`` (where the compiled
    one is not trusted, e.g. numba with SVML)."""
    if request.param == "python":
        monkeypatch.setattr(exact_module, "_KERNEL", [None])
    else:
        setup()  # the compiled loop serves only once numba is set up
        assert exact_module._compiled_power() is not None
    return request.param


@pytest.mark.parametrize("p", [1.875, 1.741, 1 / 1.875, 2.0, 0.5, 8.0, 3, 1.0])
def test_power_is_pythons_bit_for_bit(kernel, p):
    x = _bases()
    got = exact(x) ** p
    assert isinstance(got, ExactArray)
    assert np.array_equal(_bits(got), _bits([v ** p for v in x.tolist()]))


def test_power_refuses_what_it_cannot_do_exactly():
    with pytest.raises(TypeError):
        exact(np.arange(3)) ** 2.0  # int bases: Python's int ** would stay an int
    with pytest.raises(TypeError):
        power(exact(np.ones(3)), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(TypeError):
        2.0 ** exact(np.ones(3))


def test_power_on_a_negative_base_falls_back_to_python():
    x = exact(np.array([4.0, -8.0, 0.25]))
    got = x ** 2.0
    assert np.array_equal(_bits(got), _bits([16.0, 64.0, 0.0625]))


def test_operations_keep_the_exact_type():
    a = exact(np.arange(1, 6))
    for value in (np.maximum(0.5, a * 1.0), a / 3.0, -(-a // 4) * 4, 2.0 * a, a[a > 2], 3 + a,
                  np.minimum(a, a)):
        assert isinstance(value, ExactArray)


def test_total_is_the_builtin_sum_per_element():
    rng = np.random.default_rng(3)
    terms = [rng.random(500) * 10.0 ** rng.integers(-8, 3) for _ in range(9)]
    expected = _bits([sum(column) for column in zip(*(t.tolist() for t in terms))])
    assert np.array_equal(_bits(total([exact(t) for t in terms])), expected)
    assert np.array_equal(_bits(sum_per_element([exact(t) for t in terms])), expected)
    numbers = [t[0] for t in terms]
    assert total([float(v) for v in numbers]) == sum(float(v) for v in numbers)
    assert total([1.5, 2.25]) == 3.75


def _one_by_one(costs: PassCosts, dense: bool) -> np.ndarray:
    """The scalar calls on a fresh copy (its memo empty)."""
    fresh = PassCosts.__new__(PassCosts)
    fresh.__dict__ = dict(costs.__dict__, _dense={}, _layer={}, _logits={})
    call = fresh.dense_s if dense else fresh.logits_s
    return np.array([call(int(n)) for n in COUNTS])


def _costs(name: str) -> list[PassCosts]:
    """The target's and the draft's ``PassCosts`` of each case (module doc)."""
    a100 = get_gpu("A100-80G")
    vicuna, small = get_model("vicuna-7b"), get_model("vicuna-68m")
    if name == "smooth GEMM knee (no tiles)":
        gemm = replace(a100.op_fit.gemm, tile_rows=(), tile_relative_efficiency=())
        return [PassCosts(m, a100.peak_flops, a100.mem_bandwidth_bytes_per_s, a100.op_fit,
                          ATTENTION, None, 1, gemm=gemm) for m in (vicuna, small)]
    latency = {
        "vicuna A100 (measured target to 4096 rows, fitted draft)":
            lambda: roofline_for("vicuna-7b", "default", "A100-80G", 1),
        "vicuna H200 (closed form)": lambda: roofline_for("vicuna-7b", "default", "H200", 1),
        "vicuna A100 dense_ops=fitted, compute efficiency 0.6":
            lambda: RooflineLatency(vicuna, small, a100, dense_ops="fitted",
                                    compute_efficiency=0.6),
        "llama-3.3-70b A100 tp4 (measured rows, all-reduces)":
            lambda: roofline_for("llama-3.3-70b", "default", "A100-80G", 4),
        "llama-3.3-70b H100 tp8": lambda: roofline_for("llama-3.3-70b", "default", "H100", 8),
        "vicuna-33b L40": lambda: roofline_for("vicuna-33b", "default", "L40", 1),
        "llama-3.1-8b H100 (Llama-3 rows), no draft":
            lambda: roofline_for("llama-3.1-8b", None, "H100", 1),
        "Vidur folder (16 rows to 4096)":
            lambda: load_vidur_latency(VIDUR_7B, vicuna, small, a100),
    }[name]()
    return [c for c in (latency.target_costs, latency.draft_costs) if c is not None]


CASES = ("vicuna A100 (measured target to 4096 rows, fitted draft)", "vicuna H200 (closed form)",
         "vicuna A100 dense_ops=fitted, compute efficiency 0.6",
         "llama-3.3-70b A100 tp4 (measured rows, all-reduces)", "llama-3.3-70b H100 tp8",
         "vicuna-33b L40", "llama-3.1-8b H100 (Llama-3 rows), no draft",
         "smooth GEMM knee (no tiles)", "Vidur folder (16 rows to 4096)")


@pytest.mark.parametrize("name", CASES)
def test_dense_and_logits_at_are_the_calls_bit_for_bit(name):
    for costs in _costs(name):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # these models never warn
            dense, logits = costs.dense_s_at(COUNTS), costs.logits_s_at(COUNTS)
        assert np.count_nonzero(_bits(dense) != _bits(_one_by_one(costs, True))) == 0
        assert np.count_nonzero(_bits(logits) != _bits(_one_by_one(costs, False))) == 0


def test_measured_layer_over_arrays_steps_and_extends_as_per_count():
    points = {1: 2e-5, 8: 3e-5, 64: 9e-5}
    for extend in (None, lambda t: 1e-6 * t + 5e-6):
        layer = MeasuredLayer(points, extend=extend)
        counts = np.arange(1, 200)
        got = layer(exact(counts))
        assert np.array_equal(_bits(got), _bits([layer(int(n)) for n in counts]))


def test_counts_must_be_positive():
    costs = pass_costs_for(get_model("vicuna-68m"), get_gpu("A100-80G"), 1)
    for bad in ([0, 1], [-3], [[1, 2]]):
        with pytest.raises(ValueError):
            costs.dense_s_at(np.array(bad))
    assert costs.logits_s_at(np.array([], dtype=np.int64)).shape == (0,)
