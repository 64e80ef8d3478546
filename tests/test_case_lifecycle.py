"""Whole cases through the stage machine, asserted on the record store's timeline and projection."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.actions import (
    BookJointMeeting,
    CaseActionResult,
    CloseCase,
    CompleteIntervention,
    PlannedIntervention,
    RecordConsent,
    RecordDeadlineMet,
    RecordMeetingOutcome,
    RecordReturnToWorkStep,
    RecordScreeningResult,
    ReportSickLeave,
    SetPlan,
)
from models.case import (
    CaseOutcome,
    ConsentParty,
    InterventionOwner,
    InterventionStatus,
    Stage,
    Track,
)
from models.deadlines import DeadlineStatus, end_of_day, local_date, start_of_day
from models.instruments import ScreeningScore
from models.policy import CalendarOffset
from models.search_attributes import REHAB_OVERDUE, REHAB_STAGE
from store.schema import (
    CaseConsent,
    CaseEvent,
    CaseIntervention,
    Employee,
    Meeting,
    MeetingParticipant,
    Notification,
    Screening,
)
from tests.case_steps import (
    OpenedCase,
    case_row,
    days,
    eventually,
    kinds,
    open_case,
    sleep_until,
    today,
)
from workflows.rehab_case import RehabCaseWorkflow

pytestmark = pytest.mark.own_temporal("module")


TIMER_EVENTS = {"deadline_due", "deadline_overdue", "deadline_reminder", "deadline_escalation"}
KEDS_LOW = ScreeningScore(
    instrument_id="keds",
    instrument_version=1,
    total=8,
    band="low",
    risk_level="low",
    suggests_reinforced_support=False,
    protected=False,
)


def _months(anchor: date, months: int) -> date:
    return CalendarOffset(months=months).after(anchor)


async def _until_due(case: OpenedCase, kind: str) -> None:
    async def statuses() -> dict[str, DeadlineStatus]:
        view = await case.handle.query(RehabCaseWorkflow.deadlines)
        return {d.kind: d.status for d in view.deadlines}

    await eventually(statuses, lambda found: found[kind] == DeadlineStatus.DUE)


async def _actions(sessionmaker: async_sessionmaker[AsyncSession], case: OpenedCase) -> list[str]:
    """The case's own events without the timer-driven deadline steps."""
    return [k for k in await kinds(sessionmaker, case.case_id) if k not in TIMER_EVENTS]


async def _intervention_events(
    sessionmaker: async_sessionmaker[AsyncSession], case: OpenedCase
) -> list[str]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(CaseEvent.kind)
            .where(
                CaseEvent.case_id == case.case_id,
                CaseEvent.workflow_id.startswith("intervention-"),
            )
            .order_by(CaseEvent.id)
        )
        return list(rows)


async def _through_screening(
    env: WorkflowEnvironment, case: OpenedCase, *, invite_fk: bool = False
) -> None:
    """identified -> joint_meeting -> screening -> planning."""
    h = case.handle
    if invite_fk:
        await h.execute_update(
            "record_consent",
            RecordConsent(party=ConsentParty.FK, given=True),
            result_type=CaseActionResult,
        )
    now = await env.get_current_time()
    booked = await h.execute_update(
        "book_joint_meeting",
        BookJointMeeting(
            starts_at=now + timedelta(days=1),
            ends_at=now + timedelta(days=1, hours=1),
            invite=(ConsentParty.FK,) if invite_fk else (),
        ),
        result_type=CaseActionResult,
    )
    assert booked.stage == Stage.JOINT_MEETING and len(booked.created_ids) == 1
    await env.sleep(timedelta(days=1, hours=2))
    held = await h.execute_update(
        "record_meeting_outcome",
        RecordMeetingOutcome(
            attended=("employee", "manager", "coordinator", *(("fk",) if invite_fk else ())),
            needs=(Track.WORK_ORIENTED,),
            reinforced_support=False,
        ),
        result_type=CaseActionResult,
    )
    assert held.stage == Stage.SCREENING
    screened = await h.execute_update(
        "record_screening_result",
        RecordScreeningResult(scores=(KEDS_LOW,)),
        result_type=CaseActionResult,
    )
    assert screened.stage == Stage.PLANNING


