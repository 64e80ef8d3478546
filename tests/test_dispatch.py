"""The dispatcher delivers the outbox through real peers, once, with backoff and dead letters."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from icalendar import Calendar
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from channels.maildir import MaildirChannel
from channels.message import MeetingSlot, NotificationType, RecipientRole
from channels.smtp import SmtpChannel
from channels.webhook import WebhookChannel
from models.notification import DISPATCHER_WORKFLOW_ID, DispatcherInput, DispatchRequest
from store.contacts import add_unit_contact, erase_employee_contact, set_employee_contact
from store.outbox import claim_due, enqueue_notification
from store.schema import Notification
from tests.outbox_support import (
    WEBHOOK_SECRET,
    Clock,
    RecordedCase,
    RecordingSmtpHandler,
    contact_protector,
    dispatcher,
    maildir_files,
    record_case,
    webhook_receiver,
)
from worker import build_worker
from workflows.notification_dispatcher import (
    NotificationDispatcherWorkflow,
    ensure_dispatcher_running,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
Sessions = async_sessionmaker[AsyncSession]
ONCE = DispatchRequest(run_for_s=0)


@pytest.fixture
async def case(sessionmaker: Sessions) -> RecordedCase:
    return await record_case(sessionmaker)



async def enqueue(
    sessionmaker: Sessions,
    case: RecordedCase,
    key: str,
    notification_type: NotificationType,
    role: RecipientRole = RecipientRole.COORDINATOR,
    **neutral: object,
) -> None:
    async with sessionmaker.begin() as session:
        await enqueue_notification(
            session,
            idempotency_key=key,
            notification_type=notification_type,
            recipient_role=role,
            case_id=case.case_id,
            unit_code=case.unit_code,
            **neutral,  # type: ignore[arg-type]
        )


async def contact(
    sessionmaker: Sessions, case: RecordedCase, address: str, channel: str = "email"
) -> None:
    async with sessionmaker.begin() as session:
        await add_unit_contact(
            session,
            unit_code=case.unit_code,
            role="coordinator",
            channel=channel,  # type: ignore[arg-type]
            address=address,
        )


async def outbox(sessionmaker: Sessions) -> list[Notification]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(Notification).order_by(Notification.id)))


def meeting_slot() -> MeetingSlot:
    start = datetime(2026, 3, 30, 9, 0, tzinfo=STOCKHOLM)
    return MeetingSlot(meeting_id=uuid.uuid4(), starts_at=start, ends_at=start + timedelta(hours=1))


async def test_smtp_invitation_arrives_once_with_an_ics_that_parses(
    sessionmaker: Sessions,
    case: RecordedCase,
    smtp: tuple[RecordingSmtpHandler, SmtpChannel],
    tmp_path: Path,
) -> None:
    handler, channel = smtp
    await contact(sessionmaker, case, "coordinator@example.org")
    slot = meeting_slot()
    await enqueue(sessionmaker, case, "m-1", NotificationType.MEETING_INVITATION, meeting=slot)
    dispatch = dispatcher(sessionmaker, email_channel=channel)

    first = await ActivityEnvironment().run(dispatch.dispatch_due, ONCE)
    second = await ActivityEnvironment().run(dispatch.dispatch_due, ONCE)

    assert (first.delivered, second.delivered) == (1, 0)
    (received,) = handler.received
    assert received["To"] == "coordinator@example.org"
    assert received["Subject"] == "rehabflow: gemensamt möte 2026-03-30"  # Swedish by default
    body = received.get_body(preferencelist=("plain",))
    assert body is not None
    assert f"https://rehabflow.example/cases/{case.case_id}" in body.get_content()
    (part,) = [p for p in received.iter_attachments() if p.get_content_type() == "text/calendar"]
    (event,) = Calendar.from_ical(part.get_content()).events
    assert isinstance(event.start, datetime) and event.start == slot.starts_at
    assert str(event.start.tzinfo) == "Europe/Stockholm"
    (row,) = await outbox(sessionmaker)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 1, None)


async def test_webhook_delivery_carries_a_signature_the_receiver_verifies(
    sessionmaker: Sessions, case: RecordedCase, tmp_path: Path
) -> None:
    async with webhook_receiver() as receiver, httpx.AsyncClient() as http:
        await contact(sessionmaker, case, f"{receiver.base_url}/hook", channel="webhook")
        await enqueue(
            sessionmaker,
            case,
            "deadline-1",
            NotificationType.DEADLINE_DUE,
            due_on=date(2026, 3, 22),
            deadline_kind="rehab_chain_day_90",
        )
        dispatch = dispatcher(
            sessionmaker,
            email_channel=MaildirChannel(tmp_path / "mail"),
            webhook=WebhookChannel(http, secret=WEBHOOK_SECRET),
        )

        await ActivityEnvironment().run(dispatch.dispatch_due, ONCE)
        await ActivityEnvironment().run(dispatch.dispatch_due, ONCE)

    assert receiver.verified == [True]
    event = json.loads(receiver.bodies[0])
    (row,) = await outbox(sessionmaker)
    assert event["id"] == row.delivery_key
    assert event["data"]["deadline_kind"] == "rehab_chain_day_90"
    assert event["data"]["deadline_label"] == "the day-90 checkpoint of the rehabilitation chain"
    assert row.status == "delivered"


async def test_failing_webhook_backs_off_then_dead_letters_after_max_attempts(
    sessionmaker: Sessions, case: RecordedCase, tmp_path: Path
) -> None:
    async with webhook_receiver(status=503) as receiver, httpx.AsyncClient() as http:
        await contact(sessionmaker, case, f"{receiver.base_url}/hook", channel="webhook")
        await enqueue(sessionmaker, case, "closed-1", NotificationType.CASE_CLOSED)
        clock = Clock()  # after the row's creation time, so the row is due at once
        dispatch = dispatcher(
            sessionmaker,
            email_channel=MaildirChannel(tmp_path / "mail"),
            webhook=WebhookChannel(http, secret=WEBHOOK_SECRET),
            clock=clock,
            max_attempts=3,
            backoff_initial_s=10.0,
        )
        env = ActivityEnvironment()

        first = await env.run(dispatch.dispatch_due, ONCE)
        (row,) = await outbox(sessionmaker)
        assert (first.retried, row.status, row.attempts) == (1, "pending", 1)
        assert row.next_attempt_at == clock.now + timedelta(seconds=10)
        assert (await env.run(dispatch.dispatch_due, ONCE)).passes == 1  # not due yet
        assert len(receiver.bodies) == 1

        clock.advance(timedelta(seconds=10))
        await env.run(dispatch.dispatch_due, ONCE)
        (row,) = await outbox(sessionmaker)
        assert row.next_attempt_at == clock.now + timedelta(seconds=20)  # doubled
        clock.advance(timedelta(seconds=20))
        last = await env.run(dispatch.dispatch_due, ONCE)
        clock.advance(timedelta(days=1))
        await env.run(dispatch.dispatch_due, ONCE)

    (row,) = await outbox(sessionmaker)
    assert last.dead_lettered == 1
    assert (row.status, row.attempts, row.last_error) == ("dead_letter", 3, "webhook http 503")
    assert len(receiver.bodies) == 3


async def test_erased_employee_contact_dead_letters_instead_of_sending(
    sessionmaker: Sessions, case: RecordedCase, tmp_path: Path
) -> None:
    protector = contact_protector()
    async with sessionmaker.begin() as session:
        await set_employee_contact(
            session, protector, employee_pseudonym=case.employee, channel="email", address="e@x.org"
        )
    await enqueue(
        sessionmaker, case, "consent-1", NotificationType.CONSENT_REQUESTED, RecipientRole.EMPLOYEE
    )
    async with sessionmaker.begin() as session:
        await erase_employee_contact(session, case.employee)
    dispatch = dispatcher(
        sessionmaker, email_channel=MaildirChannel(tmp_path / "mail"), protector=protector
    )

    await ActivityEnvironment().run(dispatch.dispatch_due, ONCE)

    (row,) = await outbox(sessionmaker)
    assert (row.status, row.last_error) == ("dead_letter", "recipient contact was removed")
    assert maildir_files(tmp_path / "mail") == []


async def test_employee_receives_mail_at_the_decrypted_address(
    sessionmaker: Sessions, case: RecordedCase, tmp_path: Path
) -> None:
    protector = contact_protector()
    async with sessionmaker.begin() as session:
        await set_employee_contact(
            session, protector, employee_pseudonym=case.employee, channel="email", address="e@x.org"
        )
    await enqueue(
        sessionmaker, case, "consent-2", NotificationType.CONSENT_REQUESTED, RecipientRole.EMPLOYEE
    )
    dispatch = dispatcher(
        sessionmaker, email_channel=MaildirChannel(tmp_path / "mail"), protector=protector
    )

    await ActivityEnvironment().run(dispatch.dispatch_due, ONCE)

    (mail,) = maildir_files(tmp_path / "mail")
    assert "To: e@x.org" in mail.read_text()


async def test_crash_between_send_and_mark_does_not_produce_a_second_message(
    sessionmaker: Sessions, case: RecordedCase, tmp_path: Path
) -> None:
    maildir = MaildirChannel(tmp_path / "mail")
    await contact(sessionmaker, case, "coordinator@example.org")
    await enqueue(sessionmaker, case, "assigned-1", NotificationType.CASE_ASSIGNED)
    clock = Clock()
    dispatch = dispatcher(
        sessionmaker, email_channel=maildir, clock=clock, lease=timedelta(minutes=5)
    )
    # A first worker claims the row, sends, and dies before it can mark it delivered.
    await ActivityEnvironment().run(dispatch.dispatch_due, ONCE)
    async with sessionmaker.begin() as session:
        (row,) = await session.scalars(select(Notification))
        row.status, row.next_attempt_at = "pending", clock.now  # as if never marked
    async with sessionmaker.begin() as session:
        claimed = await claim_due(session, now=clock.now, limit=10, lease=timedelta(minutes=5))
    assert len(claimed) == 1  # ...and this second worker dies before it can send at all

    clock.advance(timedelta(minutes=5))  # the dead worker's lease runs out
    result = await ActivityEnvironment().run(dispatch.dispatch_due, ONCE)

    assert result.delivered == 1
    assert len(maildir_files(tmp_path / "mail")) == 1
    (row,) = await outbox(sessionmaker)
    assert (row.status, row.attempts) == ("delivered", 3)


async def test_dispatcher_workflow_drains_the_outbox_and_stays_a_singleton(
    time_skipping_env: WorkflowEnvironment,
    task_queue: str,
    sessionmaker: Sessions,
    case: RecordedCase,
    tmp_path: Path,
) -> None:
    await contact(sessionmaker, case, "coordinator@example.org")
    for number in range(3):
        await enqueue(sessionmaker, case, f"intervention-{number}", NotificationType.CASE_ASSIGNED)
    dispatch = dispatcher(sessionmaker, email_channel=MaildirChannel(tmp_path / "mail"))
    client = time_skipping_env.client
    worker: Worker = build_worker(client, task_queue, sessionmaker, notifications=dispatch)
    workflow_id = f"{DISPATCHER_WORKFLOW_ID}-{uuid.uuid4()}"

    async with worker:
        handle = await client.start_workflow(
            NotificationDispatcherWorkflow.run,
            DispatcherInput(run_for_s=0.5, runs_per_history=2),
            id=workflow_id,
            task_queue=task_queue,
        )
        for _ in range(100):
            if [row.status for row in await outbox(sessionmaker)] == ["delivered"] * 3:
                break
            await time_skipping_env.sleep(0.2)
        description = await handle.describe()
        await handle.terminate()

    assert [row.status for row in await outbox(sessionmaker)] == ["delivered"] * 3
    assert len(maildir_files(tmp_path / "mail")) == 3
    assert description.status == WorkflowExecutionStatus.RUNNING


async def test_ensure_dispatcher_running_keeps_the_one_already_running(
    time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = time_skipping_env.client
    # No worker polls this queue, so the workflow just waits; only its run id matters here.
    handle = client.get_workflow_handle(DISPATCHER_WORKFLOW_ID)
    try:
        await ensure_dispatcher_running(client, task_queue, DispatcherInput())
        first = await handle.describe()
        await ensure_dispatcher_running(client, task_queue, DispatcherInput())
        second = await handle.describe()
    finally:
        await handle.terminate()

    assert first.run_id == second.run_id
    assert second.status == WorkflowExecutionStatus.RUNNING
