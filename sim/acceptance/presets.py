"""Named acceptance models with cited sources, and ``make_acceptance`` (name, ``fixed:ALPHA``
or a JSON file path -> model).

``spec-bench-vicuna-68m``: vicuna-68m drafting for Vicuna-7B-v1.3 ("SpS" in Spec-Bench).
Source: Spec-Bench leaderboard, hemingkx/Spec-Bench ``Leaderboard.md`` (commit 5544fd7),
section "Leaderboard on A100 / Vicuna-7B-v1.3" (A100 80GB, greedy, FP16, batch size 1):
SpS speedups multi-turn conversation 1.66x, translation 1.13x, summarization 1.62x,
question answering 1.49x, mathematical reasoning 1.47x, retrieval-aug. generation 1.55x,
#mean accepted tokens 2.28, overall 1.49x. (DESIGN.md §5 quotes summarization 1.71x, QA 1.50x,
RAG 1.66x; the leaderboard file we could check says 1.62x / 1.49x / 1.55x, so we use those.)

How the numbers become a model:

- Draft length: Spec-Bench's SpS runs Hugging Face assisted generation
  (``evaluation/inference_sps.py``, transformers 4.37.1 pinned in ``requirements.txt``), whose
  defaults are ``num_assistant_tokens=5`` with the "heuristic" schedule (+2 after a fully
  accepted step, -1 otherwise). We therefore place the levels so that *static k = 5* drafting
  reproduces the published mean accepted length.
- Per category: at batch size 1 with a fixed draft/target cost ratio, speedup is proportional
  to the mean accepted length, so category c gets tau_c = 2.28 * S_c / mean(S) (the six
  categories are equally sized, 80 questions each, and mean(S) = 1.487 ~ the overall 1.49x).
  That gives tau = 2.55 (multi-turn), 1.73 (translation), 2.48 (summarization), 2.29 (QA),
  2.25 (math reasoning), 2.38 (RAG). The default category "" (Azure/Mooncake traces, no
  category) gets the overall 2.28.
- Each category mean level is solved in closed form (``level_for_mean_accepted_length``) from
  its tau_c, k = 5, the per-request spread and the position decay below.
- Modelling assumptions not published by Spec-Bench (stated, not measured): per-request level
  concentration 12 (level s.d. ~0.14 around 0.55); per-token confidence concentration 2
  (spread-out confidences); a mildly over-confident calibration curve; position decay falling
  linearly from 1.0 to 0.902 over 8 positions, i.e. the conditional acceptance drift
  0.82 -> 0.74 that DESIGN.md §5 reports for measured acceptance.

Spec-Bench's category names map as follows: MT-Bench's writing, roleplay, reasoning, math,
coding, extraction, stem, humanities -> multi-turn conversation; translation; summarization;
qa; math_reasoning; rag.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Callable

from sim.acceptance.base import AcceptanceModel, FixedAcceptance
from sim.acceptance.model import (
    AcceptanceParams,
    CalibrationCurve,
    CategoryProfile,
    ParametricAcceptance,
    level_for_mean_accepted_length,
)
from sim.errors import ConfigError

SPEC_BENCH_SOURCE = (
    "Spec-Bench leaderboard (hemingkx/Spec-Bench Leaderboard.md @5544fd7, A100, Vicuna-7B-v1.3, "
    "greedy, batch 1): SpS (vicuna-68m) speedups MT 1.66x, translation 1.13x, summarization "
    "1.62x, QA 1.49x, math 1.47x, RAG 1.55x; 2.28 mean accepted tokens; levels placed for "
    "static k=5 (HF assisted generation default num_assistant_tokens=5)")

#: SpS speedups on Spec-Bench (A100, Vicuna-7B-v1.3), by Spec-Bench task.
SPEC_BENCH_SPS_SPEEDUP: dict[str, float] = {
    "multi_turn": 1.66,
    "translation": 1.13,
    "summarization": 1.62,
    "qa": 1.49,
    "math_reasoning": 1.47,
    "rag": 1.55,
}
SPEC_BENCH_SPS_MEAN_ACCEPTED = 2.28
SPEC_BENCH_SPS_DRAFT_K = 5
SPEC_BENCH_LEVEL_CONCENTRATION = 12.0
SPEC_BENCH_CONFIDENCE_CONCENTRATION = 2.0
SPEC_BENCH_POSITION_DECAY = tuple(round(1.0 - (1.0 - 0.74 / 0.82) * j / 7, 4) for j in range(8))
SPEC_BENCH_CALIBRATION = CalibrationCurve(
    ((0.0, 0.02), (0.1, 0.08), (0.3, 0.27), (0.5, 0.48), (0.7, 0.70), (0.9, 0.88), (1.0, 0.95)))

#: Category names (as they appear in Spec-Bench's question.jsonl, plus a few aliases) -> task.
SPEC_BENCH_CATEGORY_TASK: dict[str, str] = {
    **{c: "multi_turn" for c in ("writing", "roleplay", "reasoning", "math", "coding",
                                 "extraction", "stem", "humanities", "mt_bench", "mt-bench",
                                 "multi_turn", "multi-turn", "conversation")},
    "translation": "translation",
    "summarization": "summarization",
    "qa": "qa",
    "question_answering": "qa",
    "math_reasoning": "math_reasoning",
    "rag": "rag",
}


def spec_bench_target_lengths() -> dict[str, float]:
    """Mean accepted length (tokens per step, at k=5) per Spec-Bench task and overall ("")."""
    mean_speedup = sum(SPEC_BENCH_SPS_SPEEDUP.values()) / len(SPEC_BENCH_SPS_SPEEDUP)
    out = {task: SPEC_BENCH_SPS_MEAN_ACCEPTED * s / mean_speedup
           for task, s in SPEC_BENCH_SPS_SPEEDUP.items()}
    out[""] = SPEC_BENCH_SPS_MEAN_ACCEPTED
    return out


def spec_bench_vicuna_68m() -> AcceptanceParams:
    """The ``spec-bench-vicuna-68m`` preset (see the module docstring for the derivation)."""
    levels = {
        task: level_for_mean_accepted_length(tau, SPEC_BENCH_LEVEL_CONCENTRATION,
                                             SPEC_BENCH_SPS_DRAFT_K, SPEC_BENCH_POSITION_DECAY)
        for task, tau in spec_bench_target_lengths().items()
    }
    categories = {"": CategoryProfile(round(levels[""], 4), SPEC_BENCH_LEVEL_CONCENTRATION)}
    for cat, task in SPEC_BENCH_CATEGORY_TASK.items():
        categories[cat] = CategoryProfile(round(levels[task], 4), SPEC_BENCH_LEVEL_CONCENTRATION)
    return AcceptanceParams(
        name="spec-bench-vicuna-68m",
        source=SPEC_BENCH_SOURCE,
        categories=categories,
        calibration=SPEC_BENCH_CALIBRATION,
        confidence_concentration=SPEC_BENCH_CONFIDENCE_CONCENTRATION,
        position_decay=SPEC_BENCH_POSITION_DECAY,
        meta={"target_mean_accepted_length_k5": spec_bench_target_lengths()},
    )


#: Preset name -> builder of its parameters (built on demand, never at import).
PRESETS: dict[str, Callable[[], AcceptanceParams]] = {
    "spec-bench-vicuna-68m": spec_bench_vicuna_68m,
}


@lru_cache(maxsize=None)
def _preset_params(name: str) -> AcceptanceParams:
    return PRESETS[name]()


def preset_names() -> tuple[str, ...]:
    """Names ``make_acceptance`` accepts besides ``fixed:ALPHA`` and file paths."""
    return tuple(PRESETS)


def make_acceptance(name_or_path: str | Path) -> AcceptanceModel:
    """Acceptance model from a preset name, ``fixed:ALPHA`` (0 <= ALPHA <= 1), or a JSON file.

    Raises ``ConfigError`` for an unknown name or a bad ``fixed`` value and ``InputError`` for
    a bad file.
    """
    spec = str(name_or_path).strip()
    key = spec.lower()
    if not spec:
        raise ConfigError("empty acceptance model name")
    if key in PRESETS:
        return ParametricAcceptance(_preset_params(key))
    if key.startswith("fixed:") or key == "fixed":
        value = key.partition(":")[2]
        try:
            alpha = float(value)
        except ValueError:
            raise ConfigError(f"acceptance 'fixed:ALPHA' needs a number in [0, 1], got {spec!r}") from None
        return FixedAcceptance(alpha=alpha, name=f"fixed:{alpha:g}")
    path = Path(spec)
    if path.suffix.lower() == ".json" or path.is_file():
        from sim.acceptance.io import load_acceptance
        return load_acceptance(path)
    raise ConfigError(f"unknown acceptance model {spec!r}; use one of "
                      f"{', '.join(preset_names())}, fixed:ALPHA, or a .json file")
