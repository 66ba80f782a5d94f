"""Calibrated latency profiles: the file format and the ``LatencyModel`` built from it.

``adaspec-calibrate latency`` times realrun's own forward passes and fits, per operation, a
non-negative linear model over *physical* features of the pass (see ``OP_FEATURES``)::

    t = c_intercept + c_tokens * padded_tokens + c_batch * batch + c_context * context_tokens
        (+ c_pairs * attended query-key pairs for a verification pass)
        (+ c_sq_tokens * sum of squared padded prompt lengths for a prefill)

The intercept is the per-pass framework overhead. Features of a prefill are computed on the
pass realrun executes: every row right-padded to the longest prompt of the batch.

A chunked-prefill chunk of ``c`` new tokens over ``kv`` already cached ones (realrun does
not time such passes) adds ``2 * c_sq_tokens * c * kv``: the fitted quadratic term read as
the cost of an attended query-key pair (a prompt of n tokens attends ~n**2 / 2 pairs), so a
prompt prefilled in chunks costs about what it costs in one pass.
``load_profile(path)`` returns a ``ProfileLatency`` (plain arithmetic; ``sim`` never
imports torch). Its pricing is written once as ``@jitable`` rules (``profile_verify_s``,
``profile_draft_step_s``, ``profile_prefill_s``, the domain check ``outside_domain``) that
its methods and the compiled loop (``sim.compiled.tables``) both call. A query outside the
measured domain (batch, tokens per sequence, context per
sequence, prompt length) is still answered by the fitted line, with one warning per operation
(``sim.latency.domain``: a table estimator's grid is recorded apart, not warned as the run's).

Profile file (``schema_version`` 1, ``kind`` "latency-profile"), top-level keys::

    schema_version, kind, created, tool, config {target, draft, device, dtype, k_max, grid,
    repeats, warmup, seed}, hardware {cpu, gpu, device, threads}, software {python, torch,
    transformers, numpy, scipy}, models {target, draft: {spec, shape, random_weights,
    params_count}}, random_weights_note, grid, ops {OP: {features, coefficients {name: s},
    fit {mape_heldout, mape_train, max_ape, n_train, n_heldout, n_samples}, domain {VAR:
    [lo, hi]}, samples [{batch, tokens_per_seq, context_per_seq, prompt_len, seconds_median,
    seconds_all}]}}, draft_overhead_s, inputs, seed

Any problem reading a file (missing, truncated, not JSON, other schema version or kind,
missing operation, negative or non-finite coefficients) is one ``InputError`` line.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from sim.compiled.jit import jitable
from sim.errors import ConfigError, InputError
from sim.latency.domain import OutsideDomainWarning, current_probe
from sim.jsonfile import read_json_file

PROFILE_SCHEMA_VERSION = 1
PROFILE_KIND = "latency-profile"

PREFILL_FEATURES = ("intercept", "padded_tokens", "batch", "padded_sq_tokens")
VERIFY_FEATURES = ("intercept", "tokens", "batch", "context_tokens", "attended_pairs")
DRAFT_STEP_FEATURES = ("intercept", "batch", "context_tokens")

#: Operation -> names of its features (the columns of its design matrix).
OP_FEATURES: dict[str, tuple[str, ...]] = {
    "target_prefill": PREFILL_FEATURES,
    "draft_prefill": PREFILL_FEATURES,
    "target_verify": VERIFY_FEATURES,
    "draft_step": DRAFT_STEP_FEATURES,
}
#: Domain variables checked per operation (per-sequence quantities).
OP_DOMAIN_VARS: dict[str, tuple[str, ...]] = {
    "target_prefill": ("batch", "prompt_len"),
    "draft_prefill": ("batch", "prompt_len"),
    "target_verify": ("batch", "tokens_per_seq", "context_per_seq"),
    "draft_step": ("batch", "context_per_seq"),
}


#: Slack of the domain check (seconds-free: counts and tokens per sequence).
DOMAIN_SLACK = 1e-9


# ---- the pricing rules (jitable: ``ProfileLatency`` and the compiled loop call these) ------
@jitable
def attended_pairs(batch: int, tokens: int, context_tokens: int) -> float:
    """Query-key pairs of a verification pass of ``tokens`` positions over ``batch`` rows
    (``batch`` >= 1): each attends to its cached context and to the new positions before it."""
    per_seq = tokens / batch
    return tokens * (context_tokens / batch + (per_seq + 1.0) * 0.5)


@jitable
def profile_verify_s(c, batch_size: int, tokens: int, context_tokens: int) -> float:
    """``target_verify_s`` of coefficients ``c`` (``VERIFY_FEATURES`` order)."""
    if tokens <= 0:
        return 0.0
    batch = batch_size if batch_size > 0 else 1
    pairs = attended_pairs(batch, tokens, context_tokens)
    return c[0] + c[1] * tokens + c[2] * batch_size + c[3] * context_tokens + c[4] * pairs


@jitable
def profile_draft_step_s(c, batch_size: int, context_tokens: int) -> float:
    """``draft_step_s`` of coefficients ``c`` (``DRAFT_STEP_FEATURES`` order)."""
    if batch_size <= 0:
        return 0.0
    return c[0] + c[1] * batch_size + c[2] * context_tokens


@jitable
def prefill_shape(news, n: int) -> tuple:
    """(rows, longest) of a prefill over the first ``n`` chunks (``news``: their new tokens):
    the chunks with new tokens, each right-padded to the longest."""
    batch = 0
    longest = 0
    for i in range(n):
        if news[i] > 0:
            batch += 1
            if news[i] > longest:
                longest = news[i]
    return batch, longest


@jitable
def prefill_feature_values(batch: int, longest: int) -> tuple:
    """``PREFILL_FEATURES`` of a pass of ``batch`` rows padded to ``longest`` tokens."""
    padded = batch * longest
    return (1.0, float(padded), float(batch), float(padded * longest))


@jitable
def fitted_line(c, features) -> float:
    """``sum(c_i * f_i)`` from 0, left to right (``OpFit.predict``)."""
    total = 0.0
    for i in range(len(features)):
        total += c[i] * features[i]
    return total


@jitable
def profile_prefill_s(c, news, cached, n: int) -> float:
    """A prefill's seconds (coefficients ``c``, ``PREFILL_FEATURES`` order) over ``n``
    chunks of ``news[i]`` new tokens after ``cached[i]`` cached ones: the fitted line on the
    padded pass, plus ``2 c_sq * sum(new * cached)``, the chunks' attention to their cached
    prefix."""
    prefix_pairs = 0
    for i in range(n):
        prefix_pairs += news[i] * cached[i]
    batch, longest = prefill_shape(news, n)
    if batch == 0:
        return 0.0
    return (fitted_line(c, prefill_feature_values(batch, longest))
            + (2.0 * c[3]) * prefix_pairs)


@jitable
def outside_domain(value: float, lo: float, hi: float) -> bool:
    """Whether ``value`` lies outside the measured ``lo..hi`` (with ``DOMAIN_SLACK``)."""
    return value < lo - DOMAIN_SLACK or value > hi + DOMAIN_SLACK


# ---- features (shared with calibrate.fit: one definition for fitting and prediction) -------
def prefill_features(prompt_tokens: Sequence[int]) -> tuple[float, ...]:
    """Features of one prefill pass over these prompt lengths (rows padded to the longest)."""
    lengths = [int(n) for n in prompt_tokens]
    return prefill_feature_values(*prefill_shape(lengths, len(lengths)))


def verify_features(batch_size: int, tokens: int, context_tokens: int) -> tuple[float, ...]:
    """Features of one verification pass: ``tokens`` positions over ``batch_size`` rows, each
    attending to its cached context and to the new positions before it."""
    pairs = attended_pairs(max(int(batch_size), 1), tokens, context_tokens)
    return (1.0, float(tokens), float(batch_size), float(context_tokens), float(pairs))


def draft_step_features(batch_size: int, context_tokens: int) -> tuple[float, ...]:
    """Features of one draft step (one token per row)."""
    return (1.0, float(batch_size), float(context_tokens))


def sample_features(op: str, sample: Mapping[str, Any]) -> tuple[float, ...]:
    """Features of one timing sample (a grid point where every row has the same shape)."""
    batch = int(sample["batch"])
    if op in ("target_prefill", "draft_prefill"):
        return prefill_features([int(sample["prompt_len"])] * batch)
    context = int(sample["context_per_seq"]) * batch
    if op == "target_verify":
        return verify_features(batch, int(sample["tokens_per_seq"]) * batch, context)
    if op == "draft_step":
        return draft_step_features(batch, context)
    raise ConfigError(f"unknown latency operation {op!r}")


# ---- the model --------------------------------------------------------------------------
@dataclass(frozen=True)
class OpFit:
    """One operation's fitted coefficients (seconds per feature unit) and measured domain."""

    op: str
    coefficients: tuple[float, ...]
    domain: Mapping[str, tuple[float, float]]
    mape_heldout: float | None = None

    def predict(self, features: Sequence[float]) -> float:
        return float(fitted_line(self.coefficients, features))


