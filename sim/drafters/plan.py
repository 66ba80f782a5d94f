"""A method inside a run: the decode shapes the serving engine runs for it and the predicted
times the policies' cost model (``sim.policies.goodput.IterationCost``) asks for.

The protocol (``sim.core.speculation``) is unchanged: a policy decides per request a verify
length k_i, which for a method with a tree is the *depth* the request verifies; drafting
step s proposes depth s + 1. What changes is the shape of the passes:

* verification: request i sends ``nodes(k_i)`` positions (plus its root) to the target with a
  tree attention mask. Single-pass engines: one target pass over B sequences and
  B + sum nodes(k_i) positions, each request's KV read once (a tree mask changes which
  query-query pairs count, not the KV read; it is priced as that many positions, the same
  function as a chain). Batch expansion (``vllm-0.6``): each node becomes a one-token row
  over L_i + depth(node) positions, the root a row over L_i, so the pass is a decode pass over
  B + sum nodes(k_i) rows reading sum_i [(nodes(k_i) + 1) L_i + depth_sum(k_i)] positions
  (for a chain, exactly batch expansion's (k_i + 1) L_i + k_i (k_i + 1) / 2).
* drafting: step s runs over the n_s requests still drafting, feeding ``step_tokens[s]``
  tokens of each through the drafter, reading their context plus s positions (no bonus
  copy rows: vLLM 0.6's ``MultiStepWorker`` expansion is modelled for draft models only).

Both engines pad the verification pass to the graph sizes (``GraphPadding``), as for chains.

The shape's rule is the jitable ``tree_shape_into``: ``MethodPlan.decode_shape`` and the
compiled loop (``sim.compiled.engine``) call it.
"""

from __future__ import annotations

import numpy as np

from sim.compiled.jit import compiled, jitable
from sim.drafters.presets import MethodPreset
from sim.latency.iteration import VLLM_06, DecodeShape, draft_tree_pass_s, verify_pass_s


@jitable
def tree_verify_shape(nodes, depth_sums, expanded, context, verify, batch, context_sum):
    """The verification of depths ``verify`` (module doc): (rows, positions B + sum
    nodes(k_i), KV positions). ``nodes`` / ``depth_sums``: per verify depth 0..the tree's
    depth (deeper verify lengths count as the tree's depth); ``context_sum``: sum L_i."""
    depth = nodes.shape[0] - 1
    total_nodes = 0
    for i in range(batch):
        v = verify[i] if verify[i] < depth else depth
        total_nodes += nodes[v]
    positions = batch + total_nodes
    if not expanded or total_nodes == 0:
        return (positions if expanded else batch), positions, context_sum
    verify_kv = 0
    for i in range(batch):
        v = verify[i] if verify[i] < depth else depth
        verify_kv += (nodes[v] + 1) * context[i] + depth_sums[v]
    return positions, positions, verify_kv


@jitable
def tree_spread_shape(nodes, depth_sums, expanded, batch, context_sum, tokens):
    """The verification the cost model prices for ``tokens`` = B + sum k_i depths spread as
    evenly as possible (q each, one more for r requests): (rows, positions, KV positions)."""
    chain_total = tokens - batch
    spread_nodes = 0
    spread_depth = 0
    if batch > 0 and chain_total > 0:
        deepest = nodes.shape[0] - 1
        q = chain_total // batch
        r = chain_total - q * batch
        lo = q if q < deepest else deepest
        hi = q + 1 if q + 1 < deepest else deepest
        spread_nodes = (batch - r) * nodes[lo] + r * nodes[hi]
        spread_depth = (batch - r) * depth_sums[lo] + r * depth_sums[hi]
    total = batch + spread_nodes
    if not expanded or spread_nodes == 0:
        return (total if expanded else batch), total, context_sum
    return total, total, (spread_nodes + batch) * context_sum // batch + spread_depth


@jitable
def tree_draft_share(batch, context_sum, drafting, step, step_tokens):
    """The drafting step ``step`` the cost model prices for ``drafting`` requests (their
    share of the batch's context): (query tokens, KV positions)."""
    context = context_sum if drafting >= batch else drafting * context_sum // batch
    tokens = drafting * step_tokens[step] if step < step_tokens.shape[0] else 0
    return tokens, context + step * drafting


