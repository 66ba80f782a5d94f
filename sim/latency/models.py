"""Transformer model shapes: presets for the target/draft pairs, derived sizes.

A ``ModelSpec`` holds everything the roofline model needs (parameter and KV-cache sizes) and
everything the real engine needs to build a randomly initialised ``transformers`` model of the
same shape (architecture, RoPE, norm epsilon, tied embeddings): see ``hf_config_dict``.
Only decoder-only Llama-style models are described (RMSNorm, SwiGLU MLP, rotary, GQA); the
"qwen2" architecture is the same with biases on the q/k/v projections.

``max_position_embeddings`` is the model's context (the ``max_model_len`` vLLM serves it with):
every preset states it explicitly, from the checkpoint's config.json. The simulator rejects
requests longer than the target's context (``sim.core.scheduler.Scheduler.arrive``). Which
preset fits which shipped trace: README, section ``adaspec-sim``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.errors import ConfigError

_ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}


@dataclass(frozen=True)
class ModelSpec:
    """Shape of a decoder-only transformer. Sizes are counts; ``dtype_bytes`` per element."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    dtype_bytes: int = 2
    architecture: str = "llama"  # "llama" or "qwen2" (q/k/v biases)
    tie_word_embeddings: bool = False
    rope_theta: float = 10000.0
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    # HF ``rope_scaling`` as sorted (key, value) pairs, or None.
    rope_scaling: tuple[tuple[str, Any], ...] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        for field_name in ("layers", "hidden", "heads", "kv_heads", "ffn", "vocab", "dtype_bytes",
                           "max_position_embeddings"):
            if getattr(self, field_name) < 1:
                raise ConfigError(f"model {self.name!r}: {field_name} must be >= 1")
        if self.hidden % self.heads:
            raise ConfigError(f"model {self.name!r}: hidden {self.hidden} not divisible by "
                              f"heads {self.heads}")
        if self.heads % self.kv_heads:
            raise ConfigError(f"model {self.name!r}: heads {self.heads} not divisible by "
                              f"kv_heads {self.kv_heads}")
        if self.architecture not in _ARCHITECTURES:
            raise ConfigError(f"model {self.name!r}: architecture must be one of "
                              f"{', '.join(_ARCHITECTURES)}, got {self.architecture!r}")

    # ---- derived shapes -------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def qkv_bias(self) -> bool:
        return self.architecture == "qwen2"

    @property
    def attention_params_per_layer(self) -> int:
        """q, k, v, o projection weights (and the q/k/v biases of qwen2)."""
        weights = (self.hidden * self.q_dim + 2 * self.hidden * self.kv_dim
                   + self.q_dim * self.hidden)
        bias = (self.q_dim + 2 * self.kv_dim) if self.qkv_bias else 0
        return weights + bias

    @property
    def mlp_params_per_layer(self) -> int:
        """gate, up and down projections (SwiGLU)."""
        return 3 * self.hidden * self.ffn

    @property
    def params_per_layer(self) -> int:
        return self.attention_params_per_layer + self.mlp_params_per_layer + 2 * self.hidden

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def lm_head_params(self) -> int:
        """Parameters of the output projection (shared with the embedding when tied)."""
        return self.vocab * self.hidden

    @property
    def non_embedding_params(self) -> int:
        """Decoder layers and the final norm."""
        return self.layers * self.params_per_layer + self.hidden

    @property
    def params_count(self) -> int:
        """Stored parameters (the lm_head counted once when tied to the embedding)."""
        head = 0 if self.tie_word_embeddings else self.lm_head_params
        return self.non_embedding_params + self.embedding_params + head

    @property
    def weight_bytes(self) -> int:
        return self.params_count * self.dtype_bytes

    @property
    def matmul_params_per_token(self) -> int:
        """Weights each token multiplies through in the decoder layers (lm_head excluded)."""
        return self.layers * (self.attention_params_per_layer + self.mlp_params_per_layer)

    @property
    def kv_bytes_per_token(self) -> int:
        """KV-cache bytes one token occupies across all layers (K and V)."""
        return 2 * self.layers * self.kv_dim * self.dtype_bytes

    def kv_heads_per_rank(self, tp: int) -> int:
        """KV heads each tensor-parallel rank stores (replicated when kv_heads < tp, as vLLM)."""
        return max(1, self.kv_heads // tp)

    def kv_bytes_per_token_per_rank(self, tp: int) -> int:
        return 2 * self.layers * self.kv_heads_per_rank(tp) * self.head_dim * self.dtype_bytes

    def check_tp(self, tp: int) -> None:
        """Raise ConfigError unless the model splits evenly over ``tp`` ranks (vLLM's rule)."""
        if tp < 1:
            raise ConfigError(f"tensor parallel size must be >= 1, got {tp}")
        if self.heads % tp:
            raise ConfigError(f"model {self.name!r}: {self.heads} attention heads do not split "
                              f"over tp={tp}")
        if (self.kv_heads % tp) if self.kv_heads >= tp else (tp % self.kv_heads):
            raise ConfigError(f"model {self.name!r}: {self.kv_heads} KV heads do not split over "
                              f"tp={tp}")

    def hf_config_dict(self) -> dict[str, Any]:
        """Keyword arguments for ``transformers`` LlamaConfig/Qwen2Config of this shape."""
        config: dict[str, Any] = {
            "architectures": [_ARCHITECTURES[self.architecture]],
            "model_type": self.architecture,
            "hidden_size": self.hidden,
            "intermediate_size": self.ffn,
            "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads,
            "num_key_value_heads": self.kv_heads,
            "head_dim": self.head_dim,
            "vocab_size": self.vocab,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings,
            "rope_theta": self.rope_theta,
            "rope_scaling": dict(self.rope_scaling) if self.rope_scaling else None,
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "torch_dtype": {2: "bfloat16", 4: "float32"}.get(self.dtype_bytes, "bfloat16"),
        }
        if self.architecture == "llama":
            config["attention_bias"] = False
            config["mlp_bias"] = False
        return config


def _llama3_rope(factor: float) -> tuple[tuple[str, Any], ...]:
    # Llama 3.1+ "llama3" RoPE scaling as in the meta-llama configs.
    return (("factor", factor), ("high_freq_factor", 4.0), ("low_freq_factor", 1.0),
            ("original_max_position_embeddings", 8192), ("rope_type", "llama3"))


_PRESETS: tuple[ModelSpec, ...] = (
    # lmsys/vicuna-7b-v1.3 config.json (LLaMA-7B shape; max_position_embeddings 2048, the
    # LLaMA-1 context; v1.5 has 4096 but a Llama-2 base, not this preset).
    ModelSpec("vicuna-7b", 32, 4096, 32, 32, 11008, 32000, max_position_embeddings=2048,
              source="lmsys/vicuna-7b-v1.3 config.json"),
    # lmsys/vicuna-33b-v1.3 config.json (LLaMA-30B shape; max_position_embeddings 2048).
    ModelSpec("vicuna-33b", 60, 6656, 52, 52, 17920, 32000, max_position_embeddings=2048,
              source="lmsys/vicuna-33b-v1.3 config.json"),
    # meta-llama/Llama-3.3-70B-Instruct config.json (max_position_embeddings 131072).
    ModelSpec("llama-3.3-70b", 80, 8192, 64, 8, 28672, 128256, rope_theta=500000.0,
              max_position_embeddings=131072, rms_norm_eps=1e-5, rope_scaling=_llama3_rope(8.0),
              source="meta-llama/Llama-3.3-70B-Instruct config.json"),
    # meta-llama/Llama-3.1-8B-Instruct config.json: 32 layers, hidden 4096, 32 heads, 8 KV
    # heads, intermediate 14336, vocab 128256, untied, rope theta 5e5 with llama3 scaling
    # (factor 8), max_position_embeddings 131072. The long-context target: pair it with the
    # llama-3.2-1b draft (same tokenizer, 131072 positions) for long-prompt traces (Mooncake).
    ModelSpec("llama-3.1-8b", 32, 4096, 32, 8, 14336, 128256, rope_theta=500000.0,
              max_position_embeddings=131072, rms_norm_eps=1e-5, rope_scaling=_llama3_rope(8.0),
              source="meta-llama/Llama-3.1-8B-Instruct config.json"),
    # meta-llama/Llama-3.2-1B(-Instruct) config.json (tied embeddings).
    ModelSpec("llama-3.2-1b", 16, 2048, 32, 8, 8192, 128256, tie_word_embeddings=True,
              rope_theta=500000.0, max_position_embeddings=131072, rms_norm_eps=1e-5,
              rope_scaling=_llama3_rope(32.0),
              source="meta-llama/Llama-3.2-1B-Instruct config.json"),
    # double7/vicuna-68m config.json: LlamaForCausalLM, 2 layers, hidden 768, 12 heads
    # (12 KV heads), intermediate 3072, vocab 32000, 2048 positions, rms eps 1e-6, untied.
    ModelSpec("vicuna-68m", 2, 768, 12, 12, 3072, 32000, max_position_embeddings=2048,
              source="double7/vicuna-68m config.json"),
    # double7/vicuna-160m config.json (JackFram/llama-160m shape): 12 layers, hidden 768,
    # 12 heads, intermediate 3072, vocab 32000, 2048 positions, untied.
    ModelSpec("vicuna-160m", 12, 768, 12, 12, 3072, 32000, max_position_embeddings=2048,
              source="double7/vicuna-160m config.json (JackFram/llama-160m shape)"),
    # Qwen/Qwen2.5-Coder-1.5B-Instruct config.json: 28 layers, hidden 1536, 12 heads,
    # 2 KV heads, intermediate 8960, vocab 151936, tied, rope theta 1e6, 32768 positions.
    ModelSpec("qwen2.5-coder-1.5b", 28, 1536, 12, 2, 8960, 151936, architecture="qwen2",
              tie_word_embeddings=True, rope_theta=1000000.0, max_position_embeddings=32768,
              source="Qwen/Qwen2.5-Coder-1.5B-Instruct config.json"),
    # Qwen/Qwen2.5-Coder-0.5B-Instruct config.json: 24 layers, hidden 896, 14 heads,
    # 2 KV heads, intermediate 4864, vocab 151936, tied, rope theta 1e6, 32768 positions.
    ModelSpec("qwen2.5-coder-0.5b", 24, 896, 14, 2, 4864, 151936, architecture="qwen2",
              tie_word_embeddings=True, rope_theta=1000000.0, max_position_embeddings=32768,
              source="Qwen/Qwen2.5-Coder-0.5B-Instruct config.json"),
    # Tiny shapes for unit tests (this project's own; no checkpoint).
    ModelSpec("tiny-llama", 2, 64, 4, 2, 128, 256, dtype_bytes=4, rms_norm_eps=1e-6,
              source="test shape"),
    ModelSpec("tiny-llama-draft", 1, 64, 4, 2, 128, 256, dtype_bytes=4, source="test shape"),
    ModelSpec("tiny-qwen2", 2, 64, 4, 2, 128, 256, dtype_bytes=4, architecture="qwen2",
              tie_word_embeddings=True, rope_theta=1000000.0, source="test shape"),
    ModelSpec("tiny-qwen2-draft", 1, 64, 4, 2, 128, 256, dtype_bytes=4, architecture="qwen2",
              tie_word_embeddings=True, rope_theta=1000000.0, source="test shape"),
) + (
    # Models with real kernel profiles (Vidur, ../shared/profiles/vidur; see
    # sim.latency.fitted_constants): their presets run on the fitted per-op constants and
    # can read the profiles directly (--profile DIR). Shapes from the HF config.json files.
    ModelSpec("llama-2-7b", 32, 4096, 32, 32, 11008, 32000, max_position_embeddings=4096,
              rms_norm_eps=1e-5, source="meta-llama/Llama-2-7b-hf config.json"),
    ModelSpec("llama-2-70b", 80, 8192, 64, 8, 28672, 32000, max_position_embeddings=4096,
              rms_norm_eps=1e-5, source="meta-llama/Llama-2-70b-hf config.json"),
    ModelSpec("llama-3-8b", 32, 4096, 32, 8, 14336, 128256, rope_theta=500000.0,
              max_position_embeddings=8192, rms_norm_eps=1e-5,
              source="meta-llama/Meta-Llama-3-8B config.json"),
    ModelSpec("llama-3-70b", 80, 8192, 64, 8, 28672, 128256, rope_theta=500000.0,
              max_position_embeddings=8192, rms_norm_eps=1e-5,
              source="meta-llama/Meta-Llama-3-70B config.json"),
    ModelSpec("codellama-34b", 48, 8192, 64, 8, 22016, 32000, rope_theta=1000000.0,
              max_position_embeddings=16384, rms_norm_eps=1e-5,
              source="codellama/CodeLlama-34b-Instruct-hf config.json"),
)

MODELS: dict[str, ModelSpec] = {m.name: m for m in _PRESETS}

_ALIASES: dict[str, str] = {
    "vicuna-7b-v1.3": "vicuna-7b",
    "lmsys/vicuna-7b-v1.3": "vicuna-7b",
    "vicuna-33b-v1.3": "vicuna-33b",
    "lmsys/vicuna-33b-v1.3": "vicuna-33b",
    "llama-70b": "llama-3.3-70b",
    "llama-3.3-70b-instruct": "llama-3.3-70b",
    "meta-llama/llama-3.3-70b-instruct": "llama-3.3-70b",
    "llama-8b": "llama-3.1-8b",
    "llama-3.1-8b-instruct": "llama-3.1-8b",
    "meta-llama/llama-3.1-8b-instruct": "llama-3.1-8b",
    "llama-1b": "llama-3.2-1b",
    "llama-3.2-1b-instruct": "llama-3.2-1b",
    "meta-llama/llama-3.2-1b-instruct": "llama-3.2-1b",
    "double7/vicuna-68m": "vicuna-68m",
    "double7/vicuna-160m": "vicuna-160m",
    "qwen2.5-coder-1.5b-instruct": "qwen2.5-coder-1.5b",
    "qwen/qwen2.5-coder-1.5b-instruct": "qwen2.5-coder-1.5b",
    "qwen2.5-coder-0.5b-instruct": "qwen2.5-coder-0.5b",
    "qwen/qwen2.5-coder-0.5b-instruct": "qwen2.5-coder-0.5b",
    # Profiled models (the block at the end of the presets).
    "meta-llama/llama-2-7b-hf": "llama-2-7b",
    "llama-2-7b-hf": "llama-2-7b",
    "meta-llama/llama-2-70b-hf": "llama-2-70b",
    "llama-2-70b-hf": "llama-2-70b",
    "meta-llama/meta-llama-3-8b": "llama-3-8b",
    "meta-llama-3-8b": "llama-3-8b",
    "meta-llama/meta-llama-3-70b": "llama-3-70b",
    "meta-llama-3-70b": "llama-3-70b",
    "codellama/codellama-34b-instruct-hf": "codellama-34b",
    "codellama-34b-instruct-hf": "codellama-34b",
}


def model_names() -> tuple[str, ...]:
    """Canonical names of the model presets."""
    return tuple(MODELS)


def get_model(name: str) -> ModelSpec:
    """The preset called ``name`` (case-insensitive; a few HF repo ids are aliases)."""
    if not isinstance(name, str):
        raise ConfigError(f"model name must be a string, got {name!r}; known: "
                          f"{', '.join(model_names())}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    try:
        return MODELS[key]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(model_names())}") from None