async def test_happy_path_from_referral_to_return_follow_ups_closure_and_erasure(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    sick_start = await today(env) - days(3)
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        sick_start=sick_start,
        expected_end=sick_start + days(69),  # 70 days: the plan is required by day 30
        opened_at=await env.get_current_time(),
        track=started_cases,
    )
    h = case.handle
    await _through_screening(env, case, invite_fk=True)

    planned = await h.execute_update(
        "set_plan",
        SetPlan(
            interventions=(
                PlannedIntervention(
                    track=Track.WORK_ORIENTED,
                    kind="work_adaptation",
                    owner=InterventionOwner.MANAGER,
                    due_on=await today(env) + days(10),
                ),
            )
        ),
        result_type=CaseActionResult,
    )
    assert planned.stage == Stage.INTERVENTIONS
    (intervention_id,) = planned.created_ids
    deadlines = {d.kind: d for d in (await h.query(RehabCaseWorkflow.deadlines)).deadlines}
    # Setting the plan met the plan deadline by itself.
    assert deadlines["return_to_work_plan"].status == DeadlineStatus.MET
    await h.execute_update(
        "record_deadline_met",
        RecordDeadlineMet(kind="fk_sick_notice"),
        result_type=CaseActionResult,
    )

    await env.sleep(days(5))
    await h.execute_update(
        "complete_intervention",
        CompleteIntervention(intervention_id=intervention_id, outcome="achieved"),
        result_type=CaseActionResult,
    )
    half = await h.execute_update(
        "record_return_to_work_step",
        RecordReturnToWorkStep(extent=50, from_date=await today(env)),
        result_type=CaseActionResult,
    )
    assert half.stage == Stage.RETURN_TO_WORK
    await env.sleep(days(7))
    returned_on = await today(env)
    await h.execute_update(
        "record_return_to_work_step",
        RecordReturnToWorkStep(extent=100, from_date=returned_on),
        result_type=CaseActionResult,
    )
    assert (await h.query(RehabCaseWorkflow.state)).returned_on == returned_on
    follow_ups = {
        d.kind: d.due_on
        for d in (await h.query(RehabCaseWorkflow.deadlines)).deadlines
        if d.kind.startswith("follow_up")
    }
    assert follow_ups == {
        "follow_up_1": returned_on + days(14),
        "follow_up_2": _months(returned_on, 3),
        "follow_up_3": _months(returned_on, 6),
    }
    # The sick leave ended before day 90: the chain checkpoints never arise.
    assert not any(
        d.kind.startswith("rehab_chain")
        for d in (await h.query(RehabCaseWorkflow.deadlines)).deadlines
    )
    for kind, due in sorted(follow_ups.items(), key=lambda item: item[1]):
        await sleep_until(env, start_of_day(due) + timedelta(hours=9))
        await _until_due(case, kind)
        await h.execute_update(
            "record_deadline_met", RecordDeadlineMet(kind=kind), result_type=CaseActionResult
        )

    closed = await h.execute_update(
        "close_case", CloseCase(outcome=CaseOutcome.RETURNED_SAME_JOB), result_type=CaseActionResult
    )
    assert closed.stage == Stage.CLOSED
    row = await case_row(sessionmaker, case.case_id)
    assert (row.stage, row.outcome, row.overdue) == ("closed", "returned_same_job", False)
    assert row.closed_at is not None and row.sick_start == sick_start

    result = await h.result()  # time skips through the two-year retention
    assert (result.stage, result.outcome) == (Stage.CLOSED, CaseOutcome.RETURNED_SAME_JOB)
    assert await _actions(sessionmaker, case) == [
        "case_opened",
        "case_planned",
        "consent_given",
        "joint_meeting_booked",
        "joint_meeting_held",
        "screening_recorded",
        "plan_set",
        "deadline_met",
        "intervention_outcome_recorded",
        "return_to_work_step",
        "return_to_work_step",
        "deadline_met",
        "deadline_met",
        "deadline_met",
        "case_closed",
        "personal_data_erased",
    ]
    timer_events = [k for k in await kinds(sessionmaker, case.case_id) if k in TIMER_EVENTS]
    assert timer_events == ["deadline_due"] * 3  # the three follow-ups, nothing overdue
    assert await _intervention_events(sessionmaker, case) == [
        "intervention_assigned",
        "intervention_completed",
    ]
    async with sessionmaker() as session:
        erased = await case_row(sessionmaker, case.case_id)
        assert erased.closed_at is not None
        # Kept through the retention period's last day, erased when it ends.
        assert erased.erased_at == end_of_day(_months(local_date(erased.closed_at), 24))
        assert (erased.sick_start, erased.expected_end) == (None, None)
        assert (erased.outcome, erased.stage) == ("returned_same_job", "closed")
        employee = await session.get(Employee, erased.employee_pseudonym)
        assert employee is not None and employee.erased_at is not None
        assert (employee.pin_encrypted, employee.pin_lookup) == (None, None)
        assert not (
            await session.scalars(select(CaseConsent).where(CaseConsent.case_id == case.case_id))
        ).all()
        assert not (
            await session.scalars(select(Screening).where(Screening.case_id == case.case_id))
        ).all()
        meeting = await session.scalar(select(Meeting).where(Meeting.case_id == case.case_id))
        assert meeting is not None and meeting.status == "held"
        attended = {
            p.role: p.attended
            for p in await session.scalars(
                select(MeetingParticipant).where(MeetingParticipant.meeting_id == meeting.id)
            )
        }
        assert attended == {
            "employee": True,
            "manager": True,
            "coordinator": True,
            "fk": True,
        }
        intervention = await session.get(CaseIntervention, intervention_id)
        assert intervention is not None
        assert (intervention.status, intervention.outcome) == ("completed", "achieved")
        sent = set(
            await session.scalars(
                select(Notification.notification_type).where(Notification.case_id == case.case_id)
            )
        )
    assert sent >= {
        "case_assigned",
        "manager_case_opened",
        "meeting_invitation",
        "intervention_assigned",
        "follow_up_due",
        "case_closed",
    }


