"""adaspec-sim end to end: golden summary, byte-identical outputs, one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parents[2]
CODE_TRACE = str(ROOT / "traces" / "adaspec" / "code.csv")
AZURE_CONV = str(ROOT / "traces" / "azure2023" / "AzureLLMInferenceTrace_conv.csv")
GOLDEN = ROOT / "tests" / "golden" / "sim_cli_code50.txt"
GOLDEN_ARGS = ["--trace", CODE_TRACE, "--limit", "50", "--policy", "nospec",
               "--policy", "static:3", "--policy", "adaspec:8", "--seed", "1", "--quiet"]


def _stdout_table(capsys, argv) -> str:
    assert main(argv) == 0
    out = capsys.readouterr().out
    return out.replace(str(ROOT) + os.sep, "")


def test_golden_summary_table(capsys):
    text = _stdout_table(capsys, GOLDEN_ARGS)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "CLI output changed; rerun with UPDATE_GOLDEN=1 if intended"


def test_same_seed_gives_byte_identical_outputs(tmp_path, capsys):
    args = ["--trace", CODE_TRACE, "--limit", "40", "--policy", "adaspec:8", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 3
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_out_dir_has_schema_provenance_and_tables(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["--trace", CODE_TRACE, "--limit", "30", "--policy", "nospec", "--policy",
                 "static:2", "--seed", "7", "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema_version"] == 2 and summary["seed"] == 7
    assert len(summary["inputs"]["trace"]["sha256"]) == 64
    assert summary["config"]["target"] == "vicuna-7b"
    assert set(summary["policies"]) == {"nospec", "static:2"}
    block = summary["policies"]["static:2"]
    for key in ("requests", "ttft_s", "tpot_s", "e2e_s", "slo_attainment",
                "throughput_tokens_per_s", "mean_tokens_per_step", "acceptance_rate"):
        assert key in block
    assert set(block["ttft_s"]) == {"mean", "p50", "p90", "p99"}
    requests = pd.read_csv(out / "static_2" / "requests.csv", comment="#")
    iterations = pd.read_csv(out / "static_2" / "iterations.csv", comment="#")
    assert len(requests) == 30 and requests["id"].is_unique
    assert {"start_s", "duration_s", "verify_lengths"} <= set(iterations.columns)
    first_line = (out / "static_2" / "requests.csv").read_text().splitlines()[0]
    assert first_line.startswith("# adaspec-sim ") and '"schema_version": 2' in first_line


def test_no_iteration_log_writes_no_iterations_file_and_says_so(tmp_path, capsys):
    args = ["--trace", CODE_TRACE, "--limit", "40", "--policy", "nospec", "--policy",
            "adaspec:8", "--quiet", "--out"]
    assert main(args + [str(tmp_path / "full")]) == 0
    full_out = capsys.readouterr().out
    assert main(args + [str(tmp_path / "lean"), "--no-iteration-log"]) == 0
    lean_out = capsys.readouterr().out
    assert "other settings: iteration_log=False" in lean_out
    assert "other settings" not in full_out
    files = sorted(p.relative_to(tmp_path / "lean").as_posix()
                   for p in (tmp_path / "lean").rglob("*"))
    assert files == ["adaspec_8", "adaspec_8/requests.csv", "nospec", "nospec/requests.csv",
                     "summary.json"]
    full = json.loads((tmp_path / "full" / "summary.json").read_text())
    lean = json.loads((tmp_path / "lean" / "summary.json").read_text())
    assert full["config"]["iteration_log"] is True and lean["config"]["iteration_log"] is False
    assert lean["simulated"]["other"] == {"iteration_log": False}
    assert lean["policies"] == full["policies"]  # the same summary, iterations counted
    assert lean["policies"]["nospec"]["iterations"] > 0
    for policy in ("nospec", "adaspec_8"):
        assert ((tmp_path / "lean" / policy / "requests.csv").read_bytes().split(b"\n", 1)[1]
                == (tmp_path / "full" / policy / "requests.csv").read_bytes().split(b"\n", 1)[1])


@pytest.mark.parametrize("extra, needle", [
    (["--policy", "bogus:3"], "bogus"),
    (["--policy", "static:-1"], "static"),
    (["--gpu", "Z80"], "Z80"),
    (["--target", "gpt-17"], "gpt-17"),
    (["--draft", "nope"], "nope"),
    (["--slo-tpot-ms", "0"], "SLO"),
    (["--slo-ttft-ms", "-5"], "SLO"),
    (["--rate-scale", "0"], "rate"),
    (["--limit", "0"], "limit"),
])
def test_bad_options_are_one_line_errors(capsys, extra, needle):
    code = main(["--trace", CODE_TRACE, "--limit", "5", "--quiet"] + extra)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert needle.lower() in err.lower()


def test_missing_trace_and_unwritable_out_are_one_line_errors(tmp_path, capsys):
    assert main(["--trace", str(tmp_path / "absent.csv"), "--quiet"]) == 2
    assert "absent.csv" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["--trace", CODE_TRACE, "--limit", "5", "--quiet", "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write" in err


def test_malformed_trace_names_file_line_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("arrival_s,prompt_tokens,output_tokens\n0.0,10,5\n1.0,abc,5\n")
    assert main(["--trace", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.csv" in err and "line 3" in err and "prompt_tokens" in err
    assert len(err.splitlines()) == 1


def test_failed_run_leaves_no_summary(tmp_path, capsys):
    out = tmp_path / "res"
    bad = tmp_path / "bad.csv"
    bad.write_text("arrival_s,prompt_tokens,output_tokens\n")
    assert main(["--trace", str(bad), "--quiet", "--out", str(out)]) == 2
    assert not (out / "summary.json").exists()
