"""The programme cycle: course reminders and APT reminders fire on their day, invitations
carry an .ics, and the API records APT dialogues as codes and counts only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.auth import EmbeddedIssuer
from channels.message import (
    MeetingSlot,
    NotificationContext,
    NotificationType,
    Recipient,
    RecipientRole,
)
from channels.templates import compose_message
from models.api import Role
from models.deadlines import local_date
from models.policy import CalendarOffset
from models.programme import (
    CourseSession,
    ProgrammeInput,
    ProgrammePolicy,
    ProgrammeView,
    ScheduleRound,
    reminder_instant,
)
from store.contacts import add_unit_contact
from store.programme import add_manager, create_round, record_apt, record_attendance
from store.schema import Notification, Unit, UnitContact
from tests.conftest import bearer
from workflows.programme_cycle import ProgrammeCycleWorkflow

pytestmark = pytest.mark.own_temporal("module")

POLICY = ProgrammePolicy(new_manager_within_days=90, remind_again_after_days=30)
Handle = WorkflowHandle[ProgrammeCycleWorkflow, None]


async def _eventually(probe: object, what: str) -> None:
    for _ in range(200):
        if await probe():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def _rows(
    sessionmaker: async_sessionmaker[AsyncSession], kind: NotificationType
) -> list[tuple[str | None, date | None]]:
    """(recipient address, due date) of the outbox rows of one type."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(UnitContact.address, Notification.due_on)
            .join(UnitContact, UnitContact.id == Notification.unit_contact_id, isouter=True)
            .where(Notification.notification_type == kind.value)
            .order_by(UnitContact.address, Notification.due_on)
        )
        return [(address, due) for address, due in rows.all()]


async def _skip_to(env: WorkflowEnvironment, instant: datetime) -> None:
    gap = instant - await env.get_current_time()
    if gap > timedelta(0):
        await env.sleep(gap)


