"""benchmarks/overhead_vs_model.py: which GPU preset a document names, the simulator's
kernels-only price of each measured pass, the printed table; benchmarks/device_session.sh
parses as bash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import overhead_vs_model as ovm  # noqa: E402

from sim.errors import ConfigError  # noqa: E402
from sim.latency.hardware import get_gpu  # noqa: E402
from sim.latency.models import get_model  # noqa: E402
from sim.latency.roofline import RooflineLatency  # noqa: E402


def _doc(gpu_name, target="random:vicuna-7b"):
    return {"config": {"target": target, "dtype": "bfloat16", "context_per_seq": 512},
            "hardware": {"gpu": gpu_name, "cpu": "x"},
            "samples": [{"batch": 1, "context_per_seq": 512, "pass_s_median": 0.012,
                         "busy_s": 0.010, "overhead_s": 0.002},
                        {"batch": 8, "context_per_seq": 512, "pass_s_median": 0.014,
                         "busy_s": 0.0125, "overhead_s": 0.0015}]}


@pytest.mark.parametrize("name, preset", [("NVIDIA H200", "H200"),
                                          ("NVIDIA H100 80GB HBM3", "H100"),
                                          ("NVIDIA A100-SXM4-80GB", "A100-80G"),
                                          ("NVIDIA L40", "L40")])
def test_the_documents_gpu_names_its_preset(name, preset):
    assert ovm.gpu_of(_doc(name), None) == preset
    assert ovm.gpu_of(_doc(name), "H100") == "H100"  # --gpu wins


@pytest.mark.parametrize("name", [None, "Tesla T4"])
def test_a_device_without_a_preset_needs_gpu(name):
    with pytest.raises(ConfigError, match="give --gpu"):
        ovm.gpu_of(_doc(name), None)


def test_each_pass_is_priced_by_the_models_kernels_alone():
    rows = ovm.compare(_doc("NVIDIA H200"), "H200")
    latency = RooflineLatency(get_model("vicuna-7b"), None, get_gpu("H200"), 1,
                              target_overhead_s=0.0)
    for row, batch, busy in zip(rows, (1, 8), (0.010, 0.0125)):
        kernels = latency.target_verify_s(batch, batch, batch * 512)
        assert row["model_kernels_s"] == kernels
        assert row["kernel_error"] == pytest.approx(kernels / busy - 1)
    # the default per-pass overhead is not in it
    assert rows[0]["model_kernels_s"] < RooflineLatency(
        get_model("vicuna-7b"), None, get_gpu("H200"), 1).target_verify_s(1, 1, 512)
    assert ovm.preset_of("random:vicuna-68m") == "vicuna-68m" == ovm.preset_of("vicuna-68m")


def test_the_command_prints_one_row_per_sample(tmp_path, capsys):
    path = tmp_path / "overhead.json"
    path.write_text(json.dumps(_doc("NVIDIA H200")))
    assert ovm.main([str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "vicuna-7b" in out[0] and "H200" in out[0]
    assert [line.split()[0] for line in out[2:]] == ["1", "8"]
    path.write_text(json.dumps(_doc(None)))
    assert ovm.main([str(path)]) == 2


def test_the_device_session_script_parses():
    done = subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "device_session.sh")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
