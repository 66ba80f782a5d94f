"""The per-pass overhead: the time a forward pass costs beyond its GPU kernels.

What it stands for (vLLM 0.6, one engine step, CUDA graphs on for decode):

* the scheduler (which sequences run, KV block tables), input preparation in Python (token
  ids, positions, slot mappings, attention metadata, copied to the GPU);
* sampling and its GPU-to-CPU synchronisation (rejection sampling for a verification pass),
  and turning the sampled tokens into Python outputs;
* kernel launches: under a captured CUDA graph one replay (a few microseconds); in eager mode
  every kernel is launched from Python (see below).

Defaults and where they come from:

* ``DEFAULT_TARGET_OVERHEAD_S`` = 4 ms per target pass (decode, verification, prefill). The
  vLLM multi-step-scheduling RFC (vllm-project/vllm#6854, July 2024) measured the GPU idle
  gap between two single-step decode iterations at about 4 ms ("each highlighted red box is
  about 4 ms of GPU bubble", 5-13 ms in general): scheduler, input preparation, the sampled
  tokens' GPU-to-CPU transfer and output processing. vLLM 0.6's remedies (multi-step
  scheduling, asynchronous output processing) are not used with speculative decoding in 0.6,
  the AdaSpec artifact's engine, so the single-step gap stands.
* ``DEFAULT_DRAFT_STEP_OVERHEAD_S`` = 1 ms per draft step: the draft runs k steps inside one
  proposer call whose inputs are prepared once and updated in place (vllm#4630, "Amortize
  prepare_inputs over multiple forward passes", done), so a step costs one graph replay,
  sampling and a small metadata update. With it vicuna-7b + vicuna-68m iterations on an A100
  at small batch take 15-25 ms, as the AdaSpec paper reports. An upper reference: vllm#9298
  (v0.6.3, A10, batch 16, a 0.5 B draft) reports 5.56 ms per proposed token with CUDA graphs
  and 13.69 ms eager, kernels included.
* ``DEFAULT_DRAFT_OVERHEAD_S`` = 1.5 ms once per iteration that drafts at all (proposer setup,
  draft probabilities kept for rejection sampling, batch expansion of the scorer inputs).
* Eager mode costs more: SGLang measured Llama-3-8B batch-1 decode at 7.06 ms with CUDA
  graphs and 9.28 ms without (sgl-project/sglang#1401), i.e. ~2.2 ms of launches for 32
  layers (~70 us per layer). The simulator prices a pass above the largest captured size
  with the same overhead (its kernels are then long enough to hide most launches); this is
  an assumption, as is every default here: measure it with ``adaspec-calibrate latency``
  (a profile's intercept is the measured overhead) or set it with ``--pass-overhead-ms``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sim.errors import ConfigError

DEFAULT_TARGET_OVERHEAD_S = 4.0e-3
DEFAULT_DRAFT_STEP_OVERHEAD_S = 1.0e-3
DEFAULT_DRAFT_OVERHEAD_S = 1.5e-3


OVERHEAD_NAMES = ("target pass", "draft step", "drafting iteration")
"""The three per-pass overheads, in the order every form of them lists them."""
DEFAULT_OVERHEADS_S = (DEFAULT_TARGET_OVERHEAD_S, DEFAULT_DRAFT_STEP_OVERHEAD_S,
                       DEFAULT_DRAFT_OVERHEAD_S)


def check_pass_overheads(values, what: str, unit: str = "seconds") -> tuple[float, float, float]:
    """Three per-pass overheads (target pass, draft step, drafting iteration) in ``unit``,
    each a finite number >= 0, as floats. The one check of every form of them:
    ``SimConfig.pass_overheads_s`` (a sweep's ``[config] pass_overheads_s``), the
    ``--pass-overhead-ms`` option and :class:`PassOverheads`; its one-line errors name
    ``what`` (the field or the flag), the overhead and the unit."""
    from sim.workload.spec import check_non_negative
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != 3:
        raise ConfigError(f"{what} must be 3 numbers of {unit} ({', '.join(OVERHEAD_NAMES)}), "
                          f"got {values!r}")
    target, step, drafting = (check_non_negative(f"{what} {name} ({unit})", value)
                              for name, value in zip(OVERHEAD_NAMES, values))
    return target, step, drafting


@dataclass(frozen=True)
class PassOverheads:
    """Seconds added to each target pass, each draft step, and each drafting iteration."""

    target_s: float = DEFAULT_TARGET_OVERHEAD_S
    draft_step_s: float = DEFAULT_DRAFT_STEP_OVERHEAD_S
    drafting_s: float = DEFAULT_DRAFT_OVERHEAD_S

    def __post_init__(self) -> None:
        check_pass_overheads((self.target_s, self.draft_step_s, self.drafting_s),
                             "pass overheads")


def parse_pass_overheads_ms(text: str, what: str = "--pass-overhead-ms") -> tuple[float, float, float]:
    """``"T"``, ``"T,D"`` or ``"T,D,I"`` in milliseconds -> (target, draft step, drafting
    iteration) in seconds; omitted ones keep their defaults. Errors name ``what`` (the
    option) and milliseconds."""
    parts = [p.strip() for p in str(text).split(",")]
    if not 1 <= len(parts) <= 3 or any(not p for p in parts):
        raise ConfigError(f"{what} must be TARGET_MS[,DRAFT_STEP_MS[,DRAFTING_MS]] (1 to 3 "
                          f"numbers of milliseconds), got {text!r}")
    try:
        given_ms = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"{what} must be numbers of milliseconds, got {text!r}") from None
    defaults_s = DEFAULT_OVERHEADS_S[len(given_ms):]
    check_pass_overheads(given_ms + [d * 1e3 for d in defaults_s], what, "milliseconds")
    target, step, drafting = [v * 1e-3 for v in given_ms] + list(defaults_s)
    return target, step, drafting
