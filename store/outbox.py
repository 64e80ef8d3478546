"""The notification outbox: rows written in the caller's transaction, claimed by the dispatcher."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import String, and_, any_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.exceptions import ApplicationError

from channels.message import (
    DeadlineKind,
    IdempotencyKey,
    MeetingSlot,
    NotificationType,
    RecipientRole,
)
from models.case import case_workflow_id
from store.direct import Conn
from store.schema import Case, CaseEvent, EmployeeContact, Notification, UnitContact, table_of

# Error types a calling activity sees; both are caller bugs, so never retried.
UNKNOWN_CASE = "UnknownCase"
INVALID_NOTIFICATION = "InvalidNotification"
# The case_events kind that shows an undeliverable notification as a coordinator task.
UNDELIVERABLE_EVENT = "notification_undeliverable"

_KEY = TypeAdapter(IdempotencyKey)
_KIND = TypeAdapter(DeadlineKind)
_STEP_KEY_MAX = 128


def _bounded(prefix: str, key: str, limit: int) -> str:
    """`prefix + key`, or `prefix + digest(key)` when that would not fit the column."""
    joined = f"{prefix}{key}"
    if len(joined) <= limit:
        return joined
    return f"{prefix}sha256-{hashlib.sha256(key.encode()).hexdigest()[:40]}"


def delivery_key(idempotency_key: str, recipient: str) -> str:
    """The per-recipient key: becomes the channel's Message-ID, CloudEvent id, file name."""
    return _bounded(f"{recipient}/", idempotency_key, 200)


def undeliverable_step_key(idempotency_key: str) -> str:
    return _bounded(f"{UNDELIVERABLE_EVENT}:", idempotency_key, _STEP_KEY_MAX)


def _invalid(what: str) -> ApplicationError:
    return ApplicationError(
        f"notification {what} is invalid", type=INVALID_NOTIFICATION, non_retryable=True
    )


@dataclass(frozen=True)
class CaseNotice:
    """One notification of a case to every recipient of a role (see enqueue_notifications)."""

    idempotency_key: str
    notification_type: NotificationType
    recipient_role: RecipientRole
    due_on: date | None = None
    deadline_kind: str | None = None
    meeting: MeetingSlot | None = None


async def enqueue_notification(
    session: AsyncSession,
    *,
    idempotency_key: str,
    notification_type: NotificationType,
    recipient_role: RecipientRole,
    case_id: UUID,
    unit_code: str,
    due_on: date | None = None,
    deadline_kind: str | None = None,
    meeting: MeetingSlot | None = None,
) -> None:
    """One notification; see enqueue_notifications."""
    notice = CaseNotice(
        idempotency_key, notification_type, recipient_role, due_on, deadline_kind, meeting
    )
    await enqueue_notifications(
        await session.connection(), case_id=case_id, unit_code=unit_code, notices=[notice]
    )


