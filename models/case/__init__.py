"""Pure models of a rehabilitation case: its stages, triggers, workflow input and state."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from channels.message import MeetingSlot, NotificationType, RecipientRole
from models.deadlines import DeadlineStatus, DeadlineView, TrackedDeadline
from models.meetings import TeamBooking
from models.policy import SWEDISH_DEFAULT, Policy
from models.sick_leave import SickSpell


class Stage(StrEnum):
    IDENTIFIED = "identified"
    JOINT_MEETING = "joint_meeting"
    SCREENING = "screening"
    PLANNING = "planning"
    INTERVENTIONS = "interventions"
    RETURN_TO_WORK = "return_to_work"
    CLOSED = "closed"


class CaseTrigger(StrEnum):
    MANAGER_CONCERN = "manager_concern"
    SELF_REFERRAL = "self_referral"
    REPEATED_SHORT_ABSENCE = "repeated_short_absence"
    LONG_ABSENCE = "long_absence"
    LONG_TERM = "long_term"


class ConsentParty(StrEnum):
    """Outside parties that may take part in, or hear about, a case only with consent."""

    FK = "fk"  # Försäkringskassan
    FHV = "fhv"  # occupational health service
    HEALTHCARE = "healthcare"
    SOCIAL_SERVICES = "social_services"
    ARBETSFORMEDLINGEN = "arbetsformedlingen"


class Track(StrEnum):
    """The three rehabilitation tracks a need or an intervention belongs to."""

    MEDICAL = "medical"
    SOCIAL = "social"
    WORK_ORIENTED = "work_oriented"


class InterventionOwner(StrEnum):
    """The party that carries out an intervention."""

    COORDINATOR = "coordinator"
    MANAGER = "manager"
    EMPLOYEE = "employee"
    FHV = "fhv"
    HEALTHCARE = "healthcare"
    SOCIAL_SERVICES = "social_services"
    ARBETSFORMEDLINGEN = "arbetsformedlingen"
    FK = "fk"


class InterventionStatus(StrEnum):
    OPEN = "open"
    OVERDUE = "overdue"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class InterventionOutcome(StrEnum):
    ACHIEVED = "achieved"
    PARTLY_ACHIEVED = "partly_achieved"
    NOT_ACHIEVED = "not_achieved"


class CancelReason(StrEnum):
    NO_LONGER_NEEDED = "no_longer_needed"
    REPLACED = "replaced"
    EMPLOYEE_DECLINED = "employee_declined"
    CASE_CLOSED = "case_closed"
    # The employee withdrew the consent an information request to the party rested on.
    CONSENT_WITHDRAWN = "consent_withdrawn"
    OTHER = "other"


class InformationRequestStatus(StrEnum):
    OPEN = "open"
    OVERDUE = "overdue"
    ANSWERED = "answered"
    CANCELLED = "cancelled"


class CaseOutcome(StrEnum):
    RETURNED_SAME_JOB = "returned_same_job"
    RETURNED_ADAPTED = "returned_adapted"
    NEW_JOB_SAME_EMPLOYER = "new_job_same_employer"
    NEW_EMPLOYER = "new_employer"
    NOT_RETURNED = "not_returned"
    OTHER = "other"


# Outcomes that say the employee is back at work: they need a full return recorded first.
RETURNED_OUTCOMES = frozenset(
    {
        CaseOutcome.RETURNED_SAME_JOB,
        CaseOutcome.RETURNED_ADAPTED,
        CaseOutcome.NEW_JOB_SAME_EMPLOYER,
        CaseOutcome.NEW_EMPLOYER,
    }
)

MANUAL_TRIGGERS = frozenset({CaseTrigger.MANAGER_CONCERN, CaseTrigger.SELF_REFERRAL})

# Who is notified about an intervention its owner carries out.
OWNER_RECIPIENT: dict[InterventionOwner, RecipientRole] = {
    InterventionOwner.MANAGER: RecipientRole.MANAGER,
    InterventionOwner.EMPLOYEE: RecipientRole.EMPLOYEE,
    InterventionOwner.FHV: RecipientRole.FHV,
    InterventionOwner.FK: RecipientRole.FK_OFFICER,
    # Outside parties without an account are reached through the coordinator.
    InterventionOwner.COORDINATOR: RecipientRole.COORDINATOR,
    InterventionOwner.HEALTHCARE: RecipientRole.COORDINATOR,
    InterventionOwner.SOCIAL_SERVICES: RecipientRole.COORDINATOR,
    InterventionOwner.ARBETSFORMEDLINGEN: RecipientRole.COORDINATOR,
}

# Invited outside parties who have an own role to notify.
PARTY_RECIPIENT: dict[ConsentParty, RecipientRole] = {
    ConsentParty.FK: RecipientRole.FK_OFFICER,
    ConsentParty.FHV: RecipientRole.FHV,
}

# The outside parties a case may request information from (DESIGN.md, Falun), each reached
# through its own contact of the case's unit.
INFORMATION_RECIPIENT: dict[ConsentParty, RecipientRole] = {
    ConsentParty.HEALTHCARE: RecipientRole.HEALTHCARE,
    ConsentParty.FHV: RecipientRole.FHV,
    ConsentParty.ARBETSFORMEDLINGEN: RecipientRole.ARBETSFORMEDLINGEN,
    ConsentParty.SOCIAL_SERVICES: RecipientRole.SOCIAL_SERVICES,
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- state


class MeetingBooking(_State):
    """The booked joint meeting; `slot_id` names the team's slot when a team booked it."""

    meeting_id: UUID
    starts_at: datetime
    ends_at: datetime
    slot_id: UUID | None = None
    invited: list[ConsentParty] = Field(default_factory=list)
    sequence: int = 0

    @property
    def slot(self) -> MeetingSlot:
        return MeetingSlot(
            meeting_id=self.meeting_id,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            sequence=self.sequence,
        )


