"""Joint-meeting teams for operations (admin only): the cadences, their slots, pause/resume.

What operations see are cadences, instants, counts and pseudonymous case ids; the teams'
workflows answer for slots and queues (query `view`), the record store for configuration.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, status
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import SessionDep, TemporalDep, require_roles
from models.api import Problem, Role, ValidationProblem
from models.meetings import (
    WEEKDAYS,
    CadenceChange,
    TeamCode,
    TeamDetail,
    TeamSlot,
    TeamSummary,
    TeamView,
    team_workflow_id,
)
from store.meeting_teams import StoredTeam, get_team, list_teams
from workflows.meeting_team import MeetingTeamWorkflow

router = APIRouter(
    prefix="/api/v1/meeting-teams",
    tags=["meeting teams"],
    dependencies=[Depends(require_roles("meeting_teams.operate", Role.ADMIN))],
    responses={
        401: {"model": Problem, "description": "No valid bearer token"},
        403: {"model": Problem, "description": "Only the admin role operates teams"},
        422: {"model": ValidationProblem, "description": "A field was rejected"},
    },
)

CodePath = Annotated[TeamCode, Path(description="the team's code")]


async def _view(temporal: Client, code: str) -> TeamView | None:
    """The team workflow's own view, or None when it does not run."""
    handle = temporal.get_workflow_handle_for(MeetingTeamWorkflow.run, team_workflow_id(code))
    try:
        # A closed run would still answer the query, with the state it ended in.
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return None
        return await handle.query(MeetingTeamWorkflow.view)
    except (RPCError, WorkflowQueryFailedError):
        return None


def _summary_fields(team: StoredTeam, view: TeamView | None) -> dict[str, Any]:
    c = team.config
    return {
        "code": c.code,
        "name": team.name,
        "units": team.units,
        "weekday": WEEKDAYS[c.weekday - 1],
        "starts_at": c.starts_at,
        "meeting_minutes": c.meeting_minutes,
        "capacity": c.capacity,
        "anchor_on": c.anchor_on,
        "lead_hours": c.lead_hours,
        "status": "not_running" if view is None else "paused" if view.paused else "running",
        "next_cutoff_at": view.next_cutoff_at if view else None,
    }


def _detail(team: StoredTeam, view: TeamView | None) -> TeamDetail:
    fields = _summary_fields(team, view)
    if view is None:
        return TeamDetail(**fields)
    return TeamDetail(
        **fields,
        slots=tuple(
            TeamSlot(
                slot_id=slot.slot_id,
                starts_at=slot.starts_at,
                ends_at=slot.ends_at,
                cutoff_at=slot.cutoff_at,
                status=slot.status,
                capacity=slot.capacity,
                booked=len(slot.booked),
                free=slot.free,
                case_ids=slot.booked,
            )
            for slot in view.slots
        ),
        waiting=len(view.waiting),
        waiting_case_ids=tuple(w.case_id for w in view.waiting),
        booked_total=view.booked_total,
        skipped_slots=view.skipped_slots,
    )


async def _team(session: SessionDep, code: str) -> StoredTeam:
    team = await get_team(session, code)
    if team is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such team")
    return team


@router.get("", response_model=list[TeamSummary], summary="The joint-meeting teams")
async def list_meeting_teams(session: SessionDep, temporal: TemporalDep) -> list[TeamSummary]:
    teams = await list_teams(session)
    views = await asyncio.gather(*(_view(temporal, t.config.code) for t in teams))
    return [TeamSummary(**_summary_fields(t, v)) for t, v in zip(teams, views, strict=True)]


@router.get(
    "/{code}",
    response_model=TeamDetail,
    summary="A team's upcoming slots (bookings by pseudonymous case id) and its queue",
    responses={404: {"model": Problem, "description": "No such team"}},
)
async def meeting_team(code: CodePath, session: SessionDep, temporal: TemporalDep) -> TeamDetail:
    team = await _team(session, code)
    return _detail(team, await _view(temporal, code))


async def _change(code: str, session: SessionDep, temporal: TemporalDep, update: Any) -> TeamDetail:
    team = await _team(session, code)
    # End the read transaction before waiting on Temporal.
    await session.commit()
    handle = temporal.get_workflow_handle_for(MeetingTeamWorkflow.run, team_workflow_id(code))
    try:
        view = await handle.execute_update(update, CadenceChange())
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        reason = cause.message if isinstance(cause, ApplicationError) else "the change was rejected"
        raise HTTPException(status.HTTP_409_CONFLICT, reason) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(
                status.HTTP_409_CONFLICT, "the team's cadence is not running"
            ) from None
        raise
    return _detail(team, view)


_CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such team"},
    409: {"model": Problem, "description": "Already paused / not paused, or not running"},
}


@router.post(
    "/{code}/pause",
    response_model=TeamDetail,
    summary="Pause booking: cut-offs pass without booking, the cadence keeps its weeks",
    responses=_CHANGE_RESPONSES,
)
async def pause_team(code: CodePath, session: SessionDep, temporal: TemporalDep) -> TeamDetail:
    return await _change(code, session, temporal, MeetingTeamWorkflow.pause)


@router.post(
    "/{code}/resume",
    response_model=TeamDetail,
    summary="Resume booking from the next cut-off",
    responses=_CHANGE_RESPONSES,
)
async def resume_team(code: CodePath, session: SessionDep, temporal: TemporalDep) -> TeamDetail:
    return await _change(code, session, temporal, MeetingTeamWorkflow.resume)
