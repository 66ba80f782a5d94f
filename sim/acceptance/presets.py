"""Named acceptance models with cited sources, and ``make_acceptance`` (name, ``fixed:ALPHA``
or a JSON file path -> model).

``spec-bench-vicuna-68m``: vicuna-68m drafting for Vicuna-7B-v1.3 ("SpS" in Spec-Bench).
Source: Spec-Bench leaderboard, hemingkx/Spec-Bench ``Leaderboard.md`` at commit
fd2c1cd7d2201ef71db4c5f4e455008f017967bf (2025-04-22; copy in
``shared/datasets/spec-bench/leaderboard-a100-vicuna-7b.md``), section "Leaderboard on A100 /
Vicuna-7B-v1.3" (one A100 80GB, PyTorch 2.5.1, greedy, FP16, batch size 1): SpS speedups
multi-turn conversation 1.66x, translation 1.13x, summarization 1.71x, question answering
1.50x, mathematical reasoning 1.47x, retrieval-aug. generation 1.66x, overall 1.52x;
#mean accepted tokens 2.28 (np.mean over every generation step of every answer,
``evaluation/speed.py``).

How the numbers become a model:

- Draft length: the fit places the levels for *static k = 5* (issue 10). Spec-Bench's SpS is
  Hugging Face assisted generation (``evaluation/inference_sps.py``; ``requirements.txt`` pins
  transformers 4.37.1), greedy (temperature 0: token-equality verification), whose default
  draft length is ``num_assistant_tokens=5`` under the "heuristic" schedule (+2 after a step
  whose drafts were all accepted, -1 otherwise, floor 1), not a static 5; transformers >= 4.45
  defaults to up to 20 tokens with a confidence-0.4 early stop instead. The static-k=5 reading
  is therefore a modelling choice; ``docs/specbench_batch1.md`` shows what the heuristic
  schedule gives with this preset.
- What is matched: Spec-Bench's 2.28 is a ratio of sums (tokens / steps over all answers), so
  long answers and low-acceptance answers weigh more, and each answer's last step is cut at
  its end. The preset is fitted on the same measure for the simulator's own Spec-Bench
  workload at batch 1: one request per question of ``origin-spec-bench.jsonl`` (80 per task;
  the 8 MT-Bench categories x 10), output lengths from ``sim.workload.lengths`` (its
  per-category log-normal model), the first token from prefill, then decode steps at k = 5.
  ``sim.acceptance.finite_length`` computes that expectation exactly (no sampling).
- Per category: at batch 1 and a fixed k a decode step costs the same whatever the category
  (the context changes it by < 1 % in the latency model), so TPOT speedups are proportional
  to tokens per step. Task c's target is therefore ``tps_c = a * S_c`` (S_c its published
  speedup), with ``a`` chosen so that the workload total is 2.28:
  ``2.28 = sum_c T_c / sum_c (T_c / tps_c)`` (T_c = the task's expected decode tokens), i.e.
  ``a = 2.28 * sum_c (T_c / S_c) / sum_c T_c``. Each task's category mean level is solved so
  that its requests reach ``tps_c``. The default category "" (traces without categories: Azure,
  Mooncake) gets the one mean level with which the whole Spec-Bench workload reaches 2.28.
- Modelling assumptions not published by Spec-Bench (stated, not measured): per-request level
  concentration 12 (level s.d. ~0.14); per-token confidence concentration 2 (spread-out
  confidences); a mildly over-confident calibration curve; position decay falling linearly
  from 1.0 to 0.902 over 8 positions, i.e. the conditional acceptance drift 0.82 -> 0.74 that
  DESIGN.md section 5 reports for measured acceptance.

Spec-Bench's category names map as follows: MT-Bench's writing, roleplay, reasoning, math,
coding, extraction, stem, humanities -> multi-turn conversation; translation; summarization;
qa; math_reasoning; rag.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from sim.acceptance.base import AcceptanceModel, FixedAcceptance
from sim.acceptance.model import (
    AcceptanceParams,
    CalibrationCurve,
    CategoryProfile,
    ParametricAcceptance,
    normalise_category,
)
from sim.errors import ConfigError

SPEC_BENCH_LEADERBOARD_COMMIT = "fd2c1cd7d2201ef71db4c5f4e455008f017967bf"
SPEC_BENCH_SOURCE = (
    f"Spec-Bench leaderboard (hemingkx/Spec-Bench Leaderboard.md @{SPEC_BENCH_LEADERBOARD_COMMIT[:7]}, "
    "A100 80GB, Vicuna-7B-v1.3, greedy, FP16, batch 1): SpS (vicuna-68m) speedups MT 1.66x, "
    "translation 1.13x, summarization 1.71x, QA 1.50x, math 1.47x, RAG 1.66x, overall 1.52x; "
    "2.28 mean accepted tokens; levels placed so that the simulator's Spec-Bench workload at "
    "batch 1 and static k=5 emits 2.28 tokens per decode step (ratio of sums, last steps cut), "
    "per-task tokens per step proportional to the published speedups")

#: SpS speedups on Spec-Bench (A100, Vicuna-7B-v1.3), by Spec-Bench task.
SPEC_BENCH_SPS_SPEEDUP: dict[str, float] = {
    "multi_turn": 1.66,
    "translation": 1.13,
    "summarization": 1.71,
    "qa": 1.50,
    "math_reasoning": 1.47,
    "rag": 1.66,
}
SPEC_BENCH_SPS_OVERALL_SPEEDUP = 1.52
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

#: Questions per category in Spec-Bench's question.jsonl (``origin-spec-bench.jsonl``).
SPEC_BENCH_QUESTIONS: dict[str, int] = {
    **{c: 10 for c in ("writing", "roleplay", "reasoning", "math", "coding", "extraction",
                       "stem", "humanities")},
    "translation": 80, "summarization": 80, "qa": 80, "math_reasoning": 80, "rag": 80,
}


def spec_bench_task_mixtures() -> dict[str, list[tuple[float, object]]]:
    """Per task, (questions, output length pmf) of its categories in the simulator's Spec-Bench
    workload (output lengths: ``sim.workload.lengths``' per-category log-normal model)."""
    from sim.acceptance.finite_length import lognormal_length_pmf
    from sim.workload.lengths import MAX_OUTPUT_TOKENS, OTHER_OUTPUT, SPEC_BENCH_OUTPUT

    mixtures: dict[str, list[tuple[float, object]]] = {t: [] for t in SPEC_BENCH_SPS_SPEEDUP}
    for cat, count in SPEC_BENCH_QUESTIONS.items():
        median, sigma = SPEC_BENCH_OUTPUT.get(cat, OTHER_OUTPUT)
        mixtures[SPEC_BENCH_CATEGORY_TASK[cat]].append(
            (float(count), lognormal_length_pmf(median, sigma, MAX_OUTPUT_TOKENS)))
    return mixtures


def spec_bench_targets() -> dict[str, float]:
    """Tokens per decode step each task's requests must reach at static k = 5 (``a * S_c``,
    see the module docstring), and the workload total under "" (2.28)."""
    from sim.acceptance.finite_length import mixture_decode_tokens

    tokens = {task: mixture_decode_tokens(mix) for task, mix in spec_bench_task_mixtures().items()}
    scale = (SPEC_BENCH_SPS_MEAN_ACCEPTED
             * sum(tokens[t] / s for t, s in SPEC_BENCH_SPS_SPEEDUP.items()) / sum(tokens.values()))
    out = {task: scale * s for task, s in SPEC_BENCH_SPS_SPEEDUP.items()}
    out[""] = SPEC_BENCH_SPS_MEAN_ACCEPTED
    return out


def _spec_bench_fit_key() -> dict:
    """Everything the preset's fit depends on: the leaderboard numbers, the workload's
    questions and output-length model, the model's shape, and the fitting code itself."""
    from sim.workload import lengths

    code = hashlib.sha256()
    for module in (Path(__file__), Path(__file__).with_name("finite_length.py")):
        code.update(module.read_bytes())
    return {"fit": "spec-bench-vicuna-68m", "speedup": SPEC_BENCH_SPS_SPEEDUP,
            "mean_accepted": SPEC_BENCH_SPS_MEAN_ACCEPTED, "k": SPEC_BENCH_SPS_DRAFT_K,
            "concentration": SPEC_BENCH_LEVEL_CONCENTRATION,
            "decay": SPEC_BENCH_POSITION_DECAY, "questions": SPEC_BENCH_QUESTIONS,
            "tasks": SPEC_BENCH_CATEGORY_TASK, "outputs": lengths.SPEC_BENCH_OUTPUT,
            "other_output": lengths.OTHER_OUTPUT, "max_output": lengths.MAX_OUTPUT_TOKENS,
            "code_sha256": code.hexdigest()}


def _spec_bench_fit() -> dict[str, np.ndarray]:
    """The fit's per-task targets and levels (tasks in sorted order, "" first)."""
    from sim.acceptance.finite_length import mean_for_tokens_per_step

    mixtures = spec_bench_task_mixtures()
    targets = spec_bench_targets()
    wanted = {task: (targets[task], mix) for task, mix in mixtures.items()}
    wanted[""] = (targets[""], [part for mix in mixtures.values() for part in mix])
    levels = mean_for_tokens_per_step(wanted, SPEC_BENCH_LEVEL_CONCENTRATION,
                                      SPEC_BENCH_SPS_DRAFT_K, SPEC_BENCH_POSITION_DECAY)
    tasks = sorted(wanted)
    return {"targets": np.array([targets[t] for t in tasks]),
            "levels": np.array([levels[t] for t in tasks])}


def spec_bench_vicuna_68m() -> AcceptanceParams:
    """The ``spec-bench-vicuna-68m`` preset (see the module docstring for the derivation).

    The fit (about 0.1 s) is kept in the acceptance-table cache (``table_cache``), keyed by
    everything it depends on, so a warm command reads it back."""
    from sim.acceptance.table_cache import load_or_build

    tasks = sorted([*SPEC_BENCH_SPS_SPEEDUP, ""])
    fit = load_or_build(_spec_bench_fit_key(), _spec_bench_fit)
    by_task = dict(zip(tasks, fit["targets"].tolist()))
    targets = {task: by_task[task] for task in [*SPEC_BENCH_SPS_SPEEDUP, ""]}  # their order
    levels = dict(zip(tasks, fit["levels"].tolist()))
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
        meta={"leaderboard_commit": SPEC_BENCH_LEADERBOARD_COMMIT,
              "draft_k": SPEC_BENCH_SPS_DRAFT_K,
              "target_tokens_per_step_batch1": {t: round(v, 4) for t, v in targets.items()}},
    )


