"""`starter.py` commands of the programme: managers, course rounds, attendance, APT dialogues.

They write the record store directly, like `add-unit`, and wake the organisation's cycle
(or, for a course round, ask it to invite) through Temporal.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from rich.console import Console
from rich.table import Table
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from core.secrets import load_secrets
from core.settings import Settings
from core.temporal import connect
from evaluation.report import programme_coverage
from models.deadlines import STOCKHOLM
from models.programme import (
    APT_THEMES,
    DEFAULT_PROGRAMME_POLICY,
    CourseSession,
    ProgrammeChanged,
    ScheduleRound,
    course_due_on,
    programme_workflow_id,
)
from store import programme as programme_store
from store.db import create_engine, create_sessionmaker
from store.schema import Unit
from workflows.programme_cycle import ProgrammeCycleWorkflow, ensure_programme_running


def _today() -> date:
    return datetime.now(STOCKHOLM).date()


async def _cycle(settings: Settings) -> tuple[Client, str]:
    client = await connect(settings, load_secrets(settings))
    await ensure_programme_running(
        client, settings.temporal.task_queue, settings.programme.organisation
    )
    return client, programme_workflow_id(settings.programme.organisation)


async def _wake(settings: Settings, console: Console) -> None:
    try:
        client, workflow_id = await _cycle(settings)
        handle = client.get_workflow_handle_for(ProgrammeCycleWorkflow.run, workflow_id)
        await handle.signal(ProgrammeCycleWorkflow.programme_changed, ProgrammeChanged())
    except (RPCError, RuntimeError):
        console.print("[yellow]Temporal is not reachable; the cycle sees it at its next look[/]")


async def add_manager(
    settings: Settings, console: Console, unit: str, address: str, appointed_on: date
) -> int:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            if await session.get(Unit, unit) is None:
                console.print(f"[red]no unit {unit} is registered[/red]")
                return 2
            manager_id = await programme_store.add_manager(session, unit, address, appointed_on)
    finally:
        await engine.dispose()
    console.print(f"manager {manager_id} of unit {unit}")
    await _wake(settings, console)
    return 0


async def schedule_course(
    settings: Settings,
    console: Console,
    year: int,
    title: str,
    sessions: list[tuple[datetime, datetime]],
) -> int:
    round_ = ScheduleRound(
        round_id=uuid.uuid4(),
        year=year,
        title=title,
        sessions=tuple(
            CourseSession(session_id=uuid.uuid4(), starts_at=start, ends_at=end)
            for start, end in sessions
        ),
    )
    client, workflow_id = await _cycle(settings)
    handle = client.get_workflow_handle_for(ProgrammeCycleWorkflow.run, workflow_id)
    try:
        result = await handle.execute_update(ProgrammeCycleWorkflow.schedule_round, round_)
    except WorkflowUpdateFailedError as exc:
        console.print(f"[red]{exc.cause}[/red]")
        return 2
    console.print(f"round {result.round_id}: {result.invited} invitations with .ics queued")
    for s in round_.sessions:
        console.print(
            f"  session {s.session_id} {s.starts_at.astimezone(STOCKHOLM):%Y-%m-%d %H:%M}"
        )
    return 0


async def record_attendance(
    settings: Settings,
    console: Console,
    session_id: uuid.UUID,
    manager_id: uuid.UUID,
    attended: bool,
) -> int:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            if await programme_store.session_of(session, session_id) is None:
                console.print("[red]no such course session[/red]")
                return 2
            if await programme_store.manager_unit(session, manager_id) is None:
                console.print("[red]no such manager[/red]")
                return 2
            await programme_store.record_attendance(
                session, session_id, manager_id, attended, datetime.now(STOCKHOLM)
            )
    finally:
        await engine.dispose()
    console.print(f"recorded: {'attended' if attended else 'did not attend'}")
    await _wake(settings, console)
    return 0


async def record_apt(
    settings: Settings,
    console: Console,
    unit: str,
    held_on: date,
    themes: list[str],
    participants: int,
) -> int:
    unknown = sorted(set(themes) - APT_THEMES)
    if unknown or not 1 <= participants <= 500 or held_on > _today():
        console.print(
            "[red]themes are codes ("
            + ", ".join(sorted(APT_THEMES))
            + "); participants 1-500; the date not in the future[/red]"
        )
        return 2
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            if await session.get(Unit, unit) is None:
                console.print(f"[red]no unit {unit} is registered[/red]")
                return 2
            await programme_store.record_apt(
                session, unit, held_on, sorted(set(themes)), participants
            )
    finally:
        await engine.dispose()
    console.print(f"APT dialogue of {unit} on {held_on} recorded")
    await _wake(settings, console)
    return 0


async def programme_status(settings: Settings, console: Console) -> int:
    engine = create_engine(settings)
    today = _today()
    try:
        async with create_sessionmaker(engine)() as session:
            facts = await programme_store.programme_facts(session)
            managers = await programme_store.manager_statuses(session, today)
    finally:
        await engine.dispose()
    coverage = Table(title=f"Coverage, 12 months to {today}")
    for column in ("unit", "managers", "trained", "APT dialogues", "participants"):
        coverage.add_column(column, justify="left" if column == "unit" else "right")
    for row in programme_coverage(facts, today):
        coverage.add_row(
            row.unit,
            str(row.managers),
            str(row.trained_within_12_months),
            str(row.apt_dialogues_12_months),
            str(row.apt_participants_12_months),
        )
    console.print(coverage)
    due = Table(title="Managers: the yearly course")
    for column in ("manager", "unit", "last course", "due"):
        due.add_column(column)
    for m in managers:
        due_on = course_due_on(m.appointed_on, m.last_trained_on, DEFAULT_PROGRAMME_POLICY)
        style = "red" if due_on <= today else ""
        due.add_row(
            str(m.manager_id),
            m.unit_code,
            str(m.last_trained_on or "-"),
            f"[{style}]{due_on}[/]" if style else str(due_on),
        )
    console.print(due)
    return 0
