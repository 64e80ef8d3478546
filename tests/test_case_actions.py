"""Coordinator actions that do not fit the case are refused with a reason, changing nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.actions import (
    BookJointMeeting,
    CaseActionResult,
    CloseCase,
    CompleteIntervention,
    RecordConsent,
    RecordDeadlineMet,
    RecordMeetingOutcome,
    RecordReturnToWorkStep,
    RecordScreeningResult,
    ReportSickLeave,
    SetPlan,
    SetSickLeave,
)
from models.case import CaseOutcome, ConsentParty, InterventionOutcome, Stage
from models.instruments import ScreeningScore
from tests.case_steps import (
    OpenedCase,
    days,
    kinds,
    open_case,
    today,
)
from workflows.rehab_case import RehabCaseWorkflow

KEDS_HIGH = ScreeningScore(
    instrument_id="keds",
    instrument_version=1,
    total=30,
    band="high",
    risk_level="high",
    suggests_reinforced_support=True,
    protected=False,
)


pytestmark = pytest.mark.own_temporal("module")


async def _accepted_updates(case: OpenedCase) -> int:
    history = await case.handle.fetch_history()
    return sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    )


async def _assert_refused(case: OpenedCase, update: Any, action: Any, reason: str) -> None:
    before = await case.handle.query(RehabCaseWorkflow.state)
    accepted = await _accepted_updates(case)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await case.handle.execute_update(update, action)
    assert reason in str(refused.value.cause), refused.value.cause
    # Refused by the validator: no state change and nothing in the history.
    assert await case.handle.query(RehabCaseWorkflow.state) == before
    assert await _accepted_updates(case) == accepted


async def test_actions_that_do_not_fit_the_stage_are_refused_with_a_reason(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    day = await today(env)
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        sick_start=day - days(2),
        opened_at=now,
        track=started_cases,
    )
    meeting = BookJointMeeting(
        starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=1, hours=1)
    )
    outcome = RecordMeetingOutcome(attended=("employee",), reinforced_support=False)
    refusals: list[tuple[Any, Any, str]] = [
        ("set_plan", SetPlan(), "only in stage planning"),
        ("record_meeting_outcome", outcome, "only in stage joint_meeting"),
        (
            "record_screening_result",
            RecordScreeningResult(scores=(KEDS_HIGH,)),
            "only in stage screening",
        ),
        (
            "record_return_to_work_step",
            RecordReturnToWorkStep(extent=50, from_date=day),
            "only in stage interventions",
        ),
        (
            "report_sick_leave",
            ReportSickLeave(start=day),
            "has not returned to work",
        ),
        (
            "close_case",
            CloseCase(outcome=CaseOutcome.RETURNED_SAME_JOB),
            "needs the full return to work",
        ),
        (
            "record_deadline_met",
            RecordDeadlineMet(kind="dialogue_meeting_1"),
            "no deadline 'dialogue_meeting_1'",
        ),
        (
            "book_joint_meeting",
            meeting.model_copy(update={"invite": (ConsentParty.FK,)}),
            "only with the employee's consent",
        ),
        (
            "book_joint_meeting",
            # Back-registration reaches 14 days back (the policy's bound), not further.
            BookJointMeeting(
                starts_at=now - timedelta(days=15), ends_at=now - timedelta(days=15, hours=-1)
            ),
            "at most 14 days after it took place",
        ),
        (
            "set_sick_leave",
            SetSickLeave(start=day + days(3)),
            "once it has begun",
        ),
        (
            "set_sick_leave",
            SetSickLeave(start=day - days(2)),
            "nothing changes",
        ),
        (
            "complete_intervention",
            CompleteIntervention(
                intervention_id=uuid.uuid4(), outcome=InterventionOutcome.ACHIEVED
            ),
            "no intervention",
        ),
    ]
    for update, action, reason in refusals:
        await _assert_refused(case, update, action, reason)

    # In stage joint_meeting, before the meeting: the outcome is refused until it starts.
    await case.handle.execute_update("book_joint_meeting", meeting, result_type=CaseActionResult)
    await _assert_refused(case, "record_meeting_outcome", outcome, "has not started yet")
    await case.handle.execute_update(
        "record_consent",
        RecordConsent(party=ConsentParty.FK, given=True),
        result_type=CaseActionResult,
    )
    await _assert_refused(
        case,
        "record_consent",
        RecordConsent(party=ConsentParty.FK, given=True),
        "already given",
    )

    closed = await case.handle.execute_update(
        "close_case", CloseCase(outcome=CaseOutcome.OTHER), result_type=CaseActionResult
    )
    assert closed.stage == Stage.CLOSED
    # Closing twice, or any other action on a closed case, is refused.
    await _assert_refused(case, "close_case", CloseCase(outcome=CaseOutcome.OTHER), "is closed")
    await _assert_refused(
        case,
        "record_consent",
        RecordConsent(party=ConsentParty.FHV, given=True),
        "is closed",
    )
    assert await kinds(sessionmaker, case.case_id) == [
        "case_opened",
        "case_planned",
        "joint_meeting_booked",
        "consent_given",
        "case_closed",
    ]


async def test_a_meeting_outcome_without_a_booked_meeting_is_refused_after_a_relapse(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    now = await env.get_current_time()
    day = await today(env)
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        sick_start=day - days(3),
        opened_at=now,
        track=started_cases,
    )
    h = case.handle
    await h.execute_update(
        "book_joint_meeting",
        BookJointMeeting(starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2)),
        result_type=CaseActionResult,
    )
    await env.sleep(timedelta(hours=3))
    await h.execute_update(
        "record_meeting_outcome",
        RecordMeetingOutcome(attended=("employee", "manager"), reinforced_support=True),
        result_type=CaseActionResult,
    )
    await h.execute_update(
        "record_screening_result",
        RecordScreeningResult(scores=(KEDS_HIGH,)),
        result_type=CaseActionResult,
    )
    await h.execute_update("set_plan", SetPlan(), result_type=CaseActionResult)
    returned = await today(env)
    await h.execute_update(
        "record_return_to_work_step",
        RecordReturnToWorkStep(extent=100, from_date=returned),
        result_type=CaseActionResult,
    )
    await _assert_refused(
        case,
        "record_return_to_work_step",
        RecordReturnToWorkStep(extent=100, from_date=returned),
        "already recorded",
    )
    await _assert_refused(
        case,
        "set_sick_leave",
        SetSickLeave(expected_end=returned + days(10)),
        "report_sick_leave",
    )
    # Sick again after the follow-up window (+6 months): that is a new case, not a relapse.
    await env.sleep(days(200))
    await _assert_refused(
        case,
        "report_sick_leave",
        ReportSickLeave(start=await today(env)),
        "follow-up window ended",
    )
    await h.execute_update(
        "report_sick_leave",
        ReportSickLeave(start=returned + days(30)),
        result_type=CaseActionResult,
    )
    await _assert_refused(
        case,
        "record_meeting_outcome",
        RecordMeetingOutcome(attended=("employee",), reinforced_support=False),
        "no joint meeting is booked",
    )
    await _assert_refused(case, "set_plan", SetPlan(), "only in stage planning")


async def test_an_unknown_action_or_an_input_that_does_not_fit_is_refused_without_its_values(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    started_cases: list[str],
) -> None:
    # What a client sending straight to Temporal could try: every declared action goes
    # through one handler, which knows each action's input from its declaration.
    env = time_skipping_env
    day = await today(env)
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        sick_start=day - days(2),
        opened_at=await env.get_current_time(),
        track=started_cases,
    )
    timeline = await kinds(sessionmaker, case.case_id)
    await _assert_refused(case, "erase_everything", SetPlan(), "no such action")
    await _assert_refused(case, "wait_until_recorded_", SetPlan(), "no such action")
    secret = "19121212-1212"
    await _assert_refused(
        case,
        "record_return_to_work_step",
        {"extent": secret, "from_date": secret},
        "does not fit",
    )
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await case.handle.execute_update("record_consent", {"party": secret, "given": True})
    assert secret not in str(refused.value.cause)
    # One input, as declared: a second argument is refused too.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await case.handle.execute_update(
            "set_plan", args=[SetPlan(), SetPlan()], result_type=CaseActionResult
        )
    assert "does not fit" in str(refused.value.cause)
    assert await kinds(sessionmaker, case.case_id) == timeline
