"""benchmarks/seeded_runs.py and the paired comparison of benchmarks/adaspec_forms.py:
hand-computed spreads, margins and one real seeded run."""

from __future__ import annotations

from pathlib import Path

import adaspec_forms as forms
import pytest
import seeded_runs as runs


def test_span_and_mean_span():
    assert runs.span([84.51, 85.24, 84.9]) == "84.5..85.2"
    assert runs.span([6.61, 6.64]) == "6.6"  # equal at one decimal: one number
    assert runs.mean_span([84.5, 85.2, 84.8]) == "84.8 (84.5..85.2)"
    assert runs.mean_span([6.61, 6.64]) == "6.6"
    assert runs.mean_span([1.0, -2.0], signed=True) == "-0.5 (-2.0..+1.0)"
    assert runs.mean_span([97.1]) == "97.1"


def test_paired_counts_ahead_tied_behind():
    mean, ahead, tied, behind = forms.paired([80.0, 81.0, 82.0, 83.0], [79.0, 81.0, 84.0, 82.0])
    assert mean == pytest.approx((1 + 0 - 2 + 1) / 4)
    assert (ahead, tied, behind) == (2, 1, 1)
    with pytest.raises(ValueError):
        forms.paired([1.0], [1.0, 2.0])


def test_every_form_and_workload_is_a_valid_run():
    from sim.policies.registry import make_policy

    for spec, _ in forms.FORMS:
        make_policy(spec)
    for _, trace, _, _, engine in forms.WORKLOADS:
        assert Path(trace).is_file() and engine in ("single-pass", "vllm-0.6")


def test_one_seeded_run_is_reproducible():
    job = runs.Job(forms.AZURE, "adaspec:8", "single-pass", 40, 1.0, 3)
    first = runs.run_all([job])[job]
    assert runs.run(job) == first
    assert 0.0 <= first.slo_attainment <= 1.0 and first.tokens_per_step >= 1.0
