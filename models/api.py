"""Request and response schemas of the admin API (pure pydantic, no I/O).

Case responses exist once per audience (`CaseForManager`, `CaseForCoordinator`, …), each
naming only the fields its role may see: a field that is not in a model cannot leak, not
even as a `null` key. Future sections (screening, violence flag, plan tracks) are added to
the audiences that may see them and nowhere else.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from models.case import CaseTrigger, ConsentParty, Stage, Track

UnitCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
]


class Role(StrEnum):
    """The caller's role, from the token's role claim (DESIGN.md, roles table)."""

    EMPLOYEE = "employee"
    MANAGER = "manager"
    COORDINATOR = "coordinator"
    FK_OFFICER = "fk_officer"
    FHV = "fhv"
    # Municipal social services: only cases with the employee's social-services consent.
    SOCIAL_SERVICES = "social_services"
    ADMIN = "admin"
    # A system account (HR/payroll), for absence ingestion; never reads cases.
    HR_SYSTEM = "hr_system"
    # Runs evaluation reports: aggregates with every cell at least 5 people, never a case.
    ANALYST = "analyst"


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateCaseRequest(_Request):
    """A manual referral: the manager's concern or the employee's own request."""

    employee_ref: Annotated[str, StringConstraints(min_length=10, max_length=13)] = Field(
        description="The employee's personal identity number or coordination number "
        "(YYYYMMDD-XXXX, YYMMDD-XXXX or without the dash). Stored only encrypted.",
    )
    unit_code: UnitCode = Field(description="Code of a registered organisational unit.")
    trigger: Literal[CaseTrigger.MANAGER_CONCERN, CaseTrigger.SELF_REFERRAL] = Field(
        description="Why the case is opened: `manager_concern` or `self_referral`."
    )


class FindCaseRequest(_Request):
    """Find an employee's case from the identity number: in a body, never in a URL, where
    proxies and access logs would keep it."""

    employee_ref: Annotated[str, StringConstraints(min_length=10, max_length=13)] = Field(
        description="The employee's personal identity number or coordination number."
    )


class SetEmployeeContactRequest(_Request):
    """Where the employee's own notifications go; stored encrypted, never shown again."""

    channel: Literal["email"] = "email"
    address: Annotated[
        str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    ] = Field(description="The employee's e-mail address.")
    language: Literal["sv", "en"] = Field(
        default="sv", description="The language of the employee's notifications."
    )


class CaseCreated(_Response):
    case_id: UUID
    stage: Stage


# ---------------------------------------------------------------- cases, per audience


class CaseListItem(_Response):
    """One row of a case list: stage, unit and dates only, safe for every reading role."""

    case_id: UUID
    unit_code: str
    trigger: CaseTrigger
    stage: Stage
    overdue: bool
    next_deadline_kind: str | None
    next_deadline_on: date | None
    opened_at: datetime
    closed_at: datetime | None


class DeadlineView(_Response):
    """One deadline of the case's current sick period, as the workflow last planned it."""

    kind: str
    due_on: date
    status: str = Field(description="pending, due, overdue or met")
    met_on: date | None


class CaseDeadlines(_Response):
    case_id: UUID
    items: list[DeadlineView]


class CasePage(_Response):
    items: list[CaseListItem]
    total: int = Field(description="Number of cases that match the filters for this caller.")
    limit: int
    offset: int


class ConsentView(_Response):
    party: ConsentParty
    given: bool
    recorded_at: datetime


class MeetingView(_Response):
    starts_at: datetime
    ends_at: datetime
    status: str
    kind: Literal["joint", "follow_up"] = Field(
        default="joint", description="The joint meeting, or a follow-up meeting."
    )


class InterventionView(_Response):
    intervention_id: UUID
    track: Track
    kind: str
    owner: str
    due_on: date
    status: str
    outcome: str | None


class InformationRequestView(_Response):
    """That information was requested from a party, by when and whether it came; never what."""

    request_id: UUID
    party: ConsentParty
    due_on: date
    status: str = Field(description="open, overdue, answered or cancelled")
    requested_at: datetime
    received_on: date | None


class CoordinatorInterventionView(InterventionView):
    protected: bool = Field(
        description="The protected track's safety support, started by a violence disclosure."
    )


