"""Pure models of an outbound notification: its neutral context and what a channel delivers."""

from __future__ import annotations

import hashlib
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)


class NotificationType(StrEnum):
    """Every kind of notification rehabflow sends; each has exactly one template."""

    CASE_ASSIGNED = "case_assigned"
    MANAGER_CASE_OPENED = "manager_case_opened"
    CONSENT_REQUESTED = "consent_requested"
    MEETING_INVITATION = "meeting_invitation"
    MEETING_RESCHEDULED = "meeting_rescheduled"
    MEETING_CANCELLED = "meeting_cancelled"
    DEADLINE_DUE = "deadline_due"
    DEADLINE_OVERDUE = "deadline_overdue"
    DEADLINE_ESCALATION = "deadline_escalation"
    INTERVENTION_ASSIGNED = "intervention_assigned"
    INTERVENTION_REMINDER = "intervention_reminder"
    INTERVENTION_OVERDUE = "intervention_overdue"
    FOLLOW_UP_DUE = "follow_up_due"
    INFORMATION_REQUEST = "information_request"
    CASE_CLOSED = "case_closed"


class RecipientRole(StrEnum):
    """The roles that receive case notifications (admins see no case content)."""

    EMPLOYEE = "employee"
    MANAGER = "manager"
    COORDINATOR = "coordinator"
    FK_OFFICER = "fk_officer"
    FHV = "fhv"


class DeadlineKind(StrEnum):
    """Legal and agreed deadlines; each has a neutral label that is safe to send."""

    FK_SICK_NOTICE = "fk_sick_notice"
    SICK_LEAVE_CERTIFICATE = "sick_leave_certificate"
    RETURN_TO_WORK_PLAN = "return_to_work_plan"
    CHECKPOINT_DAY_90 = "checkpoint_day_90"
    CHECKPOINT_DAY_180 = "checkpoint_day_180"
    CHECKPOINT_DAY_365 = "checkpoint_day_365"
    CHECKPOINT_DAY_550 = "checkpoint_day_550"

    @property
    def label(self) -> str:
        return _DEADLINE_LABELS[self]


_DEADLINE_LABELS: dict[DeadlineKind, str] = {
    DeadlineKind.FK_SICK_NOTICE: "the sick notice to Försäkringskassan",
    DeadlineKind.SICK_LEAVE_CERTIFICATE: "the sick-leave certificate",
    DeadlineKind.RETURN_TO_WORK_PLAN: "the return-to-work plan",
    DeadlineKind.CHECKPOINT_DAY_90: "the day-90 checkpoint",
    DeadlineKind.CHECKPOINT_DAY_180: "the day-180 checkpoint",
    DeadlineKind.CHECKPOINT_DAY_365: "the day-365 checkpoint",
    DeadlineKind.CHECKPOINT_DAY_550: "the day-550 checkpoint",
}

# No whitespace, so a unit code cannot smuggle a sentence into a message.
UnitCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")]
# Safe in a Message-ID source, a CloudEvents id and a log line; no header injection possible.
IdempotencyKey = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,199}$")
]
_Frozen = ConfigDict(extra="forbid", frozen=True)


class MeetingSlot(BaseModel):
    """When a joint meeting takes place; `sequence` grows with each reschedule or cancellation."""

    model_config = _Frozen

    meeting_id: UUID
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    sequence: int = Field(default=0, ge=0, le=2**31 - 1)  # iCalendar SEQUENCE is a 32-bit int

    @model_validator(mode="after")
    def _ends_after_start(self) -> MeetingSlot:
        if self.ends_at <= self.starts_at:
            raise ValueError("a meeting must end after it starts")
        return self


class NotificationContext(BaseModel):
    """Everything a template may show. Deliberately without any free-text field.

    `extra="forbid"` makes passing a diagnosis, a name or a personal identity number a
    validation error instead of a silent drop, so a caller's mistake is loud.
    """

    model_config = _Frozen

    case_id: UUID
    unit_code: UnitCode
    app_url: AnyHttpUrl
    due_on: date | None = None
    deadline_kind: DeadlineKind | None = None
    meeting: MeetingSlot | None = None

    @field_validator("app_url")
    @classmethod
    def _origin_only(cls, url: AnyHttpUrl) -> AnyHttpUrl:
        # The link is built from case_id; a configurable path or query could carry text.
        if url.path not in (None, "", "/") or url.query or url.fragment or url.username:
            raise ValueError("app_url must be an origin such as https://rehabflow.example")
        return url

    @property
    def case_ref(self) -> str:
        """Short, pseudonymous reference people can say aloud: the UUID's first 8 hex digits."""
        return self.case_id.hex[:8].upper()

    @property
    def link(self) -> str:
        return f"{str(self.app_url).rstrip('/')}/cases/{self.case_id}"


class Recipient(BaseModel):
    """Where a message goes: an e-mail address or a webhook URL, and the recipient's role."""

    model_config = _Frozen

    address: Annotated[str, StringConstraints(pattern=r"^\S+$", min_length=3, max_length=2048)]
    role: RecipientRole


class CalendarInvite(BaseModel):
    """An iCalendar object plus its iTIP method, which mail clients need in the MIME type."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, ser_json_bytes="base64", val_json_bytes="base64"
    )

    ics: bytes
    method: Literal["REQUEST", "CANCEL"]


class OutboundMessage(BaseModel):
    """What the dispatcher hands to a channel; built by `channels.templates.compose_message`."""

    model_config = _Frozen

    idempotency_key: IdempotencyKey
    notification_type: NotificationType
    recipient: Recipient
    context: NotificationContext
    subject: Annotated[str, StringConstraints(pattern=r"^[^\r\n]+$", max_length=200)]
    text: str
    calendar: CalendarInvite | None = None
    created_at: AwareDatetime

    @property
    def delivery_id(self) -> str:
        """Stable digest of the idempotency key: a duplicate send yields the same id everywhere."""
        return hashlib.sha256(self.idempotency_key.encode()).hexdigest()[:32]
