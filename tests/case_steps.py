"""Steps shared by the case-lifecycle tests: open a case, drive it, read its record."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from core.case_start import start_case
from core.secrets import Secrets
from core.temporal import RetryingQueries, data_converter, is_transient
from models.actions import (
    BookJointMeeting,
    CaseActionResult,
    RecordMeetingOutcome,
    RecordScreeningResult,
    SetPlan,
)
from models.case import (
    CaseInput,
    CaseResult,
    CaseTrigger,
    case_workflow_id,
    information_request_workflow_id,
    intervention_workflow_id,
)
from models.deadlines import local_date
from models.instruments import ScreeningScore
from models.policy import SWEDISH_DEFAULT, Policy
from models.search_attributes import ALL_SEARCH_ATTRIBUTES
from store.schema import Case, CaseEvent, Employee
from workflows.rehab_case import RehabCaseWorkflow

# Written by the outbox when a unit has no contact for a role; not a case state change.
NOT_LIFECYCLE = {"notification_undeliverable"}

T = TypeVar("T")

KEDS_LOW = ScreeningScore(
    instrument_id="keds",
    instrument_version=1,
    total=8,
    band="low",
    risk_level="low",
    suggests_reinforced_support=False,
    protected=False,
)


@dataclass
class OpenedCase:
    case_id: uuid.UUID
    handle: WorkflowHandle[Any, CaseResult]
    opened_on: date


@asynccontextmanager
async def private_time_skipping_server(secrets: Secrets) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of the test module's own.

    The test server stops skipping time while any workflow task or activity is pending,
    and it never lets go of an activity whose worker stopped (even once its workflow is
    terminated). Workflows other tests leave behind on the shared server would then hang
    every `env.sleep` here; a server of our own starts in 0.1 s and sees only our cases.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=data_converter(secrets),
        # Queries of the tests wait for a busy worker instead of failing the test.
        interceptors=[RetryingQueries()],
    )
    try:
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace="default",
                search_attributes={
                    key.name: IndexedValueType.ValueType(key.indexed_value_type)
                    for key in ALL_SEARCH_ATTRIBUTES
                },
            )
        )
        yield env
    finally:
        await env.shutdown()


@asynccontextmanager
async def terminated_afterwards(env: WorkflowEnvironment) -> AsyncIterator[list[str]]:
    """Collects the test's case workflow ids; terminates them and their children after.

    The time-skipping server is shared by the session and does not skip time while any
    workflow task is pending. A case left running by a test would get timer tasks that no
    worker polls any more, and every later `env.sleep` would hang.
    """
    ids: list[str] = []
    yield ids
    client = env.client
    for workflow_id in ids:
        handle = client.get_workflow_handle(workflow_id)
        try:
            view = await handle.query(RehabCaseWorkflow.state)
            children = [intervention_workflow_id(iv.intervention_id) for iv in view.interventions]
            children += [
                information_request_workflow_id(r.request_id) for r in view.information_requests
            ]
        except RPCError:
            children = []
        for child in [*children, workflow_id]:
            child_handle = client.get_workflow_handle(child)
            try:
                # The test server stops its clock for an activity that is still pending,
                # even once its workflow is terminated: let the activities finish first.
                await eventually(
                    child_handle.describe,
                    lambda d: not d.raw_description.pending_activities,
                    within=10.0,
                )
                await child_handle.terminate("test finished")
            except RPCError:
                pass  # already closed


async def today(env: WorkflowEnvironment) -> date:
    """The test server's current date in Europe/Stockholm (its clock moves between tests)."""
    return local_date(await env.get_current_time())


