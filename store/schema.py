"""The record store's tables: the organisation's memory of each case."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Time,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSONB}


def table_of(model: type[Base]) -> Table:
    """The table of a mapped class: for statements built once and run with parameters, which
    skip the ORM's per-call work (hot writes such as a case change's)."""
    return Base.metadata.tables[model.__tablename__]


class Unit(Base):
    """An organisational unit (e.g. a home-care group) that cases belong to."""

    __tablename__ = "units"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # The policy a new case of this unit takes a snapshot of (models.policy.POLICIES).
    policy_id: Mapped[str] = mapped_column(String(32), server_default="se-default")
    # A deactivated unit takes no new referrals; its cases and history stay.
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())


class Employee(Base):
    """The only place where a person's identity meets the pseudonym used everywhere else."""

    __tablename__ = "employees"
    __table_args__ = (CheckConstraint("sex IN ('F', 'M')", name="sex"),)

    pseudonym: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Keyed hash of the personal identity number: lets us find the employee again
    # without storing the number in plain text.
    pin_lookup: Mapped[str | None] = mapped_column(String(64), unique=True)
    pin_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    erased_at: Mapped[datetime | None]
    # Coded at intake from the identity number, for the evaluation's breakdowns only
    # (issue 16): `F`/`M` and the birth year. Never sent to Temporal.
    sex: Mapped[str | None] = mapped_column(String(1))
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)


