"""Vidur-format profiles read directly: the CSV readers, ``--profile DIR``, attention.csv."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sim.errors import ConfigError, InputError
from sim.latency.hardware import get_gpu
from sim.latency.models import get_model
from sim.latency.presets import roofline_for
from sim.latency.vidur_csv import read_attention_csv, read_mlp_csv
from sim.latency.measured import MeasuredLayer
from sim.latency.vidur_profile import attention_from_rows, load_vidur_latency
from sim.run import SimConfig, build_latency

DATA = Path(__file__).resolve().parents[1] / "data" / "vidur"
A100_7B = DATA / "a100" / "Llama-2-7b-hf"


def test_mlp_reader_converts_to_seconds() -> None:
    rows = read_mlp_csv(A100_7B / "mlp.csv")
    first = [r for r in rows if r.tp == 1 and r.num_tokens == 1][0]
    assert (first.hidden, first.heads, first.kv_heads, first.ffn) == (4096, 32, 32, 11008)
    assert first.seconds("mlp_up_proj") == pytest.approx(0.116e-3)


def test_measured_layer_steps_up_and_scales() -> None:
    layer = MeasuredLayer({1: 1.0, 3: 3.0, 10: 5.0})
    assert layer(2) == 3.0 and layer(4) == 5.0  # the next point up
    assert layer(1) == 1.0 and layer(3) == 3.0 and layer(10) == 5.0
    assert layer(20) == 10.0  # proportional above the largest without a closed form
    scaled = MeasuredLayer({1: 1.0, 10: 5.0}, extend=lambda t: 2.0 + t)
    assert scaled(20) == pytest.approx(5.0 * 22.0 / 12.0)  # the closed form, scaled


def test_profile_folder_gives_the_measured_layers() -> None:
    m = load_vidur_latency(A100_7B, get_model("vicuna-7b"), get_model("vicuna-68m"),
                           get_gpu("a100"), target_overhead_s=0.0)
    rows = [r for r in read_mlp_csv(A100_7B / "mlp.csv") if r.tp == 1 and r.num_tokens == 512]
    measured = sum(s for op, s in rows[0].op_s if op != "emb")
    costs = m.target_costs
    assert costs.measured_layer_s(512) == pytest.approx(measured)
    # The preset's own measured rows are the same profile's: same layer at a profiled count.
    preset = roofline_for("vicuna-7b", gpu="a100", target_overhead_s=0.0)
    assert preset.target_costs.dense_s(512) == pytest.approx(costs.dense_s(512), rel=1e-9)
    # Close to the closed form (the fit came from these profiles); only the layers differ.
    fitted = roofline_for("vicuna-7b", gpu="a100", target_overhead_s=0.0, dense_ops="fitted")
    fitted_layer = fitted.target_costs.fitted_layer_dense_s(512)
    assert costs.dense_s(512) - fitted.target_costs.dense_s(512) == pytest.approx(
        32 * (measured - fitted_layer), rel=1e-9)
    for batch in (1, 64, 512):
        assert m.target_verify_s(batch, batch, 512 * batch) == pytest.approx(
            fitted.target_verify_s(batch, batch, 512 * batch), rel=0.12)
    # The draft is the preset's (no profile: the closed form either way).
    assert m.draft_step_s(4, 400) == fitted.draft_step_s(4, 400)
    assert costs.dense_source.startswith("Vidur profile ") and costs.dense_source.endswith("tp1")


def test_sim_config_reads_a_folder(tmp_path: Path) -> None:
    latency = build_latency(SimConfig(profile=str(A100_7B)))
    assert latency.target_costs.measured_layer_s is not None
    tp2 = build_latency(SimConfig(profile=str(A100_7B), tp=2))
    assert tp2.target_verify_s(1, 1, 0) < latency.target_verify_s(1, 1, 0)


def test_wrong_shape_tp_or_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shape"):
        load_vidur_latency(A100_7B, get_model("llama-3-8b"), None, get_gpu("a100"))
    with pytest.raises(ConfigError, match="tp=4"):
        load_vidur_latency(A100_7B, get_model("vicuna-7b"), None, get_gpu("a100"), tp=4)
    with pytest.raises(InputError, match="mlp.csv"):
        load_vidur_latency(tmp_path, get_model("vicuna-7b"), None, get_gpu("a100"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "mlp.csv").write_text("num_tokens,n_head\n1,x\n")
    with pytest.raises(InputError, match="column"):
        load_vidur_latency(bad, get_model("vicuna-7b"), None, get_gpu("a100"))


def _attention_csv(path: Path, decode, prefill) -> None:
    """Vidur attention.csv rows from closed forms (ms per layer)."""
    head = ("n_embd,n_q_head,n_kv_head,num_tensor_parallel_workers,block_size,max_model_len,"
            "batch_size,prefill_chunk_size,kv_cache_size,is_prefill,attention_backend,"
            "time_stats.attn_prefill.median,time_stats.attn_decode.median\n")
    lines = [head]
    for b, kv in ((1, 128), (1, 4096), (8, 1024), (32, 2048), (64, 512), (128, 4096)):
        lines.append(f"4096,32,32,1,16,4096,{b},0,{kv},False,FLASH,,{decode(b, kv)}\n")
    for c, kv in ((128, 0), (512, 0), (2048, 0), (512, 2048), (1024, 4096), (4096, 0)):
        lines.append(f"4096,32,32,1,16,4096,1,{c},{kv},True,FLASH,{prefill(c, kv)},\n")
    path.write_text("".join(lines))


def test_attention_csv_refits_the_closed_forms(tmp_path: Path) -> None:
    folder = tmp_path / "profile"
    shutil.copytree(A100_7B, folder)
    # Decode 0.01 + 0.002*B + 1e-5*B*L ms; prefill 0.02 + pairs at 100 and 150 TFLOP/s.
    flops = 4 * 4096
    _attention_csv(folder / "attention.csv", lambda b, kv: 0.01 + 0.002 * b + 1e-5 * b * kv,
                   lambda c, kv: 0.02 + (flops * c * (c + 1) / 2 / 100e12
                                         + flops * c * kv / 150e12) * 1e3)
    rows = read_attention_csv(folder / "attention.csv")
    assert len(rows) == 12 and sum(r.is_prefill for r in rows) == 6
    fit = attention_from_rows(rows, get_model("vicuna-7b"), get_gpu("a100"), 1)
    assert fit.decode_fixed_s == pytest.approx(10e-6, rel=1e-3)
    assert fit.decode_per_seq_s == pytest.approx(2e-6, rel=1e-3)
    assert fit.kv_fraction(7) == pytest.approx(16384 / (1e-8 * 2.039e12), rel=1e-3)
    assert fit.causal_fraction(999) * 312e12 == pytest.approx(100e12, rel=1e-3)
    assert fit.prefix_fraction(77) * 312e12 == pytest.approx(150e12, rel=1e-3)
    m = load_vidur_latency(folder, get_model("vicuna-7b"), None, get_gpu("a100"))
    assert m.target_costs.attention == fit