async def open_case(
    client: Client,
    task_queue: str,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    sick_start: date | None = None,
    expected_end: date | None = None,
    policy: Policy = SWEDISH_DEFAULT,
    opened_at: datetime,
    track: list[str],
) -> OpenedCase:
    pseudonym = uuid.uuid4()
    async with sessionmaker.begin() as session:
        session.add(Employee(pseudonym=pseudonym, unit_code=unit_code))
    case_id = uuid.uuid4()
    # Started as the opener starts every case (its search attributes at start, its opening
    # written with its first change), but the case looks up its meeting team itself.
    handle = await start_case(
        client,
        CaseInput(
            case_id=case_id,
            employee_pseudonym=pseudonym,
            unit_code=unit_code,
            trigger=CaseTrigger.LONG_ABSENCE,
            opened_at=opened_at,
            policy=policy,
            sick_start=sick_start,
            expected_end=expected_end,
            opened_with_first_change=True,
            records_locally=True,
        ),
        task_queue,
    )
    track.append(handle.id)
    await handle.execute_update(RehabCaseWorkflow.wait_until_recorded)
    return OpenedCase(case_id=case_id, handle=handle, opened_on=local_date(opened_at))


async def eventually(
    probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], *, within: float = 120.0
) -> T:
    """Poll until `check(probe())` holds: activities run in real time after a time skip.

    A probe that only meets a busy worker ("query deadline exceeded") has not seen the
    condition yet; it is asked again. `within` bounds a test that would otherwise hang: it
    is generous because a loaded machine is slow, not wrong.
    """
    deadline = asyncio.get_running_loop().time() + within
    pause = 0.05
    last: Any = "no answer yet"
    while True:
        try:
            value = await probe()
        except RPCError as exc:
            if not is_transient(exc):
                raise
            last = exc
        else:
            if check(value):
                return value
            last = value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached; last value: {last!r}")
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 1.0)


async def backlog_reaches(client: Client, queue: str, count: int) -> None:
    """Until at least `count` workflow tasks wait in `queue`'s backlog (a condition, not a
    time: a task started a moment ago may not show there yet)."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        report_stats=True,
    )
    await eventually(
        lambda: client.workflow_service.describe_task_queue(request),
        lambda described: described.stats.approximate_backlog_count >= count,
        within=30,
    )


async def timeline(
    sessionmaker: async_sessionmaker[AsyncSession], case_id: uuid.UUID
) -> list[CaseEvent]:
    """The case workflow's own events, in the order they were written."""
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(CaseEvent)
            .where(
                CaseEvent.workflow_id == case_workflow_id(case_id),
                CaseEvent.kind.not_in(NOT_LIFECYCLE),
            )
            .order_by(CaseEvent.id)
        )
        return list(rows)


async def kinds(sessionmaker: async_sessionmaker[AsyncSession], case_id: uuid.UUID) -> list[str]:
    return [e.kind for e in await timeline(sessionmaker, case_id)]


async def events_of(
    sessionmaker: async_sessionmaker[AsyncSession], case_id: uuid.UUID, kind: str
) -> list[CaseEvent]:
    return [e for e in await timeline(sessionmaker, case_id) if e.kind == kind]


async def case_row(sessionmaker: async_sessionmaker[AsyncSession], case_id: uuid.UUID) -> Case:
    async with sessionmaker() as session:
        row = await session.get(Case, case_id)
        assert row is not None
        return row


async def sleep_until(env: WorkflowEnvironment, instant: datetime) -> None:
    """Skip the test server's clock forward to `instant` (no-op if it has passed)."""
    gap = instant - await env.get_current_time()
    if gap > timedelta(0):
        await env.sleep(gap)


def days(n: int) -> timedelta:
    return timedelta(days=n)


async def through_planning(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any]) -> None:
    """identified -> joint_meeting -> screening -> planning -> interventions (empty plan)."""
    now = await env.get_current_time()
    await handle.execute_update(
        "book_joint_meeting",
        BookJointMeeting(starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2)),
        result_type=CaseActionResult,
    )
    await env.sleep(timedelta(hours=2))
    await handle.execute_update(
        "record_meeting_outcome",
        RecordMeetingOutcome(
            attended=("employee", "manager", "coordinator"), reinforced_support=False
        ),
        result_type=CaseActionResult,
    )
    await handle.execute_update(
        "record_screening_result",
        RecordScreeningResult(scores=(KEDS_LOW,)),
        result_type=CaseActionResult,
    )
    await handle.execute_update("set_plan", SetPlan(), result_type=CaseActionResult)
