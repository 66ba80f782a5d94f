"""A calibrated profile prices a chunked-prefill chunk's attention over its cached prefix."""

from __future__ import annotations

import numpy as np
import pytest
from calibrate_helpers import TRUE_COEFS, synthetic_profile_doc

from calibrate.profile_io import write_profile
from sim.latency.profile import PREFILL_FEATURES, load_profile, prefill_features


def test_cached_prefix_costs_twice_the_quadratic_coefficient_per_pair(tmp_path):
    model = load_profile(write_profile(tmp_path / "p.json", synthetic_profile_doc()))
    c_sq = TRUE_COEFS["target_prefill"][PREFILL_FEATURES.index("padded_sq_tokens")]
    plain = float(np.dot(prefill_features([64, 32]), TRUE_COEFS["target_prefill"]))
    assert model.target_prefill_s([64, 32]) == pytest.approx(plain, rel=1e-3)
    expected = plain + 2 * c_sq * (64 * 100 + 32 * 0)
    assert model.target_prefill_s([64, 32], [100, 0]) == pytest.approx(expected, rel=1e-3)
    assert model.draft_prefill_s([64], [100]) > model.draft_prefill_s([64])
    assert model.target_prefill_s([0, 64], [500, 0]) == pytest.approx(
        model.target_prefill_s([64]), rel=1e-12)
    with pytest.raises(ValueError):
        model.target_prefill_s([64], [1, 2])
    with pytest.raises(ValueError):
        model.target_prefill_s([64], [-1])
