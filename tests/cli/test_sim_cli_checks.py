"""adaspec-sim refuses what it cannot simulate (exit 2, one line naming the thing, nothing left
behind), says what it simulated, and warns about rejected requests and overloaded runs."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

from sim.cli import build_parser, explicit_options, main

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "calibrate"))
from calibrate_helpers import synthetic_profile_doc  # noqa: E402
CODE_TRACE = str(ROOT / "traces" / "adaspec" / "code.csv")
BASE = ["--trace", CODE_TRACE, "--limit", "8", "--quiet", "--policy", "nospec"]

pytestmark = pytest.mark.filterwarnings("ignore:latency profile:RuntimeWarning")


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    from calibrate.profile_io import write_profile
    root = tmp_path_factory.mktemp("profiles")
    doc = synthetic_profile_doc()
    good = write_profile(root / "profile.json", doc)
    zero = copy.deepcopy(doc)
    for op in zero["ops"].values():
        op["coefficients"] = {name: 0.0 for name in op["coefficients"]}
    zero_path = root / "zero.json"
    zero_path.write_text(json.dumps(zero))
    unnamed = copy.deepcopy(doc)
    unnamed["config"]["target"] = "my-own-model"
    unnamed_path = root / "unnamed.json"
    unnamed_path.write_text(json.dumps(unnamed))
    return good, zero_path, unnamed_path


def _refused(capsys, tmp_path, argv, needle):
    out = tmp_path / "out"
    code = main(argv + ["--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert needle.lower() in err.lower(), err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in tmp_path.iterdir() if p.name != "out") and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no tmp sibling


@pytest.mark.parametrize("extra, needle", [
    (["--seed", "-1"], "--seed must be a whole number >= 0 and < 2**63, got -1"),
    (["--seed", str(2 ** 63)], "--seed must be a whole number >= 0 and < 2**63"),
    (["--draft", "vicuna-7b", "--target", "vicuna-68m"], "larger than target"),
    (["--max-num-seqs", "0"], "max_num_seqs"),
    (["--kv-blocks", "0"], "kv_blocks"),
    (["--max-num-batched-tokens", "0"], "max_num_batched_tokens"),
    (["--policy", "nospec bogus:1"], "bogus"),
    (["--tp", "0"], "tensor-parallel"),
    (["--window", "-50:-10"], "window"),
    # values that start with "-" reach their option (not argparse's "expected one argument")
    (["--slo-tpot-ms", "-inf"], "--slo-tpot-ms (milliseconds) must be"),
    (["--slo-ttft-ms", "-1e3"], "--slo-ttft-ms (milliseconds) must be"),
    (["--pass-overhead-ms", "-1,2"], "--pass-overhead-ms"),
    (["--rate-scale", "-.5"], "rate"),
])
def test_bad_input_is_one_line_and_leaves_nothing(capsys, tmp_path, extra, needle):
    _refused(capsys, tmp_path, BASE + extra, needle)


@pytest.mark.parametrize("extra, needle", [
    (["--gpu", "H200"], "--gpu"),
    (["--tp", "2"], "--tp"),
    (["--target", "llama-3.3-70b"], "--target"),
    (["--draft", "vicuna-68m"], "--draft"),
])
def test_roofline_options_with_a_profile_are_errors(capsys, tmp_path, profiles, extra, needle):
    _refused(capsys, tmp_path, BASE + ["--profile", str(profiles[0])] + extra, needle)


def test_all_zero_profile_is_refused(capsys, tmp_path, profiles):
    _refused(capsys, tmp_path, BASE + ["--profile", str(profiles[1])], "positive")


def test_profile_header_and_summary_name_the_profile(capsys, tmp_path, profiles):
    out = tmp_path / "run"
    # a --target that agrees with the profile is accepted
    assert main(BASE + ["--profile", str(profiles[0]), "--target", "tiny-llama",
                        "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "latency: profile" in printed and "tiny-llama + tiny-llama-draft" in printed
    assert "vicuna-7b" not in printed and "A100" not in printed.split("KV pool")[0]
    simulated = json.loads((out / "summary.json").read_text())["simulated"]
    assert simulated["latency"]["source"] == "profile"
    assert simulated["latency"]["target"] == "tiny-llama"
    assert len(simulated["latency"]["sha256"]) == 64
    assert simulated["limits"]["max_model_len"] == 2048


def test_roofline_header_and_summary_say_what_was_simulated(capsys, tmp_path):
    out = tmp_path / "run"
    assert main(BASE + ["--gpu", "H100", "--max-num-seqs", "7", "--kv-blocks", "900",
                        "--slo-tpot-ms", "55", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "latency: roofline, vicuna-7b + vicuna-68m on 1x H100" in printed
    assert "7 sequences" in printed and "context 2048 tokens" in printed
    assert "KV pool: 900 blocks" in printed and "sized from --kv-blocks" in printed
    assert "TPOT 55 ms" in printed and "acceptance spec-bench-vicuna-68m" in printed
    simulated = json.loads((out / "summary.json").read_text())["simulated"]
    latency = dict(simulated["latency"])
    overheads = latency.pop("pass_overheads_s")
    assert latency == {"source": "roofline", "target": "vicuna-7b", "draft": "vicuna-68m",
                       "gpu": "H100", "tp": 1,
                       "dense_ops": {"setting": "measured", "draft": "fitted",
                                     "target": "Vidur h100 Llama-2-7b-hf tp1 (same layer shape)",
                                     "closed_form": "h100 fit: GEMM tile padding, "
                                                    "128/64/16-row tiles"}}
    assert "dense ops measured: target Vidur h100 Llama-2-7b-hf tp1" in printed
    assert set(overheads) == {"target pass", "draft step", "drafting iteration"}
    assert "overhead per target pass" in printed
    assert simulated["limits"]["max_num_seqs"] == 7 and simulated["limits"]["kv_blocks"] == 900
    assert simulated["slo"] == {"ttft_s": 2.0, "tpot_s": 0.055}


def test_rejections_are_counted_in_the_table_and_warned_once(capsys, tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,prompt_tokens,output_tokens\n0,100,10\n0.1,2000,100\n"
                     "0.2,50,99999999999\n0.3,9000,5\n")
    assert main(["--trace", str(trace), "--policy", "nospec", "--quiet"]) == 0
    captured = capsys.readouterr()
    row = next(line for line in captured.out.splitlines() if line.startswith("nospec"))
    assert row.split()[1:4] == ["4", "3", "0"]  # requests, rejected, preempted
    warning = captured.err.strip()
    assert len(warning.splitlines()) == 1 and "3 of 4 requests rejected" in warning
    assert "3 longer than the model's context" in warning


def test_prompt_budget_without_chunked_prefill_rejects_like_vllm(capsys, tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,prompt_tokens,output_tokens\n0,10,5\n0.1,40,5\n")
    argv = ["--trace", str(trace), "--policy", "nospec", "--quiet", "--out"]
    assert main(argv + [str(tmp_path / "a"), "--max-num-batched-tokens", "16"]) == 0
    assert "with a prompt above max_num_batched_tokens" in capsys.readouterr().err
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())["policies"]["nospec"]
    assert summary["rejected_by_reason"] == {"prompt-budget": 1} and summary["finished"] == 1
    assert main(argv + [str(tmp_path / "b"), "--max-num-batched-tokens", "16",
                        "--chunked-prefill"]) == 0
    assert capsys.readouterr().err == ""
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())["policies"]["nospec"]
    assert summary["rejected"] == 0


def test_kv_pool_too_small_for_any_request_is_warned(capsys):
    assert main(BASE + ["--kv-blocks", "1"]) == 0
    err = capsys.readouterr().err
    assert "8 of 8 requests rejected" in err and "KV blocks" in err


def test_overloaded_run_is_warned(capsys):
    assert main(["--trace", CODE_TRACE, "--limit", "300", "--rate-scale", "4", "--max-num-seqs",
                 "8", "--policy", "nospec", "--quiet"]) == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("adaspec-sim: warning: nospec: overloaded") and len(err.splitlines()) == 1
    assert main(BASE) == 0
    assert "overloaded" not in capsys.readouterr().err


def test_policies_split_on_spaces_and_window_takes_a_dash_value(capsys):
    assert main(["--trace", CODE_TRACE, "--limit", "5", "--quiet",
                 "--policy", "nospec  static:2"]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[-2:]]
    assert rows == ["nospec", "static:2"]


def test_explicit_options_tell_a_given_value_from_a_default():
    parser = build_parser()
    argv = ["--trace", "x", "--gpu", "A100-80G", "--quiet", "--policy", "nospec"]
    explicit = explicit_options(parser, argv)
    assert {"gpu", "quiet", "policy", "trace"} <= explicit
    assert "tp" not in explicit and "target" not in explicit


def test_help_lists_presets_grammar_and_defaults(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for needle in ("H200", "llama-3.1-8b (128k)", "vicuna-7b (2k)", "spec-bench-vicuna-68m",
                   "engine", "policy grammar", "adaspec:K", "slo=strict", "k required",
                   "(default: 256)", "(default: 0)",
                   "(default: table)", "(default: 8192)"):
        assert needle in text, needle
    assert "``" not in text


@pytest.mark.parametrize("module, prog", [
    ("sim.cli", "adaspec-sim"), ("sim.sweep.cli", "adaspec-sweep"),
    ("realrun.cli", "adaspec-realrun"), ("calibrate.cli", "adaspec-calibrate"),
    ("calibrate.validate_cli", "adaspec-validate")])
def test_every_command_says_its_version(capsys, module, prog):
    """``--version`` prints the command and the package's version and exits 0, before any
    required option is asked for."""
    import importlib

    from sim import __version__
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module(module).main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"{prog} {__version__}\n"


def test_profile_of_models_outside_the_presets_needs_a_preset_or_a_kv_pool(capsys, tmp_path,
                                                                          profiles):
    _refused(capsys, tmp_path, BASE + ["--profile", str(profiles[2])], "my-own-model")
    assert main(BASE + ["--profile", str(profiles[2]), "--target", "tiny-llama"]) == 0
    assert main(BASE + ["--profile", str(profiles[2]), "--kv-blocks", "500"]) == 0
    printed = capsys.readouterr().out
    assert "KV pool: 500 blocks" in printed and "context unlimited" in printed


def test_unknown_acceptance_category_is_refused(tmp_path, capsys):
    """A typo in --category used to fall back silently to the default acceptance profile."""
    out = tmp_path / "out"
    rc = main(["--trace", str(ROOT / "traces/adaspec/code.csv"), "--limit", "5",
               "--policy", "nospec", "--category", "mathh", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "unknown acceptance category 'mathh'" in err[0]
    assert not out.exists()
    assert main(["--trace", str(ROOT / "traces/adaspec/code.csv"), "--limit", "5",
                 "--policy", "nospec", "--category", "Math", "--quiet"]) == 0
    assert main(["--trace", str(ROOT / "traces/adaspec/code.csv"), "--limit", "5",
                 "--policy", "nospec", "--category", "anything", "--acceptance", "fixed:0.5",
                 "--quiet"]) == 0
