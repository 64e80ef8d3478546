"""Administration of configuration: units (with their policy), unit contacts, meeting teams.

One implementation for the admin API (`api/routers/administration.py`) and the command line
(`starter.py`): the same checks, the same refusals. Nothing here is case content.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from core.i18n import DEFAULT_LANGUAGE, Language
from models.meetings import TeamConfig
from models.policy import POLICIES
from store.contacts import ContactChannel, UnitContactRole, add_unit_contact
from store.meeting_teams import TeamConflict, TeamWrite
from store.meeting_teams import add_team as store_team
from store.schema import Unit, UnitContact
from workflows.meeting_team import ensure_team_running

POLICY_IDS = tuple(sorted({policy_id for policy_id, _ in POLICIES}))
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_URL = re.compile(r"^https?://\S+$")


class Refused(ValueError):
    """A field that cannot be taken: its name and the reason, never the value (422)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Conflict(ValueError):
    """The change contradicts what is registered (409)."""


class NotFound(LookupError):
    """No such unit, contact or team (404)."""


# ---------------------------------------------------------------- units


async def list_units(session: AsyncSession) -> Sequence[Unit]:
    return (await session.scalars(select(Unit).order_by(Unit.code))).all()


def _check_policy(policy_id: str) -> None:
    if policy_id not in POLICY_IDS:
        raise Refused("policy_id", f"must be one of {', '.join(POLICY_IDS)}")


async def create_unit(
    session: AsyncSession, code: str, name: str, policy_id: str = "se-default"
) -> bool:
    """Register a unit; False when it already exists (nothing changes then)."""
    _check_policy(policy_id)
    result = await session.execute(
        insert(Unit)
        .values(code=code, name=name, policy_id=policy_id)
        .on_conflict_do_nothing()
        .returning(Unit.code)
    )
    return result.scalar_one_or_none() is not None


async def change_unit(
    session: AsyncSession,
    code: str,
    *,
    name: str | None = None,
    policy_id: str | None = None,
    active: bool | None = None,
) -> Unit:
    """Rename, change the policy of new cases, or (de)activate a unit. Cases already open
    keep the policy they took a snapshot of."""
    unit = await session.get(Unit, code)
    if unit is None:
        raise NotFound(f"no unit {code}")
    if policy_id is not None:
        _check_policy(policy_id)
        unit.policy_id = policy_id
    if name is not None:
        unit.name = name
    if active is not None:
        unit.active = active
    await session.flush()
    return unit


# ---------------------------------------------------------------- contacts


def _check_address(channel: str, address: str) -> None:
    pattern = _URL if channel == "webhook" else _EMAIL
    if not pattern.match(address):
        raise Refused(
            "address", "must be an http(s) URL" if channel == "webhook" else "must be an e-mail"
        )


async def list_contacts(session: AsyncSession, unit_code: str) -> Sequence[UnitContact]:
    if await session.get(Unit, unit_code) is None:
        raise NotFound(f"no unit {unit_code}")
    rows = await session.scalars(
        select(UnitContact).where(UnitContact.unit_code == unit_code).order_by(UnitContact.id)
    )
    return rows.all()


async def add_contact(
    session: AsyncSession,
    unit_code: str,
    *,
    role: UnitContactRole,
    channel: ContactChannel,
    address: str,
    language: Language = DEFAULT_LANGUAGE,
) -> int:
    """Register who in a unit receives a role's notifications (idempotent); its id."""
    _check_address(channel, address)
    if await session.get(Unit, unit_code) is None:
        raise NotFound(f"no unit {unit_code}")
    return await add_unit_contact(
        session,
        unit_code=unit_code,
        role=role,
        channel=channel,
        address=address,
        language=language,
    )


async def change_contact(
    session: AsyncSession,
    unit_code: str,
    contact_id: int,
    *,
    address: str | None = None,
    language: Language | None = None,
    active: bool | None = None,
) -> UnitContact:
    """Correct the address or language, or (de)activate a contact: a deactivated contact
    gets no new notifications; those already sent keep pointing at it."""
    contact = await session.get(UnitContact, contact_id)
    if contact is None or contact.unit_code != unit_code:
        raise NotFound(f"no contact {contact_id} in unit {unit_code}")
    if address is not None:
        _check_address(contact.channel, address)
        taken = await session.scalar(
            select(UnitContact.id).where(
                UnitContact.unit_code == unit_code,
                UnitContact.role == contact.role,
                UnitContact.channel == contact.channel,
                UnitContact.address == address,
                UnitContact.id != contact_id,
            )
        )
        if taken is not None:
            raise Conflict(f"contact {taken} already has this address for the role")
        contact.address = address
    if language is not None:
        contact.language = language
    if active is not None:
        contact.active = active
    await session.flush()
    return contact


# ---------------------------------------------------------------- meeting teams


@dataclass(frozen=True)
class TeamRegistration:
    config: TeamConfig
    name: str
    units: tuple[str, ...]
    # (role, address): the team's FK officer and coordinators, as contacts of each unit.
    contacts: tuple[tuple[UnitContactRole, str], ...] = ()


async def register_team(session: AsyncSession, team: TeamRegistration) -> TeamWrite:
    """Register a team and its units (idempotent); its FK officer and coordinators become
    those roles' contacts of each of its units. Start its cadence afterwards with
    `start_team` (after the transaction commits)."""
    for _, address in team.contacts:
        _check_address("email", address)
    try:
        written = await store_team(session, team.config, team.name, team.units)
    except TeamConflict as exc:
        raise Conflict(str(exc)) from None
    for unit in team.units:
        for role, address in team.contacts:
            await add_unit_contact(
                session, unit_code=unit, role=role, channel="email", address=address
            )
    return written


async def start_team(client: Client, task_queue: str, config: TeamConfig) -> None:
    """Start the team's cadence workflow once (a running one is left alone)."""
    await ensure_team_running(client, task_queue, config)
