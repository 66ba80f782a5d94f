"""adaspec-realrun end to end on tiny random models: the adaspec-sim results schema (so the run
can be re-simulated), time scaling, one-line errors, the fetch-models subcommand, and a short
controlled-acceptance run on CUDA (``gpu``)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from realrun.cli import main  # noqa: E402
from sim.cli import main as sim_main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CODE_TRACE = str(ROOT / "traces" / "adaspec" / "code.csv")
TINY = ["--target", "random:tiny-llama", "--draft", "random:tiny-llama-draft", "--threads", "1"]
SMALL = ["--trace", CODE_TRACE, "--limit", "5", "--max-output-tokens", "12", "--max-len", "1024",
         "--time-scale", "0.01", "--quiet"]


def _native_trace(tmp_path: Path, rows: list[tuple[float, int, int]]) -> str:
    path = tmp_path / "trace.csv"
    path.write_text("arrival_s,prompt_tokens,output_tokens\n"
                    + "".join(f"{a},{p},{o}\n" for a, p, o in rows))
    return str(path)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, comment="#")


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("real")
    assert main([*SMALL, *TINY, "--policy", "nospec", "--policy", "static:3",
                 "--controlled-acceptance", "fixed:0.7", "--out", str(out)]) == 0
    return out


def test_results_have_the_sim_schema(real_dir, tmp_path):
    sim_dir = tmp_path / "sim"
    assert sim_main(["--trace", CODE_TRACE, "--limit", "5", "--policy", "nospec", "--policy",
                     "static:3", "--quiet", "--out", str(sim_dir)]) == 0
    real = json.loads((real_dir / "summary.json").read_text())
    sim = json.loads((sim_dir / "summary.json").read_text())
    # "simulated" (latency source, engine limits as applied) is the simulator's own statement
    assert set(real) == set(sim) - {"simulated"}
    assert list(real["policies"]) == ["nospec", "static:3"]
    for name in real["policies"]:
        assert set(real["policies"][name]) == set(sim["policies"][name])
        sub = name.replace(":", "_")
        for table in ("requests.csv", "iterations.csv"):
            assert list(_read(real_dir / sub / table).columns) == list(_read(sim_dir / sub / table).columns)
            first = (real_dir / sub / table).read_text().splitlines()[0]
            header = json.loads(first.split(" ", 2)[2])
            assert header["schema_version"] == real["schema_version"] and header["seed"] == 0
    config = real["config"]
    for key in ("max_num_seqs", "kv_blocks", "block_size", "max_num_batched_tokens", "cuda_graphs",
                "target", "draft", "device", "dtype", "time_scale", "controlled_acceptance"):
        assert key in config, key
    assert config["acceptance"] == config["controlled_acceptance"] == "fixed:0.7"
    assert config["kv_blocks"] == 8 * 1024 // 16 and config["time_scale"] == 0.01
    assert config["engine"] == "single-pass" and config["runner"] == "realrun"
    assert real["inputs"]["trace"]["sha256"] == sim["inputs"]["trace"]["sha256"]
    req = _read(real_dir / "static_3" / "requests.csv")
    assert (req["status"] == "finished").all() and (req["output_tokens"] <= 12).all()
    spec = _read(real_dir / "static_3" / "iterations.csv")
    assert (spec["duration_s"] > 0).all() and spec["draft_steps"].max() > 0


def test_the_run_can_be_resimulated_from_its_results(real_dir):
    """What adaspec-validate does: rebuild the SimConfig and workload from the results."""
    from sim.run import SimConfig, simulate
    from sim.workload.request import Request, Workload

    doc = json.loads((real_dir / "summary.json").read_text())
    fields = {f.name for f in dataclasses.fields(SimConfig)}
    kwargs = {k: v for k, v in doc["config"].items() if k in fields}
    for key in ("target", "draft"):
        kwargs[key] = kwargs[key].removeprefix("random:")
    config = SimConfig(**kwargs)
    req = _read(real_dir / "static_3" / "requests.csv")
    workload = Workload(tuple(Request(int(r.id), float(r.arrival_s), int(r.prompt_tokens),
                                      int(r.output_tokens), "") for r in req.itertuples()), "x", "native")
    result = simulate(workload, "static:3", config, seed=doc["seed"])
    assert result.summary["finished"] == len(req)
    assert list(result.requests["output_tokens"]) == list(req["output_tokens"])


def test_time_scale_multiplies_arrivals(tmp_path):
    trace = _native_trace(tmp_path, [(0.0, 4, 3), (0.5, 4, 3)])
    out = tmp_path / "out"
    assert main(["--trace", trace, *TINY, "--policy", "nospec", "--time-scale", "0.2", "--quiet",
                 "--max-len", "64", "--out", str(out)]) == 0
    req = _read(out / "nospec" / "requests.csv")
    assert list(req["arrival_s"]) == pytest.approx([0.0, 0.1])
    assert req["admitted_s"].iloc[1] >= 0.1


def test_an_out_dir_holds_one_run(tmp_path, capsys):
    """As adaspec-sim: a used --out is refused (nothing written), --overwrite replaces it whole."""
    trace = _native_trace(tmp_path, [(0.0, 4, 3)])
    out = tmp_path / "out"
    argv = ["--trace", trace, *TINY, "--max-len", "64", "--quiet", "--out", str(out)]
    assert main([*argv, "--policy", "static:2"]) == 0
    capsys.readouterr()
    assert main([*argv, "--policy", "nospec"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--overwrite" in err, err
    assert (out / "static_2").is_dir() and not (out / "nospec").exists()
    assert main([*argv, "--policy", "nospec", "--overwrite"]) == 0
    assert (out / "nospec").is_dir() and not (out / "static_2").exists()
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_a_request_that_never_fits_is_rejected_and_the_run_goes_on(tmp_path, capsys):
    trace = _native_trace(tmp_path, [(0.0, 4, 3), (0.0, 90, 20), (0.01, 5, 4)])
    out = tmp_path / "out"
    assert main(["--trace", trace, *TINY, "--policy", "static:2", "--max-len", "64", "--quiet",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "rejected request 1: prompt 90 + output 20 tokens exceed the slot length max_len=64" in err
    req = _read(out / "static_2" / "requests.csv")
    assert list(req["status"]) == ["finished", "rejected", "finished"]


@pytest.mark.parametrize("extra, message", [
    (["--policy", "oracle:4"], "simulation-only"),
    (["--policy", "bogus"], "unknown policy"),
    (["--policy", "nospec", "--target", "no-such-model"], "unknown model 'no-such-model'"),
    (["--policy", "nospec", "--target", "missing/model.gguf"], "GGUF file not found"),
    (["--policy", "nospec", "--draft", "random:nope"], "unknown model"),
    (["--policy", "nospec", "--trace", "missing.csv"], "missing.csv"),
    (["--policy", "static:2", "--profile", "missing.json"], "missing.json"),
    (["--policy", "static:2", "--controlled-acceptance", "nope"], "unknown acceptance model"),
    (["--policy", "nospec", "--time-scale", "0"], "--time-scale"),
    (["--policy", "nospec", "--max-num-seqs", "0"], "max_num_seqs"),
    (["--policy", "nospec", "--kv-blocks", "100000"], "kv_blocks"),
    (["--policy", "nospec", "--temperature", "-1"], "temperature"),
    (["--policy", "static:2", "--engine", "vllm-0.6"], "batch expansion is simulation-only"),
    (["--policy", "nospec", "--max-len", "100000"], "positions"),
    (["--policy", "nospec", "--max-len", "16"], "no request fits"),
    (["--policy", "nospec", "--device", "cuda:7" if torch.cuda.is_available() else "cuda"], "cuda"),
    (["--policy", "nospec", "--prompts", "spec-bench"], "tokenizer"),
    (["--policy", "nospec", "--prompts", "MISSING.jsonl"], "--prompts MISSING.jsonl: no such file"),
    (["--policy", "nospec", "--device", "tpu7"], "--device must be cpu, cuda or cuda:N, got 'tpu7'"),
    (["--policy", "nospec", "--threads", "0"], "--threads must be >= 1"),
    (["--policy", "nospec", "--window", "-50:-10"], "window start must be"),
    (["--policy", "nospec", "--rate-scale", "nan"], "rate scale must be a finite number"),
])
def test_errors_are_one_line_exit_2(tmp_path, capsys, extra, message):
    argv = [*SMALL, *TINY, "--out", str(tmp_path / "out")]
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("adaspec-realrun: error: ") and len(err.splitlines()) == 1, err
    assert message.lower() in err.lower(), err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_gpu_default_is_adaspec_sims():
    from realrun.cli import build_parser
    from sim.cli import build_parser as sim_parser
    from sim.run import SimConfig
    argv = ["--trace", CODE_TRACE, "--policy", "nospec", *TINY, "--out", "x"]
    assert build_parser().parse_args(argv).gpu == sim_parser().parse_args(
        ["--trace", CODE_TRACE]).gpu == SimConfig().gpu == "A100-80G"


def test_fetch_models_subcommand_delegates(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fetch-models", "--help"])
    assert exc.value.code == 0
    assert "--cache-dir" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["fetch-models", "--model", "bogus"])
    assert exc.value.code == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_short_controlled_acceptance_run_on_cuda(tmp_path):
    out = tmp_path / "cuda"
    assert main([*SMALL, *TINY, "--device", "cuda", "--policy", "static:3", "--policy", "adaspec:4",
                 "--controlled-acceptance", "spec-bench-vicuna-68m", "--out", str(out)]) == 0
    doc = json.loads((out / "summary.json").read_text())
    assert doc["config"]["device"].startswith("cuda")
    for sub in ("static_3", "adaspec_4"):
        req = _read(out / sub / "requests.csv")
        assert (req["status"] == "finished").all() and req["accepted_tokens"].sum() > 0
        assert (_read(out / sub / "iterations.csv")["duration_s"] > 0).all()