class ProfileLatency:
    """``LatencyModel`` from a calibrated profile (see the module docstring)."""

    def __init__(self, ops: Mapping[str, OpFit], draft_overhead_s: float = 0.0,
                 name: str = "profile", meta: Mapping[str, Any] | None = None) -> None:
        missing = [op for op in OP_FEATURES if op not in ops]
        if missing:
            raise ConfigError(f"latency profile lacks operation(s) {', '.join(missing)}")
        self.ops = dict(ops)
        self.name = name
        self.meta = dict(meta or {})
        self._draft_overhead_s = float(draft_overhead_s)
        self._warned: set[str] = set()
        self._t_verify = self.ops["target_verify"].coefficients
        self._d_step = self.ops["draft_step"].coefficients

    def __repr__(self) -> str:
        return f"ProfileLatency({self.name!r})"

    @property
    def warned_ops(self) -> frozenset[str]:
        """Operations that were queried outside their measured domain."""
        return frozenset(self._warned)

    def check_domain(self, op: str, **values: float) -> None:
        """Warn (once per operation, ``OutsideDomainWarning``) when a query lies outside the
        measured domain; inside ``sim.latency.domain.tabulating()`` (a table estimator's
        grid) record the query in its probe instead (no warning, nothing used up)."""
        probe = current_probe()
        if probe is None and op in self._warned:
            return
        domain = self.ops[op].domain
        outside = []
        for var, value in values.items():
            lo_hi = domain.get(var)
            if lo_hi is not None and outside_domain(value, lo_hi[0], lo_hi[1]):
                outside.append((var, value, lo_hi[0], lo_hi[1]))
        if probe is not None:
            probe.record(self, op, outside)
        elif outside:
            var, value, lo, hi = outside[0]
            self._warned.add(op)
            warnings.warn(OutsideDomainWarning(
                f"latency profile {self.name}: {op} queried outside its measured domain "
                f"({var}={value:g}, measured {lo:g}..{hi:g}); extrapolating the fitted line "
                "(warned once per operation)"), stacklevel=3)

    # ---- LatencyModel ---------------------------------------------------------------------
    @property
    def draft_overhead_s(self) -> float:
        return self._draft_overhead_s

    def _prefill(self, op: str, prompt_tokens: Sequence[int],
                 cached_tokens: Sequence[int] | None) -> float:
        lengths = [int(n) for n in prompt_tokens]
        cached = [0] * len(lengths) if cached_tokens is None else [int(c) for c in cached_tokens]
        if len(cached) != len(lengths):
            raise ValueError(f"cached_tokens has {len(cached)} entries for {len(lengths)} chunks")
        if any(n < 0 for n in lengths) or any(c < 0 for c in cached):
            raise ValueError("prompt and cached lengths must be >= 0")
        batch, longest = prefill_shape(lengths, len(lengths))
        if batch == 0:
            return 0.0
        self.check_domain(op, batch=batch, prompt_len=longest)
        return profile_prefill_s(self.ops[op].coefficients, lengths, cached, len(lengths))

    def target_prefill_s(self, prompt_tokens: Sequence[int],
                         cached_tokens: Sequence[int] | None = None) -> float:
        return self._prefill("target_prefill", prompt_tokens, cached_tokens)

    def draft_prefill_s(self, prompt_tokens: Sequence[int],
                        cached_tokens: Sequence[int] | None = None) -> float:
        return self._prefill("draft_prefill", prompt_tokens, cached_tokens)

    def target_verify_s(self, batch_size: int, tokens: int, context_tokens: int) -> float:
        if tokens <= 0:
            return 0.0
        batch = batch_size if batch_size > 0 else 1
        if "target_verify" not in self._warned or current_probe() is not None:
            self.check_domain("target_verify", batch=batch, tokens_per_seq=tokens / batch,
                        context_per_seq=context_tokens / batch)
        return profile_verify_s(self._t_verify, batch_size, tokens, context_tokens)

    def draft_step_s(self, batch_size: int, context_tokens: int) -> float:
        if batch_size <= 0:
            return 0.0
        if "draft_step" not in self._warned or current_probe() is not None:
            self.check_domain("draft_step", batch=batch_size, context_per_seq=context_tokens / batch_size)
        return profile_draft_step_s(self._d_step, batch_size, context_tokens)


