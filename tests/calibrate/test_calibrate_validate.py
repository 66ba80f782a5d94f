"""adaspec-validate: a simulated run validated against its own profile has ~0 error (the
self-consistency check); bad inputs are one-line errors."""

from __future__ import annotations

import json
import shutil

import pytest
from calibrate_helpers import synthetic_profile_doc

from calibrate.profile_io import write_profile
from calibrate.validate_cli import main as validate_main
from sim.cli import main as sim_main

TRACE = "arrival_s,prompt_tokens,output_tokens,category\n" + "".join(
    f"{0.05 * i:.3f},{40 + 7 * (i % 9)},{12 + 5 * (i % 7)},{'qa' if i % 2 else 'rag'}\n"
    for i in range(40))


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    profile = write_profile(root / "profile.json", synthetic_profile_doc())
    trace = root / "trace.csv"
    trace.write_text(TRACE, encoding="utf-8")
    out = root / "run"
    rc = sim_main(["--trace", str(trace), "--profile", str(profile), "--target", "tiny-llama",
                   "--draft", "tiny-llama-draft", "--acceptance", "fixed:0.7",
                   "--policy", "static:3", "--policy", "nospec", "--slo-tpot-ms", "60",
                   "--max-num-seqs", "8", "--seed", "5", "--out", str(out), "--quiet"])
    assert rc == 0
    return root, profile, out


pytestmark = pytest.mark.filterwarnings("ignore:latency profile:RuntimeWarning")


def test_self_consistency_reports_zero_error(sim_run, capsys):
    root, profile, out = sim_run
    report_path = root / "report.json"
    capsys.readouterr()
    assert validate_main([str(out), "--profile", str(profile), "--out", str(report_path)]) == 0
    printed = capsys.readouterr().out
    assert "static:3" in printed and "per-iteration latency MAPE" in printed
    report = json.loads(report_path.read_text())
    assert report["schema_version"] == 2 and report["kind"] == "validation-report"
    assert report["seed"] == 5 and report["config"]["acceptance"] == "fixed:0.7"
    assert set(report["inputs"]) >= {"summary", "profile", "static:3/requests.csv"}
    for name in ("static:3", "nospec"):
        block = report["policies"][name]
        assert block["requests"] == 40
        for metric, row in block["metrics"].items():
            if row["rel_error"] is not None:
                assert abs(row["rel_error"]) < 1e-6, (name, metric, row)
        it = block["iteration_latency"]
        assert it["mape_percent"] < 1e-6, it  # the recorded shape, the simulator's function
    dist = report["policies"]["static:3"]["distributions"]["tokens_per_step"]
    assert dist["wasserstein"] < 1e-9 and dist["total_variation"] < 1e-9
    assert report["policies"]["static:3"]["metrics"]["mean_tokens_per_step"]["real"] > 1.5


def test_recorded_shape_columns_are_used(sim_run, tmp_path):
    root, profile, out = sim_run
    import pandas as pd

    from calibrate.validate import iteration_errors, predict_iterations, read_table
    from sim.core.padding import GraphPadding
    from sim.latency.profile import load_profile

    it = read_table(out / "static_3" / "iterations.csv", ("kind",))
    req = read_table(out / "static_3" / "requests.csv", ("id",))
    lat = load_profile(profile)
    base = iteration_errors(it, predict_iterations(it, req, lat, GraphPadding(), True))
    it2 = it.assign(kv_tokens_read=10 ** 6)  # absurd recorded KV read -> large error
    worse = iteration_errors(it2, predict_iterations(it2, req, lat, GraphPadding(), True))
    assert worse["by_kind"]["decode_spec"]["mape_percent"] > 10 * max(
        base["by_kind"]["decode_spec"]["mape_percent"], 0.1)
    # a run recorded before the shape columns: contexts reconstructed from the request table
    old = it.drop(columns=["context_tokens", "verify_rows", "kv_tokens_read", "draft_rows",
                           "draft_kv_tokens"])
    rebuilt = iteration_errors(old, predict_iterations(old, req, lat, GraphPadding(), True))
    assert 1e-6 < rebuilt["mape_percent"] < 2.0
    assert isinstance(it2, pd.DataFrame)


def _one_line_error(capsys, argv, needle):
    assert validate_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and needle in err, err


def test_bad_real_dir_is_one_line_error(sim_run, tmp_path, capsys):
    root, profile, out = sim_run
    _one_line_error(capsys, [str(tmp_path / "missing"), "--profile", str(profile)],
                    "not a results directory")
    _one_line_error(capsys, [str(tmp_path), "--profile", str(profile)], "summary.json")
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "static_3" / "requests.csv").unlink()
    _one_line_error(capsys, [str(broken), "--profile", str(profile), "--policy", "static:3"],
                    "requests.csv")
    _one_line_error(capsys, [str(out), "--profile", str(profile), "--policy", "adaspec:8"],
                    "no policy")
    bad_profile = tmp_path / "p.json"
    bad_profile.write_text('{"schema_version": 2}')
    _one_line_error(capsys, [str(out), "--profile", str(bad_profile)], "schema_version")


def test_real_acceptance_run_needs_acceptance_model(sim_run, tmp_path, capsys):
    root, profile, out = sim_run
    real = tmp_path / "real"
    shutil.copytree(out, real)
    summary = json.loads((real / "summary.json").read_text())
    summary["config"].pop("acceptance")
    summary["config"]["engine"] = "realrun"
    (real / "summary.json").write_text(json.dumps(summary))
    _one_line_error(capsys, [str(real), "--profile", str(profile)], "--acceptance")
    assert validate_main([str(real), "--profile", str(profile), "--acceptance", "fixed:0.7",
                          "--policy", "static:3"]) == 0


def test_a_compile_the_cache_cannot_spare_is_said_first(sim_run, capsys, monkeypatch):
    """The simulation runs in this process: a compile it must make is announced on stderr
    as ``adaspec-validate: ...`` before it starts (``sim.compiled.jit.compile_notices``)."""
    import calibrate.validate
    from fakes import COMPILE_LINE, announcing_a_compile
    from sim.compiled import jit

    _, profile, out = sim_run
    monkeypatch.setattr(calibrate.validate, "validate_run",
                        announcing_a_compile(calibrate.validate.validate_run))
    capsys.readouterr()
    assert validate_main([str(out), "--profile", str(profile)]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0] == f"adaspec-validate: {COMPILE_LINE}"
    assert "static:3" in captured.out
    assert jit._NOTICES == []
