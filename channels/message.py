"""Pure models of an outbound notification: its neutral context and what a channel delivers."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from models.policy import POLICIES


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
    INFORMATION_REQUEST_REMINDER = "information_request_reminder"
    INFORMATION_REQUEST_OVERDUE = "information_request_overdue"
    INFORMATION_REQUEST_CANCELLED = "information_request_cancelled"
    CASE_CLOSED = "case_closed"
    # One message a day per recipient, in place of that day's overdue and escalation notices.
    DEADLINE_DIGEST = "deadline_digest"
    # The programme around the cases (issue 16): staff notifications that belong to no case.
    MANAGER_COURSE_INVITATION = "manager_course_invitation"
    MANAGER_COURSE_DUE = "manager_course_due"
    APT_DIALOGUE_DUE = "apt_dialogue_due"


class RecipientRole(StrEnum):
    """The roles that receive case notifications (admins see no case content)."""

    EMPLOYEE = "employee"
    MANAGER = "manager"
    COORDINATOR = "coordinator"
    FK_OFFICER = "fk_officer"
    FHV = "fhv"
    # Outside parties that information is requested from (with the employee's consent).
    HEALTHCARE = "healthcare"
    SOCIAL_SERVICES = "social_services"
    ARBETSFORMEDLINGEN = "arbetsformedlingen"


# Short neutral labels for the kinds of the registered policies (models.policy.POLICIES).
# Fixed, code-reviewed text: a notification never shows anything a request supplied.
_DEADLINE_LABELS: Mapping[str, str] = MappingProxyType(
    {
        # Sweden
        "long_absence": "the early identification of long sick leave",
        "long_term": "the long-term track",
        "fk_sick_notice": "the sick notice to Försäkringskassan",
        "return_to_work_plan": "the return-to-work plan",
        "rehab_chain_day_90": "the day-90 checkpoint of the rehabilitation chain",
        "rehab_chain_day_180": "the day-180 checkpoint of the rehabilitation chain",
        "rehab_chain_day_365": "the day-365 checkpoint of the rehabilitation chain",
        "rehab_chain_day_550": "the day-550 checkpoint of the rehabilitation chain",
        # Norway
        "follow_up_plan": "the follow-up plan",
        "dialogue_meeting_1": "dialogue meeting 1",
        "activity_requirement": "the activity requirement assessment",
        "dialogue_meeting_2": "dialogue meeting 2",
        "benefit_end": "the end of the sickness benefit period",
    }
)
# Follow-ups after the return to work are numbered in policy order: follow_up_1, …
FOLLOW_UP_KIND_PREFIX = "follow_up_"


def _policy_kinds() -> dict[str, str]:
    """Every kind a registered policy can date, with the policy's own fixed description."""
    kinds: dict[str, str] = {}
    for policy in POLICIES.values():
        for rule in (*policy.identification_triggers, *policy.deadlines):
            kinds.setdefault(rule.kind, rule.description)
        for number in range(1, len(policy.follow_ups_after_return) + 1):
            kinds.setdefault(
                f"{FOLLOW_UP_KIND_PREFIX}{number}", f"follow-up {number} after the return to work"
            )
    return kinds


# Label of every registered kind: the short label above, else the rule's description.
DEADLINE_LABELS: Mapping[str, str] = MappingProxyType(
    {kind: _DEADLINE_LABELS.get(kind, description) for kind, description in _policy_kinds().items()}
)


def deadline_label(kind: str) -> str:
    """The neutral label of a registered deadline kind (KeyError for any other string)."""
    return DEADLINE_LABELS[kind]


def _registered_kind(kind: str) -> str:
    if kind not in DEADLINE_LABELS:
        raise ValueError("deadline_kind must be a kind of a registered policy")
    return kind


# A deadline kind of any registered policy; anything else (free text above all) is refused.
DeadlineKind = Annotated[str, AfterValidator(_registered_kind)]

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

    # None for the programme's staff notifications (manager course, APT dialogues).
    case_id: UUID | None = None
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
    def case_ref(self) -> str | None:
        """Short, pseudonymous reference people can say aloud: the UUID's first 8 hex digits."""
        return self.case_id.hex[:8].upper() if self.case_id else None

    @property
    def link(self) -> str:
        origin = str(self.app_url).rstrip("/")
        return f"{origin}/cases/{self.case_id}" if self.case_id else f"{origin}/programme"


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