# ---- reading ----------------------------------------------------------------------------
def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _op_from_dict(op: str, data: Any) -> OpFit:
    if not isinstance(data, dict):
        raise ConfigError(f"ops.{op} must be an object")
    coefs = data.get("coefficients")
    if not isinstance(coefs, dict):
        raise ConfigError(f"ops.{op}.coefficients must be an object")
    values = []
    for name in OP_FEATURES[op]:
        if name not in coefs:
            raise ConfigError(f"ops.{op}.coefficients lacks {name!r}")
        value = _finite(coefs[name], f"ops.{op}.coefficients.{name}")
        if value < 0:
            raise ConfigError(f"ops.{op}.coefficients.{name} is negative ({value})")
        values.append(value)
    domain_in = data.get("domain", {})
    if not isinstance(domain_in, dict):
        raise ConfigError(f"ops.{op}.domain must be an object")
    domain = {}
    for var in OP_DOMAIN_VARS[op]:
        if var in domain_in:
            pair = domain_in[var]
            if not isinstance(pair, list) or len(pair) != 2:
                raise ConfigError(f"ops.{op}.domain.{var} must be [low, high]")
            domain[var] = (_finite(pair[0], f"ops.{op}.domain.{var}"),
                           _finite(pair[1], f"ops.{op}.domain.{var}"))
            if domain[var][0] > domain[var][1]:
                raise ConfigError(f"ops.{op}.domain.{var} must be [low, high] with low <= "
                                  f"high, got {pair}")
    fit = data.get("fit") or {}
    mape = fit.get("mape_heldout") if isinstance(fit, dict) else None
    return OpFit(op, tuple(values), domain,
                 None if mape is None else _finite(mape, f"ops.{op}.fit.mape_heldout"))


