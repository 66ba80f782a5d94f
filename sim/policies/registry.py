"""Policy specs (strings) -> ``Policy`` objects.

Grammar (case-insensitive, spaces ignored)::

    spec  := NAME [ ":" arg { "," arg } ]
    arg   := VALUE              positional, in the policy's parameter order
           | KEY "=" VALUE      keyword (any parameter, by name)
           | FLAG               a named bundle of keyword defaults

Positional arguments come first; each parameter is given at most once; flags set defaults that
explicit keywords override. Every policy's ``name`` is its canonical spec (defaults left out),
and ``make_policy(policy.name)`` rebuilds the same configuration.

| policy               | parameters (positional first; default)                              |
|----------------------|---------------------------------------------------------------------|
| nospec               | —                                                                   |
| static:K             | k (required)                                                        |
| threshold:T,K        | t (0.6), k (8)                                                      |
| disable-by-batch:K,B | k (required), b (required): static K while batch < B, else 0        |
| smartspec:K          | k (8); alpha0= (0.6), rate=cumulative|ema (cumulative), weight=     |
|                      | (0.1, rate=ema only), plain_bias= (1.0), recover=, recover_after=   |
|                      | flag ``artifact`` = rate=cumulative,alpha0=0.7,recover=reset,        |
|                      | plain_bias=1.1 (SmartSpec as the AdaSpec artifact runs it)          |
| adaspec:K            | k (8); slo=off|strict|tokens (off), trim=token|request|off          |
|                      | (token), cbar=cumulative|ema (cumulative), cbar0= (0.6),            |
|                      | cbar_weight= (0.1, cbar=ema only), lost=goodput|plain (goodput;     |
|                      | slo=strict|tokens only), recover=, recover_after=; flag ``artifact``|
|                      | = slo=off,trim=request,cbar=cumulative,recover=none (the release)   |
| adaspec-nv:K         | as adaspec without trim=; flag ``artifact`` = slo=off,              |
|                      | cbar=cumulative,recover=none                                        |
| oracle:K             | k (8); sim-only                                                     |
| vllm-v1:K            | k (3: num_speculative_tokens); sched=LO-HI:K/... (1-64:3/65-128:1/  |
|                      | 129-512:0), zero=sync|catchup|free (sync), tax= (0)                 |
| trtllm:K             | k (4: max_draft_len); sched=BS:LEN/...|none (4:4/8:2/32:1), cap=    |
|                      | (max_concurrency; excludes sched), window=, threshold= (together:   |
|                      | the acceptance-rate gate), floor= (0), zero= (catchup), tax= (0)    |
| sglang:K             | k (3: launch steps); slots=BS:S+S/... (1:1+3+5+7/8:0+1+3/32:0+1/    |
|                      | 64:0), ema= (0.2), interval= (5), warmup= (10), pad=graph|none,     |
|                      | zero= (sync), tax= (0)                                              |

The last three are the production engines' own adaptive rules (``sim.policies.vllm_dynamic``,
``sim.policies.trtllm``, ``sim.policies.sglang_adaptive``; sources in their docstrings);
``zero=`` (what the drafter does at k = 0) and ``tax=`` are ``sim.policies.engine_rules``.
They are not in ``--policy all``.

``recover=none|reset|probe|decay`` (default decay) and ``recover_after=N`` (default 64): how
an adaptive policy's estimate returns from plain decoding (``sim.policies.recovery``).

Examples: ``static:5``, ``threshold:0.6,8``, ``disable-by-batch:5,32``, ``adaspec``,
``adaspec:8,artifact``, ``adaspec:K=8,slo=off,trim=request``, ``adaspec:6,slo=tokens``,
``smartspec:8,artifact``, ``smartspec:8,recover=probe,recover_after=32``, ``vllm-v1``,
``vllm-v1:3,sched=1-16:3/17-64:2/65-512:0,tax=0.19``, ``trtllm:4,window=8,threshold=0.5``,
``trtllm:4,cap=32``, ``sglang:3,zero=catchup``.
A malformed spec, unknown name, key or flag, or out-of-range value is one ``ConfigError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from sim.errors import ConfigError
from sim.policies.adaspec import AdaSpecPolicy
from sim.policies.adaspec_nv import AdaSpecNoVerifierPolicy
from sim.policies.base import Policy
from sim.policies.disable_by_batch import DisableByBatchPolicy
from sim.policies.nospec import NoSpecPolicy
from sim.policies.oracle import OraclePolicy
from sim.policies.smartspec import ARTIFACT as SMARTSPEC_ARTIFACT
from sim.policies.smartspec import SmartSpecPolicy
from sim.policies.sglang_adaptive import SglangAdaptivePolicy
from sim.policies.static import StaticPolicy
from sim.policies.threshold import ThresholdPolicy
from sim.policies.trtllm import TrtllmPolicy
from sim.policies.vllm_dynamic import VllmDynamicPolicy

_REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One spec parameter: its key, value type, constructor argument and default."""

    key: str
    kind: type
    arg: str
    default: Any = _REQUIRED
    positional: bool = True


