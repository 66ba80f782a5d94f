"""Load a causal LM for the real engine and the calibrator.

``load_model(spec, device=..., dtype=..., seed=...)`` accepts:

- ``random:<preset>``: a shape preset of ``sim.latency.models`` (the one source of model
  shapes) built from a transformers LlamaConfig/Qwen2Config with seeded random weights.
  Latency does not depend on weight values, so these are valid for timing; they are labelled
  ``random_weights=True`` and carry no tokenizer.
- a converted name from the fetch cache (``qwen2.5-coder-1.5b``, ``qwen2.5-coder-0.5b``,
  ``smollm2-135m``; see ``realrun.fetch``): real weights saved as safetensors.
- a local pretrained directory (``config.json`` + weights): ``from_pretrained``.
- a ``.gguf`` file: ``from_pretrained(dir, gguf_file=...)`` (dequantised at load time).

Attention runs with ``sdpa`` by default: it accepts the explicit additive 4D masks and per-row
positions of ``realrun.forward`` on CPU and CUDA (``eager`` works too and is slower).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sim.errors import ConfigError

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
           "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
_ATTN = ("sdpa", "eager")


@dataclass
class LoadedModel:
    """A loaded model and what it is. ``source`` says where the weights came from."""

    name: str
    model: torch.nn.Module
    tokenizer: Any | None
    source: str  # "random:<preset>", "cache:<dir>", "pretrained:<dir>", "gguf:<file>"
    random_weights: bool
    device: torch.device
    dtype: torch.dtype
    seed: int | None = None

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def params_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def label(self) -> str:
        """Human-readable description, flagging random weights."""
        tag = " (random weights)" if self.random_weights else ""
        return f"{self.name}{tag} [{self.dtype}, {self.device}]"


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """A torch dtype from a name like ``float32``/``bf16`` (or a dtype itself)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[str(dtype).lower()]
    except KeyError:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of float32, bfloat16, float16") from None


def resolve_device(device: str | torch.device) -> torch.device:
    """A torch device; asking for CUDA without one is a ConfigError."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return dev


def _finish(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    model.to(device)
    if device.type == "cpu":
        # from_pretrained leaves CPU weights memory-mapped from the safetensors file: pages
        # are read lazily and may be evicted under memory pressure, which makes pass times
        # erratic. Copy them into ordinary memory once (tied weights stay tied: one Parameter).
        with torch.no_grad():
            for tensor in (*model.parameters(), *model.buffers()):
                tensor.data = tensor.data.clone()
    model.eval()
    model.requires_grad_(False)
    return model


def _load_random(preset: str, device: torch.device, dtype: torch.dtype, seed: int,
                 attn: str) -> LoadedModel:
    from transformers import AutoConfig, AutoModelForCausalLM

    from sim.latency.models import get_model

    spec = get_model(preset)
    kwargs = spec.hf_config_dict()
    model_type = kwargs.pop("model_type")
    kwargs.pop("architectures", None)
    kwargs.pop("torch_dtype", None)
    config = AutoConfig.for_model(model_type, **kwargs)
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, attn_implementation=attn, dtype=dtype)
    return LoadedModel(spec.name, _finish(model, device), None, f"random:{spec.name}", True,
                       device, dtype, seed)


def _load_tokenizer(path: Path, gguf_file: str | None = None) -> Any | None:
    from transformers import AutoTokenizer

    try:
        if gguf_file is not None:
            return AutoTokenizer.from_pretrained(path, gguf_file=gguf_file)
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load_pretrained(name: str, directory: Path, source: str, device: torch.device,
                     dtype: torch.dtype, attn: str, gguf_file: str | None = None) -> LoadedModel:
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": attn}
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
    try:
        model = AutoModelForCausalLM.from_pretrained(directory, **kwargs)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot load model from {directory / (gguf_file or '')}: {first}") from None
    model.hf_quantizer = None  # GGUF weights are dequantised at load; the model is plain
    return LoadedModel(name, _finish(model, device), _load_tokenizer(directory, gguf_file), source,
                       False, device, dtype)


def load_model(spec: str, *, device: str | torch.device = "cpu", dtype: str | torch.dtype = "float32",
               seed: int = 0, cache_dir: str | os.PathLike | None = None,
               attn_implementation: str = "sdpa") -> LoadedModel:
    """Load the model named by ``spec`` (see the module docstring) in eval mode."""
    from realrun import fetch

    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype)
    if attn_implementation not in _ATTN:
        raise ConfigError(f"attention implementation must be one of {', '.join(_ATTN)}")
    spec = spec.strip()
    if spec.startswith("random:"):
        return _load_random(spec.split(":", 1)[1], dev, torch_dtype, seed, attn_implementation)
    path = Path(spec).expanduser()
    if spec.lower().endswith(".gguf"):
        if not path.is_file():
            raise ConfigError(f"GGUF file not found: {path}")
        return _load_pretrained(path.stem, path.parent, f"gguf:{path}", dev, torch_dtype,
                                attn_implementation, gguf_file=path.name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path} is not a pretrained model directory (no config.json)")
        return _load_pretrained(path.name, path, f"pretrained:{path}", dev, torch_dtype,
                                attn_implementation)
    if spec in fetch.ARTIFACTS:
        root = fetch.cache_root(cache_dir)
        if not fetch.is_cached(spec, root):
            raise ConfigError(f"model '{spec}' is not in the cache {root}; run "
                              f"'adaspec-realrun fetch-models' first")
        return _load_pretrained(spec, root / spec, f"cache:{root / spec}", dev, torch_dtype,
                                attn_implementation)
    raise ConfigError(f"unknown model '{spec}': expected random:<preset>, a cached name "
                      f"({', '.join(fetch.ARTIFACTS)}), a model directory or a .gguf file")
