"""Acceptance of each method on Spec-Bench: what one decode step yields along the accepted
path, per Spec-Bench category, fitted to the leaderboard's mean accepted tokens.

The model is ``sim.acceptance.model.ParametricAcceptance`` read along a tree's best path:
``position j`` is depth j + 1, a request's *level* is the best path's acceptance probability
at depth 1, ``position_decay[j]`` how the conditional acceptance of depth j + 1 compares to
depth 1, and the per-token confidence is the drafter's probability of the best path's node
(what AdaSpec's drafter and verifier read). A step emits the accepted depth plus the bonus
token, as Spec-Bench's ``accept_length`` counts it.

What is fitted to what (``method_acceptance_params``), per method:

* one number is matched: the leaderboard's "#Mean Accepted Tokens" (``SPEC_BENCH_METHODS``,
  hemingkx/Spec-Bench Leaderboard.md @fd2c1cd, A100, Vicuna-7B-v1.3), as the simulator's
  Spec-Bench workload at batch 1 measures it: decode tokens / decode steps over all answers,
  each answer's last step cut at its end (``sim.acceptance.finite_length``, exactly, no
  sampling), with every request verifying the method's full depth (``fit_depth``: the tree
  Spec-Bench ran);
* per category the leaderboard gives speedups only, so each task's tokens per step is set
  proportional to the method's published per-task speedup (``tps_c = a S_c``, ``a`` such that
  the workload total is the mean accepted tokens), the same reading as the draft model's
  preset (``sim.acceptance.presets``): at batch 1 a step of a given method costs nearly the
  same in every category. The speedups themselves are *not* fitted; the latency model
  predicts them (``benchmarks/specbench_methods.py``).

Assumptions (stated, not measured), shared with the draft model's preset where it has them:
per-request level concentration 12; identity calibration P(accept | confidence) = confidence
(EAGLE-2, arXiv 2406.16858, observes that the draft head's confidence approximates the
acceptance rate; for Medusa/Hydra heads the same is assumed); confidence concentration 2
(methods with confidences) or 200 (PLD and lookahead: no probability, the "confidence" is
the request's level, carrying no per-token information); and per-depth shapes:

* every method: the draft model's drift (conditional acceptance 0.82 -> 0.74 over 8
  positions, ``SPEC_BENCH_POSITION_DECAY``), except PLD;
* static trees: the best path's chance at depth j grows with the number of children b_j the
  tree gives the main-path node there: factor ``1 - (1 - q)^b_j`` relative to depth 1, with
  a nominal top-1 acceptance q = 0.5 (``TREE_TOP1``);
* Medusa's heads draft without seeing the tokens before theirs: a further factor
  ``PARALLEL_HEAD_FALLOFF ** j`` (0.85);
* PLD: a lookup either continues a copied span or not: depth 1 is accepted ``PLD_FIRST`` =
  0.45 as often as the level, deeper tokens at the level (no drift).

EAGLE-3 is not on the reference leaderboard: its preset takes EAGLE-2's per-task speedup
profile and ``EAGLE3_OVER_EAGLE2`` = 1.1 times EAGLE-2's mean accepted tokens, an assumption
of this project (the EAGLE-3 paper reports longer acceptance than EAGLE-2 on the models it
evaluates; Vicuna-7B is not among them), not a measurement.
"""

from __future__ import annotations

from typing import Mapping

from sim.acceptance.model import AcceptanceParams, CalibrationCurve, CategoryProfile
from sim.acceptance.presets import (SPEC_BENCH_CATEGORY_TASK, SPEC_BENCH_LEADERBOARD_COMMIT,
                                    SPEC_BENCH_LEVEL_CONCENTRATION, SPEC_BENCH_POSITION_DECAY,
                                    spec_bench_task_mixtures)
from sim.drafters.presets import (EAGLE_TREE_CHOICES, MEDUSA_TREE_CHOICES, PARALLEL_HEADS,
                                  PROMPT_LOOKUP, SEQUENTIAL_HEADS, get_method)