class NextStepView(_Response):
    """A next step agreed at a meeting; `planned` once the plan adopted it."""

    step_id: UUID
    track: Track
    kind: str
    owner: str
    due_on: date
    planned: bool


class DisclosureView(_Response):
    """Restricted (coordinator): when a violence disclosure was made, and who asked."""

    disclosed_at: datetime
    at_meeting: bool
    asked_by: str | None


class ScreeningView(_Response):
    """Restricted: a scored instrument (totals and bands, never the answers)."""

    instrument_id: str
    instrument_version: int
    total: int
    band: str
    risk_level: str
    administered_at: datetime


class _CaseCore(_Response):
    case_id: UUID
    stage: Stage
    opened_at: datetime
    closed_at: datetime | None


class _SickLeave(_Response):
    sick_start: date | None
    expected_end: date | None
    relapse_count: int


class CaseForManager(_CaseCore, _SickLeave):
    """Manager of the case's unit: stage, dates, deadlines; never screening, medical or
    social track details, nor the violence flag."""

    audience: Literal["manager"] = "manager"
    unit_code: str
    trigger: CaseTrigger
    overdue: bool
    next_deadline_kind: str | None
    next_deadline_on: date | None
    outcome: str | None
    meetings: list[MeetingView]
    interventions: list[InterventionView] = Field(
        description="Work-oriented interventions only (all tracks for the coordinator)."
    )
    information_requests: list[InformationRequestView] = Field(
        description="Requests to Arbetsförmedlingen only: a request to healthcare, social "
        "services or occupational health reveals a health or social matter (all parties for "
        "the coordinator)."
    )
    next_steps: list[NextStepView] = Field(
        description="Agreed next steps of the work-oriented track (all for the coordinator)."
    )


class CaseForCoordinator(CaseForManager):
    """Coordinator of an assigned unit: everything, including consents. Screening scores,
    the violence flag and the medical/social tracks are added here as they land."""

    audience: Literal["coordinator"] = "coordinator"  # type: ignore[assignment]
    interventions: list[CoordinatorInterventionView] = Field(  # type: ignore[assignment]
        description="Every track's interventions, the protected track's included."
    )
    policy_id: str
    policy_version: int
    consents: list[ConsentView]
    screenings: list[ScreeningView]
    violence_disclosed: bool = Field(
        description="A violence disclosure is recorded (protected track); coordinator only."
    )
    violence_disclosures: list[DisclosureView] = Field(
        description="Each recorded disclosure (restricted table); coordinator only."
    )


class CaseForEmployee(_CaseCore):
    """The employee's own case: where it stands, what is due, and the consents given."""

    audience: Literal["employee"] = "employee"
    trigger: CaseTrigger
    next_deadline_kind: str | None
    next_deadline_on: date | None
    consents: list[ConsentView]
    meetings: list[MeetingView]


class CaseForFkOfficer(_CaseCore, _SickLeave):
    """Försäkringskassan, only with the employee's FK consent: meetings, plan, sick leave."""

    audience: Literal["fk_officer"] = "fk_officer"
    meetings: list[MeetingView]


class CaseForFhv(_CaseCore):
    """Occupational health, only with FHV consent: the medical track (added as it lands)."""

    audience: Literal["fhv"] = "fhv"
    interventions: list[InterventionView] = Field(description="Medical-track interventions.")
    information_requests: list[InformationRequestView] = Field(
        description="Information requests to occupational health itself."
    )
    next_steps: list[NextStepView] = Field(description="Agreed medical-track next steps.")


class CaseForSocialServices(_CaseCore):
    """Social services, only with the employee's social-services consent: the social track
    (never the protected track's safety support) and the requests sent to them."""

    audience: Literal["social_services"] = "social_services"
    interventions: list[InterventionView] = Field(description="Social-track interventions.")
    information_requests: list[InformationRequestView] = Field(
        description="Information requests to social services itself."
    )
    next_steps: list[NextStepView] = Field(description="Agreed social-track next steps.")


CaseView = Annotated[
    CaseForCoordinator
    | CaseForManager
    | CaseForEmployee
    | CaseForFkOfficer
    | CaseForFhv
    | CaseForSocialServices,
    Field(discriminator="audience"),
]


class TimelineEntry(_Response):
    """A step of the case, without its detail."""

    kind: str
    stage: Stage
    occurred_at: datetime


