"""What a run simulated, stated once: the ``simulated`` block of ``summary.json`` and the
header ``adaspec-sim`` prints.

It names the latency source (the roofline of the presets: target, draft, GPU, TP; a Vidur profile
folder with the same; or a calibrated profile: its file hash, the models and the machine it
was measured on), the engine limits as
the scheduler applies them (sequences, batched tokens, context, KV pool and how it was
sized), the acceptance model (and, when the trace has categories it has no profile for, the
requests that take its default profile), the SLOs and the policies' latency view. Every other field of
the config (for example a verification engine or per-pass overheads) is listed under
``other``, so a field added to ``SimConfig`` shows in the header without touching this module.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

#: Config fields the blocks below describe; any other field goes to ``other``.
_DESCRIBED = frozenset({
    "gpu", "target", "draft", "tp", "profile", "ttft_slo_s", "tpot_slo_s", "max_num_seqs",
    "block_size", "max_num_batched_tokens", "chunked_prefill", "gpu_memory_utilization",
    "kv_blocks", "cuda_graphs", "graph_max_size", "acceptance", "estimator", "pass_overheads_s",
    "dense_ops", "method", "engine_path"})
#: Output options (not the model): listed under ``other`` only when changed from these.
_OUTPUT_DEFAULTS = {"iteration_log": True}
#: Per-pass overheads a latency model states (``sim.latency.overhead``), as it applies them.
_OVERHEADS = (("target pass", "target_overhead_s"), ("draft step", "draft_step_overhead_s"),
              ("drafting iteration", "draft_overhead_s"))


def profile_identity(meta: dict | None) -> dict:
    """Models and machine a calibrated profile was measured on (from its metadata)."""
    meta = meta or {}
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    hardware = meta.get("hardware") if isinstance(meta.get("hardware"), dict) else {}
    machine = hardware.get("gpu") or hardware.get("cpu") or "unknown machine"
    device = hardware.get("device")
    return {"target": config.get("target"), "draft": config.get("draft"),
            "machine": f"{machine} ({device})" if device else str(machine)}


def describe_run(config, latency, profile_sha256: str | None = None) -> dict[str, Any]:
    """The ``simulated`` block (JSON-ready) for ``config`` and its built latency model."""
    from sim.run import build_scheduler_config, is_calibrated_profile

    method = getattr(config, "method", "draft-model")
    drafter = config.draft if method == "draft-model" else f"{method} drafter"
    presets = {"target": config.target, "draft": drafter, "gpu": config.gpu,
               "tp": config.tp}
    if is_calibrated_profile(config.profile):
        source = {"source": "profile", "path": config.profile, "sha256": profile_sha256,
                  **profile_identity(getattr(latency, "meta", None))}
    elif config.profile:
        source = {"source": "vidur-profile", "path": config.profile, "sha256": profile_sha256,
                  **presets}
    else:
        source = {"source": "roofline", **presets}
    if source["source"] != "profile":
        sources = latency.dense_sources() if hasattr(latency, "dense_sources") else {}
        source["dense_ops"] = {"setting": config.dense_ops, **sources}
    overheads = {label: getattr(latency, attr) for label, attr in _OVERHEADS
                 if isinstance(getattr(latency, attr, None), (int, float))}
    if overheads:
        source["pass_overheads_s"] = overheads
    with_draft = build_scheduler_config(config, uses_draft=True)
    target_only = build_scheduler_config(config, uses_draft=False)
    if config.kv_blocks is not None:
        sized = "--kv-blocks"
    else:
        sized = (f"{config.target} + {drafter} weights and KV in {config.tp}x {config.gpu} "
                 f"memory at {config.gpu_memory_utilization:g} utilisation")
    limits = {
        "max_num_seqs": config.max_num_seqs,
        "max_num_batched_tokens": config.max_num_batched_tokens,
        "chunked_prefill": config.chunked_prefill,
        "max_model_len": with_draft.max_model_len,
        "block_size": config.block_size,
        "kv_blocks": with_draft.kv_blocks,
        "kv_blocks_without_draft": target_only.kv_blocks,
        "kv_blocks_sized_from": sized,
        "cuda_graphs": (f"captured up to batch {config.graph_max_size}" if config.cuda_graphs
                        else "off (exact sizes)"),
    }
    other = {f.name: getattr(config, f.name) for f in fields(config)
             if f.name not in _DESCRIBED
             and _OUTPUT_DEFAULTS.get(f.name, object()) != getattr(config, f.name)}
    from sim.drafters.presets import get_method
    return {"latency": source, "engine": other.pop("engine", None), "limits": limits,
            "method": {"name": method, "description": get_method(method).describe()},
            "acceptance": config.acceptance,
            "slo": {"ttft_s": config.ttft_slo_s, "tpot_s": config.tpot_slo_s},
            "estimator": config.estimator,
            "estimator_view": estimator_view(config.estimator),
            "engine_path": getattr(config, "engine_path", "auto"), "other": other}


def describe_category_fallback(acceptance, workload) -> dict[str, Any] | None:
    """The workload's requests whose category ``acceptance`` has no profile for, which it
    gives its default profile (``sim.acceptance.presets.unknown_categories``): the
    ``acceptance_category_fallback`` entry of the ``simulated`` block, present only when
    there are such requests (None: every category is known, or the model has one profile)."""
    from sim.acceptance.model import DEFAULT_CATEGORY
    from sim.acceptance.presets import unknown_categories

    unknown = unknown_categories(acceptance, workload.category_counts())
    if not unknown:
        return None
    return {"categories": unknown, "requests": sum(unknown.values()),
            "profile": f"default (category {DEFAULT_CATEGORY!r})",
            "mean_level": acceptance.category_profile(DEFAULT_CATEGORY).mean}


def record_category_fallback(described: dict, acceptance, workload) -> str | None:
    """Record in a run's description ``described`` (the ``simulated`` block of adaspec-sim
    and of a sweep point, the ``config`` of an adaspec-realrun with controlled acceptance;
    it names the acceptance model under ``acceptance``) the workload's requests that take
    ``acceptance``'s default profile (``describe_category_fallback``), and return the line
    that says so; None, and nothing recorded, when there are none."""
    fallback = describe_category_fallback(acceptance, workload)
    if not fallback:
        return None
    described["acceptance_category_fallback"] = fallback
    return category_fallback_line(described)


def category_fallback_line(described: dict) -> str | None:
    """One line on the requests that fell back to the acceptance model's default profile
    (None: none did): the header's and the warning's text."""
    fallback = described.get("acceptance_category_fallback")
    if not fallback:
        return None
    names = ", ".join(f"{name!r} ({n})" for name, n in fallback["categories"].items())
    return (f"acceptance {described['acceptance']} has no profile for the trace's categories "
            f"{names}: those {fallback['requests']} requests take its {fallback['profile']} "
            f"profile (mean level {fallback['mean_level']:.3g})")


def estimator_view(estimator: str) -> str | None:
    """What the table estimator does where its table ends (None: the exact estimator)."""
    if estimator != "table":
        return None
    from sim.latency.estimator import describe_token_tail
    return describe_token_tail()


def header_lines(described: dict) -> list[str]:
    """The run header: one line each for latency, engine limits, KV pool, acceptance/SLOs
    and any other settings."""
    lat = described["latency"]
    pair = f"{lat.get('target')} + {lat.get('draft')}"
    digest = (lat.get("sha256") or "")[:12]
    if lat["source"] == "profile":
        latency = (f"latency: profile {lat['path']} (sha256 {digest}...; measured for {pair} "
                   f"on {lat.get('machine')})")
    elif lat["source"] == "vidur-profile":
        latency = (f"latency: Vidur profile {lat['path']} (sha256 {digest}...) for {pair} on "
                   f"{lat['tp']}x {lat['gpu']}")
    else:
        latency = f"latency: roofline, {pair} on {lat['tp']}x {lat['gpu']}"
    dense = lat.get("dense_ops")
    if dense:
        latency += f"; dense ops {dense['setting']}: " + ", ".join(
            f"{role} {dense[role]}" for role in ("target", "draft") if role in dense)
    if lat.get("pass_overheads_s"):
        latency += "; overhead per " + ", ".join(
            f"{label} {value * 1e3:g} ms" for label, value in lat["pass_overheads_s"].items())
    lim = described["limits"]
    context = (f"context {lim['max_model_len']} tokens" if lim["max_model_len"]
               else "context unlimited (target not a preset)")
    engine = f"engine {described['engine']}; " if described.get("engine") is not None else ""
    limits = (f"{engine}limits: {lim['max_num_seqs']} sequences, "
              f"{lim['max_num_batched_tokens']} batched tokens (chunked prefill "
              f"{'on' if lim['chunked_prefill'] else 'off'}), {context}, CUDA graphs "
              f"{lim['cuda_graphs']}")
    kv = (f"KV pool: {lim['kv_blocks']} blocks x {lim['block_size']} tokens "
          f"({lim['kv_blocks_without_draft']} without a draft), sized from "
          f"{lim['kv_blocks_sized_from']}")
    slo = described["slo"]
    rest = (f"acceptance {described['acceptance']}; SLO TTFT {slo['ttft_s'] * 1e3:g} ms, "
            f"TPOT {slo['tpot_s'] * 1e3:g} ms; policies' latency view: {described['estimator']}")
    if described.get("estimator_view"):
        rest += f" ({described['estimator_view']})"
    if described.get("engine_path") == "protocol":
        rest += "; iteration path: protocol (forced)"
    lines = [latency, limits, kv, rest]
    fallback = category_fallback_line(described)
    if fallback:
        lines.append(fallback)
    method = described.get("method") or {}
    if method.get("name", "draft-model") != "draft-model":  # the default adds no line
        lines.insert(1, f"method: {method['description']}; a policy's K is a tree depth, "
                        "capped at the method's")
    if described["other"]:
        lines.append("other settings: " + ", ".join(f"{k}={v}" for k, v in
                                                    described["other"].items()))
    return lines
