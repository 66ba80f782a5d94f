"""adaspec-realrun --method ngram end to end on a tiny random target: the method is recorded,
no draft model is loaded, the iteration table says what ran (no draft pass, CPU lookup
time), adaspec-validate re-simulates the run with drafting priced at zero, and bad option
combinations are one-line errors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "calibrate"))

from calibrate_helpers import synthetic_profile_doc  # noqa: E402

from calibrate.profile_io import write_profile  # noqa: E402
from calibrate.validate import predict_iterations, validate_run  # noqa: E402
from calibrate.validate_cli import main as validate_main  # noqa: E402
from realrun.cli import main  # noqa: E402

# Categories so the acceptance model applies per category; outputs long enough to repeat.
TRACE = "arrival_s,prompt_tokens,output_tokens,category\n" + "".join(
    f"{0.004 * i:.3f},{6 + 3 * (i % 4)},{30 + 4 * (i % 3)},{'qa' if i % 2 else 'rag'}\n"
    for i in range(8))
NGRAM = ["--target", "random:tiny-llama", "--method", "ngram", "--threads", "1"]

pytestmark = pytest.mark.filterwarnings("ignore:latency profile:RuntimeWarning")


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, comment="#")


@pytest.fixture(scope="module")
def ngram_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ngram")
    trace = root / "trace.csv"
    trace.write_text(TRACE, encoding="utf-8")
    profile = write_profile(root / "profile.json", synthetic_profile_doc())
    out = root / "run"
    assert main(["--trace", str(trace), *NGRAM, "--policy", "static:3", "--policy",
                 "adaspec:4", "--policy", "smartspec:4", "--max-num-seqs", "4",
                 "--max-len", "128", "--ngram-max", "4", "--quiet", "--out", str(out)]) == 0
    return root, profile, out


def test_the_run_records_its_method(ngram_run):
    _, _, out = ngram_run
    doc = json.loads((out / "summary.json").read_text())
    config = doc["config"]
    assert config["method"] == "ngram" and config["draft"] is None
    assert config["ngram"]["min_n"] == 1 and config["ngram"]["max_n"] == 4
    assert config["models"]["draft"] is None and config["runner"] == "realrun"
    for sub in ("static_3", "adaspec_4", "smartspec_4"):
        it = _read(out / sub / "iterations.csv")
        assert "draft_cpu_s" in it.columns
        assert it["draft_rows"].isna().all() and it["draft_kv_tokens"].isna().all()
        decode = it[it["kind"] == "decode"]
        assert (decode["draft_cpu_s"] > 0).all() and (it["draft_cpu_s"] <= it["duration_s"]).all()
        assert (decode["draft_steps"] <= 4).all()
        req = _read(out / sub / "requests.csv")
        assert (req["status"] == "finished").all()


def test_validate_prices_the_run_without_draft_time(ngram_run, capsys):
    root, profile, out = ngram_run
    report_path = root / "report.json"
    capsys.readouterr()
    assert validate_main([str(out), "--profile", str(profile), "--acceptance", "fixed:0.3",
                          "--out", str(report_path)]) == 0
    assert "static:3" in capsys.readouterr().out
    report = json.loads(report_path.read_text())
    assert report["method"] == "ngram" and "cost 0 s" in report["method_note"]
    assert set(report["policies"]) == {"static:3", "adaspec:4", "smartspec:4"}
    from sim.latency.profile import load_profile
    from sim.run import build_padding, SimConfig
    latency = load_profile(str(profile))
    it = _read(out / "static_3" / "iterations.csv")
    req = _read(out / "static_3" / "requests.csv")
    predicted = predict_iterations(it, req, latency, build_padding(SimConfig(cuda_graphs=False)),
                                   uses_draft=False)
    for (_, row), value in zip(it.iterrows(), predicted):
        if row["kind"] == "decode":  # the target's pass alone (no draft rows, no overhead)
            tokens, kv = int(row["verify_tokens"]), int(row["kv_tokens_read"])
            assert value == pytest.approx(latency.target_verify_s(int(row["batch_size"]),
                                                                  tokens, kv))
    block = report["policies"]["static:3"]
    assert block["iteration_latency"]["n"] == len(it)
    assert block["metrics"]["mean_tokens_per_step"]["real"] >= 1.0


def test_validate_asks_for_an_ngram_acceptance_model(ngram_run, capsys):
    _, profile, out = ngram_run
    capsys.readouterr()
    assert validate_main([str(out), "--profile", str(profile)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "adaspec-calibrate ngram --acceptance-out" in err


def test_validate_refuses_an_unknown_method(ngram_run, tmp_path, capsys):
    _, profile, out = ngram_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    doc = json.loads((copy / "summary.json").read_text())
    doc["config"]["method"] = "eagle"
    (copy / "summary.json").write_text(json.dumps(doc))
    capsys.readouterr()
    assert validate_main([str(copy), "--profile", str(profile), "--acceptance", "fixed:0.3"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown drafting method 'eagle'" in err
    with pytest.raises(Exception, match="unknown drafting method"):
        validate_run(copy, profile, "fixed:0.3")


@pytest.mark.parametrize("extra,message", [
    (["--method", "ngram", "--draft", "random:tiny-llama-draft"], "drop --draft"),
    ([], "--method draft-model needs --draft"),
    (["--draft", "random:tiny-llama-draft", "--ngram-max", "5"], "apply to --method ngram"),
    (["--method", "ngram", "--ngram-min", "4", "--ngram-max", "2"], "exceeds max_n"),
    (["--method", "ngram", "--ngram-max", "40"], "max_n must be an integer in 1..16"),
])
def test_method_errors_are_one_line(tmp_path, capsys, extra, message):
    trace = tmp_path / "trace.csv"
    trace.write_text(TRACE, encoding="utf-8")
    code = main(["--trace", str(trace), "--target", "random:tiny-llama", "--policy", "static:2",
                 *extra, "--quiet", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("adaspec-realrun: error: ") and len(err.splitlines()) == 1, err
    assert message in err, err


def test_model_mismatch_compares_the_target_alone_for_lookup_runs():
    from calibrate.validate_cli import model_mismatch

    run = {"method": "ngram", "target": "random:tiny-llama", "draft": None,
           "models": {"target": {"name": "tiny-llama"}, "draft": None}}
    same = {"models": {"target": {"name": "tiny-llama"}, "draft": {"name": "tiny-llama-draft"}}}
    other = {"models": {"target": {"name": "qwen2.5-coder-1.5b"}, "draft": {"name": "x"}}}
    assert model_mismatch(same, run) is None
    assert "target qwen2.5-coder-1.5b, the run used tiny-llama" in model_mismatch(other, run)
