"""The outbox: rows in the caller's transaction, one per recipient, idempotent, never stuck."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from channels.message import MeetingSlot, NotificationType, RecipientRole
from store.contacts import add_unit_contact, set_employee_contact
from store.outbox import (
    INVALID_NOTIFICATION,
    UNDELIVERABLE_EVENT,
    UNKNOWN_CASE,
    CaseNotice,
    enqueue_notification,
    enqueue_notifications,
)
from store.schema import CaseEvent, EmployeeContact, Notification
from tests.outbox_support import RecordedCase, contact_protector, record_case

STOCKHOLM = ZoneInfo("Europe/Stockholm")

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def case(sessionmaker: Sessions) -> RecordedCase:
    return await record_case(sessionmaker)


async def rows(sessionmaker: Sessions, case_id: uuid.UUID) -> list[Notification]:
    async with sessionmaker() as session:
        found = await session.scalars(
            select(Notification).where(Notification.case_id == case_id).order_by(Notification.id)
        )
        return list(found)


async def test_one_row_per_unit_contact_of_the_role_written_twice_stays_one(
    sessionmaker: Sessions, case: RecordedCase
) -> None:
    async with sessionmaker.begin() as session:
        for address in ("boss@example.org", "deputy@example.org"):
            await add_unit_contact(
                session, unit_code=case.unit_code, role="manager", channel="email", address=address
            )
        await add_unit_contact(
            session,
            unit_code=case.unit_code,
            role="coordinator",
            channel="email",
            address="hr@example.org",
        )
    start = datetime(2026, 3, 30, 9, 0, tzinfo=STOCKHOLM)
    meeting = MeetingSlot(
        meeting_id=uuid.uuid4(), starts_at=start, ends_at=start + timedelta(hours=1)
    )

    for _ in range(2):  # a retried activity calls it again with the same key
        async with sessionmaker.begin() as session:
            await enqueue_notification(
                session,
                idempotency_key=f"case-{case.case_id}:meeting-1:manager",
                notification_type=NotificationType.MEETING_INVITATION,
                recipient_role=RecipientRole.MANAGER,
                case_id=case.case_id,
                unit_code=case.unit_code,
                meeting=meeting,
            )

    written = await rows(sessionmaker, case.case_id)
    assert len(written) == 2
    assert {row.status for row in written} == {"pending"}
    assert {row.recipient_role for row in written} == {"manager"}
    assert written[0].meeting_starts_at == start
    assert len({row.delivery_key for row in written}) == 2


async def test_the_notices_of_one_change_reach_each_role_with_contacts_and_flag_the_others(
    sessionmaker: Sessions, case: RecordedCase
) -> None:
    async with sessionmaker.begin() as session:
        await add_unit_contact(
            session, unit_code=case.unit_code, role="manager", channel="email", address="m@x.org"
        )
        await add_unit_contact(
            session,
            unit_code=case.unit_code,
            role="coordinator",
            channel="email",
            address="c@x.org",
        )
    notices = [
        CaseNotice(f"change-7:{role.value}", NotificationType.CASE_CLOSED, role)
        for role in (RecipientRole.MANAGER, RecipientRole.COORDINATOR, RecipientRole.EMPLOYEE)
    ]

    for _ in range(2):  # a retried activity writes the same change again
        async with sessionmaker.begin() as session:
            await enqueue_notifications(
                await session.connection(),
                case_id=case.case_id,
                unit_code=case.unit_code,
                notices=notices,
            )

    written = await rows(sessionmaker, case.case_id)
    by_role = {row.recipient_role: row.status for row in written}
    assert len(written) == 3
    assert by_role == {"manager": "pending", "coordinator": "pending", "employee": "no_recipient"}
    async with sessionmaker() as session:
        flagged = list(
            await session.scalars(
                select(CaseEvent.detail).where(
                    CaseEvent.case_id == case.case_id, CaseEvent.kind == UNDELIVERABLE_EVENT
                )
            )
        )
    assert flagged == [
        {"notification_type": "case_closed", "recipient_role": "employee", "reason": "no_recipient"}
    ]


async def test_rows_are_part_of_the_callers_transaction(
    sessionmaker: Sessions, case: RecordedCase
) -> None:
    async with sessionmaker.begin() as session:
        await add_unit_contact(
            session, unit_code=case.unit_code, role="manager", channel="email", address="b@x.org"
        )

    async with sessionmaker() as session:
        await enqueue_notification(
            session,
            idempotency_key="rolled-back",
            notification_type=NotificationType.MANAGER_CASE_OPENED,
            recipient_role=RecipientRole.MANAGER,
            case_id=case.case_id,
            unit_code=case.unit_code,
        )
        await session.rollback()  # the fact was not recorded, so neither is its notification

    assert await rows(sessionmaker, case.case_id) == []


async def test_employee_contact_is_stored_encrypted_and_not_copied_into_the_outbox(
    sessionmaker: Sessions, case: RecordedCase
) -> None:
    protector = contact_protector()
    async with sessionmaker.begin() as session:
        await set_employee_contact(
            session,
            protector,
            employee_pseudonym=case.employee,
            channel="email",
            address="tolvan.tolvansson@example.org",
        )
        await enqueue_notification(
            session,
            idempotency_key="consent-1",
            notification_type=NotificationType.CONSENT_REQUESTED,
            recipient_role=RecipientRole.EMPLOYEE,
            case_id=case.case_id,
            unit_code=case.unit_code,
            due_on=date(2026, 4, 1),
        )

    async with sessionmaker() as session:
        contact = await session.get(EmployeeContact, case.employee)
    assert contact is not None
    assert b"tolvan" not in contact.address_encrypted
    assert protector.decrypt(contact.address_encrypted) == "tolvan.tolvansson@example.org"
    (row,) = await rows(sessionmaker, case.case_id)
    assert row.employee_pseudonym == case.employee and row.unit_contact_id is None
    assert "tolvan" not in repr(
        {column: getattr(row, column) for column in Notification.__table__.columns.keys()}
    )


async def test_missing_recipient_is_recorded_once_as_a_coordinator_task_not_an_error(
    sessionmaker: Sessions, case: RecordedCase
) -> None:
    key = f"case-{case.case_id}:fk-notice:fk_officer"
    for _ in range(2):
        async with sessionmaker.begin() as session:
            await enqueue_notification(
                session,
                idempotency_key=key,
                notification_type=NotificationType.DEADLINE_DUE,
                recipient_role=RecipientRole.FK_OFFICER,
                case_id=case.case_id,
                unit_code=case.unit_code,
                due_on=date(2026, 3, 22),
                deadline_kind="fk_sick_notice",
            )

    (row,) = await rows(sessionmaker, case.case_id)
    assert row.status == "no_recipient"
    async with sessionmaker() as session:
        events = list(
            await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.case_id))
        )
    (event,) = events
    assert event.kind == UNDELIVERABLE_EVENT
    assert event.step_key == f"{UNDELIVERABLE_EVENT}:{key}"
    assert event.stage == "joint_meeting"
    assert event.detail == {
        "notification_type": "deadline_due",
        "recipient_role": "fk_officer",
        "reason": "no_recipient",
    }


async def test_a_very_long_key_still_fits_the_timeline_and_outbox(
    sessionmaker: Sessions, case: RecordedCase
) -> None:
    key = "k" * 200
    async with sessionmaker.begin() as session:
        await enqueue_notification(
            session,
            idempotency_key=key,
            notification_type=NotificationType.CASE_CLOSED,
            recipient_role=RecipientRole.MANAGER,
            case_id=case.case_id,
            unit_code=case.unit_code,
        )

    (row,) = await rows(sessionmaker, case.case_id)
    assert row.idempotency_key == key and len(row.delivery_key) <= 200


@pytest.mark.parametrize(
    ("changes", "error_type"),
    [
        ({"deadline_kind": "the plan; diagnosis F32"}, INVALID_NOTIFICATION),
        ({"deadline_kind": "sick_leave_certificate"}, INVALID_NOTIFICATION),
        ({"idempotency_key": "has spaces in it"}, INVALID_NOTIFICATION),
        ({"case_id": uuid.UUID(int=42)}, UNKNOWN_CASE),
    ],
)
async def test_caller_bugs_are_non_retryable_errors_with_a_type(
    sessionmaker: Sessions, case: RecordedCase, changes: dict[str, object], error_type: str
) -> None:
    arguments: dict[str, object] = {
        "idempotency_key": "bad-1",
        "notification_type": NotificationType.DEADLINE_DUE,
        "recipient_role": RecipientRole.COORDINATOR,
        "case_id": case.case_id,
        "unit_code": case.unit_code,
        "due_on": date(2026, 3, 22),
        "deadline_kind": "fk_sick_notice",
    } | changes
    async with sessionmaker() as session:
        with pytest.raises(ApplicationError) as raised:
            await enqueue_notification(session, **arguments)  # type: ignore[arg-type]

    assert raised.value.type == error_type
    assert raised.value.non_retryable
