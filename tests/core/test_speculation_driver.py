"""The protocol driver (sim.core.speculation.run_decode_iteration): plain True/False answers
are the same as all-or-nothing masks, per-step drafting counts, and what policies may touch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policies"))
from policy_fakes import ScriptedExecutor, make_view  # noqa: E402

from sim.core.speculation import run_decode_iteration  # noqa: E402
from sim.policies.base import Policy  # noqa: E402


class StopAfter(Policy):
    """Drafts ``steps`` steps, answering with a plain bool or an equivalent mask."""

    name = "stop-after"
    k_max = 6

    def __init__(self, steps: int, as_mask: bool) -> None:
        self.steps = steps
        self.as_mask = as_mask
        self.seen_drafted: list[list[int]] = []

    def begin(self, view):
        return self.k_max

    def continue_drafting(self, step, conf, drafted):
        self.seen_drafted.append(drafted.tolist())
        go = step < self.steps
        return np.full(conf.shape[0], go) if self.as_mask else go


@pytest.mark.parametrize("steps", [0, 1, 3, 6])
def test_plain_answers_and_masks_give_the_same_iteration(steps):
    rng = np.random.default_rng(steps)
    conf = rng.random((5, 6))
    accept = rng.random((5, 6)) < conf
    caps = [6, 2, 0, 4, 6]  # requests run out of room at different steps
    outs = []
    for as_mask in (False, True):
        pol = StopAfter(steps, as_mask)
        outs.append((run_decode_iteration(pol, make_view(5, max_draft=caps),
                                          ScriptedExecutor(conf, accept)), pol.seen_drafted))
    (plain, seen_plain), (masked, seen_masked) = outs
    assert plain.draft_steps == masked.draft_steps == min(steps, 6)
    assert plain.drafted.tolist() == masked.drafted.tolist() == np.minimum(caps, steps).tolist()
    assert plain.accepted.tolist() == masked.accepted.tolist()
    np.testing.assert_array_equal(plain.conf, masked.conf)
    assert plain.drafting == masked.drafting
    assert seen_plain == seen_masked  # the drafted counts the policy saw at each step
    # requests past their room have conf 0 there
    for i, cap in enumerate(caps):
        assert (plain.conf[i, cap:] == 0).all()


def test_outcome_counts_the_requests_of_each_draft_step():
    conf = np.full((4, 8), 0.5)
    out = run_decode_iteration(StopAfter(5, as_mask=False), make_view(4, max_draft=[5, 1, 3, 0]),
                               ScriptedExecutor(conf))
    assert out.draft_steps == 5
    assert out.drafting == (3, 2, 2, 1, 1)
    assert sum(out.drafting) == int(out.drafted.sum()) == 9


class MutatesDrafted(StopAfter):
    def verify_lengths(self, conf, drafted):
        drafted -= 1  # a bug: policies must not write to the driver's arrays
        return drafted


def test_policies_cannot_modify_the_drafted_counts():
    with pytest.raises(ValueError, match="read-only"):
        run_decode_iteration(MutatesDrafted(2, as_mask=False), make_view(3),
                             ScriptedExecutor(np.full((3, 6), 0.5)))


class VerifiesTooMuch(StopAfter):
    def verify_lengths(self, conf, drafted):
        return drafted + 3  # more than drafted: the driver clamps


def test_verify_lengths_are_clamped_to_what_was_drafted():
    out = run_decode_iteration(VerifiesTooMuch(2, as_mask=False), make_view(3, max_draft=[6, 1, 6]),
                               ScriptedExecutor(np.full((3, 6), 0.5)))
    assert out.verify.tolist() == out.drafted.tolist() == [2, 1, 2]


class LyingExecutor(ScriptedExecutor):
    def verify(self, verify_tokens):
        return np.asarray(verify_tokens) + 1


def test_accepted_counts_outside_the_verify_lengths_are_rejected():
    ex = LyingExecutor(np.full((3, 6), 0.5))
    with pytest.raises(ValueError, match="outside 0..verify"):
        run_decode_iteration(StopAfter(2, as_mask=False), make_view(3), ex)