async def enqueue_notifications(
    conn: Conn, *, case_id: UUID, unit_code: str, notices: Collection[CaseNotice]
) -> None:
    """Write the notifications' outbox rows in the caller's transaction (no commit).

    One row per recipient of a notice's `recipient_role`: the unit's contacts for that role,
    or the employee's own contact. Idempotent on `idempotency_key`: a retried activity that
    calls this again writes nothing. With no recipient, one `no_recipient` row and a
    `notification_undeliverable` case event are written instead, so the coordinator sees a
    task on the case and no activity retries forever. One lookup and one INSERT for all the
    notices of one change, however many there are.
    """
    try:
        for notice in notices:
            _KEY.validate_python(notice.idempotency_key)
            if notice.deadline_kind is not None:
                _KIND.validate_python(notice.deadline_kind)
    except ValidationError:
        raise _invalid("key or deadline kind") from None
    if not notices:
        return
    staff = sorted({n.recipient_role.value for n in notices} - {RecipientRole.EMPLOYEE.value})
    found = (
        await conn.execute(
            _LOOKUP,
            {
                "keys": sorted({n.idempotency_key for n in notices}),
                "case_id_": case_id,
                "unit_code": unit_code,
                "roles": staff,
            },
        )
    ).one()
    written = set(found.written or ())
    notices = [n for n in notices if n.idempotency_key not in written]
    if not notices:
        return
    if found.stage is None:
        raise ApplicationError(
            "the notification's case is not recorded", type=UNKNOWN_CASE, non_retryable=True
        )
    recipients = _recipients(found)
    rows: list[dict[str, object]] = []
    undeliverable: list[dict[str, object]] = []
    for notice in notices:
        neutral = _neutral(notice, case_id, unit_code)
        reached = recipients.get(notice.recipient_role, [])
        if not reached:
            undeliverable.append(neutral)
        for recipient, columns in reached:
            rows.append(
                neutral
                | {"delivery_key": delivery_key(notice.idempotency_key, recipient)}
                | columns
            )
    if rows:
        await conn.execute(_INSERT_ROWS, [_ROW_DEFAULTS | row for row in rows])
    if undeliverable:
        await _record_undeliverable(conn, undeliverable, case_id, found.stage)


# Every row of one INSERT names the same columns.
_ROW_DEFAULTS: dict[str, object] = {"unit_contact_id": None, "employee_pseudonym": None}
# The statements of every case change's notifications, built once on the tables and run
# with their values as parameters: compiled once and found in SQLAlchemy's cache, where one
# built per call (a multi-row VALUES list above all) cost its compilation or its cache key.
_NOTIFICATIONS = table_of(Notification)
_INSERT_ROWS = insert(_NOTIFICATIONS).on_conflict_do_nothing(index_elements=["delivery_key"])
# Undeliverable: dated by the database, like the rows' own timestamps.
_APPEND_UNDELIVERABLE = (
    insert(table_of(CaseEvent))
    .values(occurred_at=func.now())
    .on_conflict_do_nothing(constraint="uq_case_events_workflow_id")
)
_cases = table_of(Case)
_employee_contacts = table_of(EmployeeContact)
_contacts = table_of(UnitContact)
_case_employee = (
    select(_cases.c.employee_pseudonym)
    .where(_cases.c.id == bindparam("case_id_"))
    .scalar_subquery()
)
_unit_contacts = and_(
    _contacts.c.unit_code == bindparam("unit_code"),
    _contacts.c.role == any_(bindparam("roles", type_=ARRAY(String))),
    _contacts.c.active.is_(True),
)
# Everything the notices of one change need to know, in one round trip, always one row: the
# keys already written (a retried activity), the case's stage (None: no such case), the
# employee's own contact, and the unit's active contacts of the notices' staff roles.
_LOOKUP = select(
    select(func.array_agg(_NOTIFICATIONS.c.idempotency_key))
    .where(_NOTIFICATIONS.c.idempotency_key == any_(bindparam("keys", type_=ARRAY(String))))
    .scalar_subquery()
    .label("written"),
    select(_cases.c.stage)
    .where(_cases.c.id == bindparam("case_id_"))
    .scalar_subquery()
    .label("stage"),
    select(_employee_contacts.c.employee_pseudonym)
    .where(_employee_contacts.c.employee_pseudonym == _case_employee)
    .scalar_subquery()
    .label("employee_contact"),
    select(func.array_agg(aggregate_order_by(_contacts.c.id, _contacts.c.id)))
    .where(_unit_contacts)
    .scalar_subquery()
    .label("contact_ids"),
    select(func.array_agg(aggregate_order_by(_contacts.c.role, _contacts.c.id)))
    .where(_unit_contacts)
    .scalar_subquery()
    .label("contact_roles"),
)


