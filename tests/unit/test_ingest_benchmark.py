"""The ingestion benchmark's own logic: when a side counts as drained, and what it sends."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from temporalio.service import RPCError, RPCStatusCode

from benchmarks.ingest import percentile, until_drained, workload
from benchmarks.stack import BenchError
from ingestion.absences import MAX_BATCH


def answers(*replies: bool | RPCStatusCode) -> tuple[Callable[[], Awaitable[bool]], list[int]]:
    """A drain check that gives `replies` in turn (a status: that RPC error), then the last."""
    asked = [0]

    async def check() -> bool:
        reply = replies[min(asked[0], len(replies) - 1)]
        asked[0] += 1
        if isinstance(reply, RPCStatusCode):
            raise RPCError("refused", reply, b"")
        return reply

    return check, asked


async def test_a_side_is_drained_only_once_every_workflow_has_processed_its_last_event() -> None:
    done_at_once, first_asked = answers(True)
    done_later, later_asked = answers(False, False, True)
    await until_drained({"a": done_at_once, "b": done_later}, pause_s=0)
    # A workflow that is done is not asked again; one that is not is asked until it is.
    assert (first_asked[0], later_asked[0]) == (1, 3)


async def test_a_busy_worker_or_a_workflow_not_yet_started_only_delays_the_drain() -> None:
    check, asked = answers(
        RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.NOT_FOUND, RPCStatusCode.UNAVAILABLE, True
    )
    await until_drained({"a": check}, pause_s=0)
    assert asked[0] == 4


async def test_a_query_that_fails_for_real_stops_the_benchmark() -> None:
    check, _ = answers(RPCStatusCode.INVALID_ARGUMENT)
    with pytest.raises(RPCError):
        await until_drained({"a": check}, pause_s=0)


async def test_a_workflow_that_never_catches_up_ends_the_run_with_its_id() -> None:
    done, _ = answers(True)
    stuck, _ = answers(False)
    with pytest.raises(BenchError, match=r"1 workflow\(s\).*stuck-one"):
        await until_drained({"fine": done, "stuck-one": stuck}, pause_s=0.01, within_s=0.2)


def test_every_batch_carries_one_probe_of_a_unit_of_its_own() -> None:
    load = workload(300)
    assert all(len(batch) <= MAX_BATCH for batch in load.batches)
    probes = [e for batch in load.batches for e in batch if e["event_id"].startswith("probe-")]
    assert [p["unit_code"] for p in probes] == load.probe_units
    assert len(set(load.probe_units)) == len(load.batches)
    assert set(load.probe_units) <= set(load.units)
    # A probe is someone else than the workforce: its case is the only one of its unit.
    staff = Counter(e["employee_ref"] for b in load.batches for e in b if e not in probes)
    assert not {p["employee_ref"] for p in probes} & set(staff)


def test_percentiles_are_taken_from_the_sorted_values() -> None:
    values = [0.9, 0.1, 0.5, 0.3, 0.7]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0)) == (
        0.5,
        0.9,
        0.1,
    )
