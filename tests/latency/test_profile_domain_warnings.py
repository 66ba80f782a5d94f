"""Out-of-domain warnings of a calibrated profile, kept to what was simulated: the policies'
table estimator tabulates the profile at points a run never visits, which must neither warn
as the truth's passes nor use up the truth's once-per-operation warning (it says once, on its
own line, where its table extrapolates); a run's first pass outside the domain warns once, in
the commands' one-line form, on both iteration paths."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from fakes import gpu_like_ops, profile_doc
from sim.cli import main
from sim.core.padding import GraphPadding
from sim.latency.estimator import TableEstimator
from sim.latency.profile import profile_from_dict

ROOT = Path(__file__).resolve().parents[2]
CPU_PROFILE = ROOT / "calibrate" / "profiles" / "cpu-2core-qwen2.5-coder-1.5b-0.5b.json"
CONV = ROOT / "traces" / "azure2023" / "AzureLLMInferenceTrace_conv.csv"

#: The GPU-like profile with every domain covering the estimator's whole grid (sizes up to
#: 1024 sequences, one sequence of up to 1024 tokens, contexts up to 2048 per sequence) and
#: every pass of the runs below.
WIDE = gpu_like_ops([1, 256], [1, 1e5], [1, 1024])


def _doc(**domains) -> dict:
    return profile_doc(WIDE, **domains)


def _file(tmp_path: Path, name: str, **domains) -> str:
    doc = json.loads(CPU_PROFILE.read_text())  # its metadata: the models it was measured for
    for op, entry in _doc(**domains)["ops"].items():
        doc["ops"][op]["coefficients"] = entry["coefficients"]
        doc["ops"][op]["domain"] = entry["domain"]
    doc["draft_overhead_s"] = 4e-4
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


#: verify measured at batches 1..4 only: the estimator's table leaves it at once, a loaded
#: run only later
NARROW_VERIFY = {"target_verify": {"batch": [1, 4], "tokens_per_seq": [1, 1024],
                                   "context_per_seq": [0, 1e6]}}


def test_building_the_estimator_over_a_covering_profile_warns_nothing():
    model = profile_from_dict(_doc())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TableEstimator.from_model(model, GraphPadding())
    assert model.warned_ops == frozenset()


def test_the_estimators_extrapolation_is_its_own_warning_and_leaves_the_truths_alone():
    model = profile_from_dict(_doc(**NARROW_VERIFY))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TableEstimator.from_model(model, GraphPadding())
        TableEstimator.from_model(model, GraphPadding())  # said once per model
    texts = [str(w.message) for w in caught]
    assert len(texts) == 1, texts
    assert "latency table" in texts[0] and "target_verify" in texts[0]
    assert "batch up to 1024 (measured 1..4)" in texts[0]
    assert "queried outside" not in texts[0] and "\n" not in texts[0]
    assert model.warned_ops == frozenset()  # the truth's warning is still to come
    with pytest.warns(RuntimeWarning, match=r"target_verify queried outside its measured "
                                            r"domain \(batch=5,"):
        model.target_verify_s(5, 5, 500)


def _run(tmp_path, capsys, profile: str, *extra: str) -> list[str]:
    code = main(["--trace", str(CONV), "--limit", "80", "--rate-scale", "6", "--policy",
                 "static:3", "--quiet", "--profile", profile, *extra])
    assert code == 0
    return capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("path", [[], ["--engine-path", "protocol"]])
def test_a_run_inside_the_domain_warns_nothing(tmp_path, capsys, path):
    assert _run(tmp_path, capsys, _file(tmp_path, "wide.json"), *path) == []


def test_a_run_leaving_the_domain_warns_once_in_one_line_on_both_paths(tmp_path, capsys):
    profile = _file(tmp_path, "narrow.json", **NARROW_VERIFY)
    compiled = _run(tmp_path, capsys, profile)
    protocol = _run(tmp_path, capsys, profile, "--engine-path", "protocol")
    assert compiled == protocol
    assert all(line.startswith("adaspec-sim: warning: ") for line in compiled), compiled
    assert not any("RuntimeWarning" in line or ".py:" in line for line in compiled)
    table = [line for line in compiled if "latency table" in line]
    truth = [line for line in compiled if "queried outside its measured domain" in line]
    assert len(table) == 1 and len(truth) == 1 and len(compiled) == 2, compiled
    # the run's own first pass past batch 4, 7 sequences (the estimator's grid left it at
    # the graph size 8, and before the fix used up the warning there)
    assert "target_verify queried outside its measured domain (batch=7," in truth[0]