from sim.errors import ConfigError

TASKS = ("multi_turn", "translation", "summarization", "qa", "math_reasoning", "rag")

#: Spec-Bench leaderboard (A100 80GB, Vicuna-7B-v1.3, batch 1, greedy, FP16), per method:
#: (#mean accepted tokens, overall speedup, speedups per task in ``TASKS`` order).
SPEC_BENCH_METHODS: dict[str, tuple[float, float, tuple[float, ...]]] = {
    "eagle-2": (4.34, 2.36, (2.84, 1.88, 2.34, 2.15, 2.79, 2.13)),
    "eagle": (3.58, 2.10, (2.45, 1.77, 2.08, 1.93, 2.44, 1.87)),
    "hydra": (3.26, 2.07, (2.43, 1.89, 1.83, 1.97, 2.45, 1.80)),
    "medusa": (2.31, 1.71, (1.97, 1.65, 1.57, 1.65, 1.94, 1.49)),
    "pld": (1.75, 1.66, (1.60, 1.06, 2.66, 1.19, 1.62, 1.86)),
    "draft-model": (2.28, 1.52, (1.66, 1.13, 1.71, 1.50, 1.47, 1.66)),
    "lookahead": (1.64, 1.34, (1.47, 1.14, 1.36, 1.25, 1.57, 1.22)),
}
EAGLE3_OVER_EAGLE2 = 1.1
TREE_TOP1 = 0.5
PARALLEL_HEAD_FALLOFF = 0.85
PLD_FIRST = 0.45
CONFIDENCE_CONCENTRATION = 2.0
NO_CONFIDENCE_CONCENTRATION = 200.0
IDENTITY = CalibrationCurve(((0.0, 0.0), (1.0, 1.0)))


def published(method: str) -> tuple[float, float, dict[str, float]] | None:
    """(mean accepted tokens, overall speedup, per-task speedups) on the leaderboard, or None
    (EAGLE-3)."""
    row = SPEC_BENCH_METHODS.get(get_method(method).name)
    if row is None:
        return None
    return row[0], row[1], dict(zip(TASKS, row[2]))


def calibration_targets(method: str) -> tuple[float, dict[str, float]]:
    """(mean accepted tokens, per-task speedup profile) the fit uses (EAGLE-3: assumed)."""
    name = get_method(method).name
    if name == "eagle-3":
        mean, _, speedups = SPEC_BENCH_METHODS["eagle-2"]
        return EAGLE3_OVER_EAGLE2 * mean, dict(zip(TASKS, speedups))
    row = SPEC_BENCH_METHODS.get(name)
    if row is None:
        raise ConfigError(f"no Spec-Bench acceptance for method {name!r}")
    return row[0], dict(zip(TASKS, row[2]))


def _branching(children: tuple[int, ...]) -> list[float]:
    f = [1.0 - (1.0 - TREE_TOP1) ** b for b in children]
    return [v / f[0] for v in f]


def method_decay(method: str) -> tuple[float, ...]:
    """Per-depth multipliers of the best path's acceptance (module doc)."""
    preset = get_method(method)
    depth = preset.fit_depth
    if preset.kind == PROMPT_LOOKUP:
        return (PLD_FIRST,) + (1.0,) * (depth - 1)
    drift = [SPEC_BENCH_POSITION_DECAY[min(j, len(SPEC_BENCH_POSITION_DECAY) - 1)]
             for j in range(depth)]
    factor = [1.0] * depth
    if preset.name == "eagle":  # EAGLE's static tree
        factor = _branching(preset.tree.children_on_main_path(EAGLE_TREE_CHOICES))
    elif preset.kind in (PARALLEL_HEADS, SEQUENTIAL_HEADS):
        factor = _branching(preset.tree.children_on_main_path(MEDUSA_TREE_CHOICES))
        if preset.kind == PARALLEL_HEADS:
            factor = [v * PARALLEL_HEAD_FALLOFF ** j for j, v in enumerate(factor)]
    return tuple(round(d * f, 4) for d, f in zip(drift, factor))