class Case(Base):
    """The projection of a case workflow that the API lists and filters."""

    __tablename__ = "cases"
    __table_args__ = (
        # One open case per employee, whatever path opens it: the backstop behind the
        # employee's absence monitor, which decides every opening one at a time.
        Index(
            "uq_cases_one_open_per_employee",
            "employee_pseudonym",
            unique=True,
            postgresql_where=text("closed_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(64), unique=True)
    employee_pseudonym: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.pseudonym"))
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"), index=True)
    trigger: Mapped[str] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(32), index=True)
    policy_id: Mapped[str] = mapped_column(String(32), server_default="se-default")
    policy_version: Mapped[int] = mapped_column(Integer, server_default="1")
    sick_start: Mapped[date | None]
    expected_end: Mapped[date | None]
    overdue: Mapped[bool] = mapped_column(Boolean, server_default=false(), index=True)
    next_deadline_kind: Mapped[str | None] = mapped_column(String(64))
    next_deadline_on: Mapped[date | None]
    relapse_count: Mapped[int] = mapped_column(Integer, server_default="0")
    outcome: Mapped[str | None] = mapped_column(String(32))
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    closed_at: Mapped[datetime | None]
    # Case lifecycle (issue 3): the next joint meeting, the long-term track, erasure.
    next_meeting_at: Mapped[datetime | None]
    long_term: Mapped[bool] = mapped_column(Boolean, server_default=false())
    erased_at: Mapped[datetime | None]


class CaseConsent(Base):
    """The employee's current consent per outside party; it gates who may see the case."""

    __tablename__ = "case_consents"

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    party: Mapped[str] = mapped_column(String(32), primary_key=True)
    given: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[datetime]


class CaseEvent(Base):
    """Append-only timeline of a case; `step_key` makes every write idempotent."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("workflow_id", "step_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    workflow_id: Mapped[str] = mapped_column(String(64))
    step_key: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AbsenceEvent(Base):
    """An absence reported by HR/payroll, stored once per event id before a monitor hears of it."""

    __tablename__ = "absence_events"
    __table_args__ = (Index("ix_absence_events_employee_start", "employee_pseudonym", "start"),)

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    employee_pseudonym: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.pseudonym"))
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    kind: Mapped[str] = mapped_column(String(16))
    start: Mapped[date]
    end: Mapped[date | None]
    extent: Mapped[int] = mapped_column(Integer)
    expected_end: Mapped[date | None]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Set once the employee's monitor has the event; unset rows are sent again on retry.
    delivered_at: Mapped[datetime | None]
    # An ongoing absence reported again with the same start (now with its end) replaces it.
    superseded_by: Mapped[str | None] = mapped_column(String(64))


# ---------------------------------------------------------------- notifications (issue 4)

# Roles that are reached through a unit's contact list; the employee is reached through
# their own protected contact (EmployeeContact).
UNIT_CONTACT_ROLES = (
    "manager",
    "coordinator",
    "fk_officer",
    "fhv",
    # Parties asked for information (issue 7); the longest name sets the column width.
    "healthcare",
    "social_services",
    "arbetsformedlingen",
)
CONTACT_CHANNELS = ("email", "webhook")
LANGUAGES = ("sv", "en")  # core.i18n.LANGUAGES
NOTIFICATION_STATUSES = ("pending", "sending", "delivered", "dead_letter", "no_recipient")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class UnitContact(Base):
    """Who in a unit receives notifications for a role, and over which channel.

    Work addresses of staff, not case data; the employee's own address is elsewhere.
    """

    __tablename__ = "unit_contacts"
    __table_args__ = (
        UniqueConstraint("unit_code", "role", "channel", "address"),
        CheckConstraint(_one_of("role", UNIT_CONTACT_ROLES), name="role"),
        CheckConstraint(_one_of("channel", CONTACT_CHANNELS), name="channel"),
        CheckConstraint(_one_of("language", LANGUAGES), name="language"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Notifications go in the recipient's language (core.i18n), Swedish by default.
    language: Mapped[str] = mapped_column(String(2), server_default="sv")
    # A deactivated contact receives no new notifications; sent ones still point here.
    active: Mapped[bool] = mapped_column(Boolean, server_default=true())


class EmployeeContact(Base):
    """The employee's own address, encrypted like the personal identity number.

    Deleting this row is the erasure of the contact; outbox rows point here by pseudonym
    and never copy the address, so a pending notification to an erased contact dead-letters.
    """

    __tablename__ = "employee_contacts"
    __table_args__ = (
        CheckConstraint(_one_of("channel", CONTACT_CHANNELS), name="channel"),
        CheckConstraint(_one_of("language", LANGUAGES), name="language"),
    )

    employee_pseudonym: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("employees.pseudonym"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    address_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    language: Mapped[str] = mapped_column(String(2), server_default="sv")


class Notification(Base):
    """The outbox: one row per notification and recipient, written with the fact it reports.

    Only neutral fields are stored; the message is composed at delivery time from them.
    `last_error` holds a channel's DeliveryError.reason, which carries no personal data.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(_one_of("status", NOTIFICATION_STATUSES), name="status"),
        Index("ix_notifications_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # The caller's key (one fact, one role); delivery_key adds the recipient and is unique.
    idempotency_key: Mapped[str] = mapped_column(String(200), index=True)
    delivery_key: Mapped[str] = mapped_column(String(200), unique=True)
    notification_type: Mapped[str] = mapped_column(String(40))
    recipient_role: Mapped[str] = mapped_column(String(32))
    unit_contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("unit_contacts.id", ondelete="SET NULL")
    )
    employee_pseudonym: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("employees.pseudonym"))
    # None for the programme's staff notifications (training, APT), which are no case's.
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"), index=True)
    unit_code: Mapped[str] = mapped_column(String(32))
    due_on: Mapped[date | None] = mapped_column(Date)
    deadline_kind: Mapped[str | None] = mapped_column(String(64))
    meeting_id: Mapped[uuid.UUID | None]
    meeting_starts_at: Mapped[datetime | None]
    meeting_ends_at: Mapped[datetime | None]
    meeting_sequence: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    delivered_at: Mapped[datetime | None]


# ---------------------------------------------------------------- meetings and screening


class Meeting(Base):
    """A joint meeting of a case; `step_key` makes the booking idempotent."""

    __tablename__ = "meetings"
    __table_args__ = (UniqueConstraint("workflow_id", "step_key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    workflow_id: Mapped[str] = mapped_column(String(64))
    step_key: Mapped[str] = mapped_column(String(128))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    # iCalendar SEQUENCE: grows with each reschedule or cancellation.
    sequence: Mapped[int] = mapped_column(Integer, server_default="0")
    status: Mapped[str] = mapped_column(String(16), server_default="booked")
    reinforced_support: Mapped[bool | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # The joint meeting, or a follow-up meeting later in the case (issue 7).
    kind: Mapped[str] = mapped_column(String(16), server_default="joint")
    # The party that held the meeting and asked the violence-exposure questions, by role.
    held_by: Mapped[str | None] = mapped_column(String(16))


class MeetingParticipant(Base):
    """Who is invited to and attended a meeting, by role: the parties, not their names."""

    __tablename__ = "meeting_participants"

    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("meetings.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    attended: Mapped[bool | None]


class Screening(Base):
    """A scored instrument: totals and bands only, never the answers (coordinator-only)."""

    __tablename__ = "screenings"
    __table_args__ = (UniqueConstraint("workflow_id", "step_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    workflow_id: Mapped[str] = mapped_column(String(64))
    step_key: Mapped[str] = mapped_column(String(128))
    instrument_id: Mapped[str] = mapped_column(String(64))
    instrument_version: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    band: Mapped[str] = mapped_column(String(32))
    risk_level: Mapped[str] = mapped_column(String(16))
    administered_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ViolenceDisclosure(Base):
    """Restricted: that a disclosure was made, and when. No free text, no answers, no score.

    Kept apart from `screenings` so that access can be granted, audited and erased on its own.
    """

    __tablename__ = "violence_disclosures"
    __table_args__ = (UniqueConstraint("workflow_id", "step_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    workflow_id: Mapped[str] = mapped_column(String(64))
    step_key: Mapped[str] = mapped_column(String(128))
    disclosed_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Where it was disclosed: at a meeting (which, and the asking party's role), or at the
    # intake screening (both unset).
    meeting_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("meetings.id"))
    asked_by: Mapped[str | None] = mapped_column(String(16))


# ---------------------------------------------------------------- access audit (issue 5)


class AccessAudit(Base):
    """Append-only: who read (or was refused) what of which case. A trigger in the database
    refuses UPDATE and DELETE (`access_audit_append_only`); no personal data beyond the
    caller's own subject."""

    __tablename__ = "access_audit"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    subject: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    # No foreign key: refused attempts on unknown ids are recorded too, and erasing a case
    # must not erase the record of who looked at it.
    case_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    what: Mapped[str] = mapped_column(String(64))
    allowed: Mapped[bool] = mapped_column(Boolean)


# ---------------------------------------------------------------- case lifecycle (issue 3)


class CaseDeadline(Base):
    """The deadlines of a case's current sick period, as its workflow last planned them."""

    __tablename__ = "case_deadlines"

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    # pending, due, overdue or met (models.deadlines.DeadlineStatus)
    status: Mapped[str] = mapped_column(String(16))
    met_on: Mapped[date | None] = mapped_column(Date)


class CaseIntervention(Base):
    """An intervention of a case's plan; written by its InterventionWorkflow."""

    __tablename__ = "case_interventions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    workflow_id: Mapped[str] = mapped_column(String(64), unique=True)
    track: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(32))
    due_on: Mapped[date] = mapped_column(Date)
    # open, overdue, completed or cancelled (models.case.InterventionStatus)
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(32))
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    assigned_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    # The protected track's safety support: shown to the coordinator only, erased with the
    # case's personal data (issue 7).
    protected: Mapped[bool] = mapped_column(Boolean, server_default=false())


# ---------------------------------------------------------------- information requests (issue 7)


class CaseInformationRequest(Base):
    """A request for information to an outside party; written by its InformationRequestWorkflow.

    That, to whom and when: never what was asked or answered, which stays with the parties.
    """

    __tablename__ = "case_information_requests"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    workflow_id: Mapped[str] = mapped_column(String(64), unique=True)
    # healthcare, fhv, arbetsformedlingen or social_services (models.case.ConsentParty)
    party: Mapped[str] = mapped_column(String(32))
    due_on: Mapped[date] = mapped_column(Date)
    # open, overdue, answered or cancelled (models.case.InformationRequestStatus)
    status: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime]
    received_on: Mapped[date | None] = mapped_column(Date)
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class AgreedNextStepRow(Base):
    """A next step agreed at a meeting: codes and a date; `intervention_id` once planned."""

    __tablename__ = "agreed_next_steps"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("meetings.id"))
    track: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(32))
    due_on: Mapped[date] = mapped_column(Date)
    intervention_id: Mapped[uuid.UUID | None]
    agreed_at: Mapped[datetime]


# ---------------------------------------------------------------- joint-meeting teams (issue 7)


class MeetingTeam(Base):
    """A joint-meeting team's biweekly cadence (models.meetings.TeamConfig): configuration."""

    __tablename__ = "meeting_teams"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 1 AND 7", name="weekday"),
        CheckConstraint("meeting_minutes BETWEEN 15 AND 240", name="meeting_minutes"),
        CheckConstraint("capacity BETWEEN 1 AND 12", name="capacity"),
        CheckConstraint("lead_hours BETWEEN 0 AND 288", name="lead_hours"),
    )

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # ISO weekday (1 Monday) and local wall-clock time in Europe/Stockholm.
    weekday: Mapped[int] = mapped_column(SmallInteger)
    starts_at: Mapped[time] = mapped_column(Time)
    meeting_minutes: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)
    # Any date in a week that has a meeting: fixes which weeks are meeting weeks.
    anchor_on: Mapped[date] = mapped_column(Date)
    lead_hours: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class MeetingTeamUnit(Base):
    """Which team a unit's cases meet in; the primary key keeps a unit in one team at most."""

    __tablename__ = "meeting_team_units"

    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"), primary_key=True)
    team_code: Mapped[str] = mapped_column(ForeignKey("meeting_teams.code"), index=True)


# ---------------------------------------------------------------- the programme (issue 16)


class Manager(Base):
    """A manager of a unit, for the yearly course in insurance medicine: staff, not cases.

    Reached through a `manager` contact of the unit (`unit_contacts`), where invitations and
    reminders go.
    """

    __tablename__ = "managers"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("unit_contacts.id"), unique=True)
    appointed_on: Mapped[date] = mapped_column(Date)
    left_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class TrainingRound(Base):
    """One year's training in insurance medicine, given jointly by FK and HR."""

    __tablename__ = "training_rounds"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(SmallInteger, index=True)
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class TrainingSession(Base):
    """A session of a round; managers are invited to one with an `.ics` invitation."""

    __tablename__ = "training_sessions"
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="ends_after_start"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    round_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("training_rounds.id"), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    sequence: Mapped[int] = mapped_column(Integer, server_default="0")


class TrainingAttendance(Base):
    """Who was invited to a session and whether they attended."""

    __tablename__ = "training_attendance"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("training_sessions.id"), primary_key=True
    )
    manager_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("managers.id"), primary_key=True)
    invited_at: Mapped[datetime | None]
    attended: Mapped[bool | None]
    recorded_at: Mapped[datetime | None]


class AptDialogue(Base):
    """A workplace meeting (APT) on sustainable working life: codes and a count, no persons."""

    __tablename__ = "apt_dialogues"
    __table_args__ = (CheckConstraint("participants > 0", name="participants"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"), index=True)
    held_on: Mapped[date] = mapped_column(Date)
    themes: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    participants: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())
