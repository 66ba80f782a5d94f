"""GPU/model presets, name lookup and KV-cache capacity."""

from __future__ import annotations

import pytest

from sim.errors import ConfigError
from sim.latency.hardware import GpuSpec, get_gpu, gpu_names
from sim.latency.kv import kv_block_bytes, kv_capacity_blocks
from sim.latency.models import ModelSpec, get_model, model_names
from sim.latency.presets import default_draft


@pytest.mark.parametrize("alias,name", [
    ("a100", "A100-80G"), ("A100-80G", "A100-80G"), ("a100_sxm", "A100-80G"),
    ("L40", "L40"), ("h100-sxm", "H100"), ("H100", "H100"), ("h200", "H200"),
])
def test_gpu_lookup(alias: str, name: str) -> None:
    assert get_gpu(alias).name == name


def test_gpu_datasheet_figures() -> None:
    assert get_gpu("a100").peak_flops == 312e12
    assert get_gpu("a100").mem_bandwidth_bytes_per_s == 2.039e12
    assert get_gpu("l40").peak_flops == 181e12
    assert get_gpu("l40").mem_bandwidth_bytes_per_s == 0.864e12
    assert get_gpu("h100").peak_flops == get_gpu("h200").peak_flops == 989e12
    assert get_gpu("h100").mem_bandwidth_bytes_per_s == 3.35e12
    assert get_gpu("h200").mem_bandwidth_bytes_per_s == 4.8e12
    assert get_gpu("h200").memory_bytes > get_gpu("h100").memory_bytes > get_gpu("l40").memory_bytes
    for g in gpu_names():
        spec = get_gpu(g)
        # Fitted to real kernel profiles (sim.latency.fitted_constants): large GEMMs reach
        # 0.7-0.8 of peak FLOP/s, weight streaming 0.8-1.0 of the datasheet bandwidth.
        assert 0.65 <= spec.op_fit.gemm.compute_efficiency <= 0.85
        assert 0.75 <= spec.op_fit.gemm.memory_efficiency <= 1.0


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="A100-80G.*H200"):
        get_gpu("v100")
    with pytest.raises(ConfigError, match="vicuna-7b"):
        get_model("gpt-5")
    with pytest.raises(ConfigError, match="no default draft"):
        default_draft("vicuna-160m")


def test_model_lookup_case_insensitive() -> None:
    assert get_model("Vicuna-7B").name == "vicuna-7b"
    assert get_model("double7/vicuna-68m").name == "vicuna-68m"
    assert get_model("Qwen/Qwen2.5-Coder-0.5B-Instruct").name == "qwen2.5-coder-0.5b"
    assert set(model_names()) >= {"vicuna-7b", "vicuna-33b", "llama-3.3-70b", "llama-3.2-1b",
                                  "vicuna-68m", "vicuna-160m", "qwen2.5-coder-1.5b",
                                  "qwen2.5-coder-0.5b", "tiny-llama", "tiny-llama-draft"}


def test_preset_shapes() -> None:
    v = get_model("vicuna-7b")
    assert (v.layers, v.hidden, v.heads, v.kv_heads, v.ffn, v.vocab) == \
        (32, 4096, 32, 32, 11008, 32000)
    q = get_model("qwen2.5-coder-0.5b")
    assert (q.layers, q.hidden, q.heads, q.kv_heads, q.ffn, q.vocab) == \
        (24, 896, 14, 2, 4864, 151936)
    assert q.tie_word_embeddings and q.architecture == "qwen2" and q.head_dim == 64
    d = get_model("vicuna-68m")
    assert (d.layers, d.hidden, d.heads, d.ffn) == (2, 768, 12, 3072)


def test_hf_config_dict() -> None:
    cfg = get_model("qwen2.5-coder-1.5b").hf_config_dict()
    assert cfg["model_type"] == "qwen2" and cfg["architectures"] == ["Qwen2ForCausalLM"]
    assert cfg["num_key_value_heads"] == 2 and cfg["tie_word_embeddings"] is True
    assert cfg["rope_theta"] == 1e6 and cfg["head_dim"] == 128
    llama = get_model("llama-3.3-70b").hf_config_dict()
    assert llama["rope_scaling"]["rope_type"] == "llama3"
    tiny = get_model("tiny-llama").hf_config_dict()
    assert tiny["model_type"] == "llama" and tiny["rope_scaling"] is None


