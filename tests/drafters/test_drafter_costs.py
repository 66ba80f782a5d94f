"""Drafter costs are the latency model's per-op pieces (hand-assembled here), the tree's
verification pass is the target's verify pass over its positions, and the policies' cost
model prices the same passes."""

from __future__ import annotations

import numpy as np
import pytest

from sim.core.padding import GraphPadding
from sim.drafters.plan import MethodPlan
from sim.drafters.presets import PLD_CPU_ITERATION_S, PLD_CPU_PER_REQUEST_S, get_method
from sim.latency.iteration import DecodeShape, decode_iteration_s
from sim.policies.base import BatchView
from sim.policies.goodput import IterationCost
from sim.run import SimConfig, build_estimator, build_latency


@pytest.fixture(scope="module")
def eagle2():
    return build_latency(SimConfig(method="eagle-2"))


def test_feature_head_step_is_one_layer_plus_lm_head(eagle2):
    c = eagle2.base.target_costs
    h = c.model.hidden
    rows, tokens, kv = 3, 32, 900
    expected = (c.gemm_shape_s(tokens, 2 * h, h) + c.layer_dense_s(tokens)
                + c.decode_attention_s(rows, tokens, kv) / c.layers + c.logits_s(tokens)
                + 1e-3)
    assert eagle2.draft_tree_step_s(rows, tokens, kv, 2) == pytest.approx(expected, rel=1e-12)
    # one decoder layer: the measured rows where the preset has them, else the closed form
    layer = (c.measured_layer_s(1) if c.measured_layer_s is not None
             else c.fitted_layer_dense_s(1))
    assert c.layer_dense_s(1) == pytest.approx(layer)
    assert eagle2.draft_overhead_s == 1.5e-3


def test_tree_iteration_by_hand(eagle2):
    pad = GraphPadding()
    shape = DecodeShape(2, 300, 2, 2 + 2 * 20, 300, (2, 2), (300, 302), (2, 20))
    expected = (1.5e-3 + eagle2.draft_tree_step_s(2, pad.pad(2), 300, 0)
                + eagle2.draft_tree_step_s(2, pad.pad(20), 302, 1)
                + eagle2.target_verify_s(2, pad.pad(42), 300))
    assert decode_iteration_s(eagle2, pad, shape) == pytest.approx(expected, rel=1e-12)
    # 42 positions run at the 64 graph
    assert pad.pad(42) == 64


def test_medusa_heads_run_once_and_pld_costs_no_gpu():
    medusa = build_latency(SimConfig(method="medusa"))
    c = medusa.base.target_costs
    h = c.model.hidden
    one = medusa.draft_tree_step_s(4, 4, 400, 0)
    assert one == pytest.approx(4 * (c.gemm_shape_s(4, h, h) + c.logits_s(4)) + 1e-3)
    assert medusa.draft_tree_step_s(4, 0, 400, 1) == 0.0
    pld = build_latency(SimConfig(method="pld"))
    assert pld.draft_overhead_s == 0.0
    assert pld.draft_tree_step_s(5, 8, 1000, 0) == pytest.approx(
        PLD_CPU_ITERATION_S + 5 * PLD_CPU_PER_REQUEST_S)
    assert pld.draft_tree_step_s(5, 8, 1000, 1) == 0.0
    assert pld.draft_prefill_s([100, 50]) == 0.0


def test_hydra_step_zero_adds_the_prefix_layer():
    hydra = build_latency(SimConfig(method="hydra"))
    c = hydra.base.target_costs
    h = c.model.hidden
    head0 = 2 * c.gemm_shape_s(1, 2 * h, h) + 3 * c.gemm_shape_s(1, h, h) + c.logits_s(1)
    prefix = c.layer_dense_s(1) + c.decode_attention_s(1, 1, 500) / c.layers
    assert hydra.draft_tree_step_s(1, 1, 500, 0) == pytest.approx(head0 + prefix + 1e-3)


@pytest.mark.parametrize("engine", ["single-pass", "vllm-0.6"])
def test_policy_cost_model_prices_the_engine_passes(engine):
    config = SimConfig(method="eagle", engine=engine, estimator="exact")
    latency = build_latency(config)
    pad = GraphPadding()
    plan = MethodPlan(get_method("eagle"))
    contexts = np.array([120, 120, 120])
    view = BatchView(0.0, contexts, contexts - 1, np.ones(3, dtype=np.int64), np.zeros(3), 2.0,
                     0.04, 0, np.full(3, 8), build_estimator(config, latency, pad), pad,
                     engine=engine, drafter=plan)
    cost = IterationCost(view, 5)
    depth = np.array([2, 2, 2])
    # uniform depths: the spread estimate equals the exact plan
    assert cost.verify_s(3 + 6) == pytest.approx(cost.verify_plan_s(depth))
    from sim.core.speculation import DecodeOutcome
    outcome = DecodeOutcome(2, depth, depth, np.zeros(3, dtype=np.int64), np.zeros((3, 2)),
                            (3, 3))
    shape = plan.decode_shape(view, outcome)
    assert cost.draft_s(2) + cost.verify_plan_s(depth) == pytest.approx(
        decode_iteration_s(latency, pad, shape), rel=1e-12)


def test_table_estimator_keeps_the_drafter_exact():
    config = SimConfig(method="eagle-2")
    latency = build_latency(config)
    estimator = build_estimator(config, latency, GraphPadding())
    assert estimator.drafter is latency.drafter
    assert estimator.draft_tree_step_s(8, 80, 4000, 1) == latency.draft_tree_step_s(8, 80, 4000, 1)
    assert estimator.target_verify_s(8, 64, 4000) == pytest.approx(
        latency.target_verify_s(8, 64, 4000), rel=0.03)
