"""The programme around the cases: managers, training rounds and attendance, APT dialogues."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from evaluation.facts import AptFact, ManagerTrainingFact, ProgrammeFacts
from models.deadlines import local_date
from store.contacts import add_unit_contact
from store.schema import (
    AptDialogue,
    Manager,
    TrainingAttendance,
    TrainingRound,
    TrainingSession,
    Unit,
)


@dataclass(frozen=True)
class ManagerStatus:
    manager_id: uuid.UUID
    unit_code: str
    contact_id: int
    appointed_on: date
    last_trained_on: date | None


async def add_manager(
    session: AsyncSession, unit_code: str, address: str, appointed_on: date
) -> uuid.UUID:
    """Register a manager of a unit, and the unit's `manager` contact at `address`, once;
    again with the same address returns the same id."""
    contact_id = await add_unit_contact(
        session, unit_code=unit_code, role="manager", channel="email", address=address
    )
    await session.execute(
        insert(Manager)
        .values(
            id=uuid.uuid4(), unit_code=unit_code, contact_id=contact_id, appointed_on=appointed_on
        )
        .on_conflict_do_nothing(index_elements=[Manager.contact_id])
    )
    found = await session.scalar(select(Manager.id).where(Manager.contact_id == contact_id))
    assert found is not None
    return found


async def manager_statuses(session: AsyncSession, on: date) -> list[ManagerStatus]:
    """Every manager in post on `on`, with the date of the last session they attended."""
    last = (
        select(
            TrainingAttendance.manager_id,
            TrainingSession.starts_at,
        )
        .join(TrainingSession, TrainingSession.id == TrainingAttendance.session_id)
        .where(TrainingAttendance.attended.is_(True))
    )
    attended: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    for manager_id, starts_at in (await session.execute(last)).all():
        attended[manager_id].append(starts_at)
    managers = (
        await session.scalars(
            select(Manager)
            .where(Manager.appointed_on <= on, (Manager.left_on.is_(None)) | (Manager.left_on > on))
            .order_by(Manager.unit_code, Manager.appointed_on, Manager.id)
        )
    ).all()
    return [
        ManagerStatus(
            manager_id=m.id,
            unit_code=m.unit_code,
            contact_id=m.contact_id,
            appointed_on=m.appointed_on,
            last_trained_on=max(
                (local_date(t) for t in attended[m.id] if local_date(t) <= on), default=None
            ),
        )
        for m in managers
    ]


async def create_round(
    session: AsyncSession,
    round_id: uuid.UUID,
    year: int,
    title: str,
    sessions: list[tuple[uuid.UUID, datetime, datetime]],
) -> None:
    await session.execute(
        insert(TrainingRound)
        .values(id=round_id, year=year, title=title)
        .on_conflict_do_nothing(index_elements=[TrainingRound.id])
    )
    for session_id, starts_at, ends_at in sessions:
        await session.execute(
            insert(TrainingSession)
            .values(id=session_id, round_id=round_id, starts_at=starts_at, ends_at=ends_at)
            .on_conflict_do_nothing(index_elements=[TrainingSession.id])
        )


async def session_of(session: AsyncSession, session_id: uuid.UUID) -> TrainingSession | None:
    return await session.get(TrainingSession, session_id)


async def mark_invited(
    session: AsyncSession, session_id: uuid.UUID, manager_id: uuid.UUID, at: datetime
) -> None:
    await session.execute(
        insert(TrainingAttendance)
        .values(session_id=session_id, manager_id=manager_id, invited_at=at)
        .on_conflict_do_nothing(
            index_elements=[TrainingAttendance.session_id, TrainingAttendance.manager_id]
        )
    )


async def record_attendance(
    session: AsyncSession,
    session_id: uuid.UUID,
    manager_id: uuid.UUID,
    attended: bool,
    at: datetime,
) -> None:
    statement = insert(TrainingAttendance).values(
        session_id=session_id, manager_id=manager_id, attended=attended, recorded_at=at
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[TrainingAttendance.session_id, TrainingAttendance.manager_id],
            set_={"attended": attended, "recorded_at": at},
        )
    )


async def manager_exists(session: AsyncSession, manager_id: uuid.UUID) -> bool:
    return await session.get(Manager, manager_id) is not None


async def record_apt(
    session: AsyncSession, unit_code: str, held_on: date, themes: list[str], participants: int
) -> uuid.UUID:
    dialogue_id = uuid.uuid4()
    await session.execute(
        insert(AptDialogue).values(
            id=dialogue_id,
            unit_code=unit_code,
            held_on=held_on,
            themes=themes,
            participants=participants,
        )
    )
    return dialogue_id


@dataclass(frozen=True)
class UnitAptStatus:
    unit_code: str
    registered_on: date
    last_held_on: date | None


async def apt_statuses(session: AsyncSession, on: date) -> list[UnitAptStatus]:
    """Every unit, when it was registered, and its last APT dialogue on or before `on`."""
    last: dict[str, date] = {}
    for unit, held_on in (
        await session.execute(
            select(AptDialogue.unit_code, AptDialogue.held_on).where(AptDialogue.held_on <= on)
        )
    ).all():
        if unit not in last or held_on > last[unit]:
            last[unit] = held_on
    units = (await session.execute(select(Unit.code, Unit.created_at).order_by(Unit.code))).all()
    return [UnitAptStatus(code, local_date(created), last.get(code)) for code, created in units]


async def programme_facts(session: AsyncSession) -> ProgrammeFacts:
    units = tuple((await session.scalars(select(Unit.code).order_by(Unit.code))).all())
    attended: dict[uuid.UUID, list[date]] = defaultdict(list)
    for manager_id, starts_at in (
        await session.execute(
            select(TrainingAttendance.manager_id, TrainingSession.starts_at)
            .join(TrainingSession, TrainingSession.id == TrainingAttendance.session_id)
            .where(TrainingAttendance.attended.is_(True))
        )
    ).all():
        attended[manager_id].append(local_date(starts_at))
    managers = tuple(
        ManagerTrainingFact(m.unit_code, m.appointed_on, tuple(sorted(attended[m.id])))
        for m in (await session.scalars(select(Manager).where(Manager.left_on.is_(None)))).all()
    )
    dialogues = tuple(
        AptFact(a.unit_code, a.held_on, a.participants)
        for a in (await session.scalars(select(AptDialogue))).all()
    )
    return ProgrammeFacts(units=units, managers=managers, apt_dialogues=dialogues)


async def set_session_sequence(session: AsyncSession, session_id: uuid.UUID, sequence: int) -> None:
    await session.execute(
        update(TrainingSession).where(TrainingSession.id == session_id).values(sequence=sequence)
    )


async def manager_unit(session: AsyncSession, manager_id: uuid.UUID) -> str | None:
    return await session.scalar(select(Manager.unit_code).where(Manager.id == manager_id))
