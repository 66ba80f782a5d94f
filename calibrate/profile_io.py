"""Assemble and write latency-profile documents (the format is defined, and read, by
``sim.latency.profile``): provenance, hardware and software, model shapes, grid, raw samples,
fitted coefficients, fit errors and measured domains."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from sim import __version__
from sim.errors import ConfigError
from sim.latency.profile import PROFILE_KIND, PROFILE_SCHEMA_VERSION, profile_from_dict

RANDOM_WEIGHTS_NOTE = ("random weights are valid for timing: latency does not depend on "
                       "weight values, only on the shapes")


def cpu_model() -> str:
    """The CPU model name (from /proc/cpuinfo on Linux), with the logical core count."""
    name = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name or platform.processor() or platform.machine()} ({os.cpu_count()} logical cores)"


def hardware_info(device: Any) -> dict[str, Any]:
    """What the passes ran on."""
    import torch

    info: dict[str, Any] = {"cpu": cpu_model(), "device": str(device),
                            "torch_threads": torch.get_num_threads(), "gpu": None,
                            "platform": platform.platform()}
    if getattr(device, "type", str(device)) == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def software_info() -> dict[str, Any]:
    """Versions of the pieces whose speed matters."""
    import numpy
    import scipy
    import torch
    import transformers

    return {"python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": transformers.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "adaspec_sim": __version__,
            "cuda": torch.version.cuda}


def model_info(loaded: Any) -> dict[str, Any]:
    """Shape and origin of a ``realrun.models.LoadedModel``."""
    cfg = loaded.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    return {"spec": loaded.source, "name": loaded.name, "random_weights": bool(loaded.random_weights),
            "seed": loaded.seed, "params_count": int(loaded.params_count),
            "dtype": str(loaded.dtype).replace("torch.", ""),
            "shape": {"architecture": getattr(cfg, "model_type", ""),
                      "layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size,
                      "heads": cfg.num_attention_heads,
                      "kv_heads": getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads,
                      "head_dim": head_dim, "ffn": cfg.intermediate_size,
                      "vocab": cfg.vocab_size,
                      "tie_word_embeddings": bool(getattr(cfg, "tie_word_embeddings", False))}}


def build_profile(*, config: Mapping[str, Any], hardware: Mapping[str, Any],
                  software: Mapping[str, Any], models: Mapping[str, Any],
                  grid: Mapping[str, Any], ops: Mapping[str, Any], seed: int,
                  wall_s: float, draft_overhead_s: float = 0.0) -> dict[str, Any]:
    """The profile document (validated by reading it back with the simulator's reader)."""
    random = any(m.get("random_weights") for m in models.values())
    doc = {
        "schema_version": PROFILE_SCHEMA_VERSION,
        "kind": PROFILE_KIND,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tool": f"adaspec-calibrate {__version__}",
        "config": dict(config),
        "inputs": {name: {"spec": m["spec"], "random_weights": m["random_weights"]}
                   for name, m in models.items()},
        "seed": seed,
        "hardware": dict(hardware),
        "software": dict(software),
        "models": dict(models),
        "dtype": config.get("dtype"),
        "random_weights": random,
        "random_weights_note": RANDOM_WEIGHTS_NOTE if random else None,
        "grid": dict(grid),
        "draft_overhead_s": float(draft_overhead_s),
        "draft_overhead_note": ("per-iteration drafting overhead outside the forward passes is "
                                "not timed by the calibrator (0 unless given)"),
        "calibration_wall_s": wall_s,
        "ops": dict(ops),
    }
    profile_from_dict(doc)  # what we write must be what the simulator reads
    return doc


def write_profile(path: str | os.PathLike, doc: Mapping[str, Any]) -> Path:
    """Write the document atomically (temporary name, then rename)."""
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        raise ConfigError(f"cannot write profile {out}: {exc.strerror or exc}") from None
    return out


def fit_summary(doc: Mapping[str, Any]) -> str:
    """Human-readable fit-error table of a profile document."""
    lines = [f"{'operation':<16}{'samples':>8}{'MAPE held-out':>15}{'MAPE train':>12}"
             f"{'overhead (intercept)':>22}"]
    for op, block in doc["ops"].items():
        fit = block["fit"]
        held = "n/a" if fit["mape_heldout"] is None else f"{fit['mape_heldout']:.1f} %"
        lines.append(f"{op:<16}{fit['n_samples']:>8}{held:>15}{fit['mape_train']:>10.1f} %"
                     f"{block['coefficients']['intercept'] * 1e3:>19.3f} ms")
    return "\n".join(lines)
