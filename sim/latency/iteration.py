"""One iteration-duration function: the serving engine turns an iteration's plan into forward
passes, the latency model prices the passes (DESIGN.md §4 "Verification engines").

The simulator's server, the policies' cost model (``sim.policies.goodput.IterationCost``),
``adaspec-validate`` and the real engine's log all go through this module, so an iteration's
duration is computed in one place from one recorded shape.

Serving engines (a named choice, ``SimConfig.engine``; see docs/engines.md):

* ``single-pass`` (default; vLLM V1, SGLang, TensorRT-LLM): verification is one target pass
  over the B sequences and their B + sum k_i query positions; each request's KV cache is read
  once (``target_verify_s(B, pad(B + sum k_i), sum L_i)``). Draft step s runs over the n_s
  requests still drafting, reading sum L_i + s * n_s draft KV positions.
* ``vllm-0.6`` (batch expansion, the engine of the AdaSpec and SmartSpec artifacts, vLLM 0.6.3
  with the MQA scorer off): ``BatchExpansionTop1Scorer`` turns each verified request into
  k_i + 1 one-token rows, row j reading L_i + j KV positions, so verification is exactly a
  decode pass over R = sum (k_i + 1) rows that read sum_i [(k_i + 1) L_i + k_i (k_i + 1) / 2]
  positions: ``target_verify_s(R, pad(R), that sum)``. The CUDA-graph padding applies to R
  (the expanded batch is an ordinary decode batch). Drafting: ``MultiStepWorker.
  _expand_execute_model_request`` adds, for every sequence that received a bonus token in its
  previous step (``SpecDecodeWorker._track_sequences_with_bonus_tokens``: all its proposals
  accepted), a copy without the bonus token, and runs *every* draft step on that expanded
  batch: step s has n_s + b_s rows (b_s bonus requests among the n_s drafting), a copy row
  reading L_i - 1 + s positions. (vllm-project/vllm, vllm/spec_decode/multi_step_worker.py,
  batch_expansion.py, spec_decode_worker.py, v0.6.x.)

A decode iteration's duration is ``[s > 0] o_draft + sum_s draft_step_s(pad(rows_s), kv_s)
+ target_verify_s(seqs, pad(tokens), kv)``; a prefill iteration's is the target prefill plus,
for policies with a draft model, the draft prefill. Methods other than a draft model
(``sim.drafters``: feature heads, Medusa/Hydra heads, prompt lookup, lookahead) record the
query tokens of each drafting step (``DecodeShape.draft_tokens``: a token tree's frontier);
their step s costs ``draft_tree_step_s(rows_s, pad(tokens_s), kv_s, s)`` of the method's
latency model, and their verification pass is the same target pass over the tree's
positions (``sim.drafters.plan`` builds the shapes for both engines).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sim.compiled.jit import jitable
from sim.errors import ConfigError

SINGLE_PASS = "single-pass"
VLLM_06 = "vllm-0.6"
ENGINES: tuple[str, ...] = (SINGLE_PASS, VLLM_06)
DEFAULT_ENGINE = SINGLE_PASS


def check_engine(engine: str) -> str:
    """The engine name, or a ConfigError naming the choices (the one validation)."""
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    return engine


@dataclass(frozen=True, slots=True)
class DecodeShape:
    """The forward passes of one decode iteration, as recorded in iterations.csv.

    ``context_tokens``: sum of the batch's KV lengths before the pass (sum L_i).
    ``verify_rows``: sequences in the target pass (B single-pass; sum (k_i + 1) batch
    expansion); ``verify_tokens``: query positions in it (B + sum k_i in both);
    ``verify_kv_tokens``: KV positions it reads. ``draft_rows[s]`` / ``draft_kv_tokens[s]``:
    rows and KV positions of draft step s (empty when the iteration did not draft).
    """

    batch: int
    context_tokens: int
    verify_rows: int
    verify_tokens: int
    verify_kv_tokens: int
    draft_rows: tuple[int, ...] = ()
    draft_kv_tokens: tuple[int, ...] = ()
    # query tokens per draft step when a drafter feeds several tokens of each row through a
    # step (a token tree's frontier, ``sim.drafters``); () = one token per row (draft models)
    draft_tokens: tuple[int, ...] = ()


# ---- pricing: the passes of a shape ------------------------------------------------------------
def verify_pass_s(latency, padding, rows: int, tokens: int, kv_tokens: int) -> float:
    """The target verification (or plain decode) pass, padded to a graph size."""
    return latency.target_verify_s(rows, padding.pad(tokens), kv_tokens)


def draft_pass_s(latency, padding, rows: int, kv_tokens: int) -> float:
    """One draft step over ``rows`` one-token rows, padded to a graph size."""
    return latency.draft_step_s(padding.pad(rows), kv_tokens) if rows > 0 else 0.0


def draft_tree_pass_s(latency, padding, rows: int, tokens: int, kv_tokens: float,
                      step: int) -> float:
    """Drafting step ``step`` of a method's drafter (``sim.drafters``) feeding ``tokens``
    query tokens of ``rows`` sequences, padded to a graph size; 0 for an empty step."""
    if rows <= 0 or tokens <= 0:
        return 0.0
    return latency.draft_tree_step_s(rows, padding.pad(tokens), kv_tokens, step)


def decode_iteration_s(latency, padding, shape: DecodeShape) -> float:
    """Seconds of a decode iteration of this shape under ``latency`` (truth or estimator)."""
    duration = 0.0
    if shape.draft_rows and shape.draft_tokens:  # a method's drafter (sim.drafters)
        duration = latency.draft_overhead_s
        for step, (rows, tokens, kv) in enumerate(zip(shape.draft_rows, shape.draft_tokens,
                                                      shape.draft_kv_tokens)):
            duration += draft_tree_pass_s(latency, padding, rows, tokens, kv, step)
    elif shape.draft_rows:
        duration = latency.draft_overhead_s
        for rows, kv in zip(shape.draft_rows, shape.draft_kv_tokens):
            duration += draft_pass_s(latency, padding, rows, kv)
    return duration + verify_pass_s(latency, padding, shape.verify_rows, shape.verify_tokens,
                                    shape.verify_kv_tokens)


def prefill_iteration_s(latency, prompt_tokens: Sequence[int], uses_draft: bool,
                        cached_tokens: Sequence[int] | None = None) -> float:
    """Seconds of a prefill iteration over prompt chunks of these lengths; ``cached_tokens[i]``
    is how many tokens of chunk i's prompt are already in the KV cache (chunked prefill)."""
    duration = latency.target_prefill_s(prompt_tokens, cached_tokens)
    if uses_draft:
        duration += latency.draft_prefill_s(prompt_tokens, cached_tokens)
    return duration


