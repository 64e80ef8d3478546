"""Information requests to outside parties: the case's actions and the child workflow's models.

A request records that information was asked of a party, by when, and when it arrived;
never what was asked or answered. The content stays with the parties and their records.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from models.case import (
    CancelReason,
    ConsentParty,
    InformationRequestStatus,
    NotificationRequest,
)
from models.plausible_dates import DateOfKind

# The parties information may be requested from (DESIGN.md: healthcare, occupational
# health, Arbetsförmedlingen, social services). FK is a participant, not asked here.
InformationParty = Literal[
    ConsentParty.HEALTHCARE,
    ConsentParty.FHV,
    ConsentParty.ARBETSFORMEDLINGEN,
    ConsentParty.SOCIAL_SERVICES,
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- case actions


class RequestInformation(_Model):
    """Ask an outside party for information; needs the employee's consent for that party."""

    party: InformationParty
    due_on: Annotated[date, DateOfKind("due_date")]
    # The party is reminded this many days before the due date (0: no reminder).
    remind_days_before: int = Field(default=3, ge=0, le=60)


class RecordInformationResponse(_Model):
    """The party's response arrived (its content stays outside rehabflow)."""

    request_id: UUID
    # default: today (Europe/Stockholm)
    received_on: Annotated[date | None, DateOfKind("fact_recorded")] = None


# Why a coordinator cancels a request; the case itself cancels on closure or withdrawal.
CancelByCoordinator = Literal[
    CancelReason.NO_LONGER_NEEDED, CancelReason.EMPLOYEE_DECLINED, CancelReason.OTHER
]


class CancelInformationRequest(_Model):
    request_id: UUID
    reason: CancelByCoordinator = CancelReason.NO_LONGER_NEEDED


# ---------------------------------------------------------------- the child workflow


class InformationRequestInput(_Model):
    request_id: UUID
    case_id: UUID
    case_workflow_id: str
    unit_code: str
    party: InformationParty
    due_on: date
    remind_days_before: int = 3
    # After the due date has passed, the party is reminded again this many days later.
    remind_again_after_days: int = 3
    requested_at: datetime


class InformationRequestFinish(_Model):
    """Sent by the case: the response was received, or the request is cancelled."""

    status: Literal[InformationRequestStatus.ANSWERED, InformationRequestStatus.CANCELLED]
    received_on: date | None = None
    cancel_reason: CancelReason | None = None


class InformationRequestResult(_Model):
    request_id: UUID
    status: InformationRequestStatus
    received_on: date | None = None


class InformationRequestOverdueNotice(_Model):
    """Sent by a request to its case when its due date has passed unanswered."""

    request_id: UUID


class InformationRequestChange(_Model):
    """One change of a request: its row in `case_information_requests` and a timeline event."""

    request: InformationRequestInput
    workflow_id: str
    step_key: str
    kind: str
    occurred_at: datetime
    status: InformationRequestStatus
    received_on: date | None = None
    cancel_reason: CancelReason | None = None
    notifications: tuple[NotificationRequest, ...] = ()
