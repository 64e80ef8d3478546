"""Coordinator actions on a case (one input model per workflow update) and intervention models."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)

from channels.message import NotificationType, RecipientRole
from models.case import (
    CancelReason,
    CaseOutcome,
    CaseView,
    ConsentParty,
    InterventionOutcome,
    InterventionOwner,
    InterventionStatus,
    Stage,
    Track,
)
from models.instruments import ScreeningScore
from models.plausible_dates import DateOfKind

# Dates people send, each checked against its plausible window (models.policy.DateWindows)
# by the API with the server's date; the workflows take them as they are.
MeetingTime = Annotated[AwareDatetime, DateOfKind("meeting")]
DueDate = Annotated[date, DateOfKind("due_date")]
SickLeaveStart = Annotated[date, DateOfKind("sick_leave_start")]
ExpectedEnd = Annotated[date | None, DateOfKind("sick_leave_expected_end")]
RecordedOn = Annotated[date | None, DateOfKind("fact_recorded")]

# A code for what an intervention is, e.g. "work_training": never free text.
InterventionKind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
# Who takes part in a joint meeting, by role.
Participant = Literal["employee", "manager", "coordinator", "fk", "fhv"]
# The party that holds a meeting, and so asks the violence-exposure questions there.
MeetingHost = Literal["coordinator", "manager", "fk", "fhv"]
# The kind of the protected track's intervention: only the workflow starts one.
SAFETY_SUPPORT_KIND = "safety_support"


def _not_reserved(kind: str) -> str:
    if kind == SAFETY_SUPPORT_KIND:
        raise ValueError("this kind is reserved; it is started by the case itself")
    return kind


# A kind that people may plan or agree on: every kind except the protected track's.
PlannableKind = Annotated[InterventionKind, AfterValidator(_not_reserved)]


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecordConsent(_Action):
    """The employee gives or withdraws consent for one outside party."""

    party: ConsentParty
    given: bool


class BookJointMeeting(_Action):
    """Book (or rebook) the joint meeting.

    The employee, the manager and the coordinator are always invited; outside parties in
    `invite` need the employee's consent. Cases of a unit with a joint-meeting team are
    booked by the team (models.meetings); booking by hand gives the team's seat back.
    """

    meeting_id: UUID | None = None
    starts_at: MeetingTime
    ends_at: MeetingTime
    slot_id: UUID | None = None
    invite: tuple[ConsentParty, ...] = ()

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("a meeting must end after it starts")
        return self


class AgreedNextStep(_Action):
    """A next step agreed at a meeting: codes and a date, never free text.

    It shows in the case view of those who see its track, and `SetPlan.adopt_next_steps`
    turns it into an intervention of the plan.
    """

    track: Track
    kind: PlannableKind
    owner: InterventionOwner
    due_on: DueDate


class RecordMeetingOutcome(_Action):
    """Who attended, the needs found per track and whether reinforced support is needed.

    `held_by` is the party that held the meeting and asked the violence-exposure questions;
    `violence_screening` is their answers, scored by the API (models.screening), so the
    workflow never sees an answer. Both are unset for outcomes recorded before they existed.
    """

    attended: tuple[Participant, ...] = Field(min_length=1)
    needs: tuple[Track, ...] = ()
    reinforced_support: bool
    held_by: MeetingHost | None = None
    violence_screening: ScreeningScore | None = None
    next_steps: tuple[AgreedNextStep, ...] = Field(default=(), max_length=20)


class RecordFollowUpMeeting(_Action):
    """A follow-up meeting held in stage interventions or return_to_work.

    The violence-exposure questions are asked again at every meeting the employee attends
    ("structured and regular"), by the party that holds it.
    """

    starts_at: MeetingTime
    ends_at: MeetingTime
    attended: tuple[Participant, ...] = Field(min_length=1)
    held_by: MeetingHost
    violence_screening: ScreeningScore | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("a meeting must end after it starts")
        return self


class RecordScreeningResult(_Action):
    """Scored instruments: the API scores the submitted answers (models.screening) and sends
    only the scores; a client never supplies a score."""

    scores: tuple[ScreeningScore, ...] = Field(min_length=1)


class PlannedIntervention(_Action):
    intervention_id: UUID | None = None
    track: Track
    kind: PlannableKind
    owner: InterventionOwner
    due_on: DueDate
    # The owner is reminded this many days before the due date (0: no reminder).
    remind_days_before: int = Field(default=3, ge=0, le=60)


class SetPlan(_Action):
    """Set or revise the return-to-work plan.

    A revision keeps the listed interventions that already exist (by id), starts the new
    ones and cancels open ones no longer listed.
    """

    interventions: tuple[PlannedIntervention, ...] = ()
    # Agreed next steps (by id) that become interventions of the plan as they were agreed.
    adopt_next_steps: tuple[UUID, ...] = ()


class AddIntervention(_Action):
    intervention: PlannedIntervention


class CompleteIntervention(_Action):
    intervention_id: UUID
    outcome: InterventionOutcome


class CancelIntervention(_Action):
    intervention_id: UUID
    reason: CancelReason = CancelReason.NO_LONGER_NEEDED


class RecordReturnToWorkStep(_Action):
    """The employee works `extent` percent from `from_date`; 100 ends the sick leave."""

    extent: Literal[25, 50, 75, 100]
    from_date: Annotated[date, DateOfKind("return_to_work")]


class ReportSickLeave(_Action):
    """New sick leave after the return to work: a relapse within the follow-up window."""

    start: SickLeaveStart
    expected_end: ExpectedEnd = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.expected_end is not None and self.expected_end < self.start:
            raise ValueError("the expected end is before the start")
        return self


class SetSickLeave(_Action):
    """Record or correct the current sick leave's start and/or expected end."""

    start: Annotated[date | None, DateOfKind("sick_leave_start")] = None
    expected_end: ExpectedEnd = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.start is None and self.expected_end is None:
            raise ValueError("give a start, an expected end or both")
        if self.start and self.expected_end and self.expected_end < self.start:
            raise ValueError("the expected end is before the start")
        return self


