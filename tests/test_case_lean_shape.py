"""The lean shape of a case's history: what a lifecycle costs Temporal, counted in events.

A case through every stage, from opening to closure, in one run: the deadline timer is
replaced only when the next instant moved, search attributes are upserted only when they
change, and no stage boundary continues the workflow as new.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.actions import (
    BookJointMeeting,
    CaseActionResult,
    CloseCase,
    CompleteIntervention,
    PlannedIntervention,
    RecordMeetingOutcome,
    RecordReturnToWorkStep,
    RecordScreeningResult,
    SetPlan,
)
from models.case import CaseOutcome, InterventionOwner, Stage, Track, case_workflow_id
from models.instruments import ScreeningScore
from tests.case_steps import days, open_case, today
from tests.conftest import DevStack

# Valid by format, date and Luhn check digit (a textbook example number).
PIN = "19811218-9876"

KEDS_LOW = ScreeningScore(
    instrument_id="keds",
    instrument_version=1,
    total=8,
    band="low",
    risk_level="low",
    suggests_reinforced_support=False,
    protected=False,
)


def _fire_times(events: list[HistoryEvent]) -> list[datetime]:
    """When each started timer fires: `workflow.now()` is its workflow task's start."""
    fire_times, task_started = [], None
    for e in events:
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            task_started = e.event_time.ToDatetime()
        elif e.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            assert task_started is not None
            timeout = e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            fire_times.append(task_started + timeout)
    return fire_times


def _upserted(event: HistoryEvent) -> dict[str, object]:
    """Our own search attributes of an upsert (the SDK upserts the patches it records)."""
    fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
    return {
        key: json.loads(p.data)
        for key, p in fields.indexed_fields.items()
        if key != "TemporalChangeVersion"
    }


async def test_a_lifecycle_is_one_run_with_a_timer_and_search_attributes_changed_only_on_change(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    day = await today(env)
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        sick_start=day - days(3),
        expected_end=day + days(66),
        opened_at=await env.get_current_time(),
        track=started_cases,
    )
    h = case.handle
    # Back-registered: the meeting took place two hours ago, so no time needs to pass.
    held_at = await env.get_current_time() - timedelta(hours=2)
    await h.execute_update(
        "book_joint_meeting",
        BookJointMeeting(starts_at=held_at, ends_at=held_at + timedelta(hours=1)),
        result_type=CaseActionResult,
    )
    await h.execute_update(
        "record_meeting_outcome",
        RecordMeetingOutcome(
            attended=("employee", "manager", "coordinator"),
            needs=(Track.WORK_ORIENTED,),
            reinforced_support=False,
        ),
        result_type=CaseActionResult,
    )
    await h.execute_update(
        "record_screening_result",
        RecordScreeningResult(scores=(KEDS_LOW,)),
        result_type=CaseActionResult,
    )
    planned = await h.execute_update(
        "set_plan",
        SetPlan(
            interventions=(
                PlannedIntervention(
                    track=Track.WORK_ORIENTED,
                    kind="work_adaptation",
                    owner=InterventionOwner.MANAGER,
                    due_on=day + days(10),
                ),
            )
        ),
        result_type=CaseActionResult,
    )
    await h.execute_update(
        "complete_intervention",
        CompleteIntervention(intervention_id=planned.created_ids[0], outcome="achieved"),
        result_type=CaseActionResult,
    )
    for extent in (50, 100):
        await h.execute_update(
            "record_return_to_work_step",
            RecordReturnToWorkStep(extent=extent, from_date=day),
            result_type=CaseActionResult,
        )
    closed = await h.execute_update(
        "close_case", CloseCase(outcome=CaseOutcome.RETURNED_SAME_JOB), result_type=CaseActionResult
    )
    assert closed.stage == Stage.CLOSED

    events = (await h.fetch_history()).events
    of = {t: [e for e in events if e.event_type == t] for t in EventType.values()}

    # Seven stages, one run: no stage boundary continued the case as new.
    assert not of[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW]
    started = events[0].workflow_execution_started_event_attributes
    assert not started.continued_execution_run_id
    # Its workflow tasks write the record store, so they get longer than the default 10 s.
    assert started.workflow_task_timeout.ToTimedelta() == timedelta(seconds=30)

    # A timer is replaced only for another instant: never re-armed for the one it had.
    fire_times = _fire_times(list(events))
    assert len(set(fire_times)) == len(fire_times), fire_times
    # Ten actions, but far fewer timers: most actions leave the next instant alone.
    assert len(fire_times) <= 5, fire_times

    # Every upsert changes a value.
    seen: dict[str, object] = {}
    upserts = [
        values
        for e in of[EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES]
        if (values := _upserted(e))
    ]
    for values in upserts:
        assert any(seen.get(k) != v for k, v in values.items()), values
        seen |= values
    assert seen["RehabStage"] == "closed"
    stages = [v["RehabStage"] for v in upserts if "RehabStage" in v]
    # The stage it opened at (and the overdue flag) came with the start: one upsert per
    # later stage, nothing more.
    indexed = started.search_attributes.indexed_fields
    assert json.loads(indexed["RehabStage"].data) == "identified"
    assert json.loads(indexed["RehabOverdue"].data) is False
    assert stages == [
        "joint_meeting",
        "screening",
        "planning",
        "interventions",
        "return_to_work",
        "closed",
    ], upserts

    # Started by code that has every patch: no patch markers (only the local activities'
    # below), and none of their upserts.
    # The record store is written by local activities, in the workflow task of the change:
    # no activity task at all but the team lookup, and the opening rode on the first change.
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in of[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    ]
    assert scheduled == ["team_of_unit"], scheduled
    markers = [e.marker_recorded_event_attributes for e in of[EventType.EVENT_TYPE_MARKER_RECORDED]]
    assert {m.marker_name for m in markers} == {"core_local_activity"}
    assert len(markers) >= 9  # the opening with its first change, then one per action


async def test_a_referred_case_takes_its_first_workflow_task_with_its_start(
    dev_stack: DevStack, unit_code: str, coordinator_headers: dict[str, str]
) -> None:
    """The opener runs in the worker and starts the case with the worker's own client: the
    server hands the case's first task back with the start (eager start), not through the
    task queue. The test server cannot do this, so this runs on the dev server."""
    created = await dev_stack.api.post(
        "/api/v1/cases",
        json={"employee_ref": PIN, "unit_code": unit_code, "trigger": "manager_concern"},
        headers=coordinator_headers,
    )
    assert created.status_code == 201, created.text
    case_id = uuid.UUID(created.json()["case_id"])
    handle = dev_stack.client.get_workflow_handle(case_workflow_id(case_id))
    first = (await handle.fetch_history()).events[0]
    assert first.workflow_execution_started_event_attributes.eager_execution_accepted
