"""Joint-meeting teams in the record store: which units meet in which team, on which cadence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from models.meetings import TeamConfig
from store.direct import Conn
from store.schema import MeetingTeam, MeetingTeamUnit, Unit, table_of


class TeamWrite(StrEnum):
    CREATED = "created"
    UNITS_ADDED = "units_added"  # the team existed; some of the units are new to it
    UNCHANGED = "unchanged"  # the same team was registered before: nothing to do


class TeamConflict(ValueError):
    """The team cannot be registered as given; the message says why (no personal data)."""


@dataclass(frozen=True)
class StoredTeam:
    config: TeamConfig
    name: str
    units: tuple[str, ...]


def _config(row: MeetingTeam) -> TeamConfig:
    return TeamConfig(
        code=row.code,
        weekday=row.weekday,
        starts_at=row.starts_at,
        meeting_minutes=row.meeting_minutes,
        capacity=row.capacity,
        anchor_on=row.anchor_on,
        lead_hours=row.lead_hours,
    )


async def add_team(
    session: AsyncSession, config: TeamConfig, name: str, units: Sequence[str]
) -> TeamWrite:
    """Register a team and its units, idempotently; TeamConflict if that would change
    an existing team's cadence or move a unit that already meets in another team."""
    existing = await session.get(MeetingTeam, config.code)
    if existing is not None and _config(existing) != config:
        raise TeamConflict(
            f"team {config.code} exists with another cadence; a team's cadence is fixed"
        )
    for unit in units:
        if await session.get(Unit, unit) is None:
            raise TeamConflict(f"unit {unit} is not registered: run add-unit first")
        team = await session.scalar(
            select(MeetingTeamUnit.team_code).where(MeetingTeamUnit.unit_code == unit)
        )
        if team is not None and team != config.code:
            raise TeamConflict(f"unit {unit} already meets in team {team}")
    if existing is None:
        session.add(
            MeetingTeam(
                code=config.code,
                name=name,
                weekday=config.weekday,
                starts_at=config.starts_at,
                meeting_minutes=config.meeting_minutes,
                capacity=config.capacity,
                anchor_on=config.anchor_on,
                lead_hours=config.lead_hours,
            )
        )
        await session.flush()
    added = 0
    for unit in units:
        inserted = await session.execute(
            insert(MeetingTeamUnit)
            .values(unit_code=unit, team_code=config.code)
            .on_conflict_do_nothing()
            .returning(MeetingTeamUnit.unit_code)
        )
        added += inserted.scalar_one_or_none() is not None
    if existing is None:
        return TeamWrite.CREATED
    return TeamWrite.UNITS_ADDED if added else TeamWrite.UNCHANGED


# Built once: every opening asks it.
_TEAMS = table_of(MeetingTeam)
_TEAM_UNITS = table_of(MeetingTeamUnit)
_TEAM_OF_UNIT = (
    select(_TEAMS)
    .join(_TEAM_UNITS, _TEAM_UNITS.c.team_code == _TEAMS.c.code)
    .where(_TEAM_UNITS.c.unit_code == bindparam("unit_code"))
)


async def team_of_unit(conn: Conn, unit_code: str) -> TeamConfig | None:
    row = (await conn.execute(_TEAM_OF_UNIT, {"unit_code": unit_code})).first()
    return None if row is None else _config(row)


async def list_teams(session: AsyncSession) -> list[StoredTeam]:
    teams = list(await session.scalars(select(MeetingTeam).order_by(MeetingTeam.code)))
    links = await session.scalars(select(MeetingTeamUnit).order_by(MeetingTeamUnit.unit_code))
    units: dict[str, list[str]] = {}
    for link in links:
        units.setdefault(link.team_code, []).append(link.unit_code)
    return [StoredTeam(_config(t), t.name, tuple(units.get(t.code, ()))) for t in teams]


async def get_team(session: AsyncSession, code: str) -> StoredTeam | None:
    row = await session.get(MeetingTeam, code)
    if row is None:
        return None
    units = await session.scalars(
        select(MeetingTeamUnit.unit_code)
        .where(MeetingTeamUnit.team_code == code)
        .order_by(MeetingTeamUnit.unit_code)
    )
    return StoredTeam(_config(row), row.name, tuple(units))
