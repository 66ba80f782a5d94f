"""The request record and the workload (an ordered, validated collection of requests).

A workload's ``requests`` is a tuple of :class:`Request` or, for the loaders' workloads, a
:class:`RequestColumns`: the same sequence stored as arrays (about 26 bytes a request instead
of about 170 for a record and its numbers), whose records are made when read and dropped by
whoever reads them (the simulator keeps one only while its request is in the engine).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Request:
    """One inference request as the simulator and the real engine see it.

    ``category`` selects an acceptance profile (may be empty: the default category).
    ``output_tokens`` is the number of tokens the request generates (its ``max_tokens``).
    """

    id: int
    arrival_s: float
    prompt_tokens: int
    output_tokens: int
    category: str = ""


class RequestColumns(Sequence):
    """Requests ``0..N-1`` (id = position) as arrays: arrival seconds (float64), prompt and
    output tokens (int64), category codes into ``category_names``. Reads like a tuple of
    ``Request``; equal to any sequence of the same records."""

    __slots__ = ("arrival_s", "prompt_tokens", "output_tokens", "category_codes",
                 "category_names")
    _BLOCK = 4096  # records made per step while iterating

    def __init__(self, arrival_s, prompt_tokens, output_tokens, categories) -> None:
        self.arrival_s = np.ascontiguousarray(arrival_s, dtype=np.float64)
        self.prompt_tokens = np.ascontiguousarray(prompt_tokens, dtype=np.int64)
        self.output_tokens = np.ascontiguousarray(output_tokens, dtype=np.int64)
        codes: dict[str, int] = {}
        values = categories.tolist() if isinstance(categories, np.ndarray) else categories
        self.category_codes = np.fromiter((codes.setdefault(c, len(codes)) for c in values),
                                          np.int32, len(values))
        self.category_names = tuple(codes)
        if not (self.arrival_s.shape == self.prompt_tokens.shape == self.output_tokens.shape
                == self.category_codes.shape):
            raise ValueError("request columns must have the same length")

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])

    def _records(self, start: int, stop: int) -> list[Request]:
        names = self.category_names
        return list(map(Request, range(start, stop), self.arrival_s[start:stop].tolist(),
                        self.prompt_tokens[start:stop].tolist(),
                        self.output_tokens[start:stop].tolist(),
                        [names[c] for c in self.category_codes[start:stop].tolist()]))

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        n = len(self)
        i = int(index) + n if int(index) < 0 else int(index)
        if not 0 <= i < n:
            raise IndexError("request index out of range")
        return self._records(i, i + 1)[0]

    def __iter__(self):
        for start in range(0, len(self), self._BLOCK):
            yield from self._records(start, min(start + self._BLOCK, len(self)))

    def category_counts(self) -> dict[str, int]:
        """Requests per category, in order of first appearance."""
        counts = np.bincount(self.category_codes, minlength=len(self.category_names))
        return {name: int(n) for name, n in zip(self.category_names, counts.tolist()) if n}

    def categories(self) -> list[str]:
        """Every request's category, in order."""
        names = self.category_names
        return [names[c] for c in self.category_codes.tolist()]

    def __eq__(self, other) -> bool:
        if isinstance(other, RequestColumns):
            return (len(self) == len(other) and self.categories() == other.categories()
                    and all(np.array_equal(getattr(self, a), getattr(other, a))
                            for a in ("arrival_s", "prompt_tokens", "output_tokens")))
        if isinstance(other, Sequence) and not isinstance(other, (str, bytes)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash((len(self), self.arrival_s.tobytes(), self.prompt_tokens.tobytes(),
                     self.output_tokens.tobytes(), tuple(self.categories())))

    def __repr__(self) -> str:
        return f"RequestColumns({len(self)} requests)"


@dataclass(frozen=True)
class Workload:
    """Requests sorted by arrival, with where they came from (for output provenance).

    ``source`` is the trace path (or a description for synthetic workloads), ``sha256`` the
    hash of the trace file (None for synthetic), ``format`` the detected format name and
    ``transforms`` the ordered list of transformations applied (for the output config).
    """

    requests: tuple[Request, ...] | RequestColumns
    source: str
    format: str
    sha256: str | None = None
    transforms: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.requests)

    def category_counts(self) -> dict[str, int]:
        """Requests per category (``""``: none), in order of first appearance."""
        if isinstance(self.requests, RequestColumns):
            return self.requests.category_counts()
        counts: dict[str, int] = {}
        for request in self.requests:
            counts[request.category] = counts.get(request.category, 0) + 1
        return counts

    @property
    def span_s(self) -> float:
        """Seconds from the first to the last arrival (0 for fewer than two requests)."""
        if len(self.requests) < 2:
            return 0.0
        return self.requests[-1].arrival_s - self.requests[0].arrival_s