class InterventionState(_State):
    intervention_id: UUID
    track: Track
    kind: str
    owner: InterventionOwner
    due_on: date
    remind_days_before: int = 3
    status: InterventionStatus = InterventionStatus.OPEN
    outcome: InterventionOutcome | None = None
    # The protected track's safety support: coordinator only, never part of the plan.
    protected: bool = False

    @property
    def is_open(self) -> bool:
        return self.status in (InterventionStatus.OPEN, InterventionStatus.OVERDUE)


class InformationRequestState(_State):
    """An information request to an outside party: that, to whom and when, never what."""

    request_id: UUID
    party: ConsentParty
    due_on: date
    remind_days_before: int = 3
    requested_on: date
    status: InformationRequestStatus = InformationRequestStatus.OPEN
    received_on: date | None = None
    cancel_reason: CancelReason | None = None

    @property
    def is_open(self) -> bool:
        return self.status in (InformationRequestStatus.OPEN, InformationRequestStatus.OVERDUE)


class NextStepState(_State):
    """A next step agreed at a meeting; `intervention_id` is set once the plan adopts it."""

    step_id: UUID
    meeting_id: UUID
    track: Track
    kind: str
    owner: InterventionOwner
    due_on: date
    intervention_id: UUID | None = None


class ReturnStep(_State):
    extent: Literal[25, 50, 75, 100]
    from_date: date


