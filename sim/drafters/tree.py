"""Token trees (and chains) as the simulator sees them: how many nodes a request sends to
verification at each depth, and how many of them each drafting step processes.

A tree proposal of depth D has ``widths[j - 1]`` nodes at depth j (j = 1..D); a chain is the
tree with one node per depth. Verifying a request at depth d (the protocol's verify length
k_i = d) sends ``nodes(d) = sum_{j <= d} widths[j - 1]`` positions to the target besides the
root (the request's last token), with a tree attention mask: node v attends to the request's
KV and to its own ancestors. The best path's accepted length a_i <= d is what the request
keeps (plus the bonus token).

``expand[s]`` is how many nodes per request drafting step s (0-based) feeds through the
drafter to propose depth s + 1: the root at step 0, then the depth-s nodes that have
children in the tree. Static trees come from their ``choices`` lists (Medusa's format, used
by Medusa, Hydra and EAGLE: one list of child indices per node, the path from the root).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from sim.errors import ConfigError


@dataclass(frozen=True)
class TreeShape:
    """Nodes per depth and nodes expanded per drafting step (see the module doc)."""

    widths: tuple[int, ...]
    expand: tuple[int, ...]

    def __post_init__(self) -> None:
        widths = tuple(int(w) for w in self.widths)
        expand = tuple(int(e) for e in self.expand)
        if not widths or any(w < 1 for w in widths):
            raise ConfigError(f"tree widths must be positive integers, got {self.widths}")
        if len(expand) != len(widths) or any(e < 0 for e in expand):
            raise ConfigError(f"tree expand counts must be one non-negative integer per depth, "
                              f"got {self.expand} for {len(widths)} depths")
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "expand", expand)

    @classmethod
    def chain(cls, depth: int) -> TreeShape:
        """One node per depth; every step expands the one node it drafted last."""
        if depth < 1:
            raise ConfigError(f"chain depth must be >= 1, got {depth}")
        return cls((1,) * depth, (1,) * depth)

    @classmethod
    def from_choices(cls, choices: Sequence[Sequence[int]]) -> TreeShape:
        """The shape of a static tree in Medusa's ``choices`` format (each node is the list
        of child indices on its path from the root). Refuses a list whose node's parent is
        missing."""
        paths = {tuple(int(i) for i in c) for c in choices}
        if not paths or any(len(p) == 0 for p in paths):
            raise ConfigError("tree choices must be non-empty paths")
        for path in paths:
            if len(path) > 1 and path[:-1] not in paths:
                raise ConfigError(f"tree choices: node {list(path)} has no parent in the tree")
        depth = max(len(p) for p in paths)
        by_depth = Counter(len(p) for p in paths)
        parents = Counter(len(p) for p in {q[:-1] for q in paths if len(q) > 1})
        widths = tuple(by_depth[d] for d in range(1, depth + 1))
        expand = (1,) + tuple(parents[d] for d in range(1, depth))
        return cls(widths, expand)

    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def total_nodes(self) -> int:
        return sum(self.widths)

    def nodes(self, depth: int) -> int:
        """Nodes a request verifies at depth ``depth`` (capped at the tree's depth)."""
        return sum(self.widths[:max(0, min(int(depth), self.depth))])

    def depth_sum(self, depth: int) -> int:
        """Sum over those nodes of their depth (the extra KV each node's row reads under batch
        expansion, where node v becomes a one-token row over L_i + depth(v) positions)."""
        return sum(j * w for j, w in enumerate(self.widths[:max(0, min(int(depth), self.depth))],
                                                start=1))

    def nodes_table(self) -> tuple[int, ...]:
        """``nodes(d)`` for d = 0..depth."""
        return tuple(self.nodes(d) for d in range(self.depth + 1))

    def depth_sum_table(self) -> tuple[int, ...]:
        """``depth_sum(d)`` for d = 0..depth."""
        return tuple(self.depth_sum(d) for d in range(self.depth + 1))

    def children_on_main_path(self, choices: Sequence[Sequence[int]] | None = None
                              ) -> tuple[int, ...]:
        """Children of the main-path node at each depth 0..D-1 (root, [0], [0, 0], ...), for
        a static tree's ``choices``; without choices, the widths ratio is used."""
        if choices is None:
            return self.widths
        paths = {tuple(int(i) for i in c) for c in choices}
        out = []
        for d in range(self.depth):
            prefix = (0,) * d
            out.append(sum(1 for p in paths if len(p) == d + 1 and p[:d] == prefix))
        return tuple(out)