@pytest_asyncio.fixture
async def cycle(
    time_skipping_env: WorkflowEnvironment, worker: Worker, task_queue: str
) -> AsyncIterator[Handle]:
    handle = await time_skipping_env.client.start_workflow(
        ProgrammeCycleWorkflow.run,
        ProgrammeInput(organisation=f"org-{uuid.uuid4().hex[:8]}", policy=POLICY),
        id=f"programme-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    yield handle
    await handle.terminate("test over")


async def test_reminders_fire_on_the_day_the_course_or_the_dialogue_falls_due(
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
    unit_code: str,
    worker: Worker,
    task_queue: str,
) -> None:
    env = time_skipping_env
    today = local_date(await env.get_current_time())
    year = CalendarOffset(months=12)
    async with sessionmaker.begin() as session:
        await add_unit_contact(
            session, unit_code=unit_code, role="coordinator", channel="email", address="hr@x.org"
        )
        # A: trained twelve months before the day 10 days from now, so due in 10 days.
        a = await add_manager(session, unit_code, "a@x.org", today - timedelta(days=800))
        trained_on = year.before(today + timedelta(days=10))
        session_id = uuid.uuid4()
        course_start = datetime.combine(trained_on, datetime.min.time()).astimezone()
        await create_round(
            session,
            uuid.uuid4(),
            trained_on.year,
            "Insurance medicine",
            [(session_id, course_start.replace(hour=9), course_start.replace(hour=12))],
        )
        await record_attendance(session, session_id, a, True, course_start)
        # B: a new manager with no course, due 90 days after taking up the post: in 20 days.
        await add_manager(session, unit_code, "b@x.org", today - timedelta(days=70))
        # The unit's last APT dialogue: twelve months before the day 40 days from now.
        await record_apt(
            session, unit_code, year.before(today + timedelta(days=40)), ["workload"], 12
        )
    due_a, due_b = today + timedelta(days=10), today + timedelta(days=20)
    due_apt = year.after(year.before(today + timedelta(days=40)))

    handle = await env.client.start_workflow(
        ProgrammeCycleWorkflow.run,
        ProgrammeInput(organisation="org-test", policy=POLICY),
        id=f"programme-{uuid.uuid4()}",
        task_queue=task_queue,
    )
    try:

        async def next_check_is(day: date) -> bool:
            view: ProgrammeView = await handle.query(ProgrammeCycleWorkflow.view)
            return view.next_check_at == reminder_instant(day, POLICY)

        # Nothing is due yet; the cycle sleeps until A's day, at 08:00 Stockholm time.
        await _eventually(lambda: next_check_is(due_a), "the first check")
        assert await _rows(sessionmaker, NotificationType.MANAGER_COURSE_DUE) == []

        await _skip_to(env, reminder_instant(due_a, POLICY) - timedelta(minutes=5))
        assert await _rows(sessionmaker, NotificationType.MANAGER_COURSE_DUE) == []
        await _skip_to(env, reminder_instant(due_a, POLICY) + timedelta(minutes=1))

        async def a_reminded() -> bool:
            return await _rows(sessionmaker, NotificationType.MANAGER_COURSE_DUE) == [
                ("a@x.org", due_a),
                ("hr@x.org", due_a),
            ]

        await _eventually(a_reminded, "the manager and HR are reminded of A's course")
        await _eventually(lambda: next_check_is(due_b), "the check on B's day")

        await _skip_to(env, reminder_instant(due_b, POLICY) + timedelta(minutes=1))

        async def b_reminded() -> bool:
            rows = await _rows(sessionmaker, NotificationType.MANAGER_COURSE_DUE)
            return ("b@x.org", due_b) in rows and rows.count(("hr@x.org", due_b)) == 1

        await _eventually(b_reminded, "the new manager without a course is reminded")
        assert await _rows(sessionmaker, NotificationType.APT_DIALOGUE_DUE) == []

        await _skip_to(env, reminder_instant(due_apt, POLICY) + timedelta(minutes=1))

        async def apt_reminded() -> bool:
            rows = await _rows(sessionmaker, NotificationType.APT_DIALOGUE_DUE)
            return rows == [("a@x.org", due_apt), ("b@x.org", due_apt), ("hr@x.org", due_apt)]

        await _eventually(apt_reminded, "the unit's managers and HR are reminded of the APT")
        # A is reminded again 30 days after the first reminder, still due on the same day.
        await _skip_to(
            env, reminder_instant(due_a + timedelta(days=30), POLICY) + timedelta(minutes=1)
        )

        async def a_again() -> bool:
            rows = await _rows(sessionmaker, NotificationType.MANAGER_COURSE_DUE)
            return rows.count(("a@x.org", due_a)) == 2

        await _eventually(a_again, "A's second reminder")
    finally:
        await handle.terminate("test over")


async def test_a_course_round_invites_every_manager_with_a_calendar_invitation(
    time_skipping_env: WorkflowEnvironment,
    sessionmaker: async_sessionmaker[AsyncSession],
    unit_code: str,
    cycle: Handle,
) -> None:
    today = local_date(await time_skipping_env.get_current_time())
    async with sessionmaker.begin() as session:
        for n in range(3):
            await add_manager(session, unit_code, f"m{n}@x.org", today - timedelta(days=400))
    start = await time_skipping_env.get_current_time() + timedelta(days=30)
    sessions = tuple(
        CourseSession(
            session_id=uuid.uuid4(),
            starts_at=start + timedelta(days=7 * n),
            ends_at=start + timedelta(days=7 * n, hours=3),
        )
        for n in range(2)
    )
    result = await cycle.execute_update(
        ProgrammeCycleWorkflow.schedule_round,
        ScheduleRound(round_id=uuid.uuid4(), year=start.year, title="FK and HR", sessions=sessions),
    )
    assert result.invited == 3
    async with sessionmaker() as session:
        rows = (
            await session.scalars(
                select(Notification).where(
                    Notification.notification_type
                    == NotificationType.MANAGER_COURSE_INVITATION.value
                )
            )
        ).all()
    # Three managers over two sessions, in turn: two in the first, one in the second.
    assert sorted(r.meeting_starts_at for r in rows if r.meeting_starts_at) == [
        sessions[0].starts_at,
        sessions[0].starts_at,
        sessions[1].starts_at,
    ]
    row = rows[0]
    assert row.case_id is None
    assert row.meeting_id is not None and row.meeting_ends_at is not None
    message = compose_message(
        idempotency_key=row.delivery_key,
        notification_type=NotificationType.MANAGER_COURSE_INVITATION,
        recipient=Recipient(address="m0@x.org", role=RecipientRole.MANAGER),
        context=NotificationContext(
            unit_code=row.unit_code,
            app_url="https://rehabflow.example",
            meeting=MeetingSlot(
                meeting_id=row.meeting_id,
                starts_at=row.meeting_starts_at,
                ends_at=row.meeting_ends_at,
            ),
        ),
        created_at=row.created_at,
    )
    assert message.calendar is not None and message.calendar.method == "REQUEST"
    assert b"Yearly course for managers" in message.calendar.ics
    assert "https://rehabflow.example/programme" in message.text


async def test_apt_dialogues_are_codes_and_counts_and_coverage_is_per_unit(
    api: httpx.AsyncClient,
    issuer: EmbeddedIssuer,
    sessionmaker: async_sessionmaker[AsyncSession],
    unit_code: str,
) -> None:
    async with sessionmaker.begin() as session:
        session.add(Unit(code=f"{unit_code}-B", name="Other unit"))
    manager = bearer(issuer.mint(Role.MANAGER, subject="manager-1", units=[unit_code]))
    held = local_date(datetime.now().astimezone()) - timedelta(days=3)
    body = {"unit_code": unit_code, "held_on": held.isoformat(), "participants": 11}

    free_text = await api.post(
        "/api/v1/programme/apt-dialogues",
        json=body | {"themes": ["Anna was sick again"]},
        headers=manager,
    )
    assert free_text.status_code == 422
    assert "Anna" not in free_text.text
    other_unit = await api.post(
        "/api/v1/programme/apt-dialogues",
        json=body | {"unit_code": f"{unit_code}-B", "themes": ["workload"]},
        headers=manager,
    )
    assert other_unit.status_code == 403
    for themes in (["workload", "early_signals"], ["return_to_work"]):
        created = await api.post(
            "/api/v1/programme/apt-dialogues", json=body | {"themes": themes}, headers=manager
        )
        assert created.status_code == 201

    analyst = bearer(issuer.mint(Role.ANALYST, subject="analyst-1"))
    coverage = (await api.get("/api/v1/programme/coverage", headers=analyst)).json()
    by_unit = {row["unit"]: row for row in coverage}
    assert by_unit[unit_code]["apt_dialogues_12_months"] == 2
    assert by_unit[unit_code]["apt_participants_12_months"] == 22
    assert by_unit[f"{unit_code}-B"]["apt_dialogues_12_months"] == 0
    mine = (await api.get("/api/v1/programme/coverage", headers=manager)).json()
    assert [row["unit"] for row in mine] == [unit_code]