# ---- shapes: what an engine runs for a plan ----------------------------------------------------
@jitable
def uniform_expanded_kv_tokens(batch: int, context_tokens: int, k: int) -> int:
    """``expanded_kv_tokens`` when every request verifies k tokens: (k+1) sum L + B k(k+1)/2."""
    return (k + 1) * context_tokens + batch * k * (k + 1) // 2


def expanded_kv_tokens(contexts: Sequence[int], verify: Sequence[int]) -> int:
    """KV positions batch expansion reads: sum_i (k_i + 1) L_i + k_i (k_i + 1) / 2."""
    return sum((k + 1) * c + k * (k + 1) // 2 for c, k in zip(contexts, verify))


def verify_shape(engine: str, batch: int, context_tokens: int, verify_total: int,
                 contexts: Sequence[int] | None = None, verify: Sequence[int] | None = None
                 ) -> tuple[int, int, int]:
    """(rows, tokens, KV tokens) of the verification pass of B requests verifying
    ``verify_total`` = sum k_i drafted tokens. Batch expansion needs the per-request
    ``contexts`` and ``verify`` lengths unless every request verifies the same k
    (``verify=None`` means uniform; then ``verify_total`` must be a multiple of B)."""
    tokens = batch + verify_total
    if engine == SINGLE_PASS or verify_total == 0:
        return (batch if engine == SINGLE_PASS else tokens), tokens, context_tokens
    if verify is None:
        k, rest = divmod(verify_total, batch)
        if rest:
            raise ValueError("non-uniform verify lengths need the per-request lengths")
        return tokens, tokens, uniform_expanded_kv_tokens(batch, context_tokens, k)
    return tokens, tokens, expanded_kv_tokens(contexts, verify)


@jitable
def draft_step_rows(step: int, drafting: int, drafting_context: int, bonus_rows: int = 0,
                    bonus_context: int = 0) -> tuple[int, int]:
    """(rows, KV tokens) of draft step ``step``: the ``drafting`` requests (summed context
    ``drafting_context``) and, under batch expansion, ``bonus_rows`` copy rows (their
    requests' L_i - 1 summed in ``bonus_context``); every row's draft KV has grown by
    ``step`` tokens."""
    rows = drafting + bonus_rows
    return rows, drafting_context + bonus_context + step * rows


def draft_shape(drafting: Sequence[int], drafting_context: Sequence[int],
                bonus_rows: Sequence[int] = (), bonus_context: Sequence[int] = ()
                ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(rows, KV tokens) per draft step (``draft_step_rows`` of each step; no bonus rows
    when ``bonus_rows`` is empty)."""
    if not bonus_rows:
        return tuple(drafting), tuple(c + s * n for s, (n, c)
                                      in enumerate(zip(drafting, drafting_context)))
    steps = [draft_step_rows(s, n, c, b, bc) for s, (n, c, b, bc)
             in enumerate(zip(drafting, drafting_context, bonus_rows, bonus_context))]
    return tuple(r for r, _ in steps), tuple(kv for _, kv in steps)


# ---- drafter upkeep: draft-model work outside the drafting steps (engine adaptive rules) -------
# A separate, optional addition (issue 14): the production engines' adaptive rules
# (``sim.policies.engine_rules``) keep a draft model configured while they choose k = 0, and
# users report what that costs. The server adds ``drafter_upkeep_s`` of the policy's
# ``drafter_upkeep()`` to a decode iteration's duration; policies without that method (every
# other policy) are unaffected, and the recorded shape (iterations.csv) does not include it.
@dataclass(frozen=True, slots=True)
class DrafterUpkeep:
    """Draft-model work an iteration runs besides its drafting steps.

    ``setup``: the proposer is called although nothing is drafted (``latency.draft_overhead_s``
    once). ``sync_rows`` / ``sync_kv_tokens``: one draft pass over these one-token rows reading
    this many draft KV positions (the drafter's KV kept in sync at k = 0). ``catchup_tokens[i]``
    / ``catchup_cached[i]``: request i's draft prefill over the tokens generated while
    speculation was off, after that many positions already in the draft KV. ``tax``: a fraction
    of the iteration's time (passes and upkeep) added on top (graph-mode and per-step costs of
    a speculative engine configuration that users report; 0 = none).
    """

    setup: bool = False
    sync_rows: int = 0
    sync_kv_tokens: int = 0
    catchup_tokens: tuple[int, ...] = ()
    catchup_cached: tuple[int, ...] = ()
    tax: float = 0.0


def drafter_upkeep_s(latency, padding, upkeep: DrafterUpkeep, iteration_s: float = 0.0) -> float:
    """Seconds ``upkeep`` adds to a decode iteration whose passes take ``iteration_s``."""
    extra = latency.draft_overhead_s if upkeep.setup else 0.0
    if upkeep.sync_rows:
        extra += draft_pass_s(latency, padding, upkeep.sync_rows, upkeep.sync_kv_tokens)
    if upkeep.catchup_tokens:
        extra += latency.draft_prefill_s(list(upkeep.catchup_tokens),
                                         list(upkeep.catchup_cached))
    return upkeep_with_tax_s(extra, upkeep.tax, iteration_s)


@jitable
def upkeep_with_tax_s(extra_s, tax, iteration_s):
    """Seconds of an upkeep whose own work takes ``extra_s``, with its ``tax``: a fraction of
    the iteration's whole time (its passes, ``iteration_s``, and the upkeep) on top. The
    protocol path (``drafter_upkeep_s``) and the compiled loop call this."""
    return extra_s + tax * (iteration_s + extra_s)