class CaseState(_State):
    """Everything a case workflow must carry across continue-as-new."""

    stage: Stage = Stage.IDENTIFIED
    recorded: bool = False
    # Numbers the timeline events this case writes; keeps their step keys unique for life.
    event_seq: int = 0
    # The current sick period: spells joined by the relapse rule. Empty: no sick leave known.
    sick_spells: list[SickSpell] = Field(default_factory=list)
    period_no: int = 0
    expected_end: date | None = None
    # When an expectation first made a conditional rule (the RTW plan) apply.
    expectation_recorded_on: date | None = None
    # Case actions done in this sick period, for rules that such an action meets.
    actions_done: dict[str, date] = Field(default_factory=dict)
    consents: dict[ConsentParty, bool] = Field(default_factory=dict)
    meeting: MeetingBooking | None = None
    meeting_held: bool = False
    meetings_held: int = 0
    reinforced_support: bool | None = None
    screened: bool = False
    plan_set: bool = False
    interventions: list[InterventionState] = Field(default_factory=list)
    information_requests: list[InformationRequestState] = Field(default_factory=list)
    return_steps: list[ReturnStep] = Field(default_factory=list)
    returned_on: date | None = None
    next_steps: list[NextStepState] = Field(default_factory=list)
    # A disclosure opened the protected track (stored only in the restricted table).
    violence_disclosed: bool = False
    deadlines: list[TrackedDeadline] = Field(default_factory=list)
    long_term: bool = False
    relapse_count: int = 0
    outcome: CaseOutcome | None = None
    closed_at: datetime | None = None
    erased: bool = False
    overdue: bool = False
    # Keys of the absence news applied or refused lately (a retried monitor resends).
    absence_news_seen: list[str] = Field(default_factory=list)
    # Joint meetings booked through the unit's meeting team (issue 7, meeting slots).
    team_looked_up: bool = False
    team_booking: TeamBooking | None = None
    fhv_chosen: bool = False
    no_shows: int = 0


class CaseInput(_Frozen):
    """What a case workflow starts from. Pseudonymous ids and unit codes only."""

    case_id: UUID
    employee_pseudonym: UUID
    unit_code: str
    trigger: CaseTrigger
    opened_at: datetime
    # The policy snapshot: timers follow it for the case's whole life, so a new policy
    # version applies only to cases started after it.
    policy: Policy = SWEDISH_DEFAULT
    sick_start: date | None = None
    expected_end: date | None = None
    # Set only by the workflow itself when it continues as new.
    carried: CaseState | None = None
    # Cases opened since the lean opening (every case the opener starts): the opening is
    # written with the case's first change, in one activity, and the unit's meeting team
    # comes with the input, so no activity looks it up. Such a case was started by code
    # that has every earlier patch, so it records no patch markers.
    opened_with_first_change: bool = False
    team_known: bool = False
    team_code: str | None = None
    # Record-store writes run as local activities: in the worker, inside the workflow task
    # that made the change, so an action costs one workflow task and no activity task.
    records_locally: bool = False
    # The opener wrote the case's first change (`CaseCore.opening`) with its row, in one
    # transaction: the workflow starts recorded and writes nothing until the next change.
    opening_recorded: bool = False
    # ... and, after it, what had already fallen due when the case opened
    # (`CaseCore.passed_at_opening`): the case starts with its overdue search attribute as
    # that leaves it, and its first workflow task writes and upserts nothing.
    passed_recorded: bool = False
    # Changes that come together (the deadlines a late-imported case finds already passed)
    # are written by one local activity, in one transaction, not one each.
    records_in_batches: bool = False

    def opening_record(self, workflow_id: str) -> OpenCaseRecord:
        """The case's open row, as the opener and the case's first change write it."""
        return OpenCaseRecord(
            case_id=self.case_id,
            workflow_id=workflow_id,
            employee_pseudonym=self.employee_pseudonym,
            unit_code=self.unit_code,
            trigger=self.trigger,
            opened_at=self.opened_at,
            policy_id=self.policy.policy_id,
            policy_version=self.policy.version,
        )


class OpenCaseRecord(_Frozen):
    """The record store's projection of a newly opened case."""

    case_id: UUID
    workflow_id: str
    employee_pseudonym: UUID
    unit_code: str
    trigger: CaseTrigger
    opened_at: datetime
    policy_id: str = SWEDISH_DEFAULT.policy_id
    policy_version: int = SWEDISH_DEFAULT.version


