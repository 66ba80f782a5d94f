"""adaspec-calibrate overhead: the per-pass overhead (a pass's time outside its operators'
work) from real passes; option checks before anything loads; the profile sums by hand."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from calibrate.cli import main as calibrate_main
from calibrate.overhead import (OVERHEAD_KIND, busy_seconds, check_overhead_options,
                                format_table, summarize)
from sim.errors import ConfigError


def _row(key, cpu_us=0.0, device_us=0.0):
    return SimpleNamespace(key=key, self_cpu_time_total=cpu_us, self_device_time_total=device_us)


def test_busy_seconds_sums_kernels_on_a_gpu_and_aten_operators_on_a_cpu():
    rows = [_row("aten::mm", 300.0, 120.0), _row("aten::add", 50.0, 5.0),
            _row("ampere_sgemm_128x64", 0.0, 80.0), _row("forward", 900.0, 0.0),
            _row("cudaLaunchKernel", 40.0, 0.0)]
    assert busy_seconds(rows, cuda=True) == pytest.approx((120 + 5 + 80) / 1e6)
    assert busy_seconds(rows, cuda=False) == pytest.approx((300 + 50) / 1e6)
    assert busy_seconds([], cuda=False) == 0.0


@pytest.mark.parametrize("batches, context, repeats, warmup, needle", [
    ([], 16, 3, 1, "--batches"),
    ([1, 0], 16, 3, 1, "--batches"),
    ([2], -1, 3, 1, "--context must be >= 0"),
    ([2], 16, 0, 1, "--repeats must be >= 1"),
    ([2], 16, 3, -1, "--warmup must be >= 0"),
])
def test_bad_options_are_refused(batches, context, repeats, warmup, needle):
    with pytest.raises(ConfigError, match=needle):
        check_overhead_options(batches, context, repeats, warmup)


def test_options_keep_the_batches_in_order():
    assert check_overhead_options([8, 1, 2], 0, 1, 0) == [8, 1, 2]


def test_summary_and_table_by_hand():
    samples = [{"batch": 1, "pass_s_median": 0.010, "busy_s": 0.006, "overhead_s": 0.004,
                "overhead_share": 0.4},
               {"batch": 8, "pass_s_median": 0.020, "busy_s": 0.019, "overhead_s": 0.001,
                "overhead_share": 0.05},
               {"batch": 64, "pass_s_median": 0.050, "busy_s": 0.048, "overhead_s": 0.002,
                "overhead_share": 0.04}]
    assert summarize(samples) == {"overhead_s_median": 0.002, "overhead_s_min": 0.001,
                                  "overhead_s_max": 0.004}
    lines = format_table(samples).splitlines()
    assert lines[1].split() == ["1", "10.000", "6.000", "4.000", "40.0%"]
    assert lines[3].split() == ["64", "50.000", "48.000", "2.000", "4.0%"]


@pytest.mark.parametrize("extra, needle", [
    (["--batches", "1,x"], "--batches must be integers"),
    (["--batches", "0"], "--batches must be integers >= 1"),
    (["--repeats", "0"], "--repeats must be >= 1"),
    (["--device", "tpu"], "--device"),
])
def test_cli_refuses_bad_options_in_one_line_and_writes_nothing(tmp_path, capsys, extra,
                                                                needle):
    out = tmp_path / "overhead.json"
    assert calibrate_main(["overhead", "--target", "random:tiny-llama", "--out", str(out),
                           "--quiet", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and not out.exists()


@pytest.mark.real
def test_real_passes_of_a_tiny_model_write_the_document(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    out = tmp_path / "overhead.json"
    assert calibrate_main(["overhead", "--target", "random:tiny-llama", "--batches", "1,4",
                           "--context", "32", "--repeats", "3", "--warmup", "1",
                           "--threads", "1", "--out", str(out), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert doc["kind"] == OVERHEAD_KIND and doc["schema_version"] >= 1 and doc["seed"] == 0
    assert doc["config"]["batches"] == [1, 4] and doc["config"]["context_per_seq"] == 32
    assert doc["models"]["target"]["name"] == "tiny-llama"
    assert [s["batch"] for s in doc["samples"]] == [1, 4]
    for s in doc["samples"]:
        assert len(s["pass_s_all"]) == 3 and s["pass_s_median"] > 0 and s["busy_s"] > 0
        assert s["overhead_s"] == pytest.approx(s["pass_s_median"] - s["busy_s"])
        assert s["overhead_share"] == pytest.approx(s["overhead_s"] / s["pass_s_median"])
    assert doc["summary"] == summarize(doc["samples"])
    printed = capsys.readouterr().out
    assert "overhead ms" in printed and f"wrote {out}" in printed


@pytest.mark.gpu
def test_kernels_are_measured_on_a_cuda_gpu():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from calibrate.overhead import measure_overhead
    from realrun.models import load_model

    model = load_model("random:tiny-llama", device="cuda", dtype="bfloat16", seed=0).model
    samples = measure_overhead(model, [1, 8], context=64, repeats=5, warmup=2)
    for s in samples:
        # kernels ran on the device and took part of the pass, not more than all of it
        assert 0 < s["busy_s"] <= 1.05 * s["pass_s_median"]