#: Level concentration of a ``positions:`` model unless given (the Spec-Bench preset's).
POSITIONS_LEVEL_CONCENTRATION = SPEC_BENCH_LEVEL_CONCENTRATION
POSITIONS_SOURCE = (
    "per-position acceptance rates S_j = P(accepted length >= j), as engines log them (vLLM "
    "'Per-position acceptance rate', vllm-project/vllm PR #24127: mean acceptance length = "
    "1 + sum S_j; llama.cpp PR #24536 'acceptance rate per position'); mean level S_1, "
    "position decay solved so that E[lam^j] * prod_{m<j} decay_m = S_j")


def per_position_params(survival, concentration: float | None = POSITIONS_LEVEL_CONCENTRATION
                        ) -> AcceptanceParams:
    """An acceptance model whose per-position acceptance rates are ``survival``.

    ``survival[j-1]`` = S_j, the fraction of drafts whose token j is accepted (so the tokens
    before it are too): what vLLM logs as "Per-position acceptance rate" and llama.cpp as
    "acceptance rate per position" (the issue's example: 0.66 / 0.36 / 0.17). In the
    parametric model (``sim.acceptance.model``) a request's token j is accepted with
    probability lam * decay[j-1] given its level lam, independently of the earlier tokens, so
    S_j = E[lam^j] * prod_{m<j} decay[m]: the level mean is S_1 and the decays follow from the
    Beta moments (``concentration`` None: every request has level S_1 exactly). Positions past
    the last given one keep the last decay factor. The calibration curve is the identity and the
    confidence concentration the Spec-Bench preset's 2 (assumptions, as there). Refused: rates
    outside (0, 1), increasing rates, and rates that fall more slowly than the level spread
    allows (a decay above 1; a smaller spread or ``none`` may fit).
    """
    from sim.acceptance.model import _beta_moments

    rates = [float(v) for v in survival]
    if not 1 <= len(rates) <= 64:
        raise ConfigError(f"per-position acceptance needs 1..64 rates, got {len(rates)}")
    if any(not 0.0 < v < 1.0 for v in rates):
        raise ConfigError(f"per-position acceptance rates must be in (0, 1), got {rates}")
    if any(b > a for a, b in zip(rates, rates[1:])):
        raise ConfigError(f"per-position acceptance rates cannot increase with the position "
                          f"(a token is accepted only after the ones before it), got {rates}")
    moments = _beta_moments(rates[0], concentration, len(rates))
    cumulative = [s / moments[j + 1] for j, s in enumerate(rates)]  # prod_{m<=j} decay_m
    decay = [1.0] + [b / a for a, b in zip(cumulative, cumulative[1:])]
    if any(d > 1.0 + 1e-12 for d in decay):
        raise ConfigError(f"per-position acceptance rates {rates} fall more slowly than a level "
                          f"spread of concentration {concentration} allows; use a larger "
                          f"concentration or none")
    decay = [min(1.0, d) for d in decay]
    return AcceptanceParams(
        name=positions_name(rates, concentration),
        source=POSITIONS_SOURCE,
        categories={"": CategoryProfile(rates[0], concentration)},
        calibration=CalibrationCurve(),
        confidence_concentration=SPEC_BENCH_CONFIDENCE_CONCENTRATION,
        position_decay=tuple(decay),
        meta={"per_position_acceptance": rates},
    )


