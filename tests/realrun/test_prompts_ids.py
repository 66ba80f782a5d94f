"""realrun.prompts.check_unique_ids: the real engine keys prompts, acceptance levels and
outcomes by request id, so a workload with repeated ids (two traces merged, which the
simulator serves by position) is refused in one line instead of sharing prompts."""

from __future__ import annotations

import pytest

from realrun.prompts import build_prompts
from sim.errors import ConfigError
from sim.workload.request import Request, Workload


def _workload(ids) -> Workload:
    return Workload(tuple(Request(i, 0.1 * n, 5 + n, 3) for n, i in enumerate(ids)), "t", "native")


def test_repeated_ids_are_refused_naming_one():
    with pytest.raises(ConfigError, match=r"2 ids are repeated \(e.g. id 0, 2 requests\)"):
        build_prompts(_workload([0, 1, 0, 1, 2]), source="synthetic", vocab_size=50)


def test_distinct_ids_in_any_order_are_served_each_with_its_own_prompt():
    served = build_prompts(_workload([100, 7, 42]), source="synthetic", vocab_size=50)
    assert sorted(served.prompt_ids) == [7, 42, 100]
    assert [len(served.prompt_ids[i]) for i in (100, 7, 42)] == [5, 6, 7]
