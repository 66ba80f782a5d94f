"""What a method may be combined with, each refusal one ConfigError: acceptance presets,
latency sources, policies; and the KV pool a method leaves.

* Acceptance: each method other than the draft model has its own Spec-Bench preset
  (``spec-bench-<method>``, ``sim.drafters.acceptance``). With such a method, the draft
  model's default preset (``spec-bench-vicuna-68m``, which describes vicuna-68m drafting)
  is replaced by the method's own; another method's preset is refused, as is a method's
  preset under the draft model. ``fixed:ALPHA`` and fitted files go with any method.
* Latency: a method's drafter is priced from the target's per-op costs, so a calibrated
  ``--profile profile.json`` (measured passes only) is refused; a Vidur folder works.
* Policies: PLD and lookahead decoding propose tokens without a probability, so the policies
  that decide on draft confidences (``adaspec``, ``adaspec-nv``, ``threshold``) are refused
  with them; ``--policy all`` runs the other policies. Every policy's K is capped at the
  method's tree depth (a request cannot verify deeper than the tree).
"""

from __future__ import annotations

from sim.drafters.presets import DEFAULT_METHOD, FEATURE_HEAD, METHODS, SEQUENTIAL_HEADS, get_method
from sim.errors import ConfigError

DRAFT_MODEL_ACCEPTANCE = "spec-bench-vicuna-68m"
ACCEPTANCE_PREFIX = "spec-bench-"
#: Policies that decide on the drafter's per-token confidences.
CONFIDENCE_POLICIES = ("adaspec", "adaspec-nv", "threshold")


def method_acceptance_name(method: str) -> str:
    """The acceptance preset of a method (the draft model's is vicuna-68m's)."""
    name = get_method(method).name
    return DRAFT_MODEL_ACCEPTANCE if name == DEFAULT_METHOD else ACCEPTANCE_PREFIX + name


def _preset_method(acceptance: str) -> str | None:
    """The method an acceptance preset name belongs to (None: not a method's preset)."""
    key = str(acceptance).strip().lower()
    if key == DRAFT_MODEL_ACCEPTANCE:
        return DEFAULT_METHOD
    if key.startswith(ACCEPTANCE_PREFIX) and key[len(ACCEPTANCE_PREFIX):] in METHODS:
        return key[len(ACCEPTANCE_PREFIX):]
    return None


def resolve_method_config(config) -> None:
    """Validate ``config.method`` against the acceptance model and the latency source, and
    give a method its own acceptance preset in place of the draft model's default (sets
    ``config.acceptance`` on the frozen SimConfig; module doc)."""
    method = get_method(config.method)
    if method.name != config.method:
        object.__setattr__(config, "method", method.name)
    owner = _preset_method(config.acceptance)
    if not method.is_draft_model:
        if owner == DEFAULT_METHOD:
            object.__setattr__(config, "acceptance", method_acceptance_name(method.name))
        elif owner is not None and owner != method.name:
            raise ConfigError(f"acceptance {config.acceptance} describes the {owner} method, not "
                              f"{method.name}; drop --acceptance (the method's own preset is "
                              f"{method_acceptance_name(method.name)}) or give fixed:ALPHA or "
                              "a fitted file")
        from sim.run import is_calibrated_profile
        if is_calibrated_profile(config.profile):
            raise ConfigError(f"--method {method.name} prices its drafter from the target's "
                              "per-op costs, which a calibrated --profile does not have; use "
                              "the presets or a Vidur profile folder")
    elif owner not in (None, DEFAULT_METHOD):
        raise ConfigError(f"acceptance {config.acceptance} describes the {owner} method; use it "
                          f"with --method {owner}")


def policy_fits_method(policy, method: str) -> str | None:
    """Why ``policy`` cannot run with ``method`` (None if it can)."""
    preset = get_method(method)
    kind = str(policy.name).split(":", 1)[0]
    if not preset.has_confidence and kind in CONFIDENCE_POLICIES:
        return (f"policy {policy.name} decides on draft confidences, which method "
                f"{preset.name} does not produce (it proposes tokens without probabilities); "
                "use static, smartspec, disable-by-batch or oracle")
    return None


def check_policy_method(policy, method: str) -> None:
    """ConfigError when ``policy`` makes no sense with ``method``."""
    reason = policy_fits_method(policy, method)
    if reason is not None:
        raise ConfigError(reason)


def method_kv_blocks(config, uses_draft: bool) -> int:
    """KV blocks beside the target and the method's drafter: the drafter's own weights come
    out of the budget, and a drafter with KV of its own (EAGLE's layer, Hydra's prefix layer)
    shares each block with the target's layers."""
    from sim.drafters.costs import head_weight_bytes
    from sim.latency.hardware import get_gpu
    from sim.latency.kv import DEFAULT_ACTIVATION_RESERVE_BYTES, kv_capacity_blocks
    from sim.latency.models import get_model

    method = get_method(config.method)
    target = get_model(config.target)
    extra = head_weight_bytes(method, target) // config.tp if uses_draft else 0
    blocks = kv_capacity_blocks(target, None, get_gpu(config.gpu), config.tp,
                                block_size=config.block_size,
                                gpu_memory_utilization=config.gpu_memory_utilization,
                                activation_reserve_bytes=DEFAULT_ACTIVATION_RESERVE_BYTES + extra)
    kv_layers = 0
    if uses_draft and method.kind == FEATURE_HEAD:
        kv_layers = method.head_layers
    elif uses_draft and method.kind == SEQUENTIAL_HEADS:
        kv_layers = method.prefix_layers
    return blocks * target.layers // (target.layers + kv_layers)