class OpenAction(_Frozen):
    """Something the coordinator can or should do now: the update to call and why."""

    action: str
    reason: str
    due_on: date | None = None


class CaseView(_Frozen):
    """What the `state` query returns: no personal data, safe for operations staff."""

    case_id: UUID
    unit_code: str
    trigger: CaseTrigger
    stage: Stage
    recorded: bool
    policy_id: str = SWEDISH_DEFAULT.policy_id
    policy_version: int = SWEDISH_DEFAULT.version
    sick_start: date | None = None
    expected_end: date | None = None
    returned_on: date | None = None
    overdue: bool = False
    next_deadline: DeadlineView | None = None
    meeting: MeetingSlot | None = None
    consents: dict[ConsentParty, bool] = Field(default_factory=dict)
    # Without the protected track's interventions: see ProtectedTrackView.
    interventions: tuple[InterventionState, ...] = ()
    information_requests: tuple[InformationRequestState, ...] = ()
    next_steps: tuple[NextStepState, ...] = ()
    return_extent: int | None = None
    long_term: bool = False
    relapse_count: int = 0
    outcome: CaseOutcome | None = None
    closed_at: datetime | None = None
    erased: bool = False
    # Joint meetings through the unit's team: which team, and whether a seat is awaited.
    meeting_team: str | None = None
    meeting_requested: bool = False
    fhv_chosen: bool = False
    no_shows: int = 0


class ProtectedTrackView(_Frozen):
    """What the `protected_track` query returns: for the coordinator, never for operations."""

    disclosed: bool
    interventions: tuple[InterventionState, ...] = ()


class DeadlinesView(_Frozen):
    """What the `deadlines` query returns, by due date."""

    deadlines: tuple[DeadlineView, ...]


class OpenActionsView(_Frozen):
    actions: tuple[OpenAction, ...]


class CaseResult(_Frozen):
    case_id: UUID
    stage: Stage
    outcome: CaseOutcome | None = None


# ---------------------------------------------------------------- record-store writes


class NotificationRequest(_Frozen):
    """One notification to enqueue with a recorded change; recipients are resolved later."""

    notification_type: NotificationType
    recipient_role: RecipientRole
    due_on: date | None = None
    deadline_kind: str | None = None
    meeting: MeetingSlot | None = None


class CaseProjection(_Frozen):
    """The `cases` columns a workflow keeps up to date."""

    stage: Stage
    policy_id: str
    policy_version: int
    sick_start: date | None
    expected_end: date | None
    overdue: bool
    next_deadline_kind: str | None
    next_deadline_on: date | None
    next_meeting_at: datetime | None
    long_term: bool
    relapse_count: int
    outcome: CaseOutcome | None
    closed_at: datetime | None


class _Sparse(_Frozen):
    """Sent with only the fields that were set: a default costs nothing on the wire."""

    @model_serializer(mode="wrap")
    def _only_the_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {k: v for k, v in dumped.items() if k in self.model_fields_set}


class CaseColumns(_Sparse):
    """The `cases` columns that changed since the case's previous recorded change.

    Only the fields that were set are sent and written (a column may change to None), so a
    change that moves the stage alone carries the stage alone.
    """

    stage: Stage | None = None
    policy_id: str | None = None
    policy_version: int | None = None
    sick_start: date | None = None
    expected_end: date | None = None
    overdue: bool | None = None
    next_deadline_kind: str | None = None
    next_deadline_on: date | None = None
    next_meeting_at: datetime | None = None
    long_term: bool | None = None
    relapse_count: int | None = None
    outcome: CaseOutcome | None = None
    closed_at: datetime | None = None

    @classmethod
    def between(cls, before: CaseProjection, after: CaseProjection) -> CaseColumns:
        return cls(
            **{
                name: value
                for name in CaseProjection.model_fields
                if (value := getattr(after, name)) != getattr(before, name)
            }
        )

    def values(self) -> dict[str, Any]:
        """The columns to write, as the `cases` table stores them."""
        values: dict[str, Any] = {}
        for name in sorted(self.model_fields_set):
            value = getattr(self, name)
            values[name] = value.value if isinstance(value, StrEnum) else value
        return values


