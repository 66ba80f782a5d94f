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
"""

from __future__ import annotations

import numpy as np

from sim.drafters.presets import MethodPreset
from sim.latency.iteration import VLLM_06, DecodeShape, draft_tree_pass_s, verify_pass_s


class MethodPlan:
    """Per-run tables of a method with a tree (or fixed chain): nodes and depth sums per
    verify depth, tokens per drafting step."""

    __slots__ = ("method", "tree", "max_depth", "nodes", "depth_sums", "step_tokens",
                 "_nodes_list", "_depth_list")

    def __init__(self, method: MethodPreset) -> None:
        if method.tree is None:
            raise ValueError("the draft-model method has no plan")
        self.method = method
        self.tree = method.tree
        self.max_depth = method.tree.depth
        self._nodes_list = list(method.tree.nodes_table())
        self._depth_list = list(method.tree.depth_sum_table())
        self.nodes = np.asarray(self._nodes_list, dtype=np.int64)
        self.depth_sums = np.asarray(self._depth_list, dtype=np.int64)
        self.nodes.flags.writeable = self.depth_sums.flags.writeable = False
        self.step_tokens = tuple(method.step_tokens)

    def __repr__(self) -> str:
        return f"MethodPlan({self.method.name!r})"

    def step_tokens_at(self, step: int) -> int:
        return self.step_tokens[step] if step < len(self.step_tokens) else 0

    def _depth(self, d: int) -> int:
        return min(max(int(d), 0), self.max_depth)

    def spread(self, batch: int, chain_total: int) -> tuple[int, int]:
        """(nodes, depth sums) of B requests verifying ``chain_total`` = sum k_i depths in
        total, spread as evenly as possible (q each, one more for r of them)."""
        if batch <= 0 or chain_total <= 0:
            return 0, 0
        q, r = divmod(int(chain_total), batch)
        lo, hi = self._depth(q), self._depth(q + 1)
        nodes = (batch - r) * self._nodes_list[lo] + r * self._nodes_list[hi]
        depth = (batch - r) * self._depth_list[lo] + r * self._depth_list[hi]
        return nodes, depth

    # ---- the engine's shape ---------------------------------------------------------------
    def decode_shape(self, view, outcome) -> DecodeShape:
        """The passes the view's engine runs for the iteration's plan (module doc)."""
        batch = view.batch_size
        context = view.context_tokens
        context_sum = view.total_context_tokens
        steps = outcome.draft_steps
        drafted = outcome.drafted
        drafting = outcome.drafting
        if not steps:
            step_context: list[int] = []
        elif drafting[-1] == batch:
            step_context = [context_sum] * steps
        else:
            stopped = np.bincount(drafted, weights=context, minlength=steps + 1).tolist()
            gone = 0.0
            step_context = []
            for s in range(steps):
                gone += stopped[s]
                step_context.append(int(context_sum - gone))
        rows = tuple(drafting)
        kv = tuple(c + s * n for s, (n, c) in enumerate(zip(drafting, step_context)))
        tokens_per_step = tuple(n * self.step_tokens_at(s) for s, n in enumerate(drafting))
        verify = np.minimum(outcome.verify, self.max_depth)
        nodes = self.nodes[verify]
        total_nodes = int(nodes.sum())
        tokens = batch + total_nodes
        if view.engine != VLLM_06 or total_nodes == 0:
            verify_rows = batch if view.engine != VLLM_06 else tokens
            return DecodeShape(batch, context_sum, verify_rows, tokens, context_sum, rows, kv,
                               tokens_per_step)
        verify_kv = int(((nodes + 1) * context).sum()) + int(self.depth_sums[verify].sum())
        return DecodeShape(batch, context_sum, tokens, tokens, verify_kv, rows, kv,
                           tokens_per_step)

    # ---- the policies' cost model (IterationCost delegates here) ---------------------------
    def verify_s(self, cost, tokens: int) -> float:
        """``IterationCost.verify_s``: ``tokens`` = B + sum k_i in depths, spread evenly."""
        batch = cost.batch
        nodes, depth = self.spread(batch, tokens - batch)
        total = batch + nodes
        if not cost._expanded or nodes == 0:
            rows = batch if not cost._expanded else total
            return float(verify_pass_s(cost._est, cost._pad, rows, total, cost.context_tokens))
        kv = (nodes + batch) * cost.context_tokens // batch + depth
        return float(verify_pass_s(cost._est, cost._pad, total, total, kv))

    def verify_plan_s(self, cost, verify: np.ndarray) -> float:
        """``IterationCost.verify_plan_s``: an explicit plan of depths, priced exactly."""
        verify = np.minimum(np.asarray(verify, dtype=np.int64), self.max_depth)
        nodes = self.nodes[verify]
        total = cost.batch + int(nodes.sum())
        if not cost._expanded or total == cost.batch:
            rows = cost.batch if not cost._expanded else total
            return float(verify_pass_s(cost._est, cost._pad, rows, total, cost.context_tokens))
        kv = int(((nodes + 1) * cost._contexts).sum()) + int(self.depth_sums[verify].sum())
        return float(verify_pass_s(cost._est, cost._pad, total, total, kv))

    def draft_step_s(self, cost, drafting: int, step: int) -> float:
        """``IterationCost.draft_step_s``: step ``step`` over ``drafting`` requests (their
        share of the batch's context)."""
        batch = cost.batch
        context = cost.context_tokens if drafting >= batch else drafting * cost.context_tokens // batch
        tokens = drafting * self.step_tokens_at(step)
        return float(draft_tree_pass_s(cost._est, cost._pad, drafting, tokens,
                                       context + step * drafting, step))
