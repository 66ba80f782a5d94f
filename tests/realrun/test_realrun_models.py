"""load_model: random presets (seeded, labelled), pretrained directories, cache names, errors."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from realrun import fetch  # noqa: E402
from realrun.models import load_model, resolve_dtype  # noqa: E402
from realrun_helpers import tiny_model  # noqa: E402
from sim.errors import ConfigError  # noqa: E402
from sim.latency.models import get_model  # noqa: E402


@pytest.mark.parametrize("preset,cls", [("tiny-llama", "LlamaForCausalLM"),
                                        ("tiny-qwen2", "Qwen2ForCausalLM")])
def test_random_preset_has_the_preset_shape_and_is_seeded(preset, cls):
    a = load_model(f"random:{preset}", seed=4)
    b = load_model(f"random:{preset}", seed=4)
    c = load_model(f"random:{preset}", seed=5)
    spec = get_model(preset)
    cfg = a.config
    assert type(a.model).__name__ == cls
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads,
            cfg.intermediate_size, cfg.vocab_size) == (spec.layers, spec.hidden, spec.heads, spec.kv_heads,
                                                       spec.ffn, spec.vocab)
    assert a.random_weights and "random weights" in a.label and a.source == f"random:{preset}"
    assert a.tokenizer is None and not a.model.training
    assert a.params_count == spec.params_count
    pa, pb, pc = (list(m.model.parameters()) for m in (a, b, c))
    assert all(torch.equal(x, y) for x, y in zip(pa, pb))
    assert not all(torch.equal(x, y) for x, y in zip(pa, pc))


def test_dtype_and_attention_options():
    m = load_model("random:tiny-llama", dtype="bf16", attn_implementation="eager")
    assert next(m.model.parameters()).dtype == torch.bfloat16
    assert m.config._attn_implementation == "eager"
    assert resolve_dtype(torch.float16) is torch.float16
    with pytest.raises(ConfigError, match="dtype"):
        load_model("random:tiny-llama", dtype="int3")
    with pytest.raises(ConfigError, match="attention"):
        load_model("random:tiny-llama", attn_implementation="flash")


def test_pretrained_directory_round_trip(tmp_path):
    model = tiny_model("qwen2", dtype=torch.float32)
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(str(tmp_path / "m"))
    assert not loaded.random_weights and loaded.source.startswith("pretrained:")
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(ids).logits, model(ids).logits)


def test_cached_name_loads_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADASPEC_CACHE", str(tmp_path))
    with pytest.raises(ConfigError, match="fetch-models"):
        load_model("qwen2.5-coder-0.5b")
    out = tmp_path / "qwen2.5-coder-0.5b"
    tiny_model("qwen2", dtype=torch.float32).save_pretrained(out)
    files = {p.name: p.stat().st_size for p in out.iterdir()}
    art = fetch.artifact("qwen2.5-coder-0.5b")
    (out / fetch.MARKER_FILE).write_text(json.dumps({"gguf_sha256": art.sha256, "files": files}))
    loaded = load_model("qwen2.5-coder-0.5b")
    assert loaded.source == f"cache:{out}" and not loaded.random_weights


@pytest.mark.parametrize("spec,match", [("random:no-such-preset", "unknown model"),
                                        ("no-such-model", "unknown model"),
                                        ("/nonexistent/m.gguf", "GGUF file not found")])
def test_bad_specs_are_one_line_config_errors(spec, match):
    with pytest.raises(ConfigError, match=match) as err:
        load_model(spec)
    assert "\n" not in str(err.value)


def test_directory_without_config_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config.json"):
        load_model(str(tmp_path))


def test_cuda_without_gpu_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="CUDA"):
        load_model("random:tiny-llama", device="cuda")