class CoordinatorTimelineEntry(TimelineEntry):
    detail: dict[str, Any]


class TimelineForCoordinator(_Response):
    """Every step, with detail, including the screening, medical, social and violence steps."""

    audience: Literal["coordinator"] = "coordinator"
    case_id: UUID
    entries: list[CoordinatorTimelineEntry]


class TimelineForParty(_Response):
    """The steps of the tracks this role may see; detail is never included."""

    audience: Literal["manager", "employee", "fk_officer", "fhv", "social_services"]
    case_id: UUID
    entries: list[TimelineEntry]


CaseTimeline = Annotated[TimelineForCoordinator | TimelineForParty, Field(discriminator="audience")]


# ---------------------------------------------------------------- case actions


class ActionAccepted(_Response):
    """The workflow accepted the action; `stage` is the case's stage afterwards."""

    case_id: UUID
    action: str
    stage: Stage
    created_ids: list[UUID] = Field(
        default_factory=list, description="Ids the action created (meeting, interventions)."
    )


# ---------------------------------------------------------------- administration (admin role)

PolicyId = Literal["se-default", "no-nav"]
ContactRole = Literal[
    "manager",
    "coordinator",
    "fk_officer",
    "fhv",
    "healthcare",
    "social_services",
    "arbetsformedlingen",
]
LanguageCode = Literal["sv", "en"]
UnitName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
ContactAddress = Annotated[str, StringConstraints(min_length=3, max_length=2048)]


class UnitView(_Response):
    code: str
    name: str
    policy_id: str = Field(description="The policy a new case of the unit takes a snapshot of.")
    active: bool


class CreateUnitRequest(_Request):
    code: UnitCode
    name: UnitName
    policy_id: PolicyId = "se-default"


class ChangeUnitRequest(_Request):
    """Only the fields given change; `active: false` deactivates the unit."""

    name: UnitName | None = None
    policy_id: PolicyId | None = None
    active: bool | None = None


class ContactView(_Response):
    contact_id: int
    role: str
    channel: str
    address: str
    language: str
    active: bool


class CreateContactRequest(_Request):
    role: ContactRole
    channel: Literal["email", "webhook"] = "email"
    address: ContactAddress
    language: LanguageCode = "sv"


class ChangeContactRequest(_Request):
    """Only the fields given change; `active: false` deactivates the contact."""

    address: ContactAddress | None = None
    language: LanguageCode | None = None
    active: bool | None = None


TeamCodeText = Annotated[
    str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]


class CreateTeamRequest(_Request):
    """A joint-meeting team: its cadence (fixed once registered), units and staff."""

    code: TeamCodeText
    name: UnitName
    weekday: int = Field(ge=1, le=7, description="ISO weekday: 1 Monday … 7 Sunday")
    starts_at: str = Field(pattern=r"^\d{2}:\d{2}$", description="local time, e.g. 09:00")
    meeting_minutes: int = Field(ge=15, le=240)
    capacity: int = Field(ge=1, le=12)
    anchor_on: date
    lead_hours: int = Field(ge=0, le=288)
    units: list[UnitCode] = Field(min_length=1, max_length=50)
    fk_officer: ContactAddress | None = None
    coordinators: list[ContactAddress] = Field(default_factory=list, max_length=10)


class ChangeTeamRequest(_Request):
    """Add units to a team (a team's cadence is fixed; pause it to stop booking)."""

    add_units: list[UnitCode] = Field(min_length=1, max_length=50)


class TeamRegistered(_Response):
    code: str
    result: Literal["created", "units_added", "unchanged"]


# ---------------------------------------------------------------- codec server


class CodecPayload(BaseModel):
    """A Temporal payload in protobuf JSON: metadata values and data are base64."""

    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


class CodecPayloads(BaseModel):
    # The CLI sends `{}` for a query without arguments.
    payloads: list[CodecPayload] = Field(default_factory=list)


# ---------------------------------------------------------------- errors and health


class FieldError(BaseModel):
    field: str
    reason: str


class ValidationProblem(BaseModel):
    detail: list[FieldError]


class Problem(BaseModel):
    detail: str


class CaseConflict(Problem):
    """409 on a referral: the employee already has an open case."""

    # The open case, when the caller may see it (else absent: existence is all it learns).
    case_id: UUID | None = None


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, Literal["ok", "unavailable"]]
