"""Named speculative methods (``--method``): what a drafting step costs on the hardware model
and what it proposes, with the sources of every number.

A method is one of six kinds:

* ``draft-model`` (default, today's behaviour): a separate small model (``--draft``) drafts a
  chain one token per step; priced and calibrated as before (``sim.acceptance.presets``).
* ``feature-head`` (EAGLE, EAGLE-2, EAGLE-3): one decoder layer of the target's width (plus an
  input FC over the target's features and the token embedding) and the target's own LM head,
  run sequentially, one step per tree depth; step s feeds the ``expand[s]`` nodes of depth s
  of each request through the head.
* ``parallel-heads`` (Medusa): H heads (ResBlocks plus an LM head each) on the target's last
  hidden state, all in one pass; a static tree.
* ``sequential-heads`` (Hydra): a one-layer prefix attention over the new tokens, then one MLP
  head (with its own LM head) per depth, each conditioned on the tokens drafted before it.
* ``prompt-lookup`` (PLD): the continuation of the last n-gram's earlier occurrence in the
  prompt and output so far; no model, CPU only.
* ``lookahead`` (Lookahead decoding): the target pass itself carries a window of Jacobi
  guesses (W x (N - 1) positions) and G candidate n-grams from a pool (G x (N - 1) positions);
  no drafting pass.

Sources (the Spec-Bench runner is hemingkx/Spec-Bench, whose leaderboard
``../shared/datasets/spec-bench/leaderboard-a100-vicuna-7b.md`` @fd2c1cd is the calibration
reference; every runner's defaults below were read in ``evaluation/inference_*.py`` and
``eval.sh`` of that repository):

* EAGLE: Li et al., arXiv 2401.15077; Spec-Bench ``inference_eagle.py``: static tree
  ``mc_sim_7b_63`` of EAGLE's ``choices.py`` (25 nodes, depth 5); the Vicuna-7B head has
  0.24 B parameters (EAGLE README: one decoder layer + the 2h -> h FC; embedding and LM head
  are the target's).
* EAGLE-2: Li et al., arXiv 2406.16858; Spec-Bench ``inference_eagle2.py``: ``total_token=60,
  depth=5, top_k=10``: a first head pass over the new tokens, then ``depth`` passes over the
  top-10 frontier, the 60 highest-scoring nodes reranked into the tree (6 levels). EAGLE-2's
  observation that the draft's confidence approximates the acceptance rate is why the
  EAGLE-family acceptance presets use the identity calibration curve.
* EAGLE-3: Li et al., arXiv 2503.01840; Spec-Bench ``inference_eagle3.py``: the same
  ``60 / 5 / 10`` tree; the head fuses three target layers (a 3h -> h FC). Not on the
  reference leaderboard: its acceptance is an assumption (``sim.drafters.acceptance``).
* Medusa: Cai et al., arXiv 2401.10774; Spec-Bench ``inference_medusa.py``: Medusa-1 heads of
  ``medusa-vicuna-7b-v1.3``, tree ``mc_sim_7b_63`` of Medusa's ``medusa_choices.py``
  (63 nodes, depth 4). One ResBlock and one LM head per head (Medusa-1's architecture);
  4 heads, one per tree depth (assumption: a checkpoint with more heads reads one more LM
  head per extra head).
* Hydra: Ankner et al., arXiv 2402.05109; Spec-Bench ``inference_hydra.py`` with
  ``hydra_choices.py`` ``mc_sim_7b_63`` (the same 63-node tree) and the grounded prefix-MLP
  head (``model/hydra/hydra_heads/prefix_mlp_head.py``: a one-layer Llama prefix over the
  new tokens, per head an MLP of ResBlocks whose first takes the prefix and the drafted
  tokens' embeddings, and an LM head per head). 4 ResBlocks per head (assumption: Hydra++'s
  MLP depth).
* PLD: apoorvumang/prompt-lookup-decoding; Spec-Bench ``model/pld/pld.py``:
  ``max_ngram_size=3``, ``num_pred_tokens=10``; the lookup is a handful of small tensor ops
  and one device sync per step.
* Lookahead: Fu et al., arXiv 2402.02057; Spec-Bench ``eval.sh``: ``--level 5 --window 7
  --guess 7`` (N = 5, W = 7, G = 7): 1 + 7 x 4 + 7 x 4 = 57 positions per step.
* Spec-Bench itself: Xia et al., arXiv 2401.07851.

Costs this module states as assumptions (not measured here): the CPU time of a prompt lookup
(``PLD_CPU_ITERATION_S`` + ``PLD_CPU_PER_REQUEST_S``) and of lookahead's n-gram pool update
(``LOOKAHEAD_CPU_ITERATION_S`` + per request); the GPU drafters pay the latency model's
per-pass overheads (``sim.latency.overhead``: 1 ms per drafter pass, 1.5 ms per drafting
iteration), exactly as the draft model does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from sim.drafters.tree import TreeShape
from sim.errors import ConfigError

DRAFT_MODEL = "draft-model"
FEATURE_HEAD = "feature-head"
PARALLEL_HEADS = "parallel-heads"
SEQUENTIAL_HEADS = "sequential-heads"
PROMPT_LOOKUP = "prompt-lookup"
LOOKAHEAD = "lookahead"
KINDS = (DRAFT_MODEL, FEATURE_HEAD, PARALLEL_HEADS, SEQUENTIAL_HEADS, PROMPT_LOOKUP, LOOKAHEAD)

DEFAULT_METHOD = DRAFT_MODEL

#: CPU seconds of one prompt lookup per iteration, and per request in it (assumption: a few
#: small tensor operations and one device-to-host sync per step, as Spec-Bench's
#: ``find_candidate_pred_tokens``; vLLM V1's n-gram proposer does the same search in numba
#: over each request's token ids).
PLD_CPU_ITERATION_S = 0.3e-3
PLD_CPU_PER_REQUEST_S = 0.02e-3
#: CPU seconds of lookahead decoding's n-gram pool update and candidate assembly per
#: iteration and per request (assumption: the same bookkeeping cost as a GPU proposer's
#: drafting iteration, ``sim.latency.overhead.DEFAULT_DRAFT_OVERHEAD_S``, which it replaces).
LOOKAHEAD_CPU_ITERATION_S = 1.5e-3
LOOKAHEAD_CPU_PER_REQUEST_S = 0.05e-3

# ---- the static trees ----------------------------------------------------------------------
#: EAGLE's ``mc_sim_7b_63`` (SafeAILab/EAGLE ``eagle/model/choices.py``, copied in Spec-Bench
#: ``model/eagle3/choices.py``): 25 nodes, widths 4, 8, 8, 3, 2.
EAGLE_TREE_CHOICES = (
    (0,), (1,), (2,), (3,), (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0), (2, 1), (3, 0),
    (0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0), (0, 1, 1), (0, 2, 0), (0, 2, 1), (1, 0, 0),
    (0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 0, 2), (0, 0, 0, 0, 0), (0, 0, 0, 0, 1))
#: Medusa's ``mc_sim_7b_63`` (FasterDecoding/Medusa ``medusa_choices.py``; the same list in
#: Spec-Bench ``model/hydra/hydra_choices.py``): 63 nodes, widths 10, 28, 23, 2.
MEDUSA_TREE_CHOICES = (
    (0,), (0, 0), (1,), (0, 1), (2,), (0, 0, 0), (1, 0), (0, 2), (3,), (0, 3), (4,), (0, 4),
    (2, 0), (0, 5), (0, 0, 1), (5,), (0, 6), (6,), (0, 7), (0, 1, 0), (1, 1), (7,), (0, 8),
    (0, 0, 2), (3, 0), (0, 9), (8,), (9,), (1, 0, 0), (0, 2, 0), (1, 2), (0, 0, 3), (4, 0),
    (2, 1), (0, 0, 4), (0, 0, 5), (0, 0, 0, 0), (0, 1, 1), (0, 0, 6), (0, 3, 0), (5, 0),
    (1, 3), (0, 0, 7), (0, 0, 8), (0, 0, 9), (6, 0), (0, 4, 0), (1, 4), (7, 0), (0, 1, 2),
    (2, 0, 0), (3, 1), (2, 2), (8, 0), (0, 5, 0), (1, 5), (1, 0, 1), (0, 2, 1), (9, 0),
    (0, 6, 0), (0, 0, 0, 1), (1, 6), (0, 7, 0))

#: EAGLE-2's dynamic tree at Spec-Bench's settings: ``top_k = 10`` candidates expanded at each
#: of ``depth + 1 = 6`` levels, reranked to ``total_token = 60`` nodes. Which depths the 60
#: nodes land on depends on the confidences; an even 10 per level is this preset's assumption.
EAGLE2_TOP_K = 10
EAGLE2_DEPTH = 5
EAGLE2_TOTAL_TOKENS = 60
EAGLE2_TREE = TreeShape((10,) * (EAGLE2_DEPTH + 1), (1,) + (EAGLE2_TOP_K,) * EAGLE2_DEPTH)

PLD_NGRAM = 3
PLD_TOKENS = 10
LOOKAHEAD_N, LOOKAHEAD_W, LOOKAHEAD_G = 5, 7, 7


@dataclass(frozen=True)
class MethodPreset:
    """One speculative method: its kind, the shape it proposes and what drafting costs.

    ``tree``: nodes per depth and per drafting step (None for the draft model, whose chain
    length the policy sets). ``step_tokens[s]``: tokens per request the drafter processes in
    step s (0: the step is free; Medusa's heads all run in step 0). ``head_*`` describe the
    GPU drafter in units of the target's shapes (hidden size h, vocabulary V):
    ``head_layers`` decoder layers of the target's width, ``head_fc_inputs`` the input width
    of the FC in front of them (in h; 0 = none), ``heads`` LM heads with ``head_resblocks``
    ResBlocks (h x h) each (``own_lm_heads``: each head has its own h x V projection; else
    the target's LM head is reused). ``cpu_*``: CPU seconds per drafting iteration and per
    request in it (CPU drafters). ``has_confidence``: the drafter reports a probability per
    drafted token (policies that decide on confidences need it). ``fit_depth``: the depth
    Spec-Bench verified at (the acceptance fit's k).
    """

    name: str
    kind: str
    summary: str
    sources: tuple[str, ...]
    tree: TreeShape | None = None
    step_tokens: tuple[int, ...] = ()
    head_layers: int = 0
    head_fc_inputs: int = 0
    heads: int = 0
    head_resblocks: int = 0
    own_lm_heads: bool = False
    prefix_layers: int = 0
    cpu_iteration_s: float = 0.0
    cpu_per_request_s: float = 0.0
    has_confidence: bool = True
    fit_depth: int = 0
    head_params_note: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"method {self.name!r}: kind must be one of {', '.join(KINDS)}")
        if self.kind != DRAFT_MODEL:
            if self.tree is None or len(self.step_tokens) != self.tree.depth:
                raise ConfigError(f"method {self.name!r}: needs a tree and one step_tokens "
                                  "entry per depth")

    @property
    def is_draft_model(self) -> bool:
        return self.kind == DRAFT_MODEL

    @property
    def gpu_drafter(self) -> bool:
        """Whether drafting runs passes on the GPU (pays the per-pass overheads)."""
        return self.kind in (DRAFT_MODEL, FEATURE_HEAD, PARALLEL_HEADS, SEQUENTIAL_HEADS)

    @property
    def proposes(self) -> str:
        """"chain" or "tree"."""
        if self.tree is None or all(w == 1 for w in self.tree.widths):
            return "chain"
        return "tree"

    @property
    def max_depth(self) -> int | None:
        """Deepest verify length the method proposes (None: set by the policy alone)."""
        return None if self.tree is None else self.tree.depth

    def kv_slots(self, depth: int) -> int:
        """KV positions a request reserves per iteration for a proposal of this depth (every
        node is written before verification; vLLM's ``num_lookahead_slots``)."""
        if self.tree is None:
            return int(depth)
        return self.tree.nodes(min(int(depth), self.tree.depth))

    def head_params(self, hidden: int, vocab: int) -> int:
        """Parameters of the drafter beyond the target's (for the KV-pool budget): the FC,
        the decoder layers (4 h^2 attention + 3 h f MLP, with f ~ 2.6875 h as Llama's),
        the ResBlocks and any LM heads of their own."""
        h = hidden
        params = self.head_fc_inputs * h * h
        per_layer = 4 * h * h + 3 * h * (43 * h // 16)
        params += (self.head_layers + self.prefix_layers) * per_layer
        params += self.heads * self.head_resblocks * h * h
        if self.own_lm_heads:
            params += self.heads * h * vocab
        return params

    def describe(self) -> str:
        """One line for the run header."""
        if self.is_draft_model:
            return f"{self.name} (a separate draft model drafts a chain)"
        tree = self.tree
        shape = (f"{self.proposes} of {tree.total_nodes} nodes over depth {tree.depth} "
                 f"(widths {'/'.join(map(str, tree.widths))})")
        return f"{self.name} ({self.kind}; {shape})"


def _feature_head(name: str, tree: TreeShape, fc_inputs: int, fit_depth: int, summary: str,
                  sources: tuple[str, ...]) -> MethodPreset:
    return MethodPreset(name, FEATURE_HEAD, summary, sources, tree=tree,
                        step_tokens=tree.expand, head_layers=1, head_fc_inputs=fc_inputs,
                        heads=1, own_lm_heads=False, fit_depth=fit_depth)


SPEC_BENCH_SOURCE = ("hemingkx/Spec-Bench @fd2c1cd (Leaderboard.md, A100 80GB, Vicuna-7B-v1.3, "
                     "batch 1; evaluation/inference_*.py defaults)")

_EAGLE_TREE = TreeShape.from_choices(EAGLE_TREE_CHOICES)
_MEDUSA_TREE = TreeShape.from_choices(MEDUSA_TREE_CHOICES)
_LOOKAHEAD_TREE = TreeShape(((LOOKAHEAD_W + LOOKAHEAD_G),) * (LOOKAHEAD_N - 1),
                            (0,) * (LOOKAHEAD_N - 1))

METHODS: dict[str, MethodPreset] = {m.name: m for m in (
    MethodPreset(DRAFT_MODEL, DRAFT_MODEL, "a separate draft model (--draft) drafts a chain",
                 ("Leviathan et al. 2023; Chen et al. 2023; Spec-Bench SpS (vicuna-68m)",)),
    _feature_head("eagle", _EAGLE_TREE, 2, _EAGLE_TREE.depth,
                  "EAGLE feature head, static 25-node tree (mc_sim_7b_63)",
                  ("EAGLE, arXiv 2401.15077", SPEC_BENCH_SOURCE)),
    _feature_head("eagle-2", EAGLE2_TREE, 2, EAGLE2_TREE.depth,
                  "EAGLE-2 feature head, dynamic 60-node tree (top-10, depth 5 + 1)",
                  ("EAGLE-2, arXiv 2406.16858", SPEC_BENCH_SOURCE)),
    _feature_head("eagle-3", EAGLE2_TREE, 3, EAGLE2_TREE.depth,
                  "EAGLE-3 feature head (3-layer feature fusion), dynamic 60-node tree",
                  ("EAGLE-3, arXiv 2503.01840", SPEC_BENCH_SOURCE)),
    MethodPreset("medusa", PARALLEL_HEADS,
                 "Medusa-1 heads, one parallel pass, static 63-node tree (mc_sim_7b_63)",
                 ("Medusa, arXiv 2401.10774", SPEC_BENCH_SOURCE), tree=_MEDUSA_TREE,
                 step_tokens=(1,) + (0,) * (_MEDUSA_TREE.depth - 1), heads=_MEDUSA_TREE.depth,
                 head_resblocks=1, own_lm_heads=True, fit_depth=_MEDUSA_TREE.depth),
    MethodPreset("hydra", SEQUENTIAL_HEADS,
                 "Hydra++ heads (prefix layer + sequential MLP heads), static 63-node tree",
                 ("Hydra, arXiv 2402.05109", SPEC_BENCH_SOURCE), tree=_MEDUSA_TREE,
                 step_tokens=_MEDUSA_TREE.expand, heads=_MEDUSA_TREE.depth, head_resblocks=4,
                 own_lm_heads=True, prefix_layers=1, fit_depth=_MEDUSA_TREE.depth),
    MethodPreset("pld", PROMPT_LOOKUP,
                 "prompt lookup: continuation of the last 3-gram's earlier match, up to 10 "
                 "tokens, CPU only",
                 ("apoorvumang/prompt-lookup-decoding", SPEC_BENCH_SOURCE),
                 tree=TreeShape.chain(PLD_TOKENS), step_tokens=(1,) + (0,) * (PLD_TOKENS - 1),
                 cpu_iteration_s=PLD_CPU_ITERATION_S, cpu_per_request_s=PLD_CPU_PER_REQUEST_S,
                 has_confidence=False, fit_depth=PLD_TOKENS),
    MethodPreset("lookahead", LOOKAHEAD,
                 "lookahead decoding: Jacobi window W=7 and G=7 pool n-grams of N-1=4 tokens "
                 "ride in the target pass",
                 ("Lookahead decoding, arXiv 2402.02057", SPEC_BENCH_SOURCE),
                 tree=_LOOKAHEAD_TREE, step_tokens=(1,) + (0,) * (LOOKAHEAD_N - 2),
                 cpu_iteration_s=LOOKAHEAD_CPU_ITERATION_S,
                 cpu_per_request_s=LOOKAHEAD_CPU_PER_REQUEST_S, has_confidence=False,
                 fit_depth=LOOKAHEAD_N - 1),
)}

#: Methods with a Spec-Bench leaderboard row to check against (EAGLE-3 has none).
VALIDATED_METHODS = ("draft-model", "eagle", "eagle-2", "medusa", "hydra", "pld", "lookahead")


def method_names() -> tuple[str, ...]:
    return tuple(METHODS)


def get_method(name: str | MethodPreset | None) -> MethodPreset:
    """The preset of ``name`` (None: the default), or one ConfigError naming the choices."""
    if isinstance(name, MethodPreset):
        return name
    key = DEFAULT_METHOD if name is None else str(name).strip().lower()
    try:
        return METHODS[key]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None
