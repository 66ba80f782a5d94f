"""The speculative methods (``sim.drafters``: feature heads, parallel and sequential heads,
prompt lookup, lookahead) on the compiled path, against the protocol path: every table and
the summary identical, for every policy (the cost model's tree prices and AdaSpec's tree
trim included), on both engines, with chunked prefill, preemption, eager mode and the exact
estimator; the drafter's pricing rules by hand against ``DrafterCosts``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from sim.drafters.costs import method_latency
from sim.drafters.presets import METHODS, get_method
from sim.policies.registry import make_policy
from sim.run import SimConfig, build_latency, simulate
from test_compiled_equivalence import CONV, MOONCAKE, _assert_same, _both, _slice

METHOD_NAMES = tuple(name for name in METHODS if name != "draft-model")
#: one form of each policy kind (the catch-up and sync forms of the engine rules turn
#: drafting off above batch 4, so both upkeeps run), and AdaSpec's options that change what
#: it does with a tree (the request trim, the SLO forms, no trim)
POLICIES = ("nospec", "static:5", "disable-by-batch:4,8", "threshold:0.6,6",
            "vllm-v1:3,sched=1-4:3/5-512:0", "trtllm:4,sched=4:4",
            "sglang:3,slots=1:1+3/4:0,zero=catchup", "adaspec:8", "adaspec:8,trim=request",
            "adaspec:6,slo=tokens", "adaspec:8,slo=strict", "adaspec:8,trim=off",
            "adaspec-nv:8", "smartspec:8", "oracle:8")


@pytest.fixture(scope="module")
def conv():
    return _slice(CONV, 160, scale=6.0)


def _fits(policy: str, method: str) -> bool:
    """Whether the policy runs with the method (confidence policies need confidences)."""
    from sim.drafters.checks import policy_fits_method
    return policy_fits_method(make_policy(policy), method) is None


def _same(workload, policy, config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the rejection warnings of both runs
        _assert_same(*_both(workload, policy, config))


@pytest.mark.parametrize("engine", ["single-pass", "vllm-0.6"])
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_every_method_compiles_to_the_protocol_paths_bytes(conv, method, engine):
    for policy in ("static:5", "trtllm:4,sched=4:4"):
        _same(conv, policy, SimConfig(method=method, engine=engine))


@pytest.mark.parametrize("policy", POLICIES)
def test_every_policy_with_a_tree(conv, policy):
    for method in ("eagle-2", "hydra", "lookahead"):
        if _fits(policy, method):
            _same(conv, policy, SimConfig(method=method))


@pytest.mark.parametrize("policy", ["adaspec:8", "smartspec:8", "oracle:8"])
@pytest.mark.parametrize("method", ["eagle", "medusa", "pld"])
def test_the_policies_that_price_trees_on_batch_expansion(conv, policy, method):
    if _fits(policy, method):
        _same(conv, policy, SimConfig(method=method, engine="vllm-0.6"))


def test_adaspecs_tree_trim_keeps_and_rejects_on_the_compiled_path(conv):
    """What the tests above compare includes both trim decisions: with EAGLE's tree and
    the token trim, some trims are kept and some rejected, the same counts on both paths."""
    counts = []
    for path in ("auto", "protocol"):
        policy = make_policy("adaspec:8")
        simulate(conv, policy, SimConfig(method="eagle", engine_path=path), seed=3)
        counts.append((policy.stats["trim_kept"], policy.stats["trim_rejected"]))
    assert counts[0] == counts[1]
    assert counts[0][0] > 0 and counts[0][1] > 0


@pytest.mark.parametrize("method", ["eagle", "medusa"])
def test_methods_with_chunked_prefill_preemption_eager_and_exact(method):
    """Mooncake's long prompts chunked at 2048 tokens (the drafter's prefill per chunk over
    its cached prefix); a 300-block pool (preemptions, and catch-ups after them); eager
    passes with the exact estimator."""
    moon = _slice(MOONCAKE, 40, scale=4.0)
    _same(moon, "trtllm:4,sched=4:4", SimConfig(method=method, chunked_prefill=True,
                                               max_num_batched_tokens=2048))
    small = SimConfig(method=method, kv_blocks=300, max_num_seqs=24)
    compiled, protocol = _both(_slice(CONV, 160, scale=6.0), "trtllm:4,sched=4:4", small)
    assert compiled.summary["preemptions"] > 0
    _assert_same(compiled, protocol)
    _same(_slice(CONV, 160, scale=6.0), "static:4",
          SimConfig(method=method, cuda_graphs=False, estimator="exact"))


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_the_drafters_rules_on_the_tables_price_as_drafter_costs(method):
    """``method_step`` / ``method_prefill`` (the loop's reading of the drafter's rules over
    its tables) against ``DrafterCosts.step_s`` / ``prefill_s``, exactly, at several shapes."""
    from sim.compiled.tables import TruthTables, method_prefill, method_step
    from sim.core.padding import GraphPadding
    latency = method_latency(build_latency(SimConfig()), get_method(method))
    tables = TruthTables(latency, GraphPadding(), 4096)
    tables.fill_padded(3000)
    drafter = latency.drafter
    for rows, tokens, kv, step in ((1, 1, 100, 0), (7, 64, 9_000, 1), (40, 416, 71_234, 0),
                                   (3, 32, 500, 2), (200, 2048, 400_000, 0)):
        step = min(step, drafter.method.tree.depth - 1)
        got = method_step(tables.table, tables.att, tables.params, drafter.ints,
                          drafter.floats, rows, tokens, kv, step)
        assert got == drafter.step_s(rows, tokens, kv, step)
    news, cached = np.array([300, 17, 1]), np.array([0, 2048, 5])
    tables.fill_prefill(3, int(news.sum()))
    got = method_prefill(tables.table, tables.params, drafter.ints, drafter.floats, news,
                         cached, 3, int(news.sum()))
    assert got == drafter.prefill_s(news.tolist(), cached.tolist())


@pytest.mark.parametrize("method", METHOD_NAMES)
@pytest.mark.parametrize("config", [
    {},  # vicuna-7b: Vidur's A100 layer rows, TP 1
    {"dense_ops": "fitted"},  # the fitted layer
    {"target": "llama-2-70b", "gpu": "H100", "tp": 4},  # Vidur's H100 rows, all-reduces
], ids=["measured", "fitted", "h100-tp4"])
def test_the_drafters_table_rows_are_its_functions_bit_for_bit(method, config):
    """The rows ``TruthTables`` fills for a method in one numpy pass (``layer_dense_s_at``,
    ``fc_s_at``, ``head_dense_s_at``) hold what the functions give count by count, at every
    count 1..3,071 and per step."""
    from sim.compiled.tables import M_FC, M_HEAD, M_LAYER, TruthTables
    from sim.core.padding import GraphPadding
    latency = method_latency(build_latency(SimConfig(**config)), get_method(method))
    tables = TruthTables(latency, GraphPadding(), 3072)
    tables.fill_padded(3071)
    drafter, costs = latency.drafter, latency.drafter.costs
    counts = range(1, 3072)
    assert tables.table[M_LAYER, 1:3072].tolist() == [costs.layer_dense_s(n) for n in counts]
    assert tables.table[M_FC, 1:3072].tolist() == [drafter.fc_s(n) for n in counts]
    for step in range(drafter.method.tree.depth):
        assert tables.table[M_HEAD + step, 1:3072].tolist() == [
            drafter._head_dense_s(n, step) for n in counts]
