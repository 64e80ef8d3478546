"""Administration over the API (role `admin`): units and their policy, unit contacts, teams.

The same code as the command line (`core.administration`); configuration only, never case
content. A refused field is 422, a contradiction 409, an unknown unit or contact 404.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, status
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Caller
from api.deps import ContextDep, SessionDep, TemporalDep, require_roles
from api.errors import FieldRejected
from core import administration as admin
from models.api import (
    ChangeContactRequest,
    ChangeTeamRequest,
    ChangeUnitRequest,
    ContactView,
    CreateContactRequest,
    CreateTeamRequest,
    CreateUnitRequest,
    Problem,
    Role,
    TeamRegistered,
    UnitCode,
    UnitView,
    ValidationProblem,
)
from models.meetings import TeamConfig
from store.contacts import UnitContactRole
from store.meeting_teams import get_team
from store.schema import Unit, UnitContact

router = APIRouter(prefix="/api/v1", tags=["administration"])
Admin = Annotated[Caller, Depends(require_roles("admin.configure", Role.ADMIN))]
UnitPath = Annotated[UnitCode, Path(description="the unit's code")]

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid bearer token"},
    403: {"model": Problem, "description": "Only administrators configure rehabflow"},
    404: {"model": Problem, "description": "No such unit, contact or team"},
    409: {"model": Problem, "description": "The change contradicts what is registered"},
    422: {"model": ValidationProblem, "description": "A field was rejected"},
}


@asynccontextmanager
async def _answers(session: AsyncSession) -> AsyncIterator[None]:
    """The service's refusals as HTTP answers; the change commits only when it succeeds."""
    try:
        yield
    except admin.Refused as refused:
        await session.rollback()
        raise FieldRejected(refused.field, refused.reason) from None
    except admin.NotFound as missing:
        await session.rollback()
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(missing)) from None
    except admin.Conflict as conflict:
        await session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(conflict)) from None
    await session.commit()


def _unit(row: Unit) -> UnitView:
    return UnitView(code=row.code, name=row.name, policy_id=row.policy_id, active=row.active)


def _contact(row: UnitContact) -> ContactView:
    return ContactView(
        contact_id=row.id,
        role=row.role,
        channel=row.channel,
        address=row.address,
        language=row.language,
        active=row.active,
    )


@router.get("/units", response_model=list[UnitView], responses=_RESPONSES, summary="Units")
async def list_units(_: Admin, session: SessionDep) -> list[UnitView]:
    return [_unit(u) for u in await admin.list_units(session)]


@router.post(
    "/units",
    response_model=UnitView,
    status_code=status.HTTP_201_CREATED,
    responses=_RESPONSES,
    summary="Register a unit, with the policy its new cases take (se-default or no-nav)",
)
async def create_unit(body: CreateUnitRequest, _: Admin, session: SessionDep) -> UnitView:
    async with _answers(session):
        if not await admin.create_unit(session, body.code, body.name, body.policy_id):
            raise admin.Conflict(f"unit {body.code} is already registered")
    row = await session.get(Unit, body.code)
    assert row is not None
    return _unit(row)


@router.patch(
    "/units/{code}",
    response_model=UnitView,
    responses=_RESPONSES,
    summary="Rename a unit, set its policy for new cases, or deactivate it",
)
async def change_unit(
    code: UnitPath, body: ChangeUnitRequest, _: Admin, session: SessionDep
) -> UnitView:
    async with _answers(session):
        row = await admin.change_unit(
            session, code, name=body.name, policy_id=body.policy_id, active=body.active
        )
    return _unit(row)


@router.get(
    "/units/{code}/contacts",
    response_model=list[ContactView],
    responses=_RESPONSES,
    summary="Who in a unit receives each role's notifications",
)
async def list_contacts(code: UnitPath, _: Admin, session: SessionDep) -> list[ContactView]:
    async with _answers(session):
        rows = await admin.list_contacts(session, code)
    return [_contact(r) for r in rows]


@router.post(
    "/units/{code}/contacts",
    response_model=ContactView,
    status_code=status.HTTP_201_CREATED,
    responses=_RESPONSES,
    summary="Register a contact of a unit for a role (idempotent)",
)
async def create_contact(
    code: UnitPath, body: CreateContactRequest, _: Admin, session: SessionDep
) -> ContactView:
    async with _answers(session):
        contact_id = await admin.add_contact(
            session,
            code,
            role=body.role,
            channel=body.channel,
            address=body.address,
            language=body.language,
        )
    row = await session.get(UnitContact, contact_id)
    assert row is not None
    return _contact(row)


@router.patch(
    "/units/{code}/contacts/{contact_id}",
    response_model=ContactView,
    responses=_RESPONSES,
    summary="Correct a contact's address or language, or deactivate it",
)
async def change_contact(
    code: UnitPath, contact_id: int, body: ChangeContactRequest, _: Admin, session: SessionDep
) -> ContactView:
    async with _answers(session):
        row = await admin.change_contact(
            session,
            code,
            contact_id,
            address=body.address,
            language=body.language,
            active=body.active,
        )
    return _contact(row)


@router.post(
    "/meeting-teams",
    response_model=TeamRegistered,
    status_code=status.HTTP_201_CREATED,
    responses=_RESPONSES,
    summary="Register a joint-meeting team and start its cadence (idempotent)",
    description="Pause and resume (`…/pause`, `…/resume`) stop and restart its booking.",
)
async def create_team(
    body: CreateTeamRequest,
    _: Admin,
    context: ContextDep,
    session: SessionDep,
    temporal: TemporalDep,
) -> TeamRegistered:
    try:
        config = TeamConfig(
            code=body.code,
            weekday=body.weekday,
            starts_at=time.fromisoformat(body.starts_at),
            meeting_minutes=body.meeting_minutes,
            capacity=body.capacity,
            anchor_on=body.anchor_on,
            lead_hours=body.lead_hours,
        )
    except (ValidationError, ValueError) as invalid:
        raise FieldRejected("team", _first_reason(invalid)) from None
    contacts: list[tuple[UnitContactRole, str]] = [
        ("coordinator", address) for address in body.coordinators
    ]
    if body.fk_officer:
        contacts.append(("fk_officer", body.fk_officer))
    registration = admin.TeamRegistration(config, body.name, tuple(body.units), tuple(contacts))
    async with _answers(session):
        written = await admin.register_team(session, registration)
    await admin.start_team(temporal, context.settings.temporal.task_queue, config)
    return TeamRegistered(code=config.code, result=written.value)


@router.patch(
    "/meeting-teams/{code}",
    response_model=TeamRegistered,
    responses=_RESPONSES,
    summary="Add units to a team",
)
async def change_team(
    code: str, body: ChangeTeamRequest, _: Admin, session: SessionDep
) -> TeamRegistered:
    team = await get_team(session, code)
    if team is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no team {code}")
    registration = admin.TeamRegistration(
        team.config, team.name, tuple(dict.fromkeys([*team.units, *body.add_units]))
    )
    async with _answers(session):
        written = await admin.register_team(session, registration)
    return TeamRegistered(code=code, result=written.value)


def _first_reason(invalid: Exception) -> str:
    if isinstance(invalid, ValidationError):
        errors = invalid.errors(include_input=False, include_url=False)
        return str(errors[0]["msg"]) if errors else "is not a valid team"
    return "starts_at must be a time such as 09:00"