def test_bad_model_shapes() -> None:
    with pytest.raises(ConfigError):
        ModelSpec("x", 2, 65, 4, 2, 128, 256)
    with pytest.raises(ConfigError):
        ModelSpec("x", 2, 64, 4, 3, 128, 256)
    with pytest.raises(ConfigError):
        ModelSpec("x", 2, 64, 4, 2, 128, 256, architecture="gpt2")
    with pytest.raises(ConfigError):
        GpuSpec("g", 1e9, 1e9, 0, 1e9, 0.0)


TARGET = ModelSpec("t", 2, 64, 4, 2, 128, 256, dtype_bytes=4)  # weights 427264 B, KV 512 B/token
DRAFT = ModelSpec("d", 1, 64, 4, 2, 128, 256, dtype_bytes=4)  # weights 279296 B, KV 256 B/token
GPU = GpuSpec("toy", 1e9, 1e9, 10_000_000, 1e9, 0.0)


def test_kv_capacity_hand_computed() -> None:
    assert TARGET.weight_bytes == 427264 and DRAFT.weight_bytes == 279296
    # budget = 0.5 * 10e6 - 427264 - 279296 - 1000 = 4292440; block = 16 * (512 + 256) = 12288.
    assert kv_block_bytes(TARGET, DRAFT) == 12288
    assert kv_capacity_blocks(TARGET, DRAFT, GPU, gpu_memory_utilization=0.5,
                              activation_reserve_bytes=1000) == 4292440 // 12288 == 349
    # tp=2: target weights 213632 per GPU, 1 KV head per rank -> block 16 * (256 + 256) = 8192;
    # budget = 5e6 - 213632 - 279296 - 1000 = 4506072.
    assert kv_capacity_blocks(TARGET, DRAFT, GPU, tp=2, gpu_memory_utilization=0.5,
                              activation_reserve_bytes=1000) == 4506072 // 8192 == 550
    # Without the draft: budget 4571736, block 8192.
    assert kv_capacity_blocks(TARGET, DRAFT, GPU, gpu_memory_utilization=0.5,
                              activation_reserve_bytes=1000, include_draft=False) == 558
    assert kv_capacity_blocks(TARGET, None, GPU, gpu_memory_utilization=0.5,
                              activation_reserve_bytes=1000) == 558
    # block_size 32 halves the count (rounded down).
    assert kv_capacity_blocks(TARGET, DRAFT, GPU, block_size=32, gpu_memory_utilization=0.5,
                              activation_reserve_bytes=1000) == 4292440 // 24576


def test_kv_capacity_weights_do_not_fit() -> None:
    with pytest.raises(ConfigError, match="tp"):
        kv_capacity_blocks(get_model("llama-3.3-70b"), get_model("llama-3.2-1b"), get_gpu("h100"))
    with pytest.raises(ConfigError):
        kv_capacity_blocks(TARGET, DRAFT, GPU, gpu_memory_utilization=0.07,
                           activation_reserve_bytes=0)
    with pytest.raises(ConfigError):
        kv_capacity_blocks(TARGET, DRAFT, GPU, block_size=0)


def test_kv_capacity_presets() -> None:
    blocks = kv_capacity_blocks(get_model("vicuna-7b"), get_model("vicuna-68m"), get_gpu("a100"))
    # ~56 GB free / (16 * 530 KB) ~ 7000 blocks (~110k tokens).
    assert 6000 <= blocks <= 8000
    big = kv_capacity_blocks(get_model("llama-3.3-70b"), get_model("llama-3.2-1b"),
                             get_gpu("h200"), tp=4)
    assert big > kv_capacity_blocks(get_model("llama-3.3-70b"), get_model("llama-3.2-1b"),
                                    get_gpu("h100"), tp=4)


@pytest.mark.real
@pytest.mark.slow  # importing transformers takes ~10 s
@pytest.mark.parametrize("name", ["tiny-llama", "tiny-llama-draft", "tiny-qwen2"])
def test_param_count_matches_transformers(name: str) -> None:
    transformers = pytest.importorskip("transformers")
    cfg = get_model(name).hf_config_dict()
    config_cls = (transformers.LlamaConfig if cfg["model_type"] == "llama"
                  else transformers.Qwen2Config)
    config = config_cls(**{k: v for k, v in cfg.items() if k != "model_type"})
    model = transformers.AutoModelForCausalLM.from_config(config)
    assert sum(p.numel() for p in model.parameters()) == get_model(name).params_count
