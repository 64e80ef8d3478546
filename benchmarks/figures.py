"""The lifecycle benchmark's arithmetic: latency percentiles, per-side totals and the ratio.

Pure, so the figures the benchmark prints are unit-tested without a stack.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0 to 100) by the nearest-rank method: always an observed sample,
    so a p99 of 50 samples is the slowest one rather than an interpolated guess."""
    if not samples:
        raise ValueError("no samples")
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    ordered = sorted(samples)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


@dataclass
class Round:
    """One round of one side: cases driven, seconds on the wall, CPU-seconds per process."""

    cases: int
    wall_s: float
    cpu_s: dict[str, float]


@dataclass
class Side:
    """Everything measured for one side (rehabflow or the floor) across its rounds."""

    name: str
    rounds: list[Round] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    history_events: int = 0
    history_bytes: int = 0
    # Bytes by event type (EVENT_TYPE_… names), to see where a history's size comes from.
    history_bytes_by_type: Counter[str] = field(default_factory=Counter)
    workflows: int = 0

    @property
    def cases(self) -> int:
        return sum(r.cases for r in self.rounds)

    @property
    def wall_s(self) -> float:
        return sum(r.wall_s for r in self.rounds)

    @property
    def cases_per_s(self) -> float:
        return self.cases / self.wall_s if self.wall_s else 0.0

    def cpu_per_case(self, process: str) -> float | None:
        """CPU-seconds of `process` per case, or None when this side has no such process."""
        if not any(process in r.cpu_s for r in self.rounds) or not self.cases:
            return None
        return sum(r.cpu_s.get(process, 0.0) for r in self.rounds) / self.cases

    def latency(self, action: str, q: float) -> float:
        return percentile(self.latencies[action], q)

    def per_case(self, total: int) -> float:
        return total / self.cases if self.cases else 0.0


def ratio(rehabflow: Side, floor: Side) -> float:
    """Throughput of rehabflow divided by the throughput of the floor."""
    if not floor.cases_per_s:
        raise ValueError("the floor drove no cases")
    return rehabflow.cases_per_s / floor.cases_per_s


def ratio_line(value: float) -> str:
    return f"lifecycle ratio: {value:.2f}"


def split_rounds(cases: int, rounds: int) -> list[int]:
    """`cases` spread over `rounds` rounds as evenly as possible, none empty."""
    if cases < rounds:
        raise ValueError(f"{cases} cases cannot fill {rounds} rounds")
    base, extra = divmod(cases, rounds)
    return [base + (1 if i < extra else 0) for i in range(rounds)]


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in after if name in before}
