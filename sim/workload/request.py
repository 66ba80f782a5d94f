"""The request record and the workload (an ordered, validated collection of requests)."""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(frozen=True)
class Workload:
    """Requests sorted by arrival, with where they came from (for output provenance).

    ``source`` is the trace path (or a description for synthetic workloads), ``sha256`` the
    hash of the trace file (None for synthetic), ``format`` the detected format name and
    ``transforms`` the ordered list of transformations applied (for the output config).
    """

    requests: tuple[Request, ...]
    source: str
    format: str
    sha256: str | None = None
    transforms: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.requests)

    @property
    def span_s(self) -> float:
        """Seconds from the first to the last arrival (0 for fewer than two requests)."""
        if len(self.requests) < 2:
            return 0.0
        return self.requests[-1].arrival_s - self.requests[0].arrival_s
