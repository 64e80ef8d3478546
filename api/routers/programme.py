"""The programme around the cases: managers and their yearly course, APT dialogues, coverage.

HR (the coordinator role) registers managers, schedules course rounds and records attendance
for its units; a manager records the APT dialogues of an own unit. Coverage is aggregate:
the analyst sees every unit's, the others their own units'. Each write wakes the
organisation's ProgrammeCycleWorkflow so its reminders follow at once.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, HTTPException, status
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.auth import Caller
from api.deps import ContextDep, SessionDep, TemporalDep, require_roles
from api.errors import FieldRejected
from evaluation.report import TRAINING_VALID_DAYS, programme_coverage
from models.api import Problem, Role, ValidationProblem
from models.deadlines import STOCKHOLM
from models.programme import (
    APT_THEMES,
    DEFAULT_PROGRAMME_POLICY,
    AddManager,
    AptRecorded,
    CourseSession,
    ManagerAdded,
    ManagerCourseStatus,
    NewRound,
    ProgrammeChanged,
    RecordAptDialogue,
    RecordAttendance,
    RoundScheduled,
    ScheduleRound,
    course_due_on,
    programme_workflow_id,
)
from models.reports import UnitCoverage
from store import cases as case_store
from store import programme as programme_store
from workflows.programme_cycle import ProgrammeCycleWorkflow

log = structlog.get_logger(__name__)
router = APIRouter(
    prefix="/api/v1/programme",
    tags=["programme"],
    responses={
        401: {"model": Problem, "description": "No valid bearer token"},
        403: {"model": Problem, "description": "The caller's role or units do not allow this"},
        422: {"model": ValidationProblem, "description": "A field was rejected"},
    },
)
Hr = Annotated[Caller, Depends(require_roles("programme.hr", Role.COORDINATOR))]
UnitStaff = Annotated[
    Caller, Depends(require_roles("programme.apt", Role.COORDINATOR, Role.MANAGER))
]
Viewer = Annotated[
    Caller,
    Depends(require_roles("programme.read", Role.COORDINATOR, Role.MANAGER, Role.ANALYST)),
]
# An APT dialogue is recorded within this long after it was held.
_APT_RECORDED_WITHIN = timedelta(days=365)


def _today() -> date:
    return datetime.now(STOCKHOLM).date()


async def _own_unit(session: SessionDep, caller: Caller, unit_code: str) -> None:
    if not await case_store.unit_exists(session, unit_code):
        raise FieldRejected("unit_code", "no unit with this code is registered")
    if not caller.covers_unit(unit_code):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the unit is not one of yours")


async def _wake(context: ContextDep, temporal: TemporalDep) -> None:
    """Best effort: the cycle also looks again on its own within a month."""
    handle = temporal.get_workflow_handle_for(
        ProgrammeCycleWorkflow.run,
        programme_workflow_id(context.settings.programme.organisation),
    )
    try:
        await handle.signal(ProgrammeCycleWorkflow.programme_changed, ProgrammeChanged())
    except RPCError:
        log.warning("programme cycle not running; it will see the change when started")


@router.post(
    "/managers", status_code=201, response_model=ManagerAdded, summary="Register a manager"
)
async def add_manager(
    body: AddManager, caller: Hr, context: ContextDep, session: SessionDep, temporal: TemporalDep
) -> ManagerAdded:
    await _own_unit(session, caller, body.unit_code)
    if body.appointed_on > _today():
        raise FieldRejected("appointed_on", "must not be in the future")
    manager_id = await programme_store.add_manager(
        session, body.unit_code, body.address, body.appointed_on
    )
    await session.commit()
    await _wake(context, temporal)
    return ManagerAdded(manager_id=manager_id)


@router.get(
    "/managers",
    response_model=list[ManagerCourseStatus],
    summary="Managers of the caller's units: last course and when the next is due",
)
async def managers(caller: Hr, session: SessionDep) -> list[ManagerCourseStatus]:
    policy = DEFAULT_PROGRAMME_POLICY
    return [
        ManagerCourseStatus(
            manager_id=m.manager_id,
            unit_code=m.unit_code,
            appointed_on=m.appointed_on,
            last_trained_on=m.last_trained_on,
            due_on=course_due_on(m.appointed_on, m.last_trained_on, policy),
        )
        for m in await programme_store.manager_statuses(session, _today())
        if caller.covers_unit(m.unit_code)
    ]


@router.post(
    "/course-rounds",
    status_code=201,
    response_model=RoundScheduled,
    summary="Schedule a year's course: sessions, and an .ics invitation to every manager",
)
async def schedule_round(
    body: NewRound, caller: Hr, context: ContextDep, temporal: TemporalDep
) -> RoundScheduled:
    for n, s in enumerate(body.sessions):
        if s.ends_at <= s.starts_at:
            raise FieldRejected(f"sessions.{n}.ends_at", "must be after starts_at")
    round_ = ScheduleRound(
        round_id=uuid.uuid4(),
        year=body.year,
        title=body.title,
        sessions=tuple(
            CourseSession(session_id=uuid.uuid4(), starts_at=s.starts_at, ends_at=s.ends_at)
            for s in body.sessions
        ),
    )
    handle = temporal.get_workflow_handle_for(
        ProgrammeCycleWorkflow.run,
        programme_workflow_id(context.settings.programme.organisation),
    )
    try:
        return await handle.execute_update(ProgrammeCycleWorkflow.schedule_round, round_)
    except WorkflowUpdateFailedError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc.cause)) from None
    except RPCError:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the programme cycle is not running"
        ) from None


@router.post(
    "/course-sessions/{session_id}/attendance",
    status_code=204,
    summary="Record whether a manager attended a course session",
)
async def record_attendance(
    session_id: uuid.UUID,
    body: RecordAttendance,
    caller: Hr,
    context: ContextDep,
    session: SessionDep,
    temporal: TemporalDep,
) -> None:
    course = await programme_store.session_of(session, session_id)
    if course is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such course session")
    manager = await programme_store.manager_unit(session, body.manager_id)
    if manager is None:
        raise FieldRejected("manager_id", "no manager with this id is registered")
    if not caller.covers_unit(manager):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the manager's unit is not one of yours")
    if course.starts_at.astimezone(STOCKHOLM).date() > _today():
        raise HTTPException(status.HTTP_409_CONFLICT, "the session has not taken place yet")
    await programme_store.record_attendance(
        session, session_id, body.manager_id, body.attended, datetime.now(STOCKHOLM)
    )
    await session.commit()
    await _wake(context, temporal)


@router.post(
    "/apt-dialogues",
    status_code=201,
    response_model=AptRecorded,
    summary="Record an APT dialogue of a unit: date, theme codes, number of participants",
)
async def record_apt(
    body: RecordAptDialogue,
    caller: UnitStaff,
    context: ContextDep,
    session: SessionDep,
    temporal: TemporalDep,
) -> AptRecorded:
    await _own_unit(session, caller, body.unit_code)
    unknown = sorted(set(body.themes) - APT_THEMES)
    if unknown:
        raise FieldRejected("themes", f"use theme codes: {', '.join(sorted(APT_THEMES))}")
    today = _today()
    if not today - _APT_RECORDED_WITHIN <= body.held_on <= today:
        raise FieldRejected("held_on", "must be within the last twelve months, not in the future")
    dialogue_id = await programme_store.record_apt(
        session, body.unit_code, body.held_on, sorted(set(body.themes)), body.participants
    )
    await session.commit()
    await _wake(context, temporal)
    return AptRecorded(dialogue_id=dialogue_id)


@router.get(
    "/coverage",
    response_model=list[UnitCoverage],
    summary=f"Per unit: managers trained in the last {TRAINING_VALID_DAYS} days, APT dialogues",
)
async def coverage(caller: Viewer, session: SessionDep) -> list[UnitCoverage]:
    facts = await programme_store.programme_facts(session)
    rows = programme_coverage(facts, _today())
    if caller.role is Role.ANALYST:
        return rows
    return [r for r in rows if caller.covers_unit(r.unit)]