@jitable
def tree_shape_into(nodes, depth_sums, step_tokens, expanded, context, drafted, verify, batch,
                    drafting, steps, rows, kv, tokens):
    """The passes of a decode iteration under a method (module doc): per drafting step s
    its rows (``drafting[s]``), KV positions (the context of the requests still drafting plus
    s per row) and query tokens (``step_tokens[s]`` per row) into ``rows`` / ``kv`` /
    ``tokens``; returns (sum L_i, and the verification's ``tree_verify_shape``)."""
    context_sum = 0
    for i in range(batch):
        context_sum += context[i]
    gone = 0  # the context of the requests that stopped drafting before step s
    for s in range(steps):
        if drafting[steps - 1] != batch:
            for i in range(batch):
                if drafted[i] == s:
                    gone += context[i]
        rows[s] = drafting[s]
        kv[s] = context_sum - gone + s * drafting[s]
        tokens[s] = drafting[s] * step_tokens[s] if s < step_tokens.shape[0] else 0
    verify_rows, positions, verify_kv = tree_verify_shape(nodes, depth_sums, expanded, context,
                                                          verify, batch, context_sum)
    return context_sum, verify_rows, positions, verify_kv


class MethodPlan:
    """Per-run tables of a method with a tree (or fixed chain): nodes and depth sums per
    verify depth, tokens per drafting step."""

    __slots__ = ("method", "tree", "max_depth", "nodes", "depth_sums", "step_tokens",
                 "step_tokens_array")

    def __init__(self, method: MethodPreset) -> None:
        if method.tree is None:
            raise ValueError("the draft-model method has no plan")
        self.method = method
        self.tree = method.tree
        self.max_depth = method.tree.depth
        self.nodes = np.asarray(method.tree.nodes_table(), dtype=np.int64)
        self.depth_sums = np.asarray(method.tree.depth_sum_table(), dtype=np.int64)
        self.nodes.flags.writeable = self.depth_sums.flags.writeable = False
        self.step_tokens = tuple(method.step_tokens)
        self.step_tokens_array = np.asarray(self.step_tokens, dtype=np.int64)

    def __repr__(self) -> str:
        return f"MethodPlan({self.method.name!r})"

    # ---- the engine's shape ---------------------------------------------------------------
    def decode_shape(self, view, outcome) -> DecodeShape:
        """The passes the view's engine runs for the iteration's plan (``tree_shape_into``)."""
        batch = view.batch_size
        steps = outcome.draft_steps
        rows = np.zeros(steps, dtype=np.int64)
        kv = np.zeros(steps, dtype=np.int64)
        tokens = np.zeros(steps, dtype=np.int64)
        context_sum, verify_rows, positions, verify_kv = compiled(tree_shape_into)(
            self.nodes, self.depth_sums, self.step_tokens_array, view.engine == VLLM_06,
            np.asarray(view.context_tokens, dtype=np.int64),
            np.asarray(outcome.drafted, dtype=np.int64),
            np.asarray(outcome.verify, dtype=np.int64), batch,
            np.asarray(outcome.drafting, dtype=np.int64), steps, rows, kv, tokens)
        return DecodeShape(batch, int(context_sum), int(verify_rows), int(positions),
                           int(verify_kv), tuple(rows.tolist()), tuple(kv.tolist()),
                           tuple(tokens.tolist()))

    # ---- the policies' cost model (IterationCost delegates here) ---------------------------
    def verify_s(self, cost, tokens: int) -> float:
        """``IterationCost.verify_s``: ``tokens`` = B + sum k_i in depths, spread evenly
        (``tree_spread_shape``)."""
        rows, total, kv = tree_spread_shape(self.nodes, self.depth_sums, cost._expanded,
                                            cost.batch, cost.context_tokens, int(tokens))
        return float(verify_pass_s(cost._est, cost._pad, int(rows), int(total), int(kv)))

    def verify_plan_s(self, cost, verify: np.ndarray) -> float:
        """``IterationCost.verify_plan_s``: an explicit plan of depths, priced exactly
        (``tree_verify_shape``)."""
        rows, total, kv = compiled(tree_verify_shape)(
            self.nodes, self.depth_sums, cost._expanded, np.asarray(cost._contexts, dtype=np.int64),
            np.asarray(verify, dtype=np.int64), cost.batch, cost.context_tokens)
        return float(verify_pass_s(cost._est, cost._pad, int(rows), int(total), int(kv)))

    def draft_step_s(self, cost, drafting: int, step: int) -> float:
        """``IterationCost.draft_step_s``: step ``step`` over ``drafting`` requests (their
        share of the batch's context, ``tree_draft_share``)."""
        tokens, kv = tree_draft_share(cost.batch, cost.context_tokens, int(drafting), step,
                                      self.step_tokens_array)
        return float(draft_tree_pass_s(cost._est, cost._pad, drafting, int(tokens), int(kv),
                                       step))