def positions_name(rates, concentration: float | None) -> str:
    name = "positions:" + "/".join(f"{v:g}" for v in rates)
    if concentration != POSITIONS_LEVEL_CONCENTRATION:
        name += ",none" if concentration is None else f",{concentration:g}"
    return name


def parse_positions(spec: str) -> AcceptanceParams:
    """``positions:S1/S2/...[,KAPPA|none]`` -> ``per_position_params``."""
    body = spec.partition(":")[2].strip()
    rates_text, comma, kappa_text = body.partition(",")
    try:
        rates = [float(v) for v in rates_text.split("/")]
    except ValueError:
        raise ConfigError(f"acceptance 'positions:S1/S2/...' needs numbers, e.g. "
                          f"positions:0.66/0.36/0.17, got {spec!r}") from None
    concentration: float | None = POSITIONS_LEVEL_CONCENTRATION
    if comma:
        kappa = kappa_text.strip().lower()
        if kappa == "none":
            concentration = None
        else:
            try:
                concentration = float(kappa)
            except ValueError:
                raise ConfigError(f"acceptance 'positions:...,KAPPA': KAPPA must be a positive "
                                  f"number or none, got {kappa_text!r}") from None
            if not (concentration > 0 and concentration < float("inf")):
                raise ConfigError(f"acceptance 'positions:...,KAPPA': KAPPA must be a positive "
                                  f"number or none, got {kappa_text!r}")
    return per_position_params(rates, concentration)