def profile_from_dict(data: Any, *, path: str | None = None, name: str = "profile"
                      ) -> ProfileLatency:
    """Validate a decoded profile document; ``InputError`` (naming ``path``) if it is bad."""
    try:
        if not isinstance(data, dict):
            raise ConfigError("a latency profile must hold a JSON object")
        version = data.get("schema_version")
        if version is None:
            raise ConfigError("missing 'schema_version'")
        if isinstance(version, bool) or version != PROFILE_SCHEMA_VERSION:
            raise ConfigError(f"unsupported schema_version {version!r} "
                              f"(this tool reads {PROFILE_SCHEMA_VERSION})")
        if data.get("kind") != PROFILE_KIND:
            raise ConfigError(f"'kind' must be {PROFILE_KIND!r}, got {data.get('kind')!r}")
        ops_in = data.get("ops")
        if not isinstance(ops_in, dict):
            raise ConfigError("missing 'ops'")
        ops = {}
        for op in OP_FEATURES:
            if op not in ops_in:
                raise ConfigError(f"missing operation ops.{op}")
            ops[op] = _op_from_dict(op, ops_in[op])
        overhead = _finite(data.get("draft_overhead_s", 0.0), "draft_overhead_s")
        if overhead < 0:
            raise ConfigError("draft_overhead_s must be >= 0")
        meta = {k: data.get(k) for k in ("hardware", "software", "models", "config", "created")}
        return ProfileLatency(ops, overhead, name=name, meta=meta)
    except ConfigError as exc:
        raise InputError(f"bad latency profile: {exc}", path=path) from None


def load_profile(path: str | Path) -> ProfileLatency:
    """Read a latency profile written by ``adaspec-calibrate latency``."""
    p = Path(path)
    data = read_json_file(p, "latency profile")
    return profile_from_dict(data, path=str(p), name=p.name)


def profile_features_matrix(op: str, samples: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Design matrix (one row per sample) of ``op``'s features."""
    return np.array([sample_features(op, s) for s in samples], dtype=np.float64).reshape(
        len(samples), len(OP_FEATURES[op]))