@dataclass(frozen=True)
class PolicyKind:
    """A registered policy: how to parse its spec and build it."""

    name: str
    factory: Callable[..., Policy]
    params: tuple[Param, ...] = ()
    flags: dict[str, dict[str, str]] = field(default_factory=dict)
    summary: str = ""


_RECOVER_PARAMS = (Param("recover", str, "recover", "decay", False),
                   Param("recover_after", int, "recover_after", 64, False))

# the engine rules' k = 0 drafter behaviour and reported per-step tax (sim.policies.engine_rules)
def _engine_params(zero: str) -> tuple[Param, ...]:
    return (Param("zero", str, "zero", zero, False), Param("tax", float, "tax", 0.0, False))

_KINDS: dict[str, PolicyKind] = {k.name: k for k in (
    PolicyKind("nospec", NoSpecPolicy, (), summary="no speculation"),
    PolicyKind("static", StaticPolicy, (Param("k", int, "k"),),
               summary="draft K tokens per request every iteration"),
    PolicyKind("threshold", ThresholdPolicy,
               (Param("t", float, "threshold", 0.6), Param("k", int, "k", 8)),
               summary="draft up to K; stop after a step with batch-mean confidence < T"),
    PolicyKind("disable-by-batch", DisableByBatchPolicy,
               (Param("k", int, "k"), Param("b", int, "batch_threshold")),
               summary="static K while the decode batch is smaller than B, else no speculation"),
    PolicyKind("smartspec", SmartSpecPolicy,
               (Param("k", int, "k", 8), Param("alpha0", float, "alpha0", 0.6, False),
                Param("weight", float, "weight", 0.1, False),
                Param("rate", str, "rate", "cumulative", False),
                Param("plain_bias", float, "plain_bias", 1.0, False),
                *_RECOVER_PARAMS),
               flags={"artifact": SMARTSPEC_ARTIFACT},
               summary="uniform k in 0..K maximising i.i.d.-alpha goodput"),
    PolicyKind("adaspec", AdaSpecPolicy,
               (Param("k", int, "k", 8), Param("slo", str, "slo", "off", False),
                Param("trim", str, "trim", "token", False),
                Param("cbar", str, "cbar", "cumulative", False),
                Param("cbar0", float, "cbar0", 0.6, False),
                Param("cbar_weight", float, "cbar_weight", 0.1, False),
                Param("lost", str, "lost", "goodput", False),
                *_RECOVER_PARAMS),
               flags={"artifact": AdaSpecPolicy.artifact_options},
               summary="AdaSpec: adaptive drafter + confidence-prior verifier (+ SLO check with "
                       "slo=strict)"),
    PolicyKind("adaspec-nv", AdaSpecNoVerifierPolicy,
               (Param("k", int, "k", 8), Param("slo", str, "slo", "off", False),
                Param("cbar", str, "cbar", "cumulative", False),
                Param("cbar0", float, "cbar0", 0.6, False),
                Param("cbar_weight", float, "cbar_weight", 0.1, False),
                Param("lost", str, "lost", "goodput", False),
                *_RECOVER_PARAMS),
               flags={"artifact": AdaSpecNoVerifierPolicy.artifact_options},
               summary="AdaSpec without verifier trimming (ablation)"),
    PolicyKind("oracle", OraclePolicy, (Param("k", int, "k", 8),),
               summary="sim-only upper bound using the true acceptance outcomes"),
    PolicyKind("vllm-v1", VllmDynamicPolicy,
               (Param("k", int, "k", 3), Param("sched", str, "sched", "1-64:3/65-128:1/129-512:0",
                                                False),
                *_engine_params("sync")),
               summary="vLLM V1 dynamic speculative decoding: K from a batch-size schedule"),
    PolicyKind("trtllm", TrtllmPolicy,
               (Param("k", int, "k", 4), Param("sched", str, "sched", "4:4/8:2/32:1", False),
                Param("cap", int, "cap", None, False), Param("window", int, "window", None, False),
                Param("threshold", float, "threshold", None, False),
                Param("floor", int, "floor", 0, False), *_engine_params("catchup")),
               summary="TensorRT-LLM: draft-length schedule or concurrency cap; an "
                       "acceptance-rate gate that turns speculation off for good"),
    PolicyKind("sglang", SglangAdaptivePolicy,
               (Param("k", int, "k", 3),
                Param("slots", str, "slots", "1:1+3+5+7/8:0+1+3/32:0+1/64:0", False),
                Param("ema", float, "ema", 0.2, False), Param("interval", int, "interval", 5, False),
                Param("warmup", int, "warmup", 10, False), Param("pad", str, "pad", "graph", False),
                *_engine_params("sync")),
               summary="SGLang adaptive steps: per-batch-size slots, each an EMA of accepted "
                       "tokens with hysteresis"),
)}

