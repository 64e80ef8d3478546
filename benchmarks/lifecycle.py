"""Benchmark: whole case lifecycles through the API against the plain-Temporal floor.

    .venv/bin/python -m benchmarks.lifecycle --cases 50
    .venv/bin/python -m benchmarks.lifecycle idle --cases 10000

The first drives N cases over HTTP, `--concurrency` at a time, through create, sick leave,
book (back-registered), outcome, screening, plan with one intervention, complete it, return
to work at 50 % and at 100 %, and close. In the same run, in alternating rounds, it drives
the floor (benchmarks/floor.py): a minimal sandboxed workflow on the same Temporal server
taking the same ten steps as updates, each running one activity doing one INSERT into the
same PostgreSQL. It prints cases/s, CPU-seconds per case of each process (measured with
psutil on their PIDs), p50/p95/p99 per action, and history events and bytes per case, and
ends with the line `lifecycle ratio: X.XX` (rehabflow's throughput / the floor's).

`idle` opens N cases, waits until the worker is quiet and prints its RSS and idle CPU.

By default it starts a stack of its own, as `make up` runs it but on dynamic ports under a
temporary directory: the Temporal dev server on a SQLite file with WAL pragmas, embedded
PostgreSQL, `worker.py` and the API under uvicorn, each its own process. With `--attach` it
uses the running `make up` described by the REHABFLOW_* environment instead (raise that API's
REHABFLOW_API__RATE_LIMIT_PER_MINUTE first: the benchmark is one caller).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import psutil
from rich.console import Console
from rich.table import Table
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from benchmarks.figures import Round, Side, cpu_delta, percentile, ratio, ratio_line, split_rounds
from benchmarks.floor import FloorStep, LifecycleFloor
from benchmarks.stack import (
    BENCH_UNIT,
    BenchError,
    Stack,
    attached_stack,
    cpu_seconds,
    own_stack,
)
from ingestion.synthetic import workforce
from models.deadlines import STOCKHOLM

console = Console(width=132, highlight=False)

ACTIONS = (
    "create",
    "sick_leave",
    "book",
    "outcome",
    "screening",
    "plan",
    "complete",
    "rtw_50",
    "rtw_100",
    "close",
)
# Long-lived workflows that are no case's own cost.
_BACKGROUND_TYPES = frozenset({"NotificationDispatcherWorkflow", "MeetingTeamWorkflow"})


# ---------------------------------------------------------------- one case, each side


@dataclass
class Employees:
    """Fresh employees for the cases of this run: one open case per employee."""

    pins: list[str]

    @classmethod
    def fresh(cls, count: int) -> Employees:
        return cls(
            [e.personal_identity_number for e in workforce(count, seed=secrets.randbits(32))]
        )

    def take(self) -> str:
        return self.pins.pop()


def http_session(stack: Stack) -> aiohttp.ClientSession:
    """The callers' HTTP client. aiohttp, not httpx: on these machines httpx spent about
    1.7 ms of CPU per request against aiohttp's 0.17 ms, and the benchmark shares the
    machine's two cores with the stack it measures."""
    return aiohttp.ClientSession(base_url=stack.api_url, timeout=aiohttp.ClientTimeout(total=120))


async def _timed(latencies: dict[str, list[float]], action: str, call: Awaitable[Any]) -> Any:
    started = time.perf_counter()
    result = await call
    latencies[action].append(time.perf_counter() - started)
    return result