def _neutral(notice: CaseNotice, case_id: UUID, unit_code: str) -> dict[str, object]:
    meeting = notice.meeting
    return {
        "idempotency_key": notice.idempotency_key,
        "notification_type": notice.notification_type.value,
        "recipient_role": notice.recipient_role.value,
        "case_id": case_id,
        "unit_code": unit_code,
        "due_on": notice.due_on,
        "deadline_kind": notice.deadline_kind,
        "meeting_id": meeting.meeting_id if meeting else None,
        "meeting_starts_at": meeting.starts_at if meeting else None,
        "meeting_ends_at": meeting.ends_at if meeting else None,
        "meeting_sequence": meeting.sequence if meeting else None,
    }


def _recipients(found: Any) -> dict[RecipientRole, list[tuple[str, dict[str, object]]]]:
    """Per role: each recipient's part of the delivery key and its outbox columns."""
    recipients: dict[RecipientRole, list[tuple[str, dict[str, object]]]] = {}
    if found.employee_contact is not None:
        recipients[RecipientRole.EMPLOYEE] = [
            ("employee", {"employee_pseudonym": found.employee_contact})
        ]
    for contact_id, role in zip(found.contact_ids or (), found.contact_roles or (), strict=True):
        recipients.setdefault(RecipientRole(role), []).append(
            (f"c{contact_id}", {"unit_contact_id": contact_id})
        )
    return recipients


async def _record_undeliverable(
    conn: Conn, neutrals: list[dict[str, object]], case_id: UUID, stage: str
) -> None:
    await conn.execute(
        _INSERT_ROWS,
        [
            _ROW_DEFAULTS
            | neutral
            | {
                "delivery_key": delivery_key(str(neutral["idempotency_key"]), "none"),
                "status": "no_recipient",
            }
            for neutral in neutrals
        ],
    )
    await conn.execute(
        _APPEND_UNDELIVERABLE,
        [
            {
                "case_id": case_id,
                "workflow_id": case_workflow_id(case_id),
                "step_key": undeliverable_step_key(str(neutral["idempotency_key"])),
                "kind": UNDELIVERABLE_EVENT,
                "stage": stage,
                # Neutral on purpose: the role that has no contact and the type, nothing more.
                "detail": {
                    "notification_type": neutral["notification_type"],
                    "recipient_role": neutral["recipient_role"],
                    "reason": "no_recipient",
                },
            }
            for neutral in neutrals
        ],
    )


async def enqueue_staff_notification(
    session: AsyncSession,
    *,
    idempotency_key: str,
    notification_type: NotificationType,
    recipient_role: RecipientRole,
    unit_code: str,
    contact_ids: list[int] | None = None,
    due_on: date | None = None,
    meeting: MeetingSlot | None = None,
) -> int:
    """Outbox rows of a notification to staff that belongs to no case (the programme's).

    To the given unit contacts, or to every contact of `recipient_role` in the unit.
    Idempotent on `idempotency_key`; returns the rows written (0 when already written or when
    nobody can be reached, which writes one `no_recipient` row for operations to see).
    """
    try:
        _KEY.validate_python(idempotency_key)
    except ValidationError:
        raise _invalid("key") from None
    already = await session.scalar(
        select(Notification.id).where(Notification.idempotency_key == idempotency_key).limit(1)
    )
    if already is not None:
        return 0
    query = select(UnitContact.id).where(
        UnitContact.unit_code == unit_code, UnitContact.role == recipient_role.value
    )
    if contact_ids is not None:
        query = query.where(UnitContact.id.in_(contact_ids))
    recipients = list((await session.scalars(query.order_by(UnitContact.id))).all())
    neutral: dict[str, object] = {
        "idempotency_key": idempotency_key,
        "notification_type": notification_type.value,
        "recipient_role": recipient_role.value,
        "case_id": None,
        "unit_code": unit_code,
        "due_on": due_on,
        "meeting_id": meeting.meeting_id if meeting else None,
        "meeting_starts_at": meeting.starts_at if meeting else None,
        "meeting_ends_at": meeting.ends_at if meeting else None,
        "meeting_sequence": meeting.sequence if meeting else None,
    }
    rows = [
        neutral | {"delivery_key": delivery_key(idempotency_key, f"c{c}"), "unit_contact_id": c}
        for c in recipients
    ] or [
        neutral | {"delivery_key": delivery_key(idempotency_key, "none"), "status": "no_recipient"}
    ]
    await session.execute(_INSERT_ROWS, [_ROW_DEFAULTS | row for row in rows])
    return len(recipients)