#: Preset name -> builder of its parameters (built on demand, never at import).
PRESETS: dict[str, Callable[[], AcceptanceParams]] = {
    "spec-bench-vicuna-68m": spec_bench_vicuna_68m,
}


def _method_preset(method: str) -> Callable[[], AcceptanceParams]:
    def build() -> AcceptanceParams:
        from sim.drafters.acceptance import method_acceptance_params
        return method_acceptance_params(method)
    return build


def _register_method_presets() -> None:
    """``spec-bench-<method>`` for every speculative method besides the draft model
    (``sim.drafters.acceptance``: what is fitted to what)."""
    from sim.drafters.presets import METHODS
    for name, method in METHODS.items():
        if not method.is_draft_model:
            PRESETS[f"spec-bench-{name}"] = _method_preset(name)


_register_method_presets()


@lru_cache(maxsize=None)
def _preset_params(name: str) -> AcceptanceParams:
    return PRESETS[name]()


def preset_names() -> tuple[str, ...]:
    """Names ``make_acceptance`` accepts besides ``fixed:ALPHA`` and file paths."""
    return tuple(PRESETS)


def make_acceptance(name_or_path: str | Path) -> AcceptanceModel:
    """Acceptance model from a preset name, ``fixed:ALPHA`` (0 <= ALPHA <= 1),
    ``positions:S1/S2/...[,KAPPA]`` (per-position acceptance rates, ``per_position_params``),
    or a JSON file.

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
    if key.startswith("positions:"):
        return ParametricAcceptance(parse_positions(key))
    path = Path(spec)
    if path.suffix.lower() == ".json" or path.is_file():
        from sim.acceptance.io import load_acceptance
        return load_acceptance(path)
    raise ConfigError(f"unknown acceptance model {spec!r}; use one of "
                      f"{', '.join(preset_names())}, fixed:ALPHA, positions:S1/S2/..., "
                      "or a .json file")


def check_category(model: AcceptanceModel, category: str) -> None:
    """Refuse a requested acceptance category the model does not define (a typo would
    otherwise fall back silently to the model's default profile). Models without categories
    (``fixed:ALPHA``) take any category; the empty category is always the default."""
    known = getattr(model, "category_names", None)
    if not category or known is None:
        return
    from sim.acceptance.model import normalise_category
    if normalise_category(category) not in known:
        raise ConfigError(f"unknown acceptance category {category!r} for {model.name}; "
                          f"known: {', '.join(sorted(known))} (or none for the default)")


def unknown_categories(model: AcceptanceModel, counts: Mapping[str, int]) -> dict[str, int]:
    """The request categories (as written, with their request counts, in ``counts``' order)
    that ``model`` has no profile for and so gives its default profile (the category ``""``)
    -- what ``check_category`` refuses for ``--category``, found in a trace. Empty for models
    with one profile for every request (``fixed:ALPHA``, ``positions:...``) and for requests
    without a category."""
    known = getattr(model, "category_names", None)
    if not known:
        return {}
    return {category: int(n) for category, n in counts.items()
            if normalise_category(category) and normalise_category(category) not in known}

