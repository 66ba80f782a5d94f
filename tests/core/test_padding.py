"""CUDA-graph padding: the lookup table gives exactly the documented rule."""

from __future__ import annotations

import bisect

import pytest

from sim.core.padding import MAX_GRAPH_SIZE, GraphPadding, default_graph_sizes
from sim.errors import ConfigError
from sim.run import SimConfig


def _rule(sizes, enabled, n):
    if not enabled or n > sizes[-1] or n <= 0:
        return n
    return sizes[bisect.bisect_left(sizes, n)]


@pytest.mark.parametrize("sizes", [default_graph_sizes(), (1, 2, 4, 8), (3, 10)])
@pytest.mark.parametrize("enabled", [True, False])
def test_pad_is_the_smallest_captured_size_at_or_above(sizes, enabled):
    padding = GraphPadding(sizes, enabled)
    for n in range(-2, sizes[-1] + 40):
        assert padding.pad(n) == _rule(sizes, enabled, n), n


def test_hand_picked_sizes_and_next_smaller():
    padding = GraphPadding()
    assert [padding.pad(n) for n in (1, 3, 5, 33, 65, 1024, 1025)] == [1, 4, 8, 64, 96, 1024, 1025]
    assert padding.next_smaller(65) == 64 and padding.next_smaller(64) == 32
    assert padding.next_smaller(1) == 0
    # above the largest size (1024) trim targets continue in steps of 32, as the AdaSpec
    # artifact's delta = n - ((n - 1) // 32) * 32 does: delta <= 32, never back to 1024
    assert [padding.next_smaller(n) for n in (1024, 1025, 1056, 1057, 1100, 2049)] == \
        [992, 1024, 1024, 1056, 1088, 2048]
    assert GraphPadding((1, 2, 4, 8)).next_smaller(13) == 12  # steps of 4 above 8
    assert GraphPadding() == GraphPadding()  # the lookup table is not part of equality


def test_bad_sizes():
    with pytest.raises(ConfigError):
        GraphPadding((4, 2))
    with pytest.raises(ConfigError):
        GraphPadding(())


@pytest.mark.parametrize("max_size", [0, -5, MAX_GRAPH_SIZE + 1, 10 ** 9])
def test_graph_max_size_outside_its_range_is_refused_with_the_config(max_size):
    # 0 used to pass SimConfig and fail every sweep point at run time; 10**9 never finished
    # (a lookup row per size)
    with pytest.raises(ConfigError, match=f"graph max size must be in 1..{MAX_GRAPH_SIZE}"):
        default_graph_sizes(max_size)
    with pytest.raises(ConfigError, match=f"got {max_size}"):
        SimConfig(graph_max_size=max_size)


def test_graph_max_size_at_its_maximum():
    sizes = default_graph_sizes(MAX_GRAPH_SIZE)
    assert sizes[-1] == MAX_GRAPH_SIZE and len(sizes) == 6 + (MAX_GRAPH_SIZE - 64) // 32 + 1
    assert SimConfig(graph_max_size=MAX_GRAPH_SIZE).graph_max_size == MAX_GRAPH_SIZE