# ---------------------------------------------------------------- the dispatcher's side


@dataclass(frozen=True)
class ClaimedNotification:
    """An outbox row the dispatcher has claimed (status `sending`), with its attempt number."""

    id: int
    delivery_key: str
    notification_type: NotificationType
    recipient_role: RecipientRole
    unit_contact_id: int | None
    employee_pseudonym: UUID | None
    case_id: UUID | None
    unit_code: str
    due_on: date | None
    deadline_kind: str | None
    meeting: MeetingSlot | None
    attempt: int
    created_at: datetime


async def claim_due(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int,
    lease: timedelta,
    digest_cutoff: datetime | None = None,
    digested: Collection[str] = (),
) -> list[ClaimedNotification]:
    """Claim up to `limit` due rows: `pending` ones, and `sending` ones whose lease expired.

    Rows of the `digested` types wait for the recipient's daily digest: they are due only
    once they were written before `digest_cutoff` (the last digest time); the dispatcher
    sends the rows of one recipient claimed in a batch as one message.

    `FOR UPDATE SKIP LOCKED` lets several workers claim side by side without waiting on or
    taking each other's rows. A claimed row is `sending` with `next_attempt_at` = lease end;
    a worker that crashes mid-send leaves it to be claimed again after the lease.
    """
    due = and_(Notification.status.in_(("pending", "sending")), Notification.next_attempt_at <= now)
    if digest_cutoff is not None and digested:
        due = and_(
            due,
            or_(
                Notification.notification_type.not_in(sorted(digested)),
                Notification.created_at < digest_cutoff,
            ),
        )
    rows = (
        await session.scalars(
            select(Notification)
            .where(due)
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    claimed = []
    for row in rows:
        row.status = "sending"
        row.attempts += 1
        row.next_attempt_at = now + lease
        meeting = None
        if row.meeting_id and row.meeting_starts_at and row.meeting_ends_at:
            meeting = MeetingSlot(
                meeting_id=row.meeting_id,
                starts_at=row.meeting_starts_at,
                ends_at=row.meeting_ends_at,
                sequence=row.meeting_sequence or 0,
            )
        claimed.append(
            ClaimedNotification(
                id=row.id,
                delivery_key=row.delivery_key,
                notification_type=NotificationType(row.notification_type),
                recipient_role=RecipientRole(row.recipient_role),
                unit_contact_id=row.unit_contact_id,
                employee_pseudonym=row.employee_pseudonym,
                case_id=row.case_id,
                unit_code=row.unit_code,
                due_on=row.due_on,
                deadline_kind=row.deadline_kind,
                meeting=meeting,
                attempt=row.attempts,
                created_at=row.created_at,
            )
        )
    await session.flush()
    return claimed


async def mark_delivered(session: AsyncSession, notification_id: int, *, now: datetime) -> None:
    await session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == "sending")
        .values(status="delivered", delivered_at=now, last_error=None)
    )


async def mark_failed(
    session: AsyncSession,
    notification_id: int,
    *,
    reason: str,
    retry_at: datetime | None,
) -> None:
    """Back to `pending` until `retry_at`, or `dead_letter` when `retry_at` is None."""
    values: dict[str, object] = {"last_error": reason[:200]}
    if retry_at is None:
        values["status"] = "dead_letter"
    else:
        values |= {"status": "pending", "next_attempt_at": retry_at}
    await session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == "sending")
        .values(**values)
    )
