"""Latency fit and profile files without torch: coefficient recovery, the simulator's loader,
out-of-domain warnings and one-line errors for bad files."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from calibrate_helpers import TRUE_COEFS, synthetic_profile_doc, synthetic_samples

from calibrate.fit import fit_all, fit_op
from calibrate.profile_io import write_profile
from sim.errors import InputError
from sim.latency.base import LatencyModel
from sim.latency.profile import OP_FEATURES, load_profile, prefill_features, verify_features


@pytest.mark.parametrize("op", list(OP_FEATURES))
def test_fit_recovers_known_coefficients(op):
    result = fit_op(op, synthetic_samples()[op])
    np.testing.assert_allclose(result.coefficients, TRUE_COEFS[op], rtol=1e-3, atol=1e-12)
    assert result.mape_train < 1e-3
    assert result.mape_heldout is not None and result.mape_heldout < 1e-3
    assert result.n_heldout > 0


def test_fit_with_noise_reports_error_and_stays_nonnegative():
    ops = fit_all(synthetic_samples(noise=0.05, seed=3))
    for op, block in ops.items():
        coefs = block["coefficients"]
        assert all(v >= 0 for v in coefs.values())
        assert 1.0 < block["fit"]["mape_heldout"] < 15.0, op
        # the dominant per-pass overhead is recovered within a few percent
        assert coefs["intercept"] == pytest.approx(TRUE_COEFS[op][0], rel=0.25)
        assert block["domain"]["batch"] == [1.0, 8.0]
        assert len(block["samples"]) == block["fit"]["n_samples"]


def test_profile_round_trip_predicts_generating_function(tmp_path):
    path = write_profile(tmp_path / "p.json", synthetic_profile_doc())
    model = load_profile(path)
    assert isinstance(model, LatencyModel)
    assert model.draft_overhead_s == pytest.approx(5e-4)
    lengths = [40, 100, 200]
    expected = float(np.dot(prefill_features(lengths), TRUE_COEFS["target_prefill"]))
    assert model.target_prefill_s(lengths) == pytest.approx(expected, rel=1e-3)
    assert model.target_prefill_s([]) == 0.0
    expected = float(np.dot(verify_features(4, 12, 4 * 300), TRUE_COEFS["target_verify"]))
    assert model.target_verify_s(4, 12, 1200) == pytest.approx(expected, rel=1e-3)
    c = TRUE_COEFS["draft_step"]
    assert model.draft_step_s(3, 900) == pytest.approx(c[0] + 3 * c[1] + 900 * c[2], rel=1e-3)
    assert model.draft_step_s(0, 0) == 0.0


def test_out_of_domain_warns_once_per_operation(tmp_path):
    model = load_profile(write_profile(tmp_path / "p.json", synthetic_profile_doc()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.target_verify_s(2, 4, 2 * 500)  # inside
        assert not caught
        model.target_verify_s(64, 64, 64 * 100)  # batch 64 > 8
        model.target_verify_s(64, 64, 64 * 5000)
        model.draft_step_s(1, 10)  # context 10 < 64
        model.draft_step_s(1, 5)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert "target_verify" in messages[0] and "batch=64" in messages[0]
    assert "draft_step" in messages[1]
    assert model.warned_ops == {"target_verify", "draft_step"}


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d.update(schema_version=99), "schema_version"),
    (lambda d: d.update(kind="acceptance"), "kind"),
    (lambda d: d["ops"].pop("draft_step"), "draft_step"),
    (lambda d: d["ops"]["target_verify"]["coefficients"].update(tokens=-1.0), "negative"),
    (lambda d: d["ops"]["target_verify"]["coefficients"].pop("batch"), "batch"),
    # a reversed domain used to load and warn "measured 3..1" on every query
    (lambda d: d["ops"]["draft_step"]["domain"].update(batch=[64, 1]), "low <= high"),
])
def test_bad_profile_is_one_line_input_error(tmp_path, mutate, needle):
    doc = synthetic_profile_doc()
    mutate(doc)
    path = _write(tmp_path / "bad.json", json.dumps(doc))
    with pytest.raises(InputError) as info:
        load_profile(path)
    message = str(info.value)
    assert "\n" not in message and needle in message and "bad.json" in message


def test_truncated_empty_missing_profile(tmp_path):
    text = json.dumps(synthetic_profile_doc())
    for name, content in (("trunc.json", text[: len(text) // 2]), ("empty.json", "")):
        with pytest.raises(InputError, match=name):
            load_profile(_write(tmp_path / name, content))
    with pytest.raises(InputError, match="not found"):
        load_profile(tmp_path / "nope.json")


def test_sim_cli_bad_profile_is_one_line_error(tmp_path, capsys):
    from sim.cli import main

    text = json.dumps(synthetic_profile_doc())
    bad = _write(tmp_path / "trunc.json", text[:100])
    trace = _write(tmp_path / "t.csv", "arrival_s,prompt_tokens,output_tokens\n0,10,5\n")
    rc = main(["--trace", str(trace), "--profile", str(bad), "--policy", "nospec", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and "Traceback" not in err and "trunc.json" in err
