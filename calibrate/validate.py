"""Compare a real run with a simulation of exactly its workload (DESIGN.md §8).

``validate_run(real_dir, profile)`` reads the run's ``summary.json`` (config with engine
limits, seed, policies) and each policy's ``requests.csv`` (the exact requests: arrival,
prompt and output tokens, category), simulates that workload under the same policy, config and
seed with the calibrated latency profile as ground truth (and, for controlled-acceptance runs,
the same acceptance model), and reports per policy:

* every summary metric (TTFT/TPOT/E2E mean, p50, p99; SLO attainment; throughput; mean tokens
  per step, i.e. mean accepted length incl. the bonus token): real, simulated, relative error;
* per-iteration latency error: each real iteration's duration predicted by the profile from
  its recorded shape through the simulator's own iteration-duration function
  (``sim.latency.iteration.decode_iteration_s``) -- MAPE overall and per kind. The shape is
  read from the columns the iteration log records (``context_tokens``, ``verify_rows``,
  ``kv_tokens_read``, ``draft_rows``, ``draft_kv_tokens``); a run recorded before those
  columns existed has them reconstructed as a single-pass shape (contexts from the request
  table: requests in flight at the iteration's start, generated tokens interpolated linearly
  between first token and finish; rows drafting at each step = drafted tokens / draft steps).
  A prefill's prompt lengths are those of the requests whose first token came at its end;
* distance between the real and simulated distributions of tokens emitted per request per
  speculative decode iteration (1-Wasserstein, and total variation over 0.25-token bins) and
  of per-request acceptance rates (1-Wasserstein).

Runs of ``adaspec-realrun --method ngram`` (config ``method = ngram``: prompt lookup on the CPU,
no draft model) are priced with no draft accelerator time: their recorded shapes have no draft
passes, prefills are the target's alone, and the re-simulation runs the policy with a drafter
whose draft prefill, steps and overhead cost 0 s (``realrun.lookup.LookupDraftLatency`` over
the profile) and whose verdicts come from ``--acceptance`` (``adaspec-calibrate ngram
--acceptance-out`` fits one). What that simulation lacks is stated in the report's
``method_note``: it has no lookup misses. The CPU time of the lookups is inside the real
durations (``draft_cpu_s`` in the iteration table). The simulator's own ``--method pld`` is not
used here: it prices lookup with an assumed CPU cost per step for GPU presets and refuses a
calibrated profile.
An unknown ``method`` is refused in one line.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from realrun.lookup import LookupDraftLatency
from sim.errors import ConfigError, InputError
from sim.latency.iteration import (SINGLE_PASS, DecodeShape, decode_iteration_s, draft_shape,
                                   prefill_iteration_s)
from sim.latency.models import get_model
from sim.metrics.recorder import split_steps
from sim.output import file_sha256, policy_dirname
from sim.workload.request import Request, Workload

METRICS = (
    ("ttft_mean_s", ("ttft_s", "mean")), ("ttft_p50_s", ("ttft_s", "p50")),
    ("ttft_p99_s", ("ttft_s", "p99")), ("tpot_mean_s", ("tpot_s", "mean")),
    ("tpot_p50_s", ("tpot_s", "p50")), ("tpot_p99_s", ("tpot_s", "p99")),
    ("e2e_mean_s", ("e2e_s", "mean")), ("e2e_p50_s", ("e2e_s", "p50")),
    ("e2e_p99_s", ("e2e_s", "p99")), ("slo_attainment", ("slo_attainment",)),
    ("throughput_tokens_per_s", ("throughput_tokens_per_s",)),
    ("mean_tokens_per_step", ("mean_tokens_per_step",)),
    ("acceptance_rate", ("acceptance_rate",)),
)
REQUEST_COLUMNS = ("id", "arrival_s", "prompt_tokens", "output_tokens")
DRAFT_MODEL, NGRAM = "draft-model", "ngram"  # realrun.lookup's method names (no torch here)


# ---- reading the real run ---------------------------------------------------------------------
def read_summary(real_dir: Path) -> dict[str, Any]:
    if not real_dir.is_dir():
        raise InputError("not a results directory", path=str(real_dir))
    path = real_dir / "summary.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no summary.json (not a results directory, or an incomplete run)",
                         path=str(real_dir)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read summary.json ({exc.__class__.__name__})", path=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict) \
            or not isinstance(data.get("policies"), dict) or not data["policies"]:
        raise InputError("summary.json lacks 'config' or 'policies'", path=str(path))
    return data


def read_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, comment="#")
    except FileNotFoundError:
        raise InputError("table not found", path=str(path)) from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"cannot read table ({exc.__class__.__name__})", path=str(path)) from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", path=str(path))
    return frame


def workload_from_requests(frame: pd.DataFrame, source: str) -> Workload:
    """The exact workload a run served, from its per-request table."""
    frame = frame.sort_values(["arrival_s", "id"], kind="stable")
    cats = (frame["category"].astype("string").fillna("").astype(str) if "category" in frame
            else [""] * len(frame))
    try:
        requests = tuple(Request(int(i), float(a), int(p), int(o), str(c))
                         for i, a, p, o, c in zip(frame["id"], frame["arrival_s"],
                                                  frame["prompt_tokens"], frame["output_tokens"], cats))
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad request row ({exc})", path=source) from None
    if not requests:
        raise InputError("no requests", path=source)
    return Workload(requests, source=source, format="results-requests")


def sim_config(config: dict[str, Any], profile: str, acceptance: str | None, workload: Workload):
    """SimConfig of the real run's config (fields it shares), with the profile as latency."""
    from sim.run import SimConfig

    fields = {f.name for f in dataclasses.fields(SimConfig)}
    kwargs = {k: v for k, v in config.items() if k in fields}
    real = is_real_run(config)
    if kwargs.get("engine") == "realrun":  # runs recorded before engines were named
        kwargs["engine"] = SINGLE_PASS
    for key in ("target", "draft"):
        if isinstance(kwargs.get(key), str) and kwargs[key].startswith("random:"):
            kwargs[key] = kwargs[key].split(":", 1)[1]
    if kwargs.get("kv_blocks") is None:
        try:
            get_model(kwargs.get("target", "vicuna-7b"))
            get_model(kwargs.get("draft", "vicuna-68m"))
        except ConfigError:
            # Models outside the presets: size the KV pool so it never binds (the run's own
            # engine limit should be in its config as kv_blocks).
            block = int(kwargs.get("block_size", 16))
            total = sum(r.prompt_tokens + r.output_tokens for r in workload.requests)
            kwargs["kv_blocks"] = 2 * (total // block + len(workload) + 1)
    if kwargs.get("draft", "") is None:  # an n-gram run loads no draft model
        del kwargs["draft"]
    if kwargs.get("method") == NGRAM:
        # re-simulated as the draft-model method with free draft passes (LookupDraftLatency):
        # the simulator's own ``pld`` method prices lookup with GPU-preset CPU costs and
        # refuses a calibrated profile, while the real run measured its lookup time
        del kwargs["method"]
    if acceptance is not None:
        kwargs["acceptance"] = acceptance
    elif real and not config.get("acceptance"):
        if run_method(config) == NGRAM:
            raise ConfigError("this real run drafted by prompt lookup and verified with the "
                              "real target (no controlled acceptance): pass --acceptance with "
                              "a model fitted to its lookups (adaspec-calibrate ngram "
                              "--acceptance-out)")
        raise ConfigError("this real run verified with the real models (no controlled "
                          "acceptance): pass --acceptance with the pair's calibrated model "
                          "(adaspec-calibrate acceptance)")
    kwargs["profile"] = profile
    try:
        return SimConfig(**kwargs)
    except TypeError as exc:
        raise InputError(f"bad config in summary.json ({exc})") from None


def run_method(config: dict[str, Any]) -> str:
    """The run's drafter: ``draft-model`` (also every run recorded before methods existed) or
    ``ngram`` (prompt lookup, ``adaspec-realrun --method ngram``)."""
    method = config.get("method") or DRAFT_MODEL
    if method not in (DRAFT_MODEL, NGRAM):
        raise ConfigError(f"summary.json: unknown drafting method {method!r} "
                          f"(adaspec-validate knows {DRAFT_MODEL} and {NGRAM})")
    return method


def is_real_run(config: dict[str, Any]) -> bool:
    """Whether ``config`` is realrun's (``runner``; older runs wrote ``engine = realrun``)."""
    return config.get("runner") == "realrun" or config.get("engine") == "realrun"


# ---- comparisons ------------------------------------------------------------------------------
def _get(summary: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    value: Any = summary
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def relative_error(real: float | None, sim: float | None) -> float | None:
    if real is None or sim is None or real == 0:
        return None
    return (sim - real) / abs(real)


def compare_summaries(real: dict[str, Any], sim: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, keys in METRICS:
        r, s = _get(real, keys), _get(sim, keys)
        out[name] = {"real": r, "sim": s, "rel_error": relative_error(r, s)}
    return out


SHAPE_COLUMNS = ("context_tokens", "verify_rows", "kv_tokens_read", "draft_rows",
                 "draft_kv_tokens")


def _contexts(iterations: pd.DataFrame, requests: pd.DataFrame) -> np.ndarray:
    """Summed context of each iteration reconstructed from the request table (module doc)."""
    start = iterations["start_s"].to_numpy(dtype=float)
    first = requests["first_token_s"].to_numpy(dtype=float)
    finish = requests["finish_s"].to_numpy(dtype=float)
    prompt = requests["prompt_tokens"].to_numpy(dtype=float)
    output = requests["output_tokens"].to_numpy(dtype=float)
    out = np.zeros(start.size)
    for lo in range(0, start.size, 2048):
        t = start[lo:lo + 2048, None]
        live = (first[None, :] <= t + 1e-9) & (t < finish[None, :] - 1e-9)
        span = np.maximum(finish - first, 1e-12)[None, :]
        generated = 1.0 + (output[None, :] - 1.0) * np.clip((t - first[None, :]) / span, 0, 1)
        ctx = np.where(live, prompt[None, :] + generated, 0.0).sum(axis=1)
        count = live.sum(axis=1)
        batch = iterations["batch_size"].to_numpy(dtype=float)[lo:lo + 2048]
        out[lo:lo + 2048] = np.where(count > 0, ctx / np.maximum(count, 1) * batch, 0.0)
    return out


def decode_shapes(iterations: pd.DataFrame, requests: pd.DataFrame) -> list[DecodeShape | None]:
    """Each decode iteration's ``DecodeShape`` (None for prefills): as recorded, or
    reconstructed as a single-pass shape for runs that predate the shape columns."""
    decode = (iterations["kind"] == "decode").tolist()
    if all(c in iterations.columns for c in SHAPE_COLUMNS):
        return [DecodeShape(int(r.batch_size), int(r.context_tokens), int(r.verify_rows),
                            int(r.verify_tokens), int(r.kv_tokens_read),
                            split_steps(r.draft_rows), split_steps(r.draft_kv_tokens))
                if is_decode else None
                for is_decode, r in zip(decode, iterations.itertuples(index=False))]
    contexts = _contexts(iterations, requests)
    shapes: list[DecodeShape | None] = []
    for is_decode, ctx, row in zip(decode, contexts.tolist(), iterations.itertuples(index=False)):
        if not is_decode:
            shapes.append(None)
            continue
        batch, steps, context = int(row.batch_size), int(row.draft_steps), int(round(ctx))
        n = min(batch, max(1, int(round(int(row.drafted_tokens) / steps)))) if steps else 0
        rows, kv = draft_shape([n] * steps, [int(round(ctx * n / batch))] * steps)
        shapes.append(DecodeShape(batch, context, batch, int(row.verify_tokens), context,
                                  rows, kv))
    return shapes


def _prefill_lengths(row: Any, requests: pd.DataFrame) -> list[int]:
    end = row.start_s + row.duration_s
    tol = 1e-6 * max(1.0, abs(end))
    hit = requests[(requests["first_token_s"] - end).abs() <= tol]
    lengths = hit["prompt_tokens"].astype(int).tolist()
    if len(lengths) == int(row.batch_size) and sum(lengths) == int(row.verify_tokens):
        return lengths
    batch = max(int(row.batch_size), 1)
    return [max(1, round(int(row.verify_tokens) / batch))] * batch


def predict_iterations(iterations: pd.DataFrame, requests: pd.DataFrame, latency, padding,
                       uses_draft: bool) -> np.ndarray:
    """The profile's duration for each recorded iteration (the simulator's own function)."""
    out = np.zeros(len(iterations))
    shapes = decode_shapes(iterations, requests)
    for i, (shape, row) in enumerate(zip(shapes, iterations.itertuples(index=False))):
        if shape is None:
            out[i] = prefill_iteration_s(latency, _prefill_lengths(row, requests), uses_draft)
        else:
            out[i] = decode_iteration_s(latency, padding, shape)
    return out


def iteration_errors(iterations: pd.DataFrame, predicted: np.ndarray) -> dict[str, Any]:
    real = iterations["duration_s"].to_numpy(dtype=float)
    ok = real > 0
    ape = np.abs(predicted[ok] - real[ok]) / real[ok] * 100.0
    kinds = np.where(iterations["kind"] == "prefill", "prefill",
                     np.where(iterations["draft_steps"] > 0, "decode_spec", "decode_plain"))[ok]
    by_kind = {k: {"mape_percent": float(ape[kinds == k].mean()), "n": int((kinds == k).sum()),
                   "real_mean_s": float(real[ok][kinds == k].mean()),
                   "predicted_mean_s": float(predicted[ok][kinds == k].mean())}
               for k in np.unique(kinds)}
    return {"mape_percent": float(ape.mean()) if ape.size else None, "n": int(ok.sum()),
            "by_kind": by_kind}


def _tokens_per_step(iterations: pd.DataFrame) -> np.ndarray:
    spec = iterations[(iterations["kind"] == "decode") & (iterations["draft_steps"] > 0)]
    return (spec["emitted_tokens"] / spec["batch_size"]).to_numpy(dtype=float)


def distribution_distances(real_it: pd.DataFrame, sim_it: pd.DataFrame, real_req: pd.DataFrame,
                           sim_req: pd.DataFrame) -> dict[str, Any]:
    from scipy.stats import wasserstein_distance

    a, b = _tokens_per_step(real_it), _tokens_per_step(sim_it)
    out: dict[str, Any] = {"tokens_per_step": {"n_real": int(a.size), "n_sim": int(b.size)}}
    if a.size and b.size:
        top = max(a.max(), b.max()) + 0.25
        edges = np.arange(1.0, top + 0.25, 0.25)
        ha = np.histogram(a, edges)[0] / a.size
        hb = np.histogram(b, edges)[0] / b.size
        out["tokens_per_step"].update(wasserstein=float(wasserstein_distance(a, b)),
                                      total_variation=float(0.5 * np.abs(ha - hb).sum()),
                                      mean_real=float(a.mean()), mean_sim=float(b.mean()))
    rates = []
    for req in (real_req, sim_req):
        if {"accepted_tokens", "verified_tokens"} <= set(req.columns):
            v = req[req["verified_tokens"] > 0]
            rates.append((v["accepted_tokens"] / v["verified_tokens"]).to_numpy(dtype=float))
    if len(rates) == 2 and rates[0].size and rates[1].size:
        out["request_acceptance_rate"] = {"wasserstein": float(wasserstein_distance(*rates)),
                                          "mean_real": float(rates[0].mean()),
                                          "mean_sim": float(rates[1].mean())}
    return out


# ---- the whole validation --------------------------------------------------------------------
def validate_run(real_dir: str | Path, profile: str | Path, acceptance: str | None = None,
                 policies: list[str] | None = None) -> dict[str, Any]:
    """The validation report (JSON-ready) of every (or the named) policies of a run."""
    from sim import SCHEMA_VERSION, __version__
    from sim.acceptance.presets import make_acceptance
    from sim.latency.profile import load_profile
    from sim.metrics.summary import summarize
    from sim.run import build_padding, resolve_policy, simulate

    real_dir = Path(real_dir)
    summary = read_summary(real_dir)
    method = run_method(summary["config"])
    # An n-gram run ran no draft pass: unless the simulator models the method itself, its
    # draft passes are priced at 0 s, in the re-simulation and in the per-iteration check.
    free_drafting = method == NGRAM
    latency = load_profile(profile)  # fails early on a bad profile; predicts real iterations
    seed = int(summary.get("seed") or 0)
    names = policies or list(summary["policies"])
    unknown = [p for p in names if p not in summary["policies"]]
    if unknown:
        raise ConfigError(f"{real_dir}: no policy {', '.join(unknown)} in summary.json "
                          f"(has {', '.join(summary['policies'])})")
    inputs: dict[str, Any] = {"summary": {"path": str(real_dir / "summary.json"),
                                          "sha256": file_sha256(real_dir / "summary.json")},
                              "profile": {"path": str(profile), "sha256": file_sha256(profile)}}
    if acceptance is not None and Path(acceptance).is_file():
        inputs["acceptance"] = {"path": str(acceptance), "sha256": file_sha256(acceptance)}
    report: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "kind": "validation-report",
                              "tool": f"adaspec-validate {__version__}", "inputs": inputs,
                              "seed": seed, "config": None, "method": method, "policies": {}}
    if method == NGRAM:
        report["method_note"] = (
            "prompt lookup re-simulated as a drafter whose draft passes cost 0 s (no draft "
            "prefill, steps or overhead) with the acceptance model's verdicts; the simulator "
            "has no lookup misses, so every request may draft every step there")
    for name in names:
        sub = real_dir / policy_dirname(name)
        req_path, it_path = sub / "requests.csv", sub / "iterations.csv"
        real_req = read_table(req_path, REQUEST_COLUMNS)
        real_it = read_table(it_path, ("start_s", "duration_s", "kind", "batch_size",
                                       "draft_steps", "drafted_tokens", "verify_tokens",
                                       "padded_tokens", "emitted_tokens"))
        inputs[f"{name}/requests.csv"] = {"path": str(req_path), "sha256": file_sha256(req_path)}
        inputs[f"{name}/iterations.csv"] = {"path": str(it_path), "sha256": file_sha256(it_path)}
        workload = workload_from_requests(real_req, str(req_path))
        config = sim_config(summary["config"], str(profile), acceptance, workload)
        report["config"] = config.to_dict()
        policy = resolve_policy(name)
        sim_latency = load_profile(profile)  # its own instance: its own out-of-domain record
        sim_model = LookupDraftLatency(sim_latency) if free_drafting else sim_latency
        real_model = LookupDraftLatency(latency) if free_drafting else latency
        with warnings.catch_warnings():
            # The policies' table estimator probes every graph size and context bucket, far
            # outside a CPU profile's domain (one warning of its own); what the run itself
            # priced outside is recorded in the report instead.
            warnings.simplefilter("ignore", RuntimeWarning)
            result = simulate(workload, policy, config, seed=seed, latency=sim_model,
                              acceptance=make_acceptance(config.acceptance))
        real_summary = summary["policies"][name]
        if not isinstance(real_summary, dict) or "ttft_s" not in real_summary:
            real_summary = summarize(real_req, real_it)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # recorded in the report
            predicted = predict_iterations(real_it, real_req, real_model, build_padding(config),
                                           policy.uses_draft and method == DRAFT_MODEL)
        report["policies"][name] = {
            "requests": len(workload),
            "metrics": compare_summaries(real_summary, result.summary),
            "iteration_latency": iteration_errors(real_it, predicted),
            "distributions": distribution_distances(real_it, result.iterations, real_req,
                                                    result.requests),
            "out_of_domain_ops": {"real_iterations": sorted(latency.warned_ops),
                                  # the simulated run's own queries (the policies'
                                  # table no longer counts: sim.latency.domain)
                                  "simulation": sorted(sim_latency.warned_ops)},
        }
    return report