async def test_relapse_in_the_follow_up_window_reopens_the_same_case_at_joint_meeting(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    sick_start = await today(env) - days(3)
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        sick_start=sick_start,
        opened_at=await env.get_current_time(),
        track=started_cases,
    )
    h = case.handle
    await _through_screening(env, case)
    await h.execute_update("set_plan", SetPlan(), result_type=CaseActionResult)
    await h.execute_update(
        "record_deadline_met",
        RecordDeadlineMet(kind="fk_sick_notice"),
        result_type=CaseActionResult,
    )
    await h.execute_update(
        "record_return_to_work_step",
        RecordReturnToWorkStep(extent=100, from_date=await today(env)),
        result_type=CaseActionResult,
    )
    await env.sleep(days(10))  # before the +14-day follow-up
    relapse_start = await today(env)
    reopened = await h.execute_update(
        "report_sick_leave",
        ReportSickLeave(start=relapse_start, expected_end=relapse_start + days(30)),
        result_type=CaseActionResult,
    )
    assert reopened.stage == Stage.JOINT_MEETING
    assert (await h.query(RehabCaseWorkflow.state)).case_id == case.case_id and (
        await h.query(RehabCaseWorkflow.state)
    ).relapse_count == 1
    assert (await h.query(RehabCaseWorkflow.state)).meeting is None and (
        await h.query(RehabCaseWorkflow.state)
    ).returned_on is None
    # More than 5 days after the last sick day: a new sick period, its deadlines from day 1.
    due = {d.kind: d for d in (await h.query(RehabCaseWorkflow.deadlines)).deadlines}
    assert due["fk_sick_notice"].due_on == relapse_start + days(20)
    assert due["fk_sick_notice"].status == DeadlineStatus.PENDING
    assert not any(kind.startswith("follow_up") for kind in due)

    await sleep_until(env, start_of_day(relapse_start + days(20)) + timedelta(hours=1))
    await eventually(
        lambda: h.query(RehabCaseWorkflow.deadlines),
        lambda view: view.deadlines[0].status == DeadlineStatus.DUE,
    )
    await _through_screening(env, case)  # the same case goes round again

    assert await _actions(sessionmaker, case) == [
        "case_opened",
        "case_planned",
        "joint_meeting_booked",
        "joint_meeting_held",
        "screening_recorded",
        "plan_set",
        "deadline_met",
        "return_to_work_step",
        "relapse_reported",
        "joint_meeting_booked",
        "joint_meeting_held",
        "screening_recorded",
    ]
    timer_events = [e for e in await kinds(sessionmaker, case.case_id) if e in TIMER_EVENTS]
    # Only the new period's FK notice fired (no follow-up did), and the meeting a day later
    # left it overdue.
    assert timer_events == ["deadline_due", "deadline_overdue"]
    row = await eventually(
        lambda: case_row(sessionmaker, case.case_id), lambda r: r.stage == "planning"
    )
    assert (row.relapse_count, row.sick_start, row.closed_at) == (1, relapse_start, None)
    assert row.overdue is True
    assert (row.next_deadline_kind, row.next_deadline_on) == (
        "fk_sick_notice",
        relapse_start + days(20),
    )
    described = await h.describe()
    assert described.typed_search_attributes.get(REHAB_STAGE) == "planning"