def task_targets(method: str) -> dict[str, float]:
    """Tokens per decode step each task must reach at the method's depth (``a S_c``), and
    the workload total under "" (the mean accepted tokens)."""
    from sim.acceptance.finite_length import mixture_decode_tokens

    mean, speedups = calibration_targets(method)
    tokens = {task: mixture_decode_tokens(mix) for task, mix in spec_bench_task_mixtures().items()}
    scale = mean * sum(tokens[t] / s for t, s in speedups.items()) / sum(tokens.values())
    out = {task: scale * s for task, s in speedups.items()}
    out[""] = mean
    return out


def method_acceptance_params(method: str) -> AcceptanceParams:
    """The ``spec-bench-<method>`` preset (module doc)."""
    from sim.acceptance.finite_length import mean_for_tokens_per_step

    preset = get_method(method)
    if preset.is_draft_model:
        raise ConfigError("the draft-model method's preset is spec-bench-vicuna-68m")
    mixtures = spec_bench_task_mixtures()
    targets = task_targets(preset.name)
    decay = method_decay(preset.name)
    wanted: dict[str, tuple[float, object]] = {t: (targets[t], mix) for t, mix in mixtures.items()}
    wanted[""] = (targets[""], [part for mix in mixtures.values() for part in mix])
    levels = mean_for_tokens_per_step(wanted, SPEC_BENCH_LEVEL_CONCENTRATION, preset.fit_depth,
                                      decay)
    categories: dict[str, CategoryProfile] = {
        "": CategoryProfile(round(levels[""], 4), SPEC_BENCH_LEVEL_CONCENTRATION)}
    for cat, task in SPEC_BENCH_CATEGORY_TASK.items():
        categories[cat] = CategoryProfile(round(levels[task], 4), SPEC_BENCH_LEVEL_CONCENTRATION)
    mean, _ = calibration_targets(preset.name)
    row = published(preset.name)
    source = (f"Spec-Bench leaderboard (hemingkx/Spec-Bench Leaderboard.md "
              f"@{SPEC_BENCH_LEADERBOARD_COMMIT[:7]}, A100 80GB, Vicuna-7B-v1.3, batch 1): "
              + (f"{preset.name} {row[0]:.2f} mean accepted tokens, {row[1]:.2f}x overall; "
                 if row else f"{preset.name}: not on the leaderboard; assumed "
                             f"{EAGLE3_OVER_EAGLE2:g} x EAGLE-2's {mean / EAGLE3_OVER_EAGLE2:.2f} "
                             "mean accepted tokens and EAGLE-2's per-task profile; ")
              + f"levels placed so that the Spec-Bench workload at batch 1, verifying depth "
                f"{preset.fit_depth}, emits {mean:.2f} tokens per step (ratio of sums, last "
                "steps cut), per-task tokens per step proportional to the per-task speedups")
    return AcceptanceParams(
        name=f"spec-bench-{preset.name}", source=source, categories=categories,
        calibration=IDENTITY,
        confidence_concentration=(CONFIDENCE_CONCENTRATION if preset.has_confidence
                                  else NO_CONFIDENCE_CONCENTRATION),
        position_decay=decay,
        meta={"leaderboard_commit": SPEC_BENCH_LEADERBOARD_COMMIT, "method": preset.name,
              "fit_depth": preset.fit_depth,
              "target_tokens_per_step_batch1": {t: round(v, 4) for t, v in targets.items()}})


def method_acceptance_builders() -> Mapping[str, object]:
    """Preset name -> builder, for ``sim.acceptance.presets.PRESETS``."""
    from functools import partial
    from sim.drafters.presets import METHODS
    return {f"spec-bench-{name}": partial(method_acceptance_params, name)
            for name, preset in METHODS.items() if not preset.is_draft_model}
