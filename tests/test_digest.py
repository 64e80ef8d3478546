"""Overdue and escalated deadlines reach each recipient as one daily digest, in the
recipient's language, instead of one e-mail each."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.notifications import last_digest_time
from channels.ics import STOCKHOLM
from channels.message import NotificationType, RecipientRole
from channels.smtp import SmtpChannel
from models.notification import DispatchRequest
from store.contacts import add_unit_contact
from store.outbox import enqueue_notification
from store.schema import Notification
from tests.outbox_support import Clock, RecordingSmtpHandler, dispatcher, record_case

ONCE = DispatchRequest(run_for_s=0)
Sessions = async_sessionmaker[AsyncSession]



def test_the_digest_goes_out_at_seven_in_stockholm_whatever_the_season() -> None:
    seven = time(7, 0)
    winter = datetime(2026, 1, 15, 6, 30, tzinfo=UTC)  # 07:30 in Stockholm
    assert last_digest_time(winter, seven) == datetime(2026, 1, 15, 7, 0, tzinfo=STOCKHOLM)
    summer = datetime(2026, 7, 15, 4, 30, tzinfo=UTC)  # 06:30 in Stockholm: yesterday's
    assert last_digest_time(summer, seven) == datetime(2026, 7, 14, 7, 0, tzinfo=STOCKHOLM)
    assert last_digest_time(summer, None) is None


async def test_a_back_dated_case_sends_one_digest_per_recipient_the_next_morning(
    sessionmaker: Sessions, smtp: tuple[RecordingSmtpHandler, SmtpChannel]
) -> None:
    handler, channel = smtp
    case = await record_case(sessionmaker)
    async with sessionmaker.begin() as session:
        await add_unit_contact(
            session,
            unit_code=case.unit_code,
            role="coordinator",
            channel="email",
            address="koordinator@example.org",
        )
        await add_unit_contact(
            session,
            unit_code=case.unit_code,
            role="coordinator",
            channel="email",
            address="coordinator@example.org",
            language="en",
        )
        notices = [
            (NotificationType.DEADLINE_OVERDUE, "fk_sick_notice", date(2026, 2, 21)),
            (NotificationType.DEADLINE_OVERDUE, "return_to_work_plan", date(2026, 3, 2)),
            (NotificationType.DEADLINE_ESCALATION, "fk_sick_notice", date(2026, 2, 21)),
            (NotificationType.DEADLINE_OVERDUE, "rehab_chain_day_90", date(2026, 4, 30)),
        ]
        for n, (kind, deadline, due_on) in enumerate(notices):
            await enqueue_notification(
                session,
                idempotency_key=f"k{n}",
                notification_type=kind,
                recipient_role=RecipientRole.COORDINATOR,
                case_id=case.case_id,
                unit_code=case.unit_code,
                due_on=due_on,
                deadline_kind=deadline,
            )
        # Not an overdue notice: it goes at once, on its own.
        await enqueue_notification(
            session,
            idempotency_key="due",
            notification_type=NotificationType.DEADLINE_DUE,
            recipient_role=RecipientRole.COORDINATOR,
            case_id=case.case_id,
            unit_code=case.unit_code,
            due_on=date(2026, 5, 1),
            deadline_kind="rehab_chain_day_180",
        )
    clock = Clock()
    dispatch = dispatcher(sessionmaker, email_channel=channel, clock=clock)

    await ActivityEnvironment().run(dispatch.dispatch_due, ONCE)
    assert sorted(str(m["Subject"]) for m in handler.received) == [
        "rehabflow: deadline in case " + case.case_id.hex[:8].upper() + " on 2026-05-01",
        "rehabflow: tidsfrist i ärende " + case.case_id.hex[:8].upper() + " den 2026-05-01",
    ]

    clock.advance(timedelta(days=1))
    await ActivityEnvironment().run(dispatch.dispatch_due, ONCE)
    digests = {str(m["To"]): m for m in handler.received[2:]}
    assert set(digests) == {"koordinator@example.org", "coordinator@example.org"}
    swedish, english = digests["koordinator@example.org"], digests["coordinator@example.org"]
    assert swedish["Subject"] == "rehabflow: passerade tidsfrister (daglig sammanfattning)"
    assert english["Subject"] == "rehabflow: overdue deadlines (daily summary)"
    body = swedish.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    ref = case.case_id.hex[:8].upper()
    assert text.count(f"- Ärende {ref}:") == 4
    assert "tidsfristen för sjukanmälan till Försäkringskassan var lördag 2026-02-21" in text
    assert "den har eskalerats till dig" in text
    assert "/cases?overdue=yes" in text

    await ActivityEnvironment().run(dispatch.dispatch_due, ONCE)
    assert len(handler.received) == 4  # nothing twice
    async with sessionmaker() as session:
        statuses = set(await session.scalars(select(Notification.status)))
    assert statuses == {"delivered"}
