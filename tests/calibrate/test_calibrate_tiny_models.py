"""End to end on tiny random-weight models (torch): the latency calibration writes a valid
profile the simulator runs on; the acceptance run is lossless and its file loads."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from calibrate.acceptance import Prompt, load_prompts, run_acceptance  # noqa: E402
from calibrate.cli import main as calibrate_main  # noqa: E402
from realrun.forward import allocate, decode, prefill  # noqa: E402
from realrun.kvcache import SlotKVCache  # noqa: E402
from realrun.models import load_model  # noqa: E402
from sim.acceptance.presets import make_acceptance  # noqa: E402
from sim.latency.profile import load_profile  # noqa: E402

TINY_GRID = {"batch_sizes": [1, 2, 4], "prompt_lengths": [8, 32],
             "context_lengths": [16, 64], "tokens_per_seq": [1, 2, 4], "repeats": 2,
             "warmup": 1}


@pytest.fixture(scope="module")
def tiny_profile(tmp_path_factory):
    root = tmp_path_factory.mktemp("calib")
    grid = root / "grid.json"
    grid.write_text(json.dumps(TINY_GRID))
    out = root / "profile.json"
    rc = calibrate_main(["latency", "--target", "random:tiny-llama", "--draft",
                         "random:tiny-llama-draft", "--grid", str(grid), "--k-max", "3",
                         "--threads", "1", "--out", str(out), "--quiet"])
    assert rc == 0
    return out


def test_latency_calibration_writes_valid_profile(tiny_profile):
    doc = json.loads(tiny_profile.read_text())
    assert doc["schema_version"] == 1 and doc["kind"] == "latency-profile"
    assert doc["random_weights"] and "latency does not depend" in doc["random_weights_note"]
    assert doc["models"]["target"]["shape"]["layers"] == 2
    assert doc["software"]["torch"] == torch.__version__
    assert doc["hardware"]["cpu"] and doc["seed"] == 0
    verify = doc["ops"]["target_verify"]
    assert verify["fit"]["n_samples"] == 3 * 2 * 3
    assert verify["fit"]["mape_heldout"] is not None and verify["fit"]["mape_train"] >= 0
    assert verify["domain"]["tokens_per_seq"] == [1.0, 4.0]
    assert all(len(s["seconds_all"]) == 2 for s in verify["samples"])
    model = load_profile(tiny_profile)
    assert model.target_verify_s(2, 4, 64) > 0 and model.draft_step_s(2, 64) > 0
    assert model.target_prefill_s([20, 30]) > 0


def test_sim_runs_on_the_calibrated_profile(tiny_profile, tmp_path, capsys):
    from sim.cli import main as sim_main

    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,prompt_tokens,output_tokens\n"
                     + "".join(f"{0.1 * i},{20 + i},{10 + i % 5}\n" for i in range(12)))
    rc = sim_main(["--trace", str(trace), "--profile", str(tiny_profile), "--target",
                   "tiny-llama", "--draft", "tiny-llama-draft", "--policy", "static:2",
                   "--acceptance", "fixed:0.5", "--quiet", "--slo-tpot-ms", "1000"])
    assert rc == 0
    printed = capsys.readouterr()
    assert "static:2" in printed.out
    # the profile's out-of-domain notes (at least the policies' table's): one line each
    lines = printed.err.splitlines()
    assert any("outside its measured domain" in line for line in lines)
    assert all(line.startswith("adaspec-sim: warning: ") for line in lines), lines


def _greedy(model, prompt, n):
    cache = SlotKVCache.for_model(model, max_slots=1, max_len=len(prompt) + n + 1)
    slot = allocate(cache)
    tok = int(prefill(model, cache, [slot], [list(prompt)]).argmax(-1)[0])
    out = [tok]
    while len(out) < n:
        tok = int(decode(model, cache, [slot], torch.tensor([[tok]]))[0, 0].argmax())
        out.append(tok)
    return out


def test_acceptance_run_is_lossless_and_logs_every_draft():
    target = load_model("random:tiny-llama", seed=0).model
    draft = load_model("random:tiny-llama-draft", seed=1).model
    prompts = [Prompt(i, "qa" if i % 2 else "rag", tuple(range(3 + i, 15 + 2 * i))) for i in range(5)]
    run = run_acceptance(target, draft, prompts, k=3, max_new_tokens=12, batch_size=3)
    for p in prompts:
        assert run.outputs[p.id] == _greedy(target, p.token_ids, 12)
    log = run.log
    assert set(log["position"]) == {0, 1, 2}
    assert (log.groupby(["request", "step"]).size() == 3).all()
    assert log["conf"].between(0, 1).all() and set(log["category"]) == {"qa", "rag"}
    # reached = all earlier positions matched
    for _, g in log.groupby(["request", "step"]):
        m = g.sort_values("position")["match"].tolist()
        assert g.sort_values("position")["reached"].tolist() == [all(m[:j]) for j in range(3)]


def test_acceptance_cli_on_token_prompts(tmp_path, capsys):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt_token_ids": list(range(2 + i, 12 + i)),
                                           "category": "qa"}) + "\n" for i in range(4)))
    out = tmp_path / "acc.json"
    rc = calibrate_main(["acceptance", "--target", "random:tiny-llama", "--draft",
                         "random:tiny-llama", "--prompts", str(prompts), "--k", "3",
                         "--max-new-tokens", "10", "--out", str(out), "--log-out",
                         str(tmp_path / "log.csv"), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == 1 and doc["kind"] == "acceptance"
    assert doc["meta"]["inputs"]["prompts"]["sha256"] and doc["meta"]["seed"] == 0
    # The draft is a copy of the target with other random weights (seed 1): barely agrees.
    assert 0 <= doc["meta"]["fit"]["observed_acceptance_rate"] <= 1
    make_acceptance(out)
    assert (tmp_path / "log.csv").read_text().startswith("request,category,step,position")


def test_text_prompts_need_a_tokenizer(tmp_path):
    from calibrate.acceptance import default_prompts_path
    from sim.errors import ConfigError

    with pytest.raises(ConfigError, match="tokenizer"):
        load_prompts(default_prompts_path(), tokenizer=None, limit=2)


def test_calibrate_cli_errors_are_one_line(tmp_path, capsys):
    rc = calibrate_main(["latency", "--target", "random:no-such-model", "--draft",
                         "random:tiny-llama", "--grid", "small", "--out", str(tmp_path / "x.json")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "no-such-model" in err
    rc = calibrate_main(["latency", "--target", "random:tiny-llama", "--draft",
                         "random:tiny-llama", "--grid", "nonexistent", "--out", str(tmp_path / "x.json")])
    assert rc == 2 and "grid" in capsys.readouterr().err


def test_validate_a_real_tiny_run(tiny_profile, tmp_path, capsys):
    realrun_cli = pytest.importorskip("realrun.cli")
    from calibrate.validate_cli import main as validate_main

    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,prompt_tokens,output_tokens\n"
                     + "".join(f"{0.05 * i:.2f},{10 + 3 * i},{6 + i % 4}\n" for i in range(8)))
    out = tmp_path / "real"
    rc = realrun_cli.main(["--trace", str(trace), "--policy", "static:2", "--target",
                           "random:tiny-llama", "--draft", "random:tiny-llama-draft",
                           "--controlled-acceptance", "fixed:0.6", "--prompts", "synthetic",
                           "--max-num-seqs", "4", "--max-len", "128", "--threads", "1",
                           "--out", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    report_path = tmp_path / "report.json"
    assert validate_main([str(out), "--profile", str(tiny_profile), "--out",
                          str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    block = report["policies"]["static:2"]
    assert report["config"]["acceptance"] == "fixed:0.6" and report["config"]["kv_blocks"]
    assert block["requests"] == 8
    assert block["iteration_latency"]["n"] > 8 and block["iteration_latency"]["mape_percent"] >= 0
    assert block["metrics"]["ttft_mean_s"]["real"] > 0 and block["metrics"]["ttft_mean_s"]["sim"] > 0
    assert "tokens_per_step" in block["distributions"]