class AbsenceNews(_Action):
    """Sick leave seen in payroll data, sent by the employee's absence monitor to the open case.

    The case applies it as `report_sick_leave` after a full return to work (a relapse) and
    as `set_sick_leave` otherwise, when the action's validator allows; else it changes nothing.
    """

    key: str = Field(max_length=128)  # the monitor's rule key: the same news twice is ignored
    sick_start: date  # the sick-pay period's first day
    spell_start: date  # the start of its latest spell
    expected_end: date | None = None


class RecordDeadlineMet(_Action):
    """A deadline's obligation was fulfilled (e.g. the sick notice was sent to FK)."""

    kind: str = Field(pattern=r"^[a-z0-9_]+$", max_length=64)
    met_on: RecordedOn = None  # default: today (Europe/Stockholm)


class CloseCase(_Action):
    outcome: CaseOutcome


class CaseActionResult(_Action):
    """Every case update answers with the stage after the action and any ids it created.

    Cases started before the lean shape also answer with the whole case view; the API never
    used it, so later cases leave it out (query `state` for it).
    """

    stage: Stage
    created_ids: tuple[UUID, ...] = ()
    case: CaseView | None = None

    @model_serializer(mode="wrap")
    def _without_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Sent without what is empty (`[]`, `null`): each answer is stored in the history."""
        dumped: dict[str, Any] = handler(self)
        return {k: v for k, v in dumped.items() if v not in ((), [], None)}


# ---------------------------------------------------------------- interventions


class InterventionInput(_Action):
    intervention_id: UUID
    case_id: UUID
    case_workflow_id: str
    unit_code: str
    track: Track
    kind: InterventionKind
    owner: InterventionOwner
    due_on: date
    remind_days_before: int = 3
    escalate_after_days: int = 7
    assigned_at: datetime
    # The protected track's safety support: its nature never reaches anyone but the
    # coordinator, and its escalation goes to the coordinator only.
    protected: bool = False
    # Writes its record-store changes as local activities, as its case does.
    records_locally: bool = False


class InterventionFinish(_Action):
    """Sent by the case: the intervention is completed with an outcome, or cancelled."""

    status: Literal[InterventionStatus.COMPLETED, InterventionStatus.CANCELLED]
    outcome: InterventionOutcome | None = None
    cancel_reason: CancelReason | None = None


class InterventionResult(_Action):
    intervention_id: UUID
    status: InterventionStatus
    outcome: InterventionOutcome | None = None


class InterventionOverdueNotice(_Action):
    """Sent by an intervention to its case when its due date has passed."""

    intervention_id: UUID


class InterventionNotification(_Action):
    notification_type: NotificationType
    recipient_role: RecipientRole


class InterventionChange(_Action):
    """One change of an intervention: its row in `case_interventions` and a timeline event."""

    intervention: InterventionInput
    workflow_id: str
    step_key: str
    kind: str
    occurred_at: datetime
    status: InterventionStatus
    outcome: InterventionOutcome | None = None
    cancel_reason: CancelReason | None = None
    notifications: tuple[InterventionNotification, ...] = ()
