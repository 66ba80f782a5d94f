"""Every model preset states its context (max_position_embeddings from its config.json)."""

from __future__ import annotations

import pytest

from sim.errors import ConfigError
from sim.latency.models import get_model
from sim.run import SimConfig, build_latency, build_scheduler_config


@pytest.mark.parametrize("name, context", [
    ("vicuna-7b", 2048), ("vicuna-33b", 2048), ("vicuna-68m", 2048), ("vicuna-160m", 2048),
    ("llama-3.3-70b", 131072), ("llama-3.1-8b", 131072), ("llama-3.2-1b", 131072),
    ("qwen2.5-coder-1.5b", 32768), ("qwen2.5-coder-0.5b", 32768),
])
def test_preset_context(name, context):
    assert get_model(name).max_position_embeddings == context


def test_llama_3_1_8b_shape_and_aliases():
    model = get_model("meta-llama/Llama-3.1-8B-Instruct")
    assert model.name == "llama-3.1-8b" and get_model("llama-8b") is model
    assert (model.layers, model.hidden, model.heads, model.kv_heads, model.ffn, model.vocab) == (
        32, 4096, 32, 8, 14336, 128256)
    assert 7.9e9 < model.params_count < 8.1e9  # "8B" (8.03 B with the untied lm_head)


def test_scheduler_gets_the_target_context_and_long_context_pair_runs():
    config = SimConfig(target="llama-3.1-8b", draft="llama-3.2-1b", gpu="H100")
    assert build_scheduler_config(config, uses_draft=True).max_model_len == 131072
    assert build_scheduler_config(SimConfig(), uses_draft=True).max_model_len == 2048
    build_latency(config)


def test_draft_larger_than_target_is_refused():
    with pytest.raises(ConfigError, match="larger than target"):
        build_latency(SimConfig(target="llama-3.2-1b", draft="llama-3.1-8b"))
