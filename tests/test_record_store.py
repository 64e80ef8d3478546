"""The record store itself: the timeline is append-only, and migration 0004 matches the schema."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from models.case import case_workflow_id
from store.schema import Base, CaseEvent
from tests.outbox_support import record_case

Sessions = async_sessionmaker[AsyncSession]
MY_TABLES = {
    "unit_contacts",
    "employee_contacts",
    "notifications",
    "meetings",
    "meeting_participants",
    "screenings",
    "violence_disclosures",
}


async def write_event(sessionmaker: Sessions) -> int:
    case = await record_case(sessionmaker)
    async with sessionmaker.begin() as session:
        event = CaseEvent(
            case_id=case.case_id,
            workflow_id=case_workflow_id(case.case_id),
            step_key="case_opened",
            kind="case_opened",
            stage="identified",
            occurred_at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
            detail={"trigger": "manager_concern"},
        )
        session.add(event)
        await session.flush()
        return event.id


async def test_case_events_refuse_update_even_for_the_owner(sessionmaker: Sessions) -> None:
    event_id = await write_event(sessionmaker)

    async with sessionmaker.begin() as session:
        with pytest.raises(DBAPIError, match="case_events is append-only: UPDATE"):
            await session.execute(
                update(CaseEvent).where(CaseEvent.id == event_id).values(kind="rewritten")
            )

    async with sessionmaker() as session:
        assert await session.scalar(select(CaseEvent.kind).where(CaseEvent.id == event_id)) == (
            "case_opened"
        )


async def test_case_events_refuse_delete_and_truncate(sessionmaker: Sessions) -> None:
    event_id = await write_event(sessionmaker)

    async with sessionmaker.begin() as session:
        with pytest.raises(DBAPIError, match="case_events is append-only: DELETE"):
            await session.execute(delete(CaseEvent).where(CaseEvent.id == event_id))
    async with sessionmaker.begin() as session:
        with pytest.raises(DBAPIError, match="case_events is append-only: TRUNCATE"):
            await session.execute(text("TRUNCATE case_events CASCADE"))

    async with sessionmaker() as session:
        assert await session.get(CaseEvent, event_id) is not None


async def test_migration_0004_creates_exactly_the_tables_the_schema_declares(
    engine: AsyncEngine,
) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
        return [d for d in diffs if MY_TABLES & _tables_named(d)]

    async with engine.connect() as connection:
        found = await connection.run_sync(differences)

    assert found == []


def _tables_named(diff: object) -> set[str]:
    """Table names mentioned anywhere in one alembic diff entry (tuples nest for columns)."""
    names: set[str] = set()
    items = diff if isinstance(diff, list | tuple) else [diff]
    for item in items:
        if isinstance(item, list | tuple):
            names |= _tables_named(item)
        elif isinstance(item, str):
            names.add(item)
        else:
            table = getattr(item, "table", None)
            name = getattr(item, "name", None)
            if table is not None:
                names.add(table.name)
            if isinstance(name, str):
                names.add(name)
    return names