class DeadlineRow(_Sparse):
    """A deadline as the `case_deadlines` table stores it (its description is the policy's)."""

    kind: str
    due_on: date
    status: DeadlineStatus
    met_on: date | None = None


class ConsentRecord(_Frozen):
    party: ConsentParty
    given: bool


class MeetingRecord(_Frozen):
    """A booking (status booked) or an outcome (status held) for the `meetings` table."""

    meeting_id: UUID
    starts_at: datetime
    ends_at: datetime
    sequence: int
    status: Literal["booked", "held", "cancelled", "no_show"]
    invited: tuple[str, ...]
    attended: tuple[str, ...] | None = None
    reinforced_support: bool | None = None
    kind: Literal["joint", "follow_up"] = "joint"
    held_by: str | None = None


class ScreeningRecord(_Frozen):
    """A scored instrument: totals and bands only; a disclosure goes to its restricted table.

    A protected instrument (violence exposure) never gets a `screenings` row: its result is
    written only as a disclosure, and only when there is one.
    """

    instrument_id: str
    instrument_version: int
    total: int
    band: str
    risk_level: str
    disclosure: bool = False
    protected: bool = False
    # For questions asked at a meeting: the meeting, and the party that asked them.
    meeting_id: UUID | None = None
    asked_by: str | None = None


class NextStepRecord(_Frozen):
    """An agreed next step for the `agreed_next_steps` table."""

    step_id: UUID
    meeting_id: UUID
    track: Track
    kind: str
    owner: InterventionOwner
    due_on: date
    intervention_id: UUID | None = None


class CaseChange(_Sparse):
    """One state change of a case: a timeline event plus what it changed in the record store.

    `detail` goes into the timeline that managers may see: kinds, dates and codes only.
    """

    case_id: UUID
    workflow_id: str
    unit_code: str
    step_key: str
    kind: str
    stage: Stage
    occurred_at: datetime
    detail: dict[str, Any] = Field(default_factory=dict)
    # The columns that changed, the deadlines that are new or changed and the kinds of those
    # dropped. The first change a run records carries every column and the whole plan, which
    # replaces the stored one.
    columns: CaseColumns | None = None
    deadline_rows: tuple[DeadlineRow, ...] = ()
    deadlines_dropped: tuple[str, ...] = ()
    plan_replaced: bool = False
    # Changes sent before the lean record: always the whole projection and the whole plan.
    projection: CaseProjection | None = None
    deadlines: tuple[DeadlineView, ...] = ()
    consent: ConsentRecord | None = None
    meeting: MeetingRecord | None = None
    screenings: tuple[ScreeningRecord, ...] = ()
    next_steps: tuple[NextStepRecord, ...] = ()
    notifications: tuple[NotificationRequest, ...] = ()
    # The first change of a case opened with its first change: its row, `case_opened` and
    # the opening notifications are written in the same transaction, before the change.
    opening: OpenCaseRecord | None = None


class CaseChanges(_Frozen):
    """The changes of one workflow task, in order: written in one transaction."""

    changes: tuple[CaseChange, ...]


class ErasureRequest(_Frozen):
    """Erase or anonymize a closed case's personal data once its retention has run out."""

    case_id: UUID
    workflow_id: str
    employee_pseudonym: UUID
    step_key: str
    occurred_at: datetime


class ErasureResult(_Frozen):
    # False when another retained case of the same employee still needs the identity.
    employee_erased: bool


def case_workflow_id(case_id: UUID) -> str:
    return f"case-{case_id}"


def intervention_workflow_id(intervention_id: UUID) -> str:
    return f"intervention-{intervention_id}"


def information_request_workflow_id(request_id: UUID) -> str:
    return f"information-request-{request_id}"
