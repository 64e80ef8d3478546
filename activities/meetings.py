"""Activities of joint meetings: which team a case's unit meets in."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from models.meetings import TeamConfig, TeamLookup
from store import direct
from store.meeting_teams import team_of_unit


class MeetingTeamDirectory:
    """Reads the team configuration. Given its sessionmaker by the worker."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    @activity.defn
    async def team_of_unit(self, lookup: TeamLookup) -> TeamConfig | None:
        """The team the unit meets in, or None: its cases then book meetings by hand."""
        async with direct.begin(self._sessionmaker) as conn:
            return await team_of_unit(conn, lookup.unit_code)