#: Registered policy names.
POLICY_NAMES: tuple[str, ...] = tuple(_KINDS)

#: The default set ``--policy all`` runs.
DEFAULT_POLICY_SPECS: tuple[str, ...] = (
    "nospec", "static:1", "static:3", "static:5", "threshold:0.6,8", "disable-by-batch:5,32",
    "smartspec:8", "adaspec:8", "adaspec-nv:8", "oracle:8",
)


#: The production engines' adaptive rules at their defaults (not in ``--policy all``).
ENGINE_RULE_SPECS: tuple[str, ...] = ("vllm-v1", "trtllm", "sglang")


def all_policy_specs() -> tuple[str, ...]:
    """The policy specs of ``--policy all``."""
    return DEFAULT_POLICY_SPECS


def _convert(param: Param, raw: str, spec: str) -> Any:
    try:
        if param.kind is int:
            if not raw.lstrip("+-").isdigit():
                raise ValueError
            return int(raw)
        if param.kind is float:
            return float(raw)
    except ValueError:
        kind = "an integer" if param.kind is int else "a number"
        raise ConfigError(f"policy {spec!r}: {param.key} must be {kind}, got {raw!r}") from None
    return raw


def parse_policy_spec(spec: str) -> tuple[PolicyKind, dict[str, Any]]:
    """Split and type-check a spec; returns the policy kind and its constructor kwargs."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("empty policy spec")
    text = "".join(spec.split()).lower()
    name, colon, rest = text.partition(":")
    kind = _KINDS.get(name)
    if kind is None:
        raise ConfigError(f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}")
    args = rest.split(",") if colon else []
    if colon and any(a == "" for a in args):
        raise ConfigError(f"policy {spec!r}: empty argument")
    by_key = {p.key: p for p in kind.params}
    positional = [p for p in kind.params if p.positional]
    given: dict[str, str] = {}
    flag_values: dict[str, str] = {}
    seen_keyword = False
    n_pos = 0
    for arg in args:
        key, eq, value = arg.partition("=")
        if eq:
            if key not in by_key:
                raise ConfigError(f"policy {spec!r}: unknown parameter {key!r}; "
                                  f"{kind.name} takes {', '.join(by_key) or 'none'}")
            if key in given:
                raise ConfigError(f"policy {spec!r}: {key} given twice")
            if value == "":
                raise ConfigError(f"policy {spec!r}: {key} has no value")
            given[key] = value
            seen_keyword = True
        elif arg in kind.flags:
            flag_values.update(kind.flags[arg])
            seen_keyword = True
        else:
            if seen_keyword:
                raise ConfigError(f"policy {spec!r}: positional value {arg!r} after a keyword or flag")
            if n_pos >= len(positional):
                raise ConfigError(f"policy {spec!r}: too many values; {kind.name} takes "
                                  f"{len(positional)} positional "
                                  f"({', '.join(p.key for p in positional) or 'none'})")
            key = positional[n_pos].key
            if key in given:
                raise ConfigError(f"policy {spec!r}: {key} given twice")
            given[key] = arg
            n_pos += 1
    kwargs: dict[str, Any] = {}
    for param in kind.params:
        if param.key in given:
            kwargs[param.arg] = _convert(param, given[param.key], spec)
        elif param.key in flag_values:
            kwargs[param.arg] = _convert(param, flag_values[param.key], spec)
        elif param.default is _REQUIRED:
            raise ConfigError(f"policy {spec!r}: missing {param.key} "
                              f"(e.g. {_example(kind)})")
    return kind, kwargs


def _example(kind: PolicyKind) -> str:
    return {"static": "static:5", "disable-by-batch": "disable-by-batch:5,32"}.get(kind.name, kind.name)


def make_policy(spec: str) -> Policy:
    """A fresh policy instance for ``spec`` (see the module docstring for the grammar)."""
    kind, kwargs = parse_policy_spec(spec)
    try:
        return kind.factory(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"policy {spec!r}: {exc}") from None


def policy_help() -> str:
    """One line per policy: name, parameters and what it does (for command-line help)."""
    lines = []
    for kind in _KINDS.values():
        params = ",".join(p.key if p.positional else f"{p.key}=" for p in kind.params)
        flags = "".join(f",{f}" for f in kind.flags)
        lines.append(f"{kind.name}{':' + params + flags if params else ''}  — {kind.summary}")
    return "\n".join(lines)
