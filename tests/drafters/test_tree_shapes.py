"""Token trees: shapes from choices lists, and the passes the engines run for them, checked
against hand-computed numbers."""

from __future__ import annotations

import numpy as np
import pytest

from sim.core.padding import GraphPadding
from sim.core.speculation import DecodeOutcome
from sim.drafters.plan import MethodPlan
from sim.drafters.presets import (EAGLE_TREE_CHOICES, MEDUSA_TREE_CHOICES, METHODS, TreeShape,
                                  get_method)
from sim.errors import ConfigError
from sim.latency.iteration import DecodeShape, expanded_kv_tokens
from sim.policies.base import BatchView


def test_eagle_tree_from_choices():
    tree = TreeShape.from_choices(EAGLE_TREE_CHOICES)
    assert tree.widths == (4, 8, 8, 3, 2)
    # root; depth-1 nodes with children [0..3]; depth 2: [0,0],[0,1],[0,2],[1,0]; [0,0,0]; [0,0,0,0]
    assert tree.expand == (1, 4, 4, 1, 1)
    assert tree.total_nodes == 25 and tree.depth == 5
    assert tree.nodes_table() == (0, 4, 12, 20, 23, 25)
    assert tree.depth_sum(2) == 1 * 4 + 2 * 8
    assert tree.children_on_main_path(EAGLE_TREE_CHOICES) == (4, 3, 3, 3, 2)


def test_medusa_tree_from_choices():
    tree = TreeShape.from_choices(MEDUSA_TREE_CHOICES)
    assert tree.widths == (10, 28, 23, 2) and tree.total_nodes == 63
    assert tree.expand == (1, 10, 10, 1)
    assert tree.children_on_main_path(MEDUSA_TREE_CHOICES) == (10, 10, 10, 2)


def test_bad_trees_are_refused():
    with pytest.raises(ConfigError, match="no parent"):
        TreeShape.from_choices([(0,), (1, 0)])
    with pytest.raises(ConfigError):
        TreeShape((0, 1), (1, 1))
    with pytest.raises(ConfigError):
        TreeShape.chain(0)


def test_presets_shapes():
    assert METHODS["eagle-2"].tree.widths == (10,) * 6  # 60 nodes over depth 5 + 1
    assert METHODS["eagle-2"].kv_slots(6) == 60 and METHODS["eagle-2"].kv_slots(2) == 20
    assert METHODS["lookahead"].tree.nodes(4) == 56  # W (N-1) + G (N-1) = 7*4 + 7*4
    assert METHODS["pld"].proposes == "chain" and METHODS["pld"].max_depth == 10
    assert METHODS["draft-model"].max_depth is None and METHODS["draft-model"].kv_slots(5) == 5
    with pytest.raises(ConfigError, match="unknown method"):
        get_method("nope")


def _view(contexts, engine="single-pass", plan=None):
    contexts = np.asarray(contexts, dtype=np.int64)
    batch = contexts.size
    return BatchView(0.0, contexts, contexts - 1, np.ones(batch, dtype=np.int64),
                     np.zeros(batch), 2.0, 0.04, 0, np.full(batch, 8), None, GraphPadding(),
                     engine=engine, drafter=plan)


def _outcome(drafted, verify):
    drafted = np.asarray(drafted, dtype=np.int64)
    steps = int(drafted.max())
    drafting = tuple(int((drafted > s).sum()) for s in range(steps))
    return DecodeOutcome(steps, drafted, np.asarray(verify, dtype=np.int64),
                         np.zeros(len(drafted), dtype=np.int64), np.zeros((len(drafted), steps)),
                         drafting)


def test_eagle_decode_shape_single_pass_by_hand():
    plan = MethodPlan(get_method("eagle"))
    view = _view([100, 200], plan=plan)
    shape = plan.decode_shape(view, _outcome([3, 2], [2, 1]))
    # verify depths 2 and 1: 12 + 4 nodes, plus the 2 roots; each request's KV read once
    assert shape == DecodeShape(2, 300, 2, 18, 300, (2, 2, 1), (300, 302, 102), (2, 8, 4))


def test_eagle_decode_shape_batch_expansion_by_hand():
    plan = MethodPlan(get_method("eagle"))
    view = _view([100, 200], engine="vllm-0.6", plan=plan)
    shape = plan.decode_shape(view, _outcome([3, 2], [2, 1]))
    # every node is a row over L_i + its depth, every root a row over L_i:
    # request 0: 13 rows x 100 + (4*1 + 8*2); request 1: 5 rows x 200 + 4*1
    assert shape.verify_rows == 18 and shape.verify_tokens == 18
    assert shape.verify_kv_tokens == 13 * 100 + 20 + 5 * 200 + 4


def test_chain_batch_expansion_matches_draft_model_formula():
    plan = MethodPlan(get_method("pld"))
    contexts, verify = [50, 70, 90], [3, 0, 5]
    view = _view(contexts, engine="vllm-0.6", plan=plan)
    shape = plan.decode_shape(view, _outcome([5, 5, 5], verify))
    assert shape.verify_kv_tokens == expanded_kv_tokens(contexts, verify)
    assert shape.verify_tokens == 3 + 8
    # PLD drafts on the CPU in step 0 only
    assert shape.draft_tokens == (3, 0, 0, 0, 0)


def test_verify_is_capped_at_the_tree_depth():
    plan = MethodPlan(get_method("medusa"))
    view = _view([10], plan=plan)
    shape = plan.decode_shape(view, _outcome([4], [9]))
    assert shape.verify_tokens == 1 + 63