async def test_long_term_case_passes_the_chain_checkpoints_and_enters_the_long_term_track(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    sick_start = await today(env)
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        sick_start=sick_start,
        expected_end=sick_start + days(400),
        opened_at=await env.get_current_time(),
        track=started_cases,
    )
    h = case.handle
    await h.execute_update(
        "record_deadline_met",
        RecordDeadlineMet(kind="fk_sick_notice"),
        result_type=CaseActionResult,
    )
    await _through_screening(env, case)
    due_on = await today(env) + days(20)
    planned = await h.execute_update(
        "set_plan",
        SetPlan(
            interventions=(
                PlannedIntervention(
                    track=Track.MEDICAL,
                    kind="occupational_health_assessment",
                    owner=InterventionOwner.FHV,
                    due_on=due_on,
                ),
            )
        ),
        result_type=CaseActionResult,
    )
    (intervention_id,) = planned.created_ids

    # The intervention is not done on time: reminder, overdue (the case is flagged), escalation.
    await sleep_until(env, end_of_day(due_on + days(7)) + timedelta(hours=1))
    view = await eventually(
        lambda: h.query(RehabCaseWorkflow.state),
        lambda v: v.overdue and v.interventions[0].status == InterventionStatus.OVERDUE,
    )
    assert view.stage == Stage.INTERVENTIONS
    assert (await h.describe()).typed_search_attributes.get(REHAB_OVERDUE) is True
    assert await eventually(
        lambda: _intervention_events(sessionmaker, case), lambda k: len(k) == 4
    ) == [
        "intervention_assigned",
        "intervention_reminder",
        "intervention_overdue",
        "intervention_escalated",
    ]
    await h.execute_update(
        "complete_intervention",
        CompleteIntervention(intervention_id=intervention_id, outcome="partly_achieved"),
        result_type=CaseActionResult,
    )
    assert (await h.query(RehabCaseWorkflow.state)).overdue is False

    for day in (90, 180, 365):
        await sleep_until(env, start_of_day(sick_start + days(day - 1)) + timedelta(hours=8))
        kind = f"rehab_chain_day_{day}"
        await _until_due(case, kind)
        await h.execute_update(
            "record_deadline_met", RecordDeadlineMet(kind=kind), result_type=CaseActionResult
        )
    await sleep_until(env, start_of_day(sick_start + days(365)) + timedelta(hours=1))
    row = await eventually(lambda: case_row(sessionmaker, case.case_id), lambda r: r.long_term)
    assert row.overdue is False

    await h.execute_update(
        "record_return_to_work_step",
        RecordReturnToWorkStep(extent=100, from_date=await today(env)),
        result_type=CaseActionResult,
    )
    await h.execute_update(
        "close_case", CloseCase(outcome=CaseOutcome.NEW_EMPLOYER), result_type=CaseActionResult
    )
    assert (await h.query(RehabCaseWorkflow.state)).long_term is True
    actions = await _actions(sessionmaker, case)
    assert actions == [
        "case_opened",
        "case_planned",
        "deadline_met",
        "joint_meeting_booked",
        "joint_meeting_held",
        "screening_recorded",
        "plan_set",
        "intervention_overdue_flagged",
        "intervention_outcome_recorded",
        "deadline_met",
        "deadline_met",
        "deadline_met",
        "long_term_track_entered",
        "return_to_work_step",
        "case_closed",
    ]
    row = await case_row(sessionmaker, case.case_id)
    assert (row.stage, row.outcome, row.long_term) == ("closed", "new_employer", True)