async def rehabflow_case(
    api: aiohttp.ClientSession, stack: Stack, pin: str, latencies: dict[str, list[float]]
) -> None:
    """One case through its whole lifecycle over HTTP, as a coordinator would take it."""
    headers = stack.headers

    async def post(action: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with api.post(path, json=body, headers=headers) as response:
            if response.status not in (200, 201):
                raise BenchError(f"{action}: {response.status} {(await response.text())[:300]}")
            answer: dict[str, Any] = await response.json()
            return answer

    async def act(action: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = await _timed(latencies, action, post(action, path, body))
        return answer

    created = await act(
        "create",
        "/api/v1/cases",
        {"employee_ref": pin, "unit_code": BENCH_UNIT, "trigger": "manager_concern"},
    )
    case = f"/api/v1/cases/{created['case_id']}"
    today = datetime.now(STOCKHOLM).date()
    await act(
        "sick_leave",
        f"{case}/set-sick-leave",
        {"start": (today - timedelta(days=3)).isoformat(), "expected_end": _iso(today, 66)},
    )
    # Back-registered: the meeting took place an hour ago, so its outcome follows at once.
    held = datetime.now(UTC) - timedelta(hours=2)
    await act(
        "book",
        f"{case}/book-joint-meeting",
        {"starts_at": held.isoformat(), "ends_at": (held + timedelta(hours=1)).isoformat()},
    )
    await act(
        "outcome",
        f"{case}/record-meeting-outcome",
        {
            "attended": ["employee", "manager", "coordinator"],
            "held_by": "coordinator",
            "needs": ["work_oriented"],
            "reinforced_support": False,
            "violence_questions": _answers("violence_exposure", _VIOLENCE_ITEMS),
        },
    )
    await act(
        "screening",
        f"{case}/record-screening-result",
        {
            "answers": [
                _answers("keds", _KEDS_ITEMS),
                _answers("violence_exposure", _VIOLENCE_ITEMS),
            ]
        },
    )
    planned = await act(
        "plan",
        f"{case}/set-plan",
        {
            "interventions": [
                {
                    "track": "work_oriented",
                    "kind": "work_adaptation",
                    "owner": "manager",
                    "due_on": _iso(today, 10),
                }
            ]
        },
    )
    (intervention_id,) = planned["created_ids"]
    await act(
        "complete",
        f"{case}/complete-intervention",
        {"intervention_id": intervention_id, "outcome": "achieved"},
    )
    await act(
        "rtw_50", f"{case}/record-return-to-work-step", {"extent": 50, "from_date": _iso(today, 0)}
    )
    await act(
        "rtw_100",
        f"{case}/record-return-to-work-step",
        {"extent": 100, "from_date": _iso(today, 0)},
    )
    await act("close", f"{case}/close-case", {"outcome": "returned_same_job"})


_VIOLENCE_ITEMS = ("physical", "psychological", "sexual", "threats", "at_work")
_KEDS_ITEMS = tuple(
    f"q{i}_{name}"
    for i, name in enumerate(
        (
            "concentration",
            "memory",
            "physical_stamina",
            "mental_stamina",
            "recovery",
            "sleep",
            "sensory_load",
            "demands",
            "irritability",
        ),
        start=1,
    )
)


def _answers(instrument: str, items: tuple[str, ...]) -> dict[str, Any]:
    return {
        "instrument_id": instrument,
        "instrument_version": 1,
        "answers": dict.fromkeys(items, 0),
    }


def _iso(today: date, days: int) -> str:
    return (today + timedelta(days=days)).isoformat()


async def floor_case(stack: Stack, case_id: str, latencies: dict[str, list[float]]) -> None:
    """The same ten steps as updates of the floor workflow; the first one starts it."""
    client = stack.client
    workflow_id = f"floor-{case_id}"
    start = WithStartWorkflowOperation(
        LifecycleFloor.run,
        case_id,
        id=workflow_id,
        task_queue=stack.floor_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    await _timed(
        latencies,
        ACTIONS[0],
        client.execute_update_with_start_workflow(
            LifecycleFloor.step, FloorStep(case_id, 1, ACTIONS[0]), start_workflow_operation=start
        ),
    )
    handle = client.get_workflow_handle(workflow_id)
    for number, action in enumerate(ACTIONS[1:], start=2):
        kind = "close" if action == "close" else action
        await _timed(
            latencies,
            action,
            handle.execute_update(LifecycleFloor.step, FloorStep(case_id, number, kind)),
        )


# ---------------------------------------------------------------- rounds and figures


async def drive_round(
    side: Side,
    cases: int,
    concurrency: int,
    one_case: Callable[[int, dict[str, list[float]]], Awaitable[None]],
    stack: Stack,
    processes: tuple[str, ...],
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def bounded(index: int) -> None:
        async with gate:
            await one_case(index, side.latencies)

    before = stack.cpu(processes)
    started = time.perf_counter()
    await asyncio.gather(*(bounded(i) for i in range(cases)))
    wall = time.perf_counter() - started
    side.rounds.append(Round(cases, wall, cpu_delta(before, stack.cpu(processes))))
    console.print(f"  {side.name:<10} round: {cases} cases in {wall:5.1f} s ({cases / wall:.2f}/s)")


async def count_histories(side: Side, client: Client, query: str) -> None:
    """Events and bytes of every workflow the side started in the run (all runs, children)."""
    await asyncio.sleep(1.5)  # visibility is eventually consistent
    executions = [
        e async for e in client.list_workflows(query) if e.workflow_type not in _BACKGROUND_TYPES
    ]
    gate = asyncio.Semaphore(8)

    async def one(workflow_id: str, run_id: str) -> None:
        async with gate:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        for event in history.events:
            size = event.ByteSize()
            side.history_events += 1
            side.history_bytes += size
            kind = EventType.Name(event.event_type)
            if event.HasField("activity_task_scheduled_event_attributes"):
                kind += f" ({event.activity_task_scheduled_event_attributes.activity_type.name})"
            side.history_bytes_by_type[kind] += size

    await asyncio.gather(*(one(e.id, e.run_id) for e in executions))
    side.workflows = len(executions)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def report(sides: tuple[Side, Side], concurrency: int) -> None:
    rehab, floor = sides
    table = Table(title=f"lifecycle, {rehab.cases}+{floor.cases} cases, {concurrency} in flight")
    table.add_column("figure")
    for side in sides:
        table.add_column(side.name, justify="right")
    table.add_column("rehabflow / floor", justify="right")

    def row(label: str, a: float | None, b: float | None, fmt: str = "{:.2f}") -> None:
        cells = [fmt.format(v) if v is not None else "-" for v in (a, b)]
        both = a is not None and b is not None and b != 0
        table.add_row(label, *cells, f"{a / b:.2f}" if both else "-")  # type: ignore[operator]

    row("cases/s", rehab.cases_per_s, floor.cases_per_s)
    for process in ("worker", "temporal", "api", "postgres", "driver"):
        row(
            f"CPU-s per case: {process}",
            rehab.cpu_per_case(process),
            floor.cpu_per_case("floor-worker" if process == "worker" else process),
            "{:.3f}",
        )
    rehab_cpu = sum(rehab.cpu_per_case(p) or 0.0 for p in ("worker", "temporal", "api"))
    floor_cpu = sum(floor.cpu_per_case(p) or 0.0 for p in ("floor-worker", "temporal"))
    row("CPU-s per case: worker+temporal+api", rehab_cpu, floor_cpu, "{:.3f}")
    row(
        "history events per case",
        rehab.per_case(rehab.history_events),
        floor.per_case(floor.history_events),
        "{:.1f}",
    )
    row(
        "history bytes per case",
        rehab.per_case(rehab.history_bytes),
        floor.per_case(floor.history_bytes),
        "{:.0f}",
    )
    row(
        "workflows per case",
        rehab.per_case(rehab.workflows),
        floor.per_case(floor.workflows),
        "{:.1f}",
    )
    all_r = [v for a in ACTIONS for v in rehab.latencies[a]]
    all_f = [v for a in ACTIONS for v in floor.latencies[a]]
    row("p50 any action (ms)", percentile(all_r, 50) * 1000, percentile(all_f, 50) * 1000, "{:.0f}")
    console.print(table)
    latency = Table(title="action latency (ms)")
    latency.add_column("action")
    for side in sides:
        for q in (50, 95, 99):
            latency.add_column(f"{side.name} p{q}", justify="right")
    latency.add_column("p50 ratio", justify="right")
    for action in ACTIONS:
        cells = [_ms(side.latency(action, q)) for side in sides for q in (50, 95, 99)]
        latency.add_row(
            action, *cells, f"{rehab.latency(action, 50) / floor.latency(action, 50):.2f}"
        )
    console.print(latency)
    sizes = Table(title="history bytes per case by event type (largest first)")
    sizes.add_column("event type")
    for side in sides:
        sizes.add_column(side.name, justify="right")
    for kind, _ in (rehab.history_bytes_by_type + floor.history_bytes_by_type).most_common(14):
        sizes.add_row(
            kind.removeprefix("EVENT_TYPE_").lower(),
            *(f"{side.per_case(side.history_bytes_by_type[kind]):.0f}" for side in sides),
        )
    console.print(sizes)
    console.print(
        "CPU: the floor has no API (the benchmark drives Temporal directly); PostgreSQL counts "
        "the postmaster and its backends. History: every workflow the side started in its "
        "rounds (cases, monitors, interventions), every run."
    )
    console.print(ratio_line(ratio(rehab, floor)))


async def lifecycle(cases: int, rounds: int, concurrency: int, attach: bool) -> None:
    stack_of = attached_stack if attach else own_stack
    async with stack_of(with_floor=True) as stack:
        employees = Employees.fresh(cases + concurrency)
        rehab, floor = Side("rehabflow"), Side("floor")
        async with http_session(stack) as api:

            async def one_rehab(_: int, latencies: dict[str, list[float]]) -> None:
                await rehabflow_case(api, stack, employees.take(), latencies)

            async def one_floor(_: int, latencies: dict[str, list[float]]) -> None:
                await floor_case(stack, uuid.uuid4().hex, latencies)

            # Unmeasured, per side: as many cases as the rounds keep in flight, all at once,
            # so imports, caches and every connection pool (HTTP, API and worker to
            # PostgreSQL, the floor's asyncpg) are as the measured rounds need them. With
            # one case, the first round also paid for opening those connections.
            for warm in (one_rehab, one_floor):
                await asyncio.gather(*(warm(i, defaultdict(list)) for i in range(concurrency)))
            measured_from = datetime.now(UTC)
            console.print(f"{cases} cases per side in {rounds} alternating rounds each")
            for size in split_rounds(cases, rounds):
                await drive_round(
                    rehab, size, concurrency, one_rehab, stack, ("worker", "temporal", "api")
                )
                await drive_round(
                    floor, size, concurrency, one_floor, stack, ("floor-worker", "temporal")
                )
        since = measured_from.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        queue = stack.settings.temporal.task_queue
        await count_histories(
            rehab, stack.client, f"TaskQueue = '{queue}' AND StartTime >= '{since}'"
        )
        await count_histories(
            floor, stack.client, f"TaskQueue = '{stack.floor_queue}' AND StartTime >= '{since}'"
        )
        report((rehab, floor), concurrency)


async def idle(cases: int, concurrency: int, window_s: float, attach: bool) -> None:
    stack_of = attached_stack if attach else own_stack
    async with stack_of(with_floor=False) as stack:
        employees = Employees.fresh(cases)
        gate = asyncio.Semaphore(concurrency)
        worker = psutil.Process(stack.pids["worker"])
        rss_before = worker.memory_info().rss
        opened = 0
        started = time.perf_counter()
        async with http_session(stack) as api:

            async def open_one() -> None:
                nonlocal opened
                async with (
                    gate,
                    api.post(
                        "/api/v1/cases",
                        json={
                            "employee_ref": employees.take(),
                            "unit_code": BENCH_UNIT,
                            "trigger": "manager_concern",
                        },
                        headers=stack.headers,
                    ) as response,
                ):
                    if response.status != 201:
                        text = await response.text()
                        raise BenchError(f"create: {response.status} {text[:300]}")
                    opened += 1
                    if opened % 500 == 0:
                        console.print(
                            f"  {opened} cases open ({time.perf_counter() - started:.0f} s)"
                        )

            await asyncio.gather(*(open_one() for _ in range(cases)))
        console.print(f"{cases} cases opened in {time.perf_counter() - started:.0f} s")
        # Settle: the opening activities and their notifications finish.
        await asyncio.sleep(max(10.0, window_s / 3))
        before = cpu_seconds(worker.pid)
        await asyncio.sleep(window_s)
        idle_cpu = (cpu_seconds(worker.pid) - before) / window_s
        rss = worker.memory_info().rss
        table = Table(title=f"worker with {cases} open idle cases")
        table.add_column("figure")
        table.add_column("value", justify="right")
        table.add_row("worker RSS (MB)", f"{rss / 2**20:.0f}")
        table.add_row("worker RSS before the cases (MB)", f"{rss_before / 2**20:.0f}")
        table.add_row(
            "worker RSS growth per open case (kB)", f"{(rss - rss_before) / cases / 1024:.1f}"
        )
        table.add_row(f"worker idle CPU over {window_s:.0f} s (cores)", f"{idle_cpu:.3f}")
        if "temporal" in stack.pids:
            t_rss = psutil.Process(stack.pids["temporal"]).memory_info().rss
            table.add_row("Temporal dev server RSS (MB)", f"{t_rss / 2**20:.0f}")
        console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", nargs="?", choices=("lifecycle", "idle"), default="lifecycle")
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="rounds per side (at least 2)")
    parser.add_argument("--concurrency", type=int, default=10, help="cases in flight")
    parser.add_argument("--window", type=float, default=30.0, help="idle: seconds measured")
    parser.add_argument(
        "--attach", action="store_true", help="use the running `make up` (REHABFLOW_* env)"
    )
    args = parser.parse_args()
    if args.command == "idle":
        asyncio.run(idle(args.cases, args.concurrency, args.window, args.attach))
        return
    if args.rounds < 2:
        parser.error("--rounds must be at least 2: the sides alternate")
    asyncio.run(lifecycle(args.cases, args.rounds, args.concurrency, args.attach))


if __name__ == "__main__":
    main()
