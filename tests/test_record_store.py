"""The record store itself: the timeline is append-only, migration 0004 matches the schema, and
a case change writes what it carries."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from activities.records import CaseRecords, append_event
from models.case import (
    CaseChange,
    CaseColumns,
    CaseProjection,
    DeadlineRow,
    Stage,
    case_workflow_id,
)
from models.deadlines import DeadlineStatus, DeadlineView
from store import direct
from store.schema import Base, Case, CaseDeadline, CaseEvent
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


async def test_a_lean_change_writes_only_what_changed_and_a_whole_plan_replaces_the_stored_one(
    sessionmaker: Sessions,
) -> None:
    case = await record_case(sessionmaker)
    records = CaseRecords(sessionmaker)
    at = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)

    def view(kind: str, due: date, status: DeadlineStatus = DeadlineStatus.PENDING) -> DeadlineView:
        return DeadlineView(kind=kind, description=kind, due_on=due, status=status)

    def row(kind: str, due: date, status: DeadlineStatus = DeadlineStatus.PENDING) -> DeadlineRow:
        return DeadlineRow(kind=kind, due_on=due, status=status)

    def change(step: str, **fields: Any) -> CaseChange:
        return CaseChange(
            case_id=case.case_id,
            workflow_id=case_workflow_id(case.case_id),
            unit_code=case.unit_code,
            step_key=step,
            kind="sick_leave_set",
            stage=Stage.JOINT_MEETING,
            occurred_at=at,
            **fields,
        )

    async def stored() -> tuple[tuple[Any, ...], dict[str, tuple[date, str]]]:
        async with sessionmaker() as session:
            row = await session.get(Case, case.case_id, populate_existing=True)
            assert row is not None
            deadlines = await session.scalars(
                select(CaseDeadline).where(CaseDeadline.case_id == case.case_id)
            )
            plan = {d.kind: (d.due_on, d.status) for d in deadlines}
            return (row.stage, row.sick_start, row.expected_end, row.policy_id), plan

    # A change written before the lean record: the whole projection and plan.
    await records.record_change(
        change(
            "00001-sick_leave_set",
            projection=CaseProjection(
                stage=Stage.JOINT_MEETING,
                policy_id="se-default",
                policy_version=1,
                sick_start=date(2026, 3, 1),
                expected_end=date(2026, 6, 1),
                overdue=False,
                next_deadline_kind="a",
                next_deadline_on=date(2026, 3, 8),
                next_meeting_at=None,
                long_term=False,
                relapse_count=0,
                outcome=None,
                closed_at=None,
            ),
            deadlines=(view("a", date(2026, 3, 8)), view("b", date(2026, 4, 1))),
        )
    )
    assert await stored() == (
        ("joint_meeting", date(2026, 3, 1), date(2026, 6, 1), "se-default"),
        {"a": (date(2026, 3, 8), "pending"), "b": (date(2026, 4, 1), "pending")},
    )

    # A lean change: the stage and a cleared expected end; `b` met, `a` gone, `c` new.
    await records.record_change(
        change(
            "00002-sick_leave_set",
            columns=CaseColumns(stage=Stage.SCREENING, expected_end=None),
            deadline_rows=(
                row("b", date(2026, 4, 1), DeadlineStatus.MET),
                row("c", date(2026, 5, 1)),
            ),
            deadlines_dropped=("a",),
        )
    )
    assert await stored() == (
        ("screening", date(2026, 3, 1), None, "se-default"),
        {"b": (date(2026, 4, 1), "met"), "c": (date(2026, 5, 1), "pending")},
    )

    # Nothing changed but the timeline: the columns stay, and an unknown case is refused.
    await records.record_change(change("00003-deadline_met"))
    assert (await stored())[0] == ("screening", date(2026, 3, 1), None, "se-default")
    # The first change of a run: every column, and its plan replaces the stored one.
    await records.record_change(
        change(
            "00004-sick_leave_set",
            columns=CaseColumns(stage=Stage.PLANNING, sick_start=date(2026, 2, 27)),
            deadline_rows=(row("d", date(2026, 7, 1)),),
            plan_replaced=True,
        )
    )
    assert await stored() == (
        ("planning", date(2026, 2, 27), None, "se-default"),
        {"d": (date(2026, 7, 1), "pending")},
    )
    with pytest.raises(ApplicationError, match="not recorded"):
        await records.record_change(change("00004-x").model_copy(update={"case_id": uuid.uuid4()}))


async def test_a_pooled_connection_the_server_closed_is_replaced_without_an_error(
    settings: Any, database_url: str
) -> None:
    """PostgreSQL restarted or dropped an idle connection: the next session must not fail."""
    import asyncio

    from store.db import create_engine

    engine = create_engine(settings, url=database_url)
    try:
        async with engine.connect() as killer:  # a second pooled connection does the killing
            async with engine.connect() as connection:
                first_pid = await connection.scalar(text("SELECT pg_backend_pid()"))
                driver = (await connection.get_raw_connection()).driver_connection
                assert driver is not None
            await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first_pid})
        for _ in range(200):  # until this process has read the end of that socket
            if driver.is_closed():
                break
            await asyncio.sleep(0.01)
        assert driver.is_closed()

        pids = set()
        for _ in range(2):  # the pool hands out both: neither is the dead one
            async with engine.connect() as connection:
                pids.add(await connection.scalar(text("SELECT pg_backend_pid()")))
        assert first_pid not in pids
    finally:
        await engine.dispose()


async def test_a_direct_transaction_writes_all_of_it_or_nothing(sessionmaker: Sessions) -> None:
    """The record-store activities write on asyncpg straight: an activity that dies midway
    leaves no half of its change behind, and the next attempt's write is kept."""
    case = await record_case(sessionmaker)
    event = {
        "case_id": case.case_id,
        "workflow_id": case_workflow_id(case.case_id),
        "kind": "consent_recorded",
        "stage": "joint_meeting",
        "occurred_at": datetime(2026, 3, 3, 8, 0, tzinfo=UTC),
        "detail": {"party": "employee"},
    }
    with pytest.raises(RuntimeError):
        async with direct.begin(sessionmaker) as conn:
            await append_event(conn, step_key="first attempt", **event)
            raise RuntimeError("the worker died before the change was whole")
    async with direct.begin(sessionmaker) as conn:
        await append_event(conn, step_key="second attempt", **event)
    async with sessionmaker() as session:
        written = (
            await session.execute(
                select(CaseEvent.step_key, CaseEvent.detail).where(
                    CaseEvent.case_id == case.case_id
                )
            )
        ).all()
    assert [tuple(row) for row in written] == [("second attempt", {"party": "employee"})]


async def test_a_direct_statement_that_would_drop_a_default_is_refused_before_it_runs(
    sessionmaker: Sessions,
) -> None:
    """A column whose default Python computes cannot be left out of a direct write: the
    row would silently lack it. The statement is refused, and nothing is written."""
    case = await record_case(sessionmaker)
    with pytest.raises(ValueError, match="Python default"):
        async with direct.begin(sessionmaker) as conn:
            await append_event(  # no `detail`, whose default is an empty dict
                conn,
                case_id=case.case_id,
                workflow_id=case_workflow_id(case.case_id),
                step_key="no detail",
                kind="consent_recorded",
                stage="joint_meeting",
                occurred_at=datetime(2026, 3, 3, 8, 0, tzinfo=UTC),
            )
    async with sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(CaseEvent).where(CaseEvent.case_id == case.case_id)
        )
    assert count == 0