async def test_not_returned_closure_cancels_open_interventions_and_keeps_statistics(
    time_skipping_env: WorkflowEnvironment,
    worker: Worker,
    unit_code: str,
    sessionmaker: async_sessionmaker[AsyncSession],
    started_cases: list[str],
) -> None:
    env = time_skipping_env
    case = await open_case(
        env.client,
        worker.task_queue,
        unit_code,
        sessionmaker,
        sick_start=await today(env),
        opened_at=await env.get_current_time(),
        track=started_cases,
    )
    h = case.handle
    await _through_screening(env, case)
    later = await today(env) + days(30)
    planned = await h.execute_update(
        "set_plan",
        SetPlan(
            interventions=(
                PlannedIntervention(
                    track=Track.SOCIAL,
                    kind="social_services_contact",
                    owner=InterventionOwner.SOCIAL_SERVICES,
                    due_on=later,
                ),
                PlannedIntervention(
                    track=Track.WORK_ORIENTED,
                    kind="work_training",
                    owner=InterventionOwner.ARBETSFORMEDLINGEN,
                    due_on=later,
                ),
            )
        ),
        result_type=CaseActionResult,
    )
    assert len(planned.created_ids) == 2
    await h.execute_update(
        "close_case", CloseCase(outcome=CaseOutcome.NOT_RETURNED), result_type=CaseActionResult
    )
    assert {iv.status for iv in (await h.query(RehabCaseWorkflow.state)).interventions} == {
        InterventionStatus.CANCELLED
    }

    async def intervention_rows() -> list[CaseIntervention]:
        async with sessionmaker() as session:
            return list(
                await session.scalars(
                    select(CaseIntervention).where(CaseIntervention.case_id == case.case_id)
                )
            )

    rows = await eventually(
        intervention_rows, lambda rs: len(rs) == 2 and all(r.status == "cancelled" for r in rs)
    )
    assert {r.cancel_reason for r in rows} == {"case_closed"}
    await h.result()
    assert await _actions(sessionmaker, case) == [
        "case_opened",
        "case_planned",
        "joint_meeting_booked",
        "joint_meeting_held",
        "screening_recorded",
        "plan_set",
        "case_closed",
        "personal_data_erased",
    ]
    row = await case_row(sessionmaker, case.case_id)
    assert (row.outcome, row.stage, row.relapse_count) == ("not_returned", "closed", 0)
    assert row.erased_at is not None and row.sick_start is None
    assert row.unit_code == unit_code and row.trigger == "long_absence"
