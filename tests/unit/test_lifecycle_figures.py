"""The lifecycle benchmark's figures: percentiles, per-case totals and the ratio line."""

from __future__ import annotations

import pytest

from benchmarks.figures import Round, Side, cpu_delta, percentile, ratio, ratio_line, split_rounds


def test_percentiles_are_observed_samples_by_nearest_rank() -> None:
    samples = [float(v) for v in range(1, 51)]  # 50 latencies, shuffled below
    samples = samples[25:] + samples[:25]
    assert percentile(samples, 50) == 25.0
    assert percentile(samples, 95) == 48.0
    assert percentile(samples, 99) == 50.0  # the slowest, not an interpolation beyond it
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)


def test_a_side_sums_its_rounds_and_reports_cpu_only_for_its_own_processes() -> None:
    side = Side("rehabflow")
    side.rounds += [
        Round(cases=20, wall_s=10.0, cpu_s={"worker": 4.0, "api": 1.0}),
        Round(cases=30, wall_s=15.0, cpu_s={"worker": 6.0, "api": 1.5}),
    ]
    side.history_bytes = 500_000
    assert (side.cases, side.cases_per_s) == (50, 2.0)
    assert side.cpu_per_case("worker") == 0.2
    assert side.cpu_per_case("api") == 0.05
    assert side.cpu_per_case("floor-worker") is None
    assert side.per_case(side.history_bytes) == 10_000


def test_the_ratio_is_rehabflow_throughput_over_the_floor_and_its_line_is_exact() -> None:
    rehab, floor = Side("rehabflow"), Side("floor")
    rehab.rounds.append(Round(cases=10, wall_s=20.0, cpu_s={}))
    floor.rounds.append(Round(cases=10, wall_s=8.0, cpu_s={}))
    assert ratio_line(ratio(rehab, floor)) == "lifecycle ratio: 0.40"
    with pytest.raises(ValueError, match="no cases"):
        ratio(rehab, Side("floor"))


def test_rounds_split_evenly_and_cpu_deltas_keep_only_processes_seen_twice() -> None:
    assert split_rounds(50, 2) == [25, 25]
    assert split_rounds(7, 3) == [3, 2, 2]
    with pytest.raises(ValueError, match="cannot fill"):
        split_rounds(1, 2)
    assert cpu_delta({"worker": 1.0, "api": 2.0}, {"worker": 3.5, "temporal": 9.0}) == {
        "worker": 2.5
    }
